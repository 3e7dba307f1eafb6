"""Every benchmark runs in its quick mode in the suite, so none of them rots; full runs are by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent


def run(script: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def test_the_ledger_benchmark_runs_and_reports_every_figure_beside_its_baseline() -> None:
    report = run("ledger.py")
    for key in (
        "payments_per_s",
        "raw_baseline_per_s",
        "hot_payments_per_s",
        "batched_postings_per_s",
        "asof_p99_ms",
        "bytes_per_posting",
    ):
        assert isinstance(report[key], float | int)
        assert float(report[key]) > 0, key  # type: ignore[arg-type]
