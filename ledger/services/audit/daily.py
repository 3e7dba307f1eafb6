"""Signed daily seals: at the end of each business day the latest seal is signed with the audit key and
kept as a small document the treasury archives; any archived one can be held against the database."""

from __future__ import annotations

import base64
import binascii
import json
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.db.models_audit import AuditDailySeal, AuditSeal
from ledger.db.types import from_micros, to_micros
from ledger.services.audit import merkle
from ledger.services.audit.encoding import EncodingError, FieldType, decode_fields, decode_integer, encode
from ledger.services.audit.keys import AuditKeys
from ledger.services.audit.kinds import REGISTRY, RecordKind
from ledger.services.audit.seals import DEFAULT_MAX_RECORDS, cut_seal, latest, load
from receipts.algorithms import Algorithm, is_valid_signature
from receipts.keys import VerificationKey, public_key_der

TAG = "etimbre-daily-seal"
FORMAT = 1
DOCUMENT_FORMAT = "etimbre-daily-seal/1"
MAX_DOCUMENT_BYTES = 64 * 1024


class DailySealError(ValueError):
    """A daily seal that cannot be made, read or trusted; the message says which check failed."""


class DayNotOverError(DailySealError):
    pass


@dataclass(frozen=True, slots=True)
class Statement:
    """What the audit key signs for a day (its canonical bytes are in `encode`)."""

    day: str
    timezone: str
    day_ended_at: int  # microseconds since 1970, UTC
    seal_no: int
    seal_hash: bytes
    merkle_root: bytes
    seal_made_at: int
    history_root: bytes  # RFC 9162 root over the hashes of seals 1..seal_no
    records_sealed: int  # records in seals 1..seal_no
    signed_at: int

    def encode(self) -> bytes:
        return encode(
            [
                (TAG, FieldType.TEXT),
                (FORMAT, FieldType.INTEGER),
                (self.day, FieldType.TEXT),
                (self.timezone, FieldType.TEXT),
                (self.day_ended_at, FieldType.INTEGER),
                (self.seal_no, FieldType.INTEGER),
                (self.seal_hash, FieldType.BYTES),
                (self.merkle_root, FieldType.BYTES),
                (self.seal_made_at, FieldType.INTEGER),
                (self.history_root, FieldType.BYTES),
                (self.records_sealed, FieldType.INTEGER),
                (self.signed_at, FieldType.INTEGER),
            ]
        )


_STATEMENT_FIELDS = 12


def decode_statement(data: bytes) -> Statement:
    try:
        fields, end = decode_fields(data)
    except EncodingError as error:
        raise DailySealError(f"statement: {error}") from None
    if end != len(data) or len(fields) != _STATEMENT_FIELDS or fields[0] != TAG.encode():
        raise DailySealError("statement: not an etimbre daily seal statement")
    if decode_integer(fields[1]) != FORMAT:
        raise DailySealError(f"statement: format {decode_integer(fields[1])} is not supported")

    def number(index: int) -> int:
        value = decode_integer(fields[index])
        if value is None:
            raise DailySealError(f"statement: field {index + 1} is missing")
        return value

    def raw(index: int, size: int | None = 32) -> bytes:
        value = fields[index]
        if value is None or (size is not None and len(value) != size):
            raise DailySealError(f"statement: field {index + 1} is malformed")
        return value

    return Statement(
        day=raw(2, None).decode(),
        timezone=raw(3, None).decode(),
        day_ended_at=number(4),
        seal_no=number(5),
        seal_hash=raw(6),
        merkle_root=raw(7),
        seal_made_at=number(8),
        history_root=raw(9),
        records_sealed=number(10),
        signed_at=number(11),
    )


@dataclass(frozen=True, slots=True)
class DailySeal:
    statement: Statement
    statement_bytes: bytes
    algorithm: Algorithm
    kid: bytes
    signature: bytes
    public_key: bytes  # SubjectPublicKeyInfo DER, for convenience: trust it only through its kid

    def document(self) -> bytes:
        """The JSON document the treasury archives; `statement` holds the exact bytes that were signed."""
        s = self.statement
        return (
            json.dumps(
                {
                    "format": DOCUMENT_FORMAT,
                    "day": s.day,
                    "timezone": s.timezone,
                    "day_ended_at": from_micros(s.day_ended_at).isoformat(),
                    "seal": {
                        "number": s.seal_no,
                        "hash": s.seal_hash.hex(),
                        "merkle_root": s.merkle_root.hex(),
                        "made_at": from_micros(s.seal_made_at).isoformat(),
                    },
                    "history": {"size": s.seal_no, "root": s.history_root.hex()},
                    "records_sealed": s.records_sealed,
                    "signed_at": from_micros(s.signed_at).isoformat(),
                    "statement": base64.b64encode(self.statement_bytes).decode(),
                    "signature": {
                        "algorithm": self.algorithm.label,
                        "kid": self.kid.hex(),
                        "value": base64.b64encode(self.signature).decode(),
                    },
                    "public_key": base64.b64encode(self.public_key).decode(),
                },
                indent=2,
            )
            + "\n"
        ).encode()


