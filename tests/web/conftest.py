"""Pages under test: the app in-process (TestClient) and, for browser tests, served on loopback by uvicorn
in a thread against a fresh migrated database of each engine, driven by Debian's chromium (Playwright).

Screenshots go to test-artifacts/screenshots/ (kept after the run, ignored by git); the path is printed.
No browser is ever downloaded: a missing /usr/bin/chromium fails the browser tests, it does not skip them.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import TestClient

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.issuance import CapturedPayment, IssuedPayment, record_captured_payment
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings, load_settings
from providers.loopback import LoopbackServer
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from tests.api.conftest import client, keys, stamp_keys

__all__ = ["client", "keys", "stamp_keys"]  # the API tests' fixtures, shared

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    database: Database
    engine: str
    settings: Settings

    def __call__(self, path: str) -> str:
        return self.url + path


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


SANDBOX_KEY, SANDBOX_HOOK = "web-tests-sandbox-key", "web-tests-sandbox-webhook-secret"
CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[str]:
    """The sandbox provider's simulator (hosted checkout) on loopback; webhooks stay in its outbox, so the
    pages learn of a capture by asking the provider, as when a notification is late."""
    settings = SimulatorSettings(api_keys=(SANDBOX_KEY,), webhook_secrets=(SANDBOX_HOOK,), delivery="manual")
    with LoopbackServer(simulator.create_app(settings)) as server:
        yield server.url


def settings_for(sandbox: str, directory: Path, public_url: str = "http://127.0.0.1:8000") -> Settings:
    """The shipped configuration, its sandbox variants pointed at the simulator on loopback."""
    providers = (CONFIG / "providers.toml").read_text(encoding="utf-8")
    path = directory / "providers.toml"
    path.write_text(providers.replace("http://127.0.0.1:8765", sandbox), encoding="utf-8")
    return load_settings(
        environ={
            "ETIMBRE_PAYMENTS_PROVIDERS_FILE": str(path),
            "ETIMBRE_SERVER_PUBLIC_URL": public_url,
            # Staff passwords hashed cheaply: the tests sign in often.
            "ETIMBRE_STAFF_ARGON2_TIME_COST": "1",
            "ETIMBRE_STAFF_ARGON2_MEMORY_KIB": "8192",
            "ETIMBRE_STAFF_ARGON2_PARALLELISM": "1",
        }
    )


@pytest.fixture
def sandbox_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETIMBRE_SANDBOX_API_KEY", SANDBOX_KEY)
    monkeypatch.setenv("ETIMBRE_SANDBOX_WEBHOOK_SECRET", SANDBOX_HOOK)


@pytest.fixture
def pay_client(
    db: Database, sandbox: str, sandbox_secrets: None, stamp_keys: dict[str, str], tmp_path: Path
) -> Iterator[TestClient[Litestar]]:
    """The app in-process with online payments through the sandbox simulator."""
    app = create_app(settings_for(sandbox, tmp_path), db, background=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live_server(
    db: Database,
    stamp_keys: dict[str, str],
    database_url: str,
    sandbox: str,
    sandbox_secrets: None,
    tmp_path: Path,
) -> Iterator[LiveServer]:
    """The whole app on loopback (stamp keys, the sandbox for payments), in a thread, until the test ends."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    try:
        settings = settings_for(sandbox, tmp_path, public_url=f"http://127.0.0.1:{port}")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, db, background=False),
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the app did not start on loopback", pytrace=False)
            time.sleep(0.02)
        engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        yield LiveServer(f"http://127.0.0.1:{port}", db, engine, settings)
        server.should_exit = True
        thread.join(timeout=10)
    finally:
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
    shutil.rmtree(SCREENSHOTS / test, ignore_errors=True)  # this run's pictures only
    shots = Screenshots(SCREENSHOTS / test)
    yield shots
    if shots.taken:
        print(f"\nscreenshots: {shots.directory}")


class Counter:
    """Pays for stamps at a consulate's counter straight through the issuance service (no provider)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.paid = 0

    def pay(self, consulate: str, *fee_codes: str) -> IssuedPayment:
        now = clock.now()
        currency = self.settings.consulate(consulate).currency
        total = Money.zero(currency)
        for code in fee_codes:
            total += self.settings.fees.price(code, self.settings.consulate(consulate), now).amount
        self.paid += 1
        payment = CapturedPayment(
            payment_ref=f"terminal:{consulate}:T{self.paid:05d}",
            consulate=consulate,
            fee_codes=fee_codes,
            channel="counter",
            provider="terminal",
            amount=total,
            captured_at=now,
            priced_at=now,
        )
        with self.database.write() as session:
            return record_captured_payment(
                session, self.settings, StampKeys(self.settings), payment, actor="test:counter"
            )


@pytest.fixture
def counter(db: Database, settings: Settings, stamp_keys: dict[str, str]) -> Counter:
    return Counter(db, settings)


# A minimal, axe-style accessibility check run in the page: what a screen-reader user would miss first.
_A11Y_SCRIPT = r"""
() => {
  const problems = [];
  const html = document.documentElement;
  if (!['fr', 'ar'].includes(html.lang)) problems.push('html lang is ' + JSON.stringify(html.lang));
  if (html.dir !== (html.lang === 'ar' ? 'rtl' : 'ltr')) problems.push('html dir is ' + html.dir);
  if (!document.title.trim()) problems.push('no title');
  if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one main');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const labelled = (field.id && document.querySelector(`label[for="${field.id}"]`))
      || field.closest('label') || field.getAttribute('aria-label') || field.getAttribute('aria-labelledby');
    if (!labelled) problems.push('field without a label: ' + (field.name || field.outerHTML.slice(0, 60)));
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push('image without alt: ' + img.src.slice(0, 60));
  }
  for (const el of document.querySelectorAll('a, button')) {
    if (!el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('control without a name');
  }
  // Text contrast (WCAG 2.x): 4.5:1, or 3:1 for large text, against the first opaque background behind it.
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!text || style.visibility === 'hidden' || style.display === 'none' || !el.getClientRects().length) continue;
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(behind(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${el.tagName} "${el.textContent.trim().slice(0, 30)}"`);
  }
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) problems.push('duplicate ids: ' + dup.join(', '));
  return problems;
}
"""


def accessibility_problems(page: Any) -> list[str]:
    """Missing labels, alt text, lang/dir, landmarks or names, or text with too little contrast, on the
    page now shown."""
    problems: list[str] = page.evaluate(_A11Y_SCRIPT)
    return problems
