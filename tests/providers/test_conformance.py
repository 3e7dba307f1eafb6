"""Every built-in provider passes the shared conformance kit against its local fake."""

from __future__ import annotations

import pytest

from tests.providers.conformance import CHECKS, Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_conformance(harness: Harness, check: str) -> None:
    await CHECKS[check](harness)
