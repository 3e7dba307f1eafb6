"""The write path every payment takes, in the database driver's own terms.

Three statements per entry (claim the idempotency key, the postings, the entry) sent straight to the
driver inside the session's transaction. SQLAlchemy's per-statement machinery costs about a millisecond of
CPU per payment here, more than the database itself; everything else keeps using SQLAlchemy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_CLAIM = (
    "INSERT INTO idempotency_keys (key, request_hash, entry_id) VALUES ({p}, {p}, {p})"
    " ON CONFLICT (key) DO NOTHING RETURNING key"
)
_POSTINGS = (
    "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at, consulate,"
    " fee_code) VALUES "
)
_ENTRIES = (
    "INSERT INTO entries (id, kind, consulate, effective_at, posting_count, payment_ref, stamp_ref,"
    " settlement_ref, import_line_ref, memo, reason, actor, reverses_id) VALUES "
)
# Rows per statement: one statement per table for a batch (the database checks each statement as a set).
_CHUNK = 500
_MARKERS = {"postgresql": "%s", "sqlite": "?"}

PostingRow = tuple[uuid.UUID, int, int, str, int, int, str, str]
EntryRow = tuple[
    uuid.UUID, str, str, int, int, str, str, str, str, dict[str, Any], str, str, uuid.UUID | None
]


class HotPath:
    """The driver cursor of a session's connection and the statements in its parameter style."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self._dialect = connection.dialect.name
        self._marker = _MARKERS[self._dialect]
        self._claim = _CLAIM.format(p=self._marker)
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._driver_error: type[Exception] = connection.dialect.loaded_dbapi.Error

    def _run(self, statement: str, parameters: Sequence[Any]) -> None:
        try:
            self._cursor.execute(statement, parameters)
        except self._driver_error as error:
            # The same exception types the rest of the service sees from SQLAlchemy.
            raise DBAPIError.instance(statement, parameters, error, self._driver_error) from error

    def _insert_rows(self, prefix: str, rows: Sequence[Sequence[Any]]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            group = "(" + ", ".join([self._marker] * len(chunk[0])) + ")"
            self._run(prefix + ", ".join([group] * len(chunk)), [value for row in chunk for value in row])

    def _id(self, value: uuid.UUID | None) -> Any:
        if value is None or self._dialect == "postgresql":
            return value
        return value.bytes

    def claim(self, key: str, request_hash: str, entry_id: uuid.UUID) -> bool:
        """True when the key is ours now; False when an earlier request holds it."""
        self._run(self._claim, (key, request_hash, self._id(entry_id)))
        return self._cursor.fetchone() is not None

    def insert(self, postings: Sequence[PostingRow], entries: Sequence[EntryRow]) -> None:
        # Postings first, the entry last: the entry's trigger then checks the complete, balanced set.
        self._insert_rows(_POSTINGS, [(self._id(row[0]), *row[1:]) for row in postings])
        self._insert_rows(
            _ENTRIES,
            [
                (
                    self._id(row[0]),
                    *row[1:9],
                    json.dumps(row[9], ensure_ascii=False),
                    *row[10:12],
                    self._id(row[12]),
                )
                for row in entries
            ],
        )

    def close(self) -> None:
        self._cursor.close()
