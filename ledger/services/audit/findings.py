"""What the verifier reports: the problems it can find, each finding, and the report of one run."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ledger.services.audit.encoding import FieldType, decode_fields, decode_integer
from ledger.services.audit.kinds import RecordKind


class Problem(StrEnum):
    """What the verifier found (stable codes, documented in docs/audit-seals.md)."""

    ALTERED = "altered"  # a sealed record no longer encodes to the leaf its seal lists
    REMOVED = "removed"  # a sealed record is gone
    INSERTED = "inserted"  # a record lies in a sealed range but its seal does not list it
    BACKDATED = "backdated"  # recorded before every transaction open at the previous seal: slipped in
    SEAL_REWRITTEN = "seal_rewritten"  # a seal no longer hashes to the hash stored with it
    CHAIN_BROKEN = "chain_broken"  # a seal no longer hashes to what the next seal recorded
    SEAL_MISSING = "seal_missing"  # a seal number is missing from the chain
    MEMBERS_REWRITTEN = "members_rewritten"  # a seal's member list no longer gives its Merkle root
    CONTENT_CHANGED = "content_changed"  # a seal's records differ from its digest in no way named above
    DAILY_MISMATCH = "daily_mismatch"  # the database differs from a signed daily seal
    DAILY_INVALID = "daily_invalid"  # a daily seal document that does not verify


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    seal_no: int | None
    message: str
    kind: str | None = None
    key: str | None = None


@dataclass(slots=True)
class Report:
    first_seal: int | None = None
    last_seal: int | None = None
    seals: int = 0
    records: int = 0
    unsealed: dict[str, int] = field(default_factory=dict)
    daily_seals: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def describe_key(kind: RecordKind, key: bytes) -> str:
    """A member key as people read it: `0190c6e2-…` for an entry, `0190c6e2-… line 2` for a posting."""
    fields, _ = decode_fields(key)
    parts: list[str] = []
    for value, spec in zip(fields, kind.key, strict=False):
        if value is None:
            parts.append("NULL")
        elif spec.type is FieldType.UUID and len(value) == 16:
            parts.append(str(uuid.UUID(bytes=value)))
        elif spec.type is FieldType.INTEGER:
            parts.append(f"{spec.name.replace('_no', '')} {decode_integer(value)}")
        else:
            parts.append(value.decode("utf-8", "replace"))
    return " ".join(parts)


def key_text(kind: RecordKind, values: Sequence[object]) -> str:
    """The same for key values as the database returns them."""
    parts = []
    for value, spec in zip(values, kind.key, strict=True):
        if spec.type is FieldType.UUID and isinstance(value, bytes | uuid.UUID):
            parts.append(str(value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=value)))
        elif spec.type is FieldType.INTEGER:
            parts.append(f"{spec.name.replace('_no', '')} {value}")
        else:
            parts.append(str(value))
    return " ".join(parts)
