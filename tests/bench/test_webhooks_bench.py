"""The webhook storm benchmark runs in its quick mode against the running service: every valid event
applied once, every tampered delivery refused, the ledger equal to an in-order replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("webhooks.py")


@pytest.mark.slow
def test_quick_webhook_storm_is_applied_exactly_once_and_prints_its_figures() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    lines = completed.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["applied_exactly_once"] is True
    assert figures["tampered_rejected"] is True
    assert figures["ledger_equals_replay"] is True
    assert figures["tampered"] >= 1
    for key in ("acks_per_s", "p99_ms", "baseline_acks_per_s", "baseline_p99_ms"):
        assert figures[key] > 0, key
    assert any(line.startswith("baseline (404 route)") for line in lines)
