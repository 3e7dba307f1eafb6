"""A webhook receiver for tests: records every delivery and answers with a handler's reply."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Reply = tuple[int, str, bytes]
Handler = Callable[[dict[str, str], bytes], Reply]


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply


@dataclass
class WebhookReceiver:
    """A raw ASGI app; run it with providers.loopback.LoopbackServer."""

    handler: Handler = field(default=lambda headers, body: (200, "text/plain", b"ok"))
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        reply = self.handler(headers, body)
        with self._lock:
            self.deliveries.append(Delivery(scope["path"], headers, body, reply))
        status, media_type, content = reply
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [d.body for d in self.deliveries]
