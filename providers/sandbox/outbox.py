"""The sandbox's webhook outbox: signs events and delivers them, lost, duplicated or reordered on demand."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

import httpx
import msgspec

from providers.faults import Fault
from providers.sandbox.wire import SIGNATURE_HEADER, WireEvent
from providers.signing import signature_header

DeliveryState = Literal["pending", "held", "delivered", "lost", "failed", "no_target"]
_ATTEMPTS = 3


@dataclass(slots=True, kw_only=True)
class Delivery:
    event: WireEvent
    body: bytes
    target: str | None
    copies: int
    state: DeliveryState
    attempts: int = 0
    last_status: int | None = None


class Outbox:
    def __init__(self, secrets: tuple[str, ...], mode: Literal["auto", "manual"]) -> None:
        self.secrets = secrets
        self.mode = mode
        self.deliveries: list[Delivery] = []
        self._held: dict[str, list[Delivery]] = {}
        self._queue: list[Delivery] = []  # pending, in the order they are to be delivered
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def headers(self, delivery: Delivery) -> dict[str, str]:
        """Headers signed now, as a sender signs each attempt afresh."""
        return {
            "Content-Type": "application/json",
            "Sandbox-Event-Id": delivery.event.id,
            SIGNATURE_HEADER: signature_header(self.secrets, int(time.time()), delivery.body),
        }

    def enqueue(self, event: WireEvent, *, target: str | None, faults: frozenset[Fault]) -> None:
        delivery = Delivery(
            event=event,
            body=msgspec.json.encode(event),
            target=target,
            copies=3 if Fault.DUPLICATE_WEBHOOKS in faults else 1,
            state="pending",
        )
        self.deliveries.append(delivery)
        if Fault.LOST_CALLBACK in faults:
            delivery.state = "lost"
        elif target is None:
            delivery.state = "no_target"
        elif Fault.REORDERED_WEBHOOKS in faults:
            delivery.state = "held"
            held = self._held.setdefault(event.data.reference, [])
            held.append(delivery)
            if len(held) >= 2:  # release the pair newest first
                self._schedule(list(reversed(self._held.pop(event.data.reference))))
        else:
            self._schedule([delivery])

    def _schedule(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            delivery.state = "pending"
        if self.mode == "auto" and self._client is not None:
            task = asyncio.get_running_loop().create_task(self._deliver_in_order(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._queue.extend(batch)

    async def flush(self) -> int:
        """Release held webhooks (newest first) and deliver everything pending now, in order."""
        for reference in list(self._held):
            self._schedule(list(reversed(self._held.pop(reference))))
        pending, self._queue = self._queue, []
        await self._deliver_in_order(pending)
        return len(pending)

    async def _deliver_in_order(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            if delivery.state == "pending":
                await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        assert delivery.target is not None
        client = self._client or httpx.AsyncClient(timeout=10)
        try:
            for _ in range(delivery.copies):
                delivery.state = "failed"
                for attempt in range(_ATTEMPTS):
                    delivery.attempts += 1
                    try:
                        response = await client.post(
                            delivery.target, content=delivery.body, headers=self.headers(delivery)
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.05 * 2**attempt)
                        continue
                    delivery.last_status = response.status_code
                    if response.is_success:
                        delivery.state = "delivered"
                        break
                    await asyncio.sleep(0.05 * 2**attempt)
        finally:
            if client is not self._client:
                await client.aclose()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
