"""Reading sealed records out of the database, already in their canonical encoding.

PostgreSQL hands them over through binary COPY, whose tuples are the canonical encoding; SQLite rows are
encoded here. Where a row sits in commit order (its *position*) is the writing transaction on PostgreSQL
and the rowid on SQLite (see docs/audit-seals.md, "Which records a seal covers").
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.services.audit.encoding import FieldType, decode_fields, encode_fields, field_bytes
from ledger.services.audit.kinds import RecordKind

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER_SIZE = len(COPY_SIGNATURE) + 8  # flags and header-extension length, both zero
COPY_TRAILER = b"\xff\xff"
_PG_CASTS = {
    FieldType.TEXT: "text",
    FieldType.INTEGER: "bigint",
    FieldType.UUID: "uuid",
    FieldType.JSON: "text",  # the JSON text as stored (jsonb would send a version byte first)
    FieldType.BYTES: "bytea",
}


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def position(dialect: str) -> str:
    """The SQL of a row's position in commit order."""
    return "t.audit_tx" if dialect == "postgresql" else "t.rowid"


def _order(kind: RecordKind, dialect: str) -> str:
    # Byte order on both engines: uuid and blob compare bytewise, text needs the C collation on PostgreSQL.
    terms = []
    for field in kind.key:
        if field.type is FieldType.TEXT and dialect == "postgresql":
            terms.append(f'({field.sql}) COLLATE "C"')
        else:
            terms.append(field.sql)
    return ", ".join(terms)


def _select_list(kind: RecordKind, dialect: str) -> str:
    if dialect == "postgresql":
        return ", ".join([f"'{kind.name}'::text"] + [f"({f.sql})::{_PG_CASTS[f.type]}" for f in kind.fields])
    return ", ".join(
        f"CAST({field.sql} AS TEXT)" if field.type is FieldType.JSON else field.sql for field in kind.fields
    )


def _encode_row(kind: RecordKind, row: Any) -> bytes:
    fields: list[bytes | None] = [kind.name.encode()]
    for value, field in zip(row, kind.fields, strict=True):
        fields.append(field_bytes(value, field.type))
    return encode_fields(fields)


def _copy_views(session: Session, query: str) -> Iterator[memoryview]:
    """The tuples of a binary COPY of `query` (each one a canonical record), as views into the buffer."""
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a checked-out connection always has its driver connection
    with driver.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        messages = iter(copy)
        first = next(messages, None)
        if first is None:
            return
        if bytes(first[: len(COPY_SIGNATURE)]) != COPY_SIGNATURE:
            raise RuntimeError("PostgreSQL did not send a binary COPY header")
        first = first[COPY_HEADER_SIZE:]
        if len(first) and bytes(first) != COPY_TRAILER:
            yield first
        for message in messages:
            if len(message) == len(COPY_TRAILER) and bytes(message) == COPY_TRAILER:
                continue
            yield message


def _copy(session: Session, query: str) -> Iterator[bytes]:
    return (bytes(view) for view in _copy_views(session, query))


def range_query(kind: RecordKind, dialect: str, first: int, end: int) -> str:
    where = f"{position(dialect)} >= {int(first)} AND {position(dialect)} < {int(end)}"
    return (
        f"SELECT {_select_list(kind, dialect)} FROM {kind.table} t {kind.joins} "
        f"WHERE {where} ORDER BY {_order(kind, dialect)}"
    )


