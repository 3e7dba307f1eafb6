"""Idempotency-Key for API requests: the first response is kept and replayed byte for byte.

The key is claimed first thing in the unit of work (INSERT .. ON CONFLICT DO NOTHING). A concurrent
duplicate waits on the claim; when the first transaction commits it finds the stored response, when it
rolls back the key is free again. Work that calls a provider claims in one transaction, calls out, and
stores the response in another: a duplicate arriving in between is told the request is in progress.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.db.models import RequestKey
from ledger.services import clock

KEYS: Table = RequestKey.__table__  # type: ignore[assignment]


class RequestKeyReusedError(Exception):
    """The key was used before for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")


class RequestInProgressError(Exception):
    """The first request with this key has not finished yet."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the first request with Idempotency-Key {key!r} is still in progress; retry shortly"
        )


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    media_type: str


def request_hash(*parts: str | bytes) -> str:
    """A digest of what makes two requests the same (method, path, canonical body, caller)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def claim(session: Session, scope: str, key: str, digest: str) -> StoredResponse | None:
    """None when the key is ours now (do the work, then `store`); else the response given the first time."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    claimed = (
        session.connection()
        .execute(
            insert(KEYS)
            .values(scope=scope, key=key, request_hash=digest)
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(KEYS.c.key)
        )
        .first()
    )
    if claimed is not None:
        return None
    earlier = (
        session.connection()
        .execute(
            select(KEYS.c.request_hash, KEYS.c.status, KEYS.c.body, KEYS.c.media_type).where(
                KEYS.c.scope == scope, KEYS.c.key == key
            )
        )
        .one()
    )
    if earlier.request_hash != digest:
        raise RequestKeyReusedError(key)
    if earlier.status is None:
        raise RequestInProgressError(key)
    return StoredResponse(earlier.status, bytes(earlier.body), earlier.media_type)


def store(session: Session, scope: str, key: str, response: StoredResponse) -> None:
    session.connection().execute(
        update(KEYS)
        .where(KEYS.c.scope == scope, KEYS.c.key == key, KEYS.c.status.is_(None))
        .values(
            status=response.status,
            body=response.body,
            media_type=response.media_type,
            completed_at=clock.now(),
        )
    )


def release(session: Session, scope: str, key: str) -> None:
    """Give up an unfinished claim whose work was refused before it changed anything (a busy terminal),
    or whose work is idempotent on its own (a refund names itself after the key): the key may be used
    again. A claim with a stored response is never released."""
    session.connection().execute(
        delete(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key, KEYS.c.status.is_(None))
    )
