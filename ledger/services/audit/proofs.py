"""Inclusion proofs: an entry and its postings, their seal and the daily seal over it, checkable by anyone
with nothing but docs/audit-seals.md."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ledger.services.audit import merkle
from ledger.services.audit.contents import leaves_of
from ledger.services.audit.daily import DailySeal, covering, history_leaves, seal_hashes
from ledger.services.audit.encoding import FieldType, decode_fields, decode_integer
from ledger.services.audit.findings import describe_key
from ledger.services.audit.kinds import ENTRY, POSTING, RecordKind
from ledger.services.audit.records import member_key, read_where
from ledger.services.audit.seals import Member, StoredSeal, load, members, seal_of
from ledger.services.journal import EntryNotFoundError

FORMAT = "etimbre-inclusion-proof/1"


class ProofError(Exception):
    """No proof can be given for an entry; the message says why."""


class NotSealedYetError(ProofError):
    """The entry is recorded but its seal is not cut yet (seals are cut every few seconds)."""


class SealDamagedError(ProofError):
    """The entry, or the seal holding it, is no longer what was sealed: `etimbre audit verify` says more."""


@dataclass(frozen=True, slots=True)
class RecordProof:
    kind: RecordKind
    record: bytes
    leaf_index: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    entry_id: uuid.UUID
    seal: StoredSeal
    records: tuple[RecordProof, ...]
    daily: DailySeal | None
    history_path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        header = self.seal.header
        history = None
        if self.daily is not None:
            history = {
                "leaf_index": header.seal_no - 1,
                "size": self.daily.statement.seal_no,
                "path": [node.hex() for node in self.history_path],
                "daily_seal": json.loads(self.daily.document()),
            }
        return {
            "format": FORMAT,
            "entry": str(self.entry_id),
            "records": [
                {
                    "kind": proof.kind.name,
                    "fields": readable(proof.kind, proof.record),
                    "record": base64.b64encode(proof.record).decode(),
                    "leaf_index": proof.leaf_index,
                    "path": [node.hex() for node in proof.path],
                }
                for proof in self.records
            ],
            "seal": {
                "number": header.seal_no,
                "header": base64.b64encode(header.encode()).decode(),
                "hash": header.hash().hex(),
                "merkle_root": header.merkle_root.hex(),
                "tree_size": header.record_count,
            },
            "history": history,
        }


def readable(kind: RecordKind, record: bytes) -> dict[str, Any]:
    """A record's fields as people read them (the proof's `record` bytes are what is hashed)."""
    fields, _ = decode_fields(record)
    values: dict[str, Any] = {}
    for spec, value in zip(kind.fields, fields[1:], strict=True):
        if value is None:
            values[spec.name] = None
        elif spec.type is FieldType.UUID:
            values[spec.name] = str(uuid.UUID(bytes=value))
        elif spec.type is FieldType.INTEGER:
            values[spec.name] = decode_integer(value)
        elif spec.type is FieldType.BYTES:
            values[spec.name] = value.hex()
        else:
            values[spec.name] = value.decode()
    return values


def _leaves(session: Session, seal: StoredSeal) -> list[Member]:
    stored = members(session, seal.header.seal_no)
    listed = [member for name in sorted(stored, key=str.encode) for member in stored[name]]
    if merkle.root([member.leaf for member in listed]) == seal.header.merkle_root:
        return listed
    # The member list was tampered with; the rows may still be intact.
    recomputed = leaves_of(session, seal)
    if merkle.root([member.leaf for member in recomputed]) != seal.header.merkle_root:
        raise ProofError(
            f"seal {seal.header.seal_no} no longer matches its Merkle root: run `etimbre audit verify`"
        )
    return recomputed


def prove(session: Session, entry_id: uuid.UUID) -> InclusionProof:
    """The proof that an entry and each of its postings are in their seal (and in a signed daily seal)."""
    key = {"id": entry_id}
    entry_records = read_where(session, ENTRY, "t.id = :id", key)
    if not entry_records:
        raise EntryNotFoundError(f"no entry {entry_id}")
    seal_no = seal_of(session, ENTRY, "t.id = :id", key)
    if seal_no is None:
        raise NotSealedYetError(f"entry {entry_id} is not sealed yet; seals are cut every few seconds")
    seal = load(session, seal_no)
    assert seal is not None
    listed = _leaves(session, seal)
    index_of = {(member.key, member.leaf): index for index, member in enumerate(listed)}
    leaves = [member.leaf for member in listed]
    posting_records = read_where(session, POSTING, "t.entry_id = :id", key)
    proofs = []
    for kind, record in [(ENTRY, entry_records[0]), *((POSTING, p) for p in posting_records)]:
        index = index_of.get((member_key(kind, record), merkle.leaf_hash(record)))
        if index is None:
            raise SealDamagedError(
                f"{kind.name} {describe_key(kind, member_key(kind, record))} is not what seal {seal_no}"
                " sealed: it was altered; run `etimbre audit verify`"
            )
        proofs.append(RecordProof(kind, record, index, tuple(merkle.inclusion_path(leaves, index))))
    daily = covering(session, seal_no)
    history: tuple[bytes, ...] = ()
    if daily is not None:
        history = tuple(
            merkle.inclusion_path(history_leaves(seal_hashes(session, daily.statement.seal_no)), seal_no - 1)
        )
    return InclusionProof(entry_id, seal, tuple(proofs), daily, history)
