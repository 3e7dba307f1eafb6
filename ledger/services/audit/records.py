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

from psycopg import pq
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


def _order_terms(kind: RecordKind, dialect: str) -> list[str]:
    # Byte order on both engines: uuid and blob compare bytewise, text needs the C collation on PostgreSQL.
    collate = dialect == "postgresql"
    return [f'({f.sql}) COLLATE "C"' if collate and f.type is FieldType.TEXT else f.sql for f in kind.key]


def _order(kind: RecordKind, dialect: str) -> str:
    return ", ".join(_order_terms(kind, dialect))


def _select_terms(kind: RecordKind, dialect: str) -> list[str]:
    if dialect == "postgresql":  # the kind's name first, then each field cast to the type it is sent as
        return [f"'{kind.name}'::text"] + [f"({f.sql})::{_PG_CASTS[f.type]}" for f in kind.fields]
    return [f"CAST({f.sql} AS TEXT)" if f.type is FieldType.JSON else f.sql for f in kind.fields]


def _select_list(kind: RecordKind, dialect: str) -> str:
    return ", ".join(_select_terms(kind, dialect))


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


def digests_query(kind: RecordKind, dialect: str, first_seal: int, last_seal: int) -> str:
    """The records of `kind` covered by seals first_seal..last_seal, seal by seal, each seal's records in
    key order and followed by one row of NULLs that marks the end of the seal (PostgreSQL); SQLite gets
    the records with their seal number in front instead."""
    at = position(dialect)
    covered = f"{at} >= s.first_position AND {at} < s.end_position"
    chosen = f"kind = '{kind.name}' AND seal_no BETWEEN {int(first_seal)} AND {int(last_seal)}"
    if dialect == "postgresql":
        keys = [f"k{i}" for i in range(kind.key_size)]
        values = _select_terms(kind, dialect)
        named = ", ".join(f"{v} AS f{i}" for i, v in enumerate(values))
        null_terms = ["NULL::text"] + [f"NULL::{_PG_CASTS[f.type]}" for f in kind.fields]
        nulls = ", ".join(f"{v} AS f{i}" for i, v in enumerate(null_terms))
        key_terms = _order_terms(kind, dialect)
        key_values = ", ".join(f"{term} AS {name}" for term, name in zip(key_terms, keys, strict=True))
        key_nulls = ", ".join(f"NULL AS {name}" for name in keys)
        outputs = ", ".join(f"f{i}" for i in range(len(values)))
        # An ordered nested loop over the seals, an index range scan and a sort of one seal's rows at a
        # time: the whole journal streams without a global sort. Subqueries with ORDER BY are never
        # flattened, and a nested loop keeps both orders. The end-of-seal row sorts last (part = 1).
        return (
            f"SELECT r.* FROM (SELECT * FROM audit_seal_kinds WHERE {chosen} ORDER BY seal_no) s "
            f"CROSS JOIN LATERAL (SELECT {outputs} FROM ("
            f"SELECT 0 AS part, {key_values}, {named} FROM {kind.table} t {kind.joins} WHERE {covered} "
            f"UNION ALL SELECT 1, {key_nulls}, {nulls}) u ORDER BY part, {', '.join(keys)}) r"
        )
    return (
        f"SELECT s.seal_no, {_select_list(kind, dialect)} FROM audit_seal_kinds s "
        f"JOIN {kind.table} t ON {covered} {kind.joins} "
        f"WHERE s.{chosen} ORDER BY s.seal_no, {_order(kind, dialect)}"
    )


def _start_copy(session: Session, query: str) -> Any:
    """Send a binary COPY of `query` on the session's connection; its libpq connection, ready to read."""
    # One seal's rows are sorted in memory; caching whole seals (Memoize) would only cost memory.
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    session.execute(text("SET LOCAL enable_memoize = off"))
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a checked-out connection always has its driver connection
    pgconn = driver.pgconn
    pgconn.send_query(f"COPY ({query}) TO STDOUT (FORMAT binary)".encode())
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        message = result.error_message.decode(errors="replace") if result else "no result"
        while pgconn.get_result() is not None:
            pass
        raise RuntimeError(f"PostgreSQL refused the digest query: {message}")
    return pgconn


def _finish_copy(pgconn: Any, size: int) -> None:
    """Drain what is left of the stream (if the reader stopped early) and the command's results."""
    while size >= 0:
        size, _ = pgconn.get_copy_data(0)
    failed = size == -2
    while (result := pgconn.get_result()) is not None:
        failed = failed or result.status != pq.ExecStatus.COMMAND_OK
    if failed:
        raise RuntimeError(f"the digest query failed: {pgconn.error_message.decode(errors='replace')}")


def _pg_seal_digests(
    session: Session, query: str, numbers: Sequence[int], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, int, bytes]]:
    """Digest each seal's records as binary COPY streams them, through libpq directly: psycopg's row by
    row iteration costs more than the hashing itself on a journal of millions of records."""
    pgconn = _start_copy(session, query)
    get = pgconn.get_copy_data
    seals = iter(numbers)
    hasher, count, size = hashlib.sha256(), 0, 0
    try:
        size, data = get(0)
        data = data[COPY_HEADER_SIZE:] if size >= 0 else data  # the first message starts with the header
        while size >= 0:
            if len(data) > len(COPY_TRAILER):  # not the trailer
                if data[2] == 0xFF:  # the end-of-seal row: its first field is NULL (length -1)
                    if progress is not None:
                        progress(count)
                    yield next(seals), count, hasher.digest()
                    hasher, count = hashlib.sha256(), 0
                else:
                    hasher.update(data)
                    count += 1
            size, data = get(0)
    finally:
        _finish_copy(pgconn, size)


def seal_digests(
    session: Session, kind: RecordKind, seals: Sequence[int], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(seal number, record count, SHA-256 of the records concatenated) of each seal covering `kind` from
    seals[0] to seals[-1], recomputed from the rows in one pass (only those in `seals` are given)."""
    if not seals:
        return
    dialect = dialect_of(session)
    query = digests_query(kind, dialect, seals[0], seals[-1])
    wanted = set(seals)
    if dialect == "postgresql":
        numbers = _covering(session, kind, seals[0], seals[-1])
        for digest in _pg_seal_digests(session, query, numbers, progress):
            if digest[0] in wanted:
                yield digest
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
