"""Fault test on PostgreSQL: the process running the payment flow is SIGKILLed between a provider call and
its commit, over a hundred times across the flow (before the call, after it, before the commit of its
result, before the commit of a webhook's capture). After the resolver: zero double charges, every attempt
settled or queued, no stamp without a captured payment, every charge at the provider in our books."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.resolver import run_once
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer
from providers.registry import ProviderRegistry
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from tests.payments.fault_worker import PROVIDERS
from tests.providers.conftest import CURRENT, ENV
from tests.stamps.conftest import SECRETS, make_keys

ROOT = Path(__file__).resolve().parents[2]
RUNS = 104


def _rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    with db.read() as session:
        return [tuple(row) for row in session.execute(text(query))]


@pytest.mark.slow
def test_killed_between_call_and_commit_never_charges_twice_nor_issues_unpaid_stamps(
    pg_db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_keys(pg_db)
    url = pg_db.engine.url.render_as_string(hide_password=False)
    sandbox_settings = SimulatorSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), delivery="manual"
    )
    with LoopbackServer(simulator.create_app(sandbox_settings)) as sandbox:
        worker = subprocess.run(
            [sys.executable, "-m", "tests.payments.fault_worker", "--database", url, "--sandbox", sandbox.url,
             "--runs", str(RUNS)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "ETIMBRE_LOG_LEVEL": "ERROR"},
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-3000:]
        results = [json.loads(line[7:]) for line in worker.stdout.splitlines() if line.startswith("RESULT ")]
        kills = [json.loads(line[5:]) for line in worker.stdout.splitlines() if line.startswith("KILL ")]
        errors = [line for line in worker.stdout.splitlines() if line.startswith("ERROR ")]
        assert not errors, errors[:5]
        assert len(results) == RUNS
        assert sum(r["killed"] for r in results) >= 100
        points = Counter(k["point"] for k in kills)
        assert points["after-call"] > 10, points  # killed with the provider's answer in hand, unrecorded
        assert points["before-commit"] > 10, points
        assert points["event-before-commit"] > 3, points

        # The resolver, later (every check due, every checkout past its deadline).
        later = clock.now() + timedelta(hours=2)
        monkeypatch.setattr(clock, "now", lambda: later)

        async def resolve() -> None:
            config = parse_providers_config(PROVIDERS.format(sandbox=sandbox.url), source="test")
            async with ProviderRegistry(config, env=ENV) as registry:
                payments = Payments(
                    database=pg_db, settings=settings, registry=registry, keys=StampKeys(settings, SECRETS)
                )
                for _ in range(10):
                    report = await run_once(payments, limit=1000)
                    assert not report.errors, report.errors
                    if not (report.resolved or report.expired or report.rescheduled):
                        return

        asyncio.run(resolve())
        charges: dict[str, list[int]] = {}
        for (reference,) in _rows(pg_db, "SELECT reference FROM payments"):
            found = httpx.get(
                f"{sandbox.url}/v1/payments", params={"reference": reference},
                headers={"Authorization": f"Bearer {ENV['KEY']}"},
            ).json()["data"]  # fmt: skip
            charges[str(reference)] = [p["captured_minor"] for p in found if p["captured_minor"] > 0]

    assert len(charges) == RUNS, "one payment per run"
    assert all(len(c) <= 1 for c in charges.values()), "zero double charges"
    open_attempts = _rows(
        pg_db, "SELECT id, state FROM payment_attempts WHERE state IN ('prepared', 'dispatched', 'unknown') "
        "AND NOT manual",
    )  # fmt: skip
    assert open_attempts == [], "every attempt settled or in the manual queue"
    unpaid = _rows(
        pg_db,
        "SELECT s.number FROM stamps s LEFT JOIN payments p ON p.reference = s.payment_ref "
        "WHERE p.state IS NULL OR p.state NOT IN ('captured', 'partially_refunded', 'refunded', 'disputed')",
    )
    assert unpaid == [], "no stamp without a captured payment"
    states = dict(_rows(pg_db, "SELECT reference, state FROM payments"))
    for reference, captured in charges.items():
        if captured:  # money taken at the provider is in our books, with its stamps
            assert states[reference] in ("captured", "parked"), (reference, states[reference])
        else:
            assert states[reference] not in ("captured",), reference
    stamps = dict(_rows(pg_db, "SELECT payment_ref, count(*) FROM stamps GROUP BY payment_ref"))
    fees = dict(_rows(pg_db, "SELECT reference, fee_codes FROM payments WHERE state = 'captured'"))
    assert {r: len(str(f).split(",")) for r, f in fees.items()} == stamps
