"""The reconciliation benchmark runs end to end in its quick mode and prints its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("reconcile.py")


@pytest.mark.slow
def test_quick_camt_benchmark_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--parts", "camt"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["quick"] is True
    assert figures["camt_entries"] == 2_000
    assert figures["camt_parse_s"] > 0
    assert figures["camt_baseline_s"] > 0
    assert 0 < figures["camt_peak_mib"] < 512
    assert "baseline iterparse" in done.stdout
