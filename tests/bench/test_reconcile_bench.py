"""The reconciliation benchmark runs end to end in its quick mode and prints its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("reconcile.py")


@pytest.mark.slow
def test_quick_reconciliation_benchmark_reports_its_figures_beside_its_baselines() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["quick"] is True
    assert figures["reconcile_lines"] == 20_000
    assert figures["reconcile_exceptions"] == 40  # 20 missing on each side, found and categorised
    for key in ("reconcile_s", "baseline_s", "import_s", "report_s", "camt_parse_s", "camt_baseline_s"):
        assert figures[key] > 0, key
    assert 0 < figures["reconcile_peak_mib"] < 512
    assert 0 < figures["camt_peak_mib"] < 512
    assert "baseline COPY + SQL join" in done.stdout
    assert "baseline iterparse" in done.stdout
