"""The e-stamp benchmark runs in its quick mode and ends with the JSON figures the README quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("stamps.py")


@pytest.mark.slow
def test_quick_benchmark_prints_figures_and_json() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = completed.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for key in ("issue_per_s", "verify_per_s", "qr_png_ms", "pdf_ms", "consume_per_s"):
        assert figures[key] > 0, key
    for key in (
        "baseline_ecdsa_sign_per_s",
        "baseline_ecdsa_verify_per_s",
        "baseline_qrcode_png_ms",
        "baseline_raw_consume_per_s",
    ):
        assert figures[key] > 0, key
    assert any(line.startswith("verification ES256") and "raw ECDSA verify" in line for line in lines)
    assert any(line.startswith("consumption (PG)") and "raw psycopg" in line for line in lines)
