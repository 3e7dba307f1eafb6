"""Serve a simulator or fake gateway (an ASGI app) on the loopback interface only."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

LOCALHOST = "127.0.0.1"


def check_loopback(host: str) -> str:
    """Simulators never listen beyond this machine: refuse any host that is not a loopback address."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"simulators listen on loopback only (127.0.0.1, ::1 or localhost), not {host!r}")
    return host


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # leave the host application's logging alone
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=1,
    )


def serve(app: Any, *, host: str = LOCALHOST, port: int = 8765) -> None:
    """Run `app` in the foreground until interrupted (what `etimbre sandbox serve` calls)."""
    uvicorn.Server(_config(app, check_loopback(host), port)).run()


class LoopbackServer:
    """Run an ASGI app on an ephemeral loopback port in a background thread, for tests and tools.

    ``with LoopbackServer(app) as server: httpx.get(server.url + "/...")``
    """

    def __init__(self, app: Any, *, host: str = LOCALHOST, port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((check_loopback(host), port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(_config(app, self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"loopback-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the loopback server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
