"""The audit benchmark runs in its quick mode in the suite (full runs are by hand)."""

from __future__ import annotations

import pytest

from tests.bench.test_quick import run

pytestmark = pytest.mark.slow


def test_the_audit_benchmark_reports_sealing_cost_and_verification_beside_baselines() -> None:
    report = run("audit.py")
    for key in ("sealing_slowdown_pct", "verify_10m_s", "baseline_s", "payments_per_s_with_sealing"):
        assert isinstance(report[key], float | int), key
    assert float(report["verify_10m_s"]) > 0  # type: ignore[arg-type]
    assert report["records_left_unsealed"] == 0
    assert report["verified_records"] == 3 * int(report["verified_entries"])  # type: ignore[call-overload]
