"""Pages under test: the app in-process (TestClient) and, for browser tests, served on loopback by uvicorn
in a thread against a fresh migrated database of each engine, driven by Debian's chromium (Playwright).

Screenshots go to test-artifacts/screenshots/ (kept after the run, ignored by git); the path is printed.
No browser is ever downloaded: a missing /usr/bin/chromium fails the browser tests, it does not skip them.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.settings import Settings
from tests.api.conftest import client, keys, stamp_keys

__all__ = ["client", "keys", "stamp_keys"]  # the API tests' fixtures, shared

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    database: Database
    engine: str

    def __call__(self, path: str) -> str:
        return self.url + path


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def live_server(
    db: Database, settings: Settings, stamp_keys: dict[str, str], database_url: str
) -> Iterator[LiveServer]:
    """The whole app on loopback (with stamp keys), in a thread, until the test ends."""
    app = create_app(settings, db, background=False)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start on loopback", pytrace=False)
        time.sleep(0.02)
    try:
        engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        yield LiveServer(f"http://127.0.0.1:{port}", db, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright; never downloads a browser."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page for each test."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


class Screenshots:
    """Full-page screenshots named after the test, the step and the language."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    def __call__(self, page: Any, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Iterator[Screenshots]:
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    shots = Screenshots(SCREENSHOTS / test)
    yield shots
    if shots.taken:
        print(f"\nscreenshots: {shots.directory}")
