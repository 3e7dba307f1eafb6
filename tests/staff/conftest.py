"""Staff sign-in on a fresh database of each engine, with Argon2id made cheap for tests."""

from __future__ import annotations

import msgspec
import pytest

from ledger.settings import Settings, StaffSettings


@pytest.fixture(scope="session")
def policy(settings: Settings) -> StaffSettings:
    # The real cost is 64 MiB x 3 passes; the tests check behaviour, not the cost.
    return msgspec.structs.replace(
        settings.service.staff, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1
    )