def bind(session: Session, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as the driver takes them: UUIDs are 16 raw bytes on SQLite (ledger.db.types.UUID)."""
    if dialect_of(session) == "postgresql":
        return dict(params)
    return {name: value.bytes if isinstance(value, uuid.UUID) else value for name, value in params.items()}


def read_where(session: Session, kind: RecordKind, where: str, params: Mapping[str, Any]) -> list[bytes]:
    """The records of `kind` whose rows match `where` (SQL on alias `t`, bound parameters), in key order."""
    dialect = dialect_of(session)
    query = f"SELECT {_select_list(kind, dialect)} FROM {kind.table} t {kind.joins} WHERE {where}"
    rows = session.execute(text(f"{query} ORDER BY {_order(kind, dialect)}"), bind(session, params)).all()
    if dialect == "postgresql":
        # Bound parameters cannot reach COPY; rows come back as values and are encoded like SQLite's.
        return [_encode_row(kind, row[1:]) for row in rows]
    return [_encode_row(kind, row) for row in rows]


def read_range(session: Session, kind: RecordKind, first: int, end: int) -> list[bytes]:
    """The records of `kind` whose position is in [first, end), in key order."""
    dialect = dialect_of(session)
    query = range_query(kind, dialect, first, end)
    if dialect == "postgresql":
        return list(_copy(session, query))
    return [_encode_row(kind, row) for row in session.execute(text(query))]


def _null_list(kind: RecordKind) -> str:
    return ", ".join(["NULL::text"] + [f"NULL::{_PG_CASTS[f.type]}" for f in kind.fields])


def digests_query(kind: RecordKind, dialect: str, first_seal: int, last_seal: int) -> str:
    """The records of `kind` covered by seals first_seal..last_seal, seal by seal, each seal's records in
    key order and followed by one row of NULLs that marks the end of the seal (PostgreSQL); SQLite gets
    the records with their seal number in front instead."""
    at = position(dialect)
    covered = f"{at} >= s.first_position AND {at} < s.end_position"
    chosen = f"s.kind = '{kind.name}' AND s.seal_no BETWEEN {int(first_seal)} AND {int(last_seal)}"
    keys = [f"k{i}" for i in range(kind.key_size)]
    if dialect == "postgresql":
        values = _select_list(kind, dialect).split(", ")
        named = ", ".join(f"{v} AS f{i}" for i, v in enumerate(values))
        nulls = ", ".join(f"{v} AS f{i}" for i, v in enumerate(_null_list(kind).split(", ")))
        key_terms = _order(kind, dialect).split(", ")
        key_values = ", ".join(f"{term} AS {name}" for term, name in zip(key_terms, keys, strict=True))
        key_nulls = ", ".join(f"NULL AS {name}" for name in keys)
        outputs = ", ".join(f"r.f{i}" for i in range(len(values)))
        # One nested loop over the seals in order with an index range scan per seal; the incremental sort
        # only ever sorts one seal's rows. The end-of-seal row sorts last inside its seal (part = 1).
        return (
            f"SELECT {outputs} FROM audit_seal_kinds s CROSS JOIN LATERAL ("
            f"SELECT 0 AS part, {key_values}, {named} FROM {kind.table} t {kind.joins} WHERE {covered} "
            f"UNION ALL SELECT 1, {key_nulls}, {nulls}) r "
            f"WHERE {chosen} ORDER BY s.seal_no, r.part, {', '.join(f'r.{k}' for k in keys)}"
        )
    return (
        f"SELECT s.seal_no, {_select_list(kind, dialect)} FROM audit_seal_kinds s "
        f"JOIN {kind.table} t ON {covered} {kind.joins} "
        f"WHERE {chosen} ORDER BY s.seal_no, {_order(kind, dialect)}"
    )


def seal_digests(
    session: Session, kind: RecordKind, seals: Sequence[int], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(seal number, record count, SHA-256 of the records concatenated) of each of `seals` (ascending,
    all covering `kind`), recomputed from the rows in one pass."""
    if not seals:
        return
    dialect = dialect_of(session)
    query = digests_query(kind, dialect, seals[0], seals[-1])
    wanted = set(seals)
    if dialect == "postgresql":
        numbers = iter(_covering(session, kind, seals[0], seals[-1]))
        hasher, count = hashlib.sha256(), 0
        for record in _copy_views(session, query):
            if record[2] == 0xFF:  # the end-of-seal row: its first field is NULL (length -1)
                seal_no = next(numbers)
                if seal_no in wanted:
                    yield seal_no, count, hasher.digest()
                if progress is not None:
                    progress(count)
                hasher, count = hashlib.sha256(), 0
            else:
                hasher.update(record)
                count += 1
        return
    found: dict[int, tuple[int, Any]] = {}
    for row in session.execute(text(query)):
        count, hasher = found.setdefault(row[0], (0, hashlib.sha256()))
        hasher.update(_encode_row(kind, row[1:]))
        found[row[0]] = (count + 1, hasher)
    for seal_no in seals:
        count, hasher = found.get(seal_no, (0, hashlib.sha256()))
        if progress is not None:
            progress(count)
        yield seal_no, count, hasher.digest()


def _covering(session: Session, kind: RecordKind, first: int, last: int) -> list[int]:
    return list(
        session.execute(
            text(
                "SELECT seal_no FROM audit_seal_kinds WHERE kind = :kind AND seal_no BETWEEN :first AND :last"
                " ORDER BY seal_no"
            ),
            {"kind": kind.name, "first": first, "last": last},
        ).scalars()
    )


def member_key(kind: RecordKind, record: bytes) -> bytes:
    """The key of a record as stored in a seal's member list: its key fields, encoded as a record."""
    fields, _ = decode_fields(record)
    return encode_fields(fields[1 : 1 + kind.key_size])
