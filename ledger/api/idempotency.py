"""Idempotent handlers: the same Idempotency-Key and body give the first response, byte for byte."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Response
from litestar.params import HeaderParameter
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.services.idempotency import StoredResponse, claim, release, request_hash, store

JSON = "application/json"

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        required=False,
        description="Retry safely: the same key with the same body returns the first response byte for byte; "
        "the same key with another body is refused (422).",
    ),
]


def _response(stored: StoredResponse, *, replayed: bool) -> Response[Any]:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers)


def run_once(
    database: Database,
    *,
    scope: str,
    key: str | None,
    request: tuple[str | bytes, ...],
    status: int,
    work: Callable[[Session], msgspec.Struct],
) -> Response[Any]:
    """Do `work` in one unit of work, remembering its response under the key (if one was sent)."""
    with database.write() as session:
        if key is not None:
            earlier = claim(session, scope, key, request_hash(*request))
            if earlier is not None:
                return _response(earlier, replayed=True)
        stored = StoredResponse(status, msgspec.json.encode(work(session)), JSON)
        if key is not None:
            store(session, scope, key, stored)
    return _response(stored, replayed=False)


async def run_once_calling_out(
    database: Database,
    *,
    scope: str,
    key: str,
    request: tuple[str | bytes, ...],
    status: int,
    work: Callable[[], Awaitable[msgspec.Struct]],
) -> Response[Any]:
    """`run_once` for work that calls a provider (no transaction may stay open during the call): the key is
    claimed in one transaction, the work runs in its own, the answer is stored in a third. A duplicate
    arriving meanwhile is told the first is in progress; a refusal or failure gives the key back, so the
    work itself must be idempotent (its provider calls carry idempotency keys derived from this key)."""
    digest = request_hash(*request)

    def claimed() -> StoredResponse | None:
        with database.write() as session:
            return claim(session, scope, key, digest)

    earlier = await to_thread.run_sync(claimed)
    if earlier is not None:
        return _response(earlier, replayed=True)
    try:
        stored = StoredResponse(status, msgspec.json.encode(await work()), JSON)
    except BaseException:

        def given_back() -> None:
            with database.write() as session:
                release(session, scope, key)

        await to_thread.run_sync(given_back)
        raise

    def remembered() -> None:
        with database.write() as session:
            store(session, scope, key, stored)

    await to_thread.run_sync(remembered)
    return _response(stored, replayed=False)


def canonical(data: msgspec.Struct) -> bytes:
    """The request body as the service understood it: two bodies that mean the same hash the same."""
    return msgspec.json.encode(msgspec.to_builtins(data, order="sorted"))
