"""Idempotent handlers: the same Idempotency-Key and body give the first response, byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Response
from litestar.params import HeaderParameter
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.services.idempotency import StoredResponse, claim, request_hash, store

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


def canonical(data: msgspec.Struct) -> bytes:
    """The request body as the service understood it: two bodies that mean the same hash the same."""
    return msgspec.json.encode(msgspec.to_builtins(data, order="sorted"))
