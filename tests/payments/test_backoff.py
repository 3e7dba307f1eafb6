"""The resolver's pace: 10 s, then twice as long each time, and the manual queue after 72 hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from ledger.db.models_payments import PaymentAttempt
from ledger.services.payments.resolver import backoff
from ledger.settings import PaymentSettings

START = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_checks_double_from_ten_seconds_then_go_to_the_manual_queue_after_72_hours() -> None:
    attempt = PaymentAttempt(id=uuid.uuid4(), checks=0, created_at=START, manual=False)
    config = PaymentSettings()
    now, delays = START, []
    while not backoff(config, attempt, now, "no answer"):
        assert attempt.next_check_at is not None
        delays.append(attempt.next_check_at - now)
        now = attempt.next_check_at
    assert delays[:4] == [timedelta(seconds=s) for s in (20, 40, 80, 160)]  # after 1, 2, 3, 4 checks
    assert all(b == 2 * a for a, b in pairwise(delays))
    assert now - START <= timedelta(hours=72)
    assert attempt.manual is True
    assert attempt.next_check_at is None
    assert attempt.manual_reason is not None
    assert "no answer" in attempt.manual_reason


def test_a_requeued_attempt_never_overflows_the_calendar() -> None:
    attempt = PaymentAttempt(id=uuid.uuid4(), checks=10_000, created_at=START, manual=False)
    assert backoff(PaymentSettings(give_up_hours=24 * 30), attempt, START, "again") is True