def parse_document(data: bytes) -> DailySeal:
    """A daily seal from its archived document; the signed statement is what counts, not the JSON copy."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DailySealError(f"a daily seal document is at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(data)
        if document.get("format") != DOCUMENT_FORMAT:
            raise DailySealError(f"format: expected {DOCUMENT_FORMAT!r}")
        statement_bytes = base64.b64decode(document["statement"], validate=True)
        signature = document["signature"]
        daily = DailySeal(
            statement=decode_statement(statement_bytes),
            statement_bytes=statement_bytes,
            algorithm=Algorithm.from_label(signature["algorithm"]),
            kid=bytes.fromhex(signature["kid"]),
            signature=base64.b64decode(signature["value"], validate=True),
            public_key=base64.b64decode(document["public_key"], validate=True),
        )
    except DailySealError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise DailySealError(f"not a daily seal document: {error}") from None
    if (document.get("day"), document.get("seal", {}).get("number")) != (
        daily.statement.day,
        daily.statement.seal_no,
    ):
        raise DailySealError("the readable copy disagrees with the signed statement (day or seal number)")
    return daily


def check_signature(daily: DailySeal, keys: Sequence[VerificationKey]) -> VerificationKey:
    """The trusted audit key that signed it; raises if none of `keys` did."""
    for key in keys:
        if key.kid == daily.kid:
            if key.algorithm is not daily.algorithm:
                raise DailySealError(
                    f"key {key.kid.hex()} signs with {key.algorithm.label}, not {daily.algorithm.label}"
                )
            if not is_valid_signature(key.public_key, daily.signature, daily.statement_bytes):
                raise DailySealError(
                    f"the signature of the daily seal of {daily.statement.day} does not verify"
                )
            return key
    raise DailySealError(
        f"the daily seal of {daily.statement.day} is signed by {daily.kid.hex()}, not a trusted audit key"
    )


# Business days ---------------------------------------------------------------------------------------------


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """When a business day starts and ends, in the treasury's time zone."""
    zone = zoneinfo.ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def local_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def due_days(session: Session, now: datetime, timezone: str, *, limit: int = 31) -> list[date]:
    """Business days that are over and not signed yet, from the first sealed day (at most `limit`)."""
    first_made = session.scalar(select(func.min(AuditSeal.made_at)))
    if first_made is None:
        return []
    last_signed = session.scalar(select(func.max(AuditDailySeal.day)))
    day = (
        date.fromisoformat(last_signed) + timedelta(days=1)
        if last_signed
        else local_day(from_micros(first_made), timezone)
    )
    yesterday = local_day(now, timezone) - timedelta(days=1)
    days: list[date] = []
    while day <= yesterday and len(days) < limit:
        days.append(day)
        day += timedelta(days=1)
    return days


# History: every seal hash up to a seal, as a Merkle tree ---------------------------------------------------


def seal_hashes(session: Session, size: int) -> list[bytes]:
    return [
        bytes(found)
        for found in session.scalars(
            select(AuditSeal.seal_hash).where(AuditSeal.seal_no <= size).order_by(AuditSeal.seal_no)
        )
    ]


def history_leaves(hashes: Sequence[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(found) for found in hashes]


# Signing and reading -------------------------------------------------------------------------------------


def stored(session: Session, day: date) -> DailySeal | None:
    found = session.get(AuditDailySeal, day.isoformat())
    return None if found is None else parse_document(bytes(found.document))


def stored_dailies(session: Session) -> list[DailySeal]:
    return [
        parse_document(bytes(found))
        for found in session.scalars(select(AuditDailySeal.document).order_by(AuditDailySeal.day))
    ]


def covering(session: Session, seal_no: int) -> DailySeal | None:
    """The earliest daily seal that covers `seal_no` (signs it or a later seal)."""
    found = session.scalar(
        select(AuditDailySeal.document)
        .where(AuditDailySeal.seal_no >= seal_no)
        .order_by(AuditDailySeal.seal_no, AuditDailySeal.day)
        .limit(1)
    )
    return None if found is None else parse_document(bytes(found))


def sign_day(
    session: Session,
    day: date,
    *,
    timezone: str,
    keys: AuditKeys,
    now: datetime,
    kinds: Sequence[RecordKind] = REGISTRY,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> DailySeal:
    """Sign the first seal cut after `day` ended (cutting one now if there is none); once per day."""
    already = stored(session, day)
    if already is not None:
        return already
    _, end = day_bounds(day, timezone)
    if now < end:
        raise DayNotOverError(
            f"{day.isoformat()} is not over yet in {timezone} (it ends at {end.isoformat()})"
        )
    seal_no = session.scalar(select(func.min(AuditSeal.seal_no)).where(AuditSeal.made_at >= to_micros(end)))
    if seal_no is None:
        cut_seal(session, kinds=kinds, max_records=max_records, force=True)
        newest = latest(session)
        assert newest is not None
        seal_no = newest.header.seal_no
    seal = load(session, seal_no)
    assert seal is not None
    hashes = seal_hashes(session, seal_no)
    records = session.scalar(select(func.sum(AuditSeal.record_count)).where(AuditSeal.seal_no <= seal_no))
    signer = keys.signer(session, now)
    statement = Statement(
        day=day.isoformat(),
        timezone=timezone,
        day_ended_at=to_micros(end),
        seal_no=seal_no,
        seal_hash=seal.stored_hash,
        merkle_root=seal.header.merkle_root,
        seal_made_at=seal.header.made_at,
        history_root=merkle.root(history_leaves(hashes)),
        records_sealed=int(records or 0),
        signed_at=to_micros(now),
    )
    statement_bytes = statement.encode()
    public = next(key for key in keys.verification_keys(session) if key.kid == signer.kid)
    daily = DailySeal(
        statement=statement,
        statement_bytes=statement_bytes,
        algorithm=signer.algorithm,
        kid=signer.kid,
        signature=signer.sign(statement_bytes),
        public_key=public_key_der(public.public_key),
    )
    session.add(
        AuditDailySeal(
            day=statement.day,
            seal_no=seal_no,
            seal_hash=seal.stored_hash,
            kid=signer.kid,
            signed_at=statement.signed_at,
            document=daily.document(),
        )
    )
    session.flush()
    return daily
