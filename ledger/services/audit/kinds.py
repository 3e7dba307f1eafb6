"""Record kinds: what is sealed. A kind is a table, its canonical fields (encoder) and its key (order).

To seal a new kind of record, describe it here and add it to `REGISTRY`, and give its table the writing
transaction column on PostgreSQL (`ledger.db.audit_ddl.add_writing_tx`); docs/audit-seals.md says how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.services.audit.encoding import FieldType


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record: its documented name, its type and the SQL that reads it (table alias `t`)."""

    name: str
    type: FieldType
    sql: str


@dataclass(frozen=True, slots=True)
class RecordKind:
    """A kind of sealed record.

    `fields` are encoded in this order after the kind's name (field 1); the first `key_size` of them are
    the key, which identifies a record and orders the records of a kind inside a seal. `joins` may bring
    in other tables to make a record readable on its own (e.g. the account code of a posting).
    `recorded_at` is the SQL of the instant the database recorded the row (microseconds since 1970, UTC,
    set by the database itself), used to spot rows slipped in with a past date; None if the kind has none.
    """

    name: str
    table: str
    fields: tuple[Field, ...]
    key_size: int
    joins: str = ""
    recorded_at: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.key_size <= len(self.fields):
            raise ValueError(f"record kind {self.name}: key_size must be between 1 and {len(self.fields)}")
        if not self.name.isidentifier() or len(self.name) > 32:
            raise ValueError(f"record kind name {self.name!r} must be a short identifier")

    @property
    def key(self) -> tuple[Field, ...]:
        return self.fields[: self.key_size]


ENTRY = RecordKind(
    name="entry",
    table="entries",
    key_size=1,
    fields=(
        Field("id", FieldType.UUID, "t.id"),
        Field("kind", FieldType.TEXT, "t.kind"),
        Field("consulate", FieldType.TEXT, "t.consulate"),
        Field("effective_at", FieldType.INTEGER, "t.effective_at"),
        Field("recorded_at", FieldType.INTEGER, "t.recorded_at"),
        Field("posting_count", FieldType.INTEGER, "t.posting_count"),
        Field("payment_ref", FieldType.TEXT, "t.payment_ref"),
        Field("stamp_ref", FieldType.TEXT, "t.stamp_ref"),
        Field("settlement_ref", FieldType.TEXT, "t.settlement_ref"),
        Field("import_line_ref", FieldType.TEXT, "t.import_line_ref"),
        Field("memo", FieldType.JSON, "t.memo"),
        Field("reason", FieldType.TEXT, "t.reason"),
        Field("actor", FieldType.TEXT, "t.actor"),
        Field("reverses_id", FieldType.UUID, "t.reverses_id"),
    ),
    recorded_at="t.recorded_at",
)

POSTING = RecordKind(
    name="posting",
    table="postings",
    key_size=2,
    fields=(
        Field("entry_id", FieldType.UUID, "t.entry_id"),
        Field("line_no", FieldType.INTEGER, "t.line_no"),
        # The account's code, not its internal id: a proof then reads on its own, and an account row
        # altered behind the service's back shows up in every posting on it.
        Field("account", FieldType.TEXT, "a.code"),
        Field("currency", FieldType.TEXT, "t.currency"),
        Field("amount", FieldType.INTEGER, "t.amount"),
        Field("effective_at", FieldType.INTEGER, "t.effective_at"),
        Field("consulate", FieldType.TEXT, "t.consulate"),
        Field("fee_code", FieldType.TEXT, "t.fee_code"),
    ),
    joins="LEFT JOIN accounts a ON a.id = t.account_id",
)

STAMP_EVENT = RecordKind(
    name="stamp_event",
    table="stamp_events",
    key_size=1,
    fields=(
        Field("id", FieldType.INTEGER, "t.id"),
        Field("number", FieldType.TEXT, "t.number"),
        Field("kind", FieldType.TEXT, "t.kind"),
        Field("at", FieldType.INTEGER, "t.at"),
        Field("consulate", FieldType.TEXT, "t.consulate"),
        Field("actor", FieldType.TEXT, "t.actor"),
        Field("entry_id", FieldType.UUID, "t.entry_id"),
        Field("detail", FieldType.TEXT, "t.detail"),
    ),
)

RESOLUTION = RecordKind(
    name="resolution",
    table="recon_resolutions",
    key_size=1,
    fields=(
        Field("id", FieldType.INTEGER, "t.id"),
        Field("exception_id", FieldType.INTEGER, "t.exception_id"),
        Field("action", FieldType.TEXT, "t.action"),
        Field("status", FieldType.TEXT, "t.status"),
        Field("actor", FieldType.TEXT, "t.actor"),
        Field("at", FieldType.INTEGER, "t.at"),
        Field("reason", FieldType.TEXT, "t.reason"),
        Field("account", FieldType.TEXT, "t.account"),
        Field("currency", FieldType.TEXT, "t.currency"),
        Field("amount", FieldType.INTEGER, "t.amount"),
        Field("matched_entry_id", FieldType.UUID, "t.matched_entry_id"),
        Field("matched_import_id", FieldType.INTEGER, "t.matched_import_id"),
        Field("matched_item_no", FieldType.INTEGER, "t.matched_item_no"),
        Field("decides_id", FieldType.INTEGER, "t.decides_id"),
        Field("entry_ids", FieldType.JSON, "t.entry_ids"),
    ),
)

# Kinds in the order their leaves follow each other in a seal: by name, so the order never depends on
# the order of registration. A new kind goes in here (and nowhere else in this package).
REGISTRY: tuple[RecordKind, ...] = tuple(
    sorted((ENTRY, POSTING, RESOLUTION, STAMP_EVENT), key=lambda kind: kind.name)
)


def registry(kinds: Sequence[RecordKind] = REGISTRY) -> tuple[RecordKind, ...]:
    """Kinds sorted as seals hold them, checked for duplicate names."""
    ordered = tuple(sorted(kinds, key=lambda kind: kind.name.encode()))
    names = [kind.name for kind in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"record kinds registered twice: {names}")
    return ordered


def by_name(name: str, kinds: Sequence[RecordKind] = REGISTRY) -> RecordKind:
    for kind in kinds:
        if kind.name == name:
            return kind
    raise LookupError(f"no record kind {name!r} (known: {', '.join(k.name for k in kinds)})")
