"""In-process idempotency for gateways that have no idempotency keys of their own (CMI)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from providers.errors import IdempotencyConflictError
from providers.model import ProviderResult


@dataclass(slots=True)
class _Entry:
    request: object
    result: ProviderResult | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class IdempotencyMemory:
    """Same key and same request: the first known result again. Same key, other request: refused.

    Lives in one process and is bounded: the service's attempt table, written before any call, is the
    durable record. An unknown result is not remembered, so a retry asks the gateway again (adapters make
    that safe by checking the gateway's state first).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def run(
        self, key: str, request: object, call: Callable[[], Awaitable[ProviderResult]]
    ) -> ProviderResult:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(request)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        elif entry.request != request:
            raise IdempotencyConflictError(
                f"idempotency key {key!r} was already used with other parameters "
                f"({type(entry.request).__name__} for {getattr(entry.request, 'reference', '?')})"
            )
        self._entries.move_to_end(key)
        async with entry.lock:  # concurrent calls with one key: one call, the others get its result
            if entry.result is not None:
                return entry.result
            result = await call()
            if result.outcome.is_known:
                entry.result = result
            return result
