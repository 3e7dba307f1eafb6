"""Seal status, seals, signed daily seals and inclusion proofs, for auditors."""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, PathParameter

from ledger.api import problems
from ledger.api.auth import requires
from ledger.api.problems import ApiProblem
from ledger.db.engine import Database
from ledger.db.types import from_micros
from ledger.services.apikeys import Role
from ledger.services.audit import daily, proofs, runner, seals
from ledger.services.audit.seals import StoredSeal

DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class SealKindOut(msgspec.Struct, kw_only=True):
    kind: str
    record_count: int
    content_digest: str
    first_position: int
    end_position: int


class SealOut(msgspec.Struct, kw_only=True):
    number: int
    hash: str
    previous_hash: str
    merkle_root: str
    made_at: datetime
    complete_through: datetime
    record_count: int
    kinds: list[SealKindOut]
    header: str  # base64 of the canonical header bytes: SHA-256(0x02 || header) is `hash`
    intact: bool  # the header still hashes to the hash stored with it

    @classmethod
    def of(cls, seal: StoredSeal) -> SealOut:
        header = seal.header
        return cls(
            number=header.seal_no,
            hash=seal.stored_hash.hex(),
            previous_hash=header.previous_hash.hex(),
            merkle_root=header.merkle_root.hex(),
            made_at=from_micros(header.made_at),
            complete_through=from_micros(header.complete_through),
            record_count=header.record_count,
            kinds=[
                SealKindOut(
                    kind=k.kind,
                    record_count=k.record_count,
                    content_digest=k.content_digest.hex(),
                    first_position=k.first_position,
                    end_position=k.end_position,
                )
                for k in header.kinds
            ],
            header=base64.b64encode(header.encode()).decode(),
            intact=header.hash() == seal.stored_hash,
        )


class DailyRefOut(msgspec.Struct, kw_only=True):
    day: str
    seal: int


class SealStatusOut(msgspec.Struct, kw_only=True):
    latest: SealOut | None
    unsealed: dict[str, int]
    last_daily_seal: DailyRefOut | None


class DailySealSealOut(msgspec.Struct, kw_only=True):
    number: int
    hash: str
    merkle_root: str
    made_at: datetime


class DailySealHistoryOut(msgspec.Struct, kw_only=True):
    size: int
    root: str


class DailySealSignatureOut(msgspec.Struct, kw_only=True):
    algorithm: str
    kid: str
    value: str


class DailySealOut(msgspec.Struct, kw_only=True):
    """The document the treasury archives; `statement` holds the exact bytes that were signed."""

    format: str
    day: str
    timezone: str
    day_ended_at: datetime
    seal: DailySealSealOut
    history: DailySealHistoryOut
    records_sealed: int
    signed_at: datetime
    statement: str
    signature: DailySealSignatureOut
    public_key: str


class RecordProofOut(msgspec.Struct, kw_only=True):
    kind: str
    fields: dict[str, Any]
    record: str
    leaf_index: int
    path: list[str]


class ProofSealOut(msgspec.Struct, kw_only=True):
    number: int
    header: str
    hash: str
    merkle_root: str
    tree_size: int


class ProofHistoryOut(msgspec.Struct, kw_only=True):
    leaf_index: int
    size: int
    path: list[str]
    daily_seal: DailySealOut


class ProofOut(msgspec.Struct, kw_only=True):
    format: str
    entry: uuid.UUID
    records: list[RecordProofOut]
    seal: ProofSealOut
    history: ProofHistoryOut | None


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]
    guards = [requires(Role.AUDITOR, Role.ADMIN)]

    @get(
        "/seals/latest",
        operation_id="getSealStatus",
        summary="The latest seal, the records waiting to be sealed, and the last signed day",
        responses=problems.responses(401, 403),
        sync_to_thread=True,
    )
    def latest(self, state: State) -> SealStatusOut:
        database: Database = state.database
        with database.read() as session:
            found = runner.status(session)
        return SealStatusOut(
            latest=SealOut.of(found.latest) if found.latest else None,
            unsealed=found.unsealed,
            last_daily_seal=(
                DailyRefOut(day=found.last_daily_day, seal=found.last_daily_seal or 0)
                if found.last_daily_day
                else None
            ),
        )

    @get(
        "/seals/{number:int}",
        operation_id="getSeal",
        summary="One seal of the chain",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def seal(
        self, state: State, number: Annotated[int, PathParameter(ge=1, le=2**62, description="seal number")]
    ) -> SealOut:
        database: Database = state.database
        with database.read() as session:
            found = seals.load(session, number)
        if found is None:
            raise ApiProblem(404, "not-found", "Not found", detail=f"no seal {number}")
        return SealOut.of(found)

    @get(
        "/daily-seals/{day:str}",
        operation_id="getDailySeal",
        summary="The signed daily seal of a business day (treasury time zone), as archived",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def daily_seal(
        self, state: State, day: Annotated[str, PathParameter(pattern=DAY, description="YYYY-MM-DD")]
    ) -> DailySealOut:
        database: Database = state.database
        try:
            wanted = date.fromisoformat(day)
        except ValueError:
            raise ApiProblem(
                400,
                "validation",
                "The request is not valid",
                detail=f"day: {day} is not a date",
                extra={"errors": [{"field": "day", "message": "not a date", "source": "path"}]},
            ) from None
        with database.read() as session:
            found = daily.stored(session, wanted)
        if found is None:
            raise ApiProblem(404, "not-found", "Not found", detail=f"{day} is not signed (yet)")
        return msgspec.json.decode(found.document(), type=DailySealOut)

    @get(
        "/entries/{entry_id:uuid}/proof",
        operation_id="getInclusionProof",
        summary="Proof that an entry and its postings are sealed (and under a signed daily seal)",
        responses=problems.responses(401, 403, 404, 409),
        sync_to_thread=True,
    )
    def proof(self, state: State, entry_id: FromPath[uuid.UUID]) -> ProofOut:
        database: Database = state.database
        with database.read() as session:
            found = proofs.prove(session, entry_id)
        return msgspec.convert(found.to_json(), ProofOut, strict=False)
