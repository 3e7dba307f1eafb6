"""After issue: verified at the counter, used exactly once, refunded within the policy, or expired unused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from ledger.db.engine import Database
from ledger.services import clock, journal
from ledger.services.balances import SliceFilter, balances
from ledger.services.signing_keys import StampKeys
from ledger.services.stamps import (
    OtherConsulateError,
    RefundRefusedError,
    StampExpiredError,
    StampNotFoundError,
    StampUnusableError,
    consume_stamp,
    expire_stamps,
    find_stamp,
    refund_stamp,
    verify_presented,
)
from ledger.services.trust_lists import build_trust_list
from ledger.settings import Settings
from receipts.numbers import StampNumber
from tests.stamps.conftest import SECRETS, StampDesk, make_keys


def _balance(desk: StampDesk, account: str) -> int:
    with desk.db.read() as session:
        rows = balances(session, SliceFilter(account=account), as_of=clock.now(), split=frozenset())
    return sum(row.balance.minor for row in rows)


def test_using_a_stamp_moves_its_fee_to_revenue_once(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT", "CNIE").stamps[0]
    assert _balance(desk, "liabilities:stamps-outstanding:FR-PAR") == 6300
    with desk.db.write() as session:
        used = consume_stamp(session, desk.settings, stamp.number, consulate="FR-PAR", actor="apikey:7:paris")
    assert _balance(desk, "liabilities:stamps-outstanding:FR-PAR") == 800
    assert _balance(desk, "revenue:consular-fees:PASSPORT:EUR") == 5500
    with desk.db.read() as session:
        entry = journal.get_entry(session, used.entry_id)
        view = find_stamp(session, desk.settings, stamp.number)
    assert entry.kind.value == "stamp_consumed"
    assert entry.references.stamp == stamp.number.digits
    assert view.status == "consumed"
    assert view.final is not None
    assert (view.final.consulate, view.final.actor) == ("FR-PAR", "apikey:7:paris")

    with pytest.raises(StampUnusableError) as second, desk.db.write() as session:
        consume_stamp(session, desk.settings, stamp.number, consulate="FR-PAR", actor="apikey:8:other desk")
    assert second.value.use.actor == "apikey:7:paris"
    assert second.value.use.at == used.at
    assert "already used at FR-PAR" in str(second.value)
    assert _balance(desk, "revenue:consular-fees:PASSPORT:EUR") == 5500
    assert desk.count("entries", "WHERE kind = 'stamp_consumed'") == 1


def test_a_stamp_of_another_consulate_or_an_unknown_number_is_refused(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    with pytest.raises(OtherConsulateError), desk.db.write() as session:
        consume_stamp(session, desk.settings, stamp.number, consulate="BE-BRU", actor="x")
    with pytest.raises(StampNotFoundError), desk.db.write() as session:
        consume_stamp(session, desk.settings, StampNumber.generate(), consulate="FR-PAR", actor="x")
    assert desk.count("stamps", "WHERE status = 'issued'") == 1


def test_the_counter_verification_answers_unused_then_used_with_when_where_and_who(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    with desk.db.read() as session:
        before = verify_presented(session, desk.settings, stamp.text, consulate="FR-PAR")
        elsewhere = verify_presented(session, desk.settings, stamp.text, consulate="BE-BRU")
    assert before.usable
    assert (elsewhere.usable, elsewhere.reason) == (False, "wrong_consulate")
    with desk.db.write() as session:
        consume_stamp(session, desk.settings, stamp.number, consulate="FR-PAR", actor="apikey:7:paris")
    with desk.db.read() as session:
        after = verify_presented(session, desk.settings, stamp.text, consulate="FR-PAR")
    assert (after.genuine, after.usable, after.reason, after.status) == (
        True,
        False,
        "already_used",
        "consumed",
    )
    assert after.used is not None
    assert after.used.actor == "apikey:7:paris"


def test_a_refund_returns_the_fee_to_clearing_and_denies_the_number(desk: StampDesk) -> None:
    paid = desk.pay("PASSPORT", "CNIE")
    stamp = paid.stamps[1]
    with desk.db.write() as session:
        refunded = refund_stamp(
            session, desk.settings, stamp.number, reason="service cancelled", actor="admin"
        )
    assert _balance(desk, "assets:clearing:terminal:EUR") == 5500
    assert _balance(desk, "liabilities:stamps-outstanding:FR-PAR") == 5500
    with desk.db.read() as session:
        entry = journal.get_entry(session, refunded.entry_id)
        trust_list = build_trust_list(session, desk.settings, now=clock.now())
        verification = verify_presented(session, desk.settings, stamp.text, consulate="FR-PAR")
    assert entry.kind.value == "stamp_refunded"
    assert stamp.number in trust_list.denied
    assert paid.stamps[0].number not in trust_list.denied
    assert (verification.usable, verification.reason) == (False, "denied")
    with pytest.raises(StampUnusableError, match="refunded"), desk.db.write() as session:
        consume_stamp(session, desk.settings, stamp.number, consulate="FR-PAR", actor="x")
    with pytest.raises(StampUnusableError, match="refunded"), desk.db.write() as session:
        refund_stamp(session, desk.settings, stamp.number, reason="again", actor="admin")


def test_a_used_stamp_cannot_be_refunded(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    with desk.db.write() as session:
        consume_stamp(session, desk.settings, stamp.number, consulate="FR-PAR", actor="x")
    with pytest.raises(StampUnusableError, match="already used"), desk.db.write() as session:
        refund_stamp(session, desk.settings, stamp.number, reason="r", actor="admin")


@pytest.fixture
def old_desk(db: Database, settings: Settings) -> StampDesk:
    """Keys made 400 days ago (stamps from then have expired by now) and their successors."""
    make_keys(db, now=clock.now() - timedelta(days=401))
    stamp, trust = make_keys(db)
    return StampDesk(db, settings, StampKeys(settings, SECRETS), stamp, trust)


def _issued_days_ago(
    desk: StampDesk, days: int, move: Callable[[datetime], None], *fees: str
) -> list[StampNumber]:
    real = clock.now()
    move(real - timedelta(days=days))
    numbers = [s.number for s in desk.pay(*fees).stamps]
    move(real)
    return numbers


def test_a_refund_after_the_window_is_refused(
    old_desk: StampDesk, frozen_clock: Callable[[datetime], None]
) -> None:
    window = old_desk.settings.service.stamps.refund_window_days
    (late,) = _issued_days_ago(old_desk, window + 1, frozen_clock, "PASSPORT")
    (early,) = _issued_days_ago(old_desk, window - 1, frozen_clock, "PASSPORT")
    with pytest.raises(RefundRefusedError, match="too late"), old_desk.db.write() as session:
        refund_stamp(session, old_desk.settings, late, reason="r", actor="admin")
    with old_desk.db.write() as session:
        refund_stamp(session, old_desk.settings, early, reason="r", actor="admin")


def test_expired_stamps_go_to_expired_revenue_and_cannot_be_used(
    old_desk: StampDesk, frozen_clock: Callable[[datetime], None]
) -> None:
    real = clock.now()
    expired = _issued_days_ago(old_desk, 400, frozen_clock, "PASSPORT", "CNIE")
    used_in_time = _issued_days_ago(old_desk, 390, frozen_clock, "PASSPORT")[0]
    frozen_clock(real - timedelta(days=380))
    with old_desk.db.write() as session:
        consume_stamp(session, old_desk.settings, used_in_time, consulate="FR-PAR", actor="x")
    frozen_clock(real)
    fresh = old_desk.pay("PASSPORT").stamps[0].number

    with pytest.raises(StampExpiredError, match="expired"), old_desk.db.write() as session:
        consume_stamp(session, old_desk.settings, expired[0], consulate="FR-PAR", actor="x")
    with pytest.raises(ValueError, match="future"), old_desk.db.write() as session:
        expire_stamps(session, old_desk.settings, as_of=real + timedelta(days=1), actor="t")
    with old_desk.db.write() as session:
        done = expire_stamps(session, old_desk.settings, as_of=clock.now(), actor="cli", limit=1)
    assert len(done) == 1  # one batch at a time
    with old_desk.db.write() as session:
        done += expire_stamps(session, old_desk.settings, as_of=clock.now(), actor="cli")
    with old_desk.db.write() as session:
        assert expire_stamps(session, old_desk.settings, as_of=clock.now(), actor="cli") == []
    assert sorted(done) == sorted(expired)
    assert _balance(old_desk, "revenue:expired-stamps:EUR") == 5000 + 750  # priced by the 2025.1 schedule
    with old_desk.db.read() as session:
        statuses = {
            n: find_stamp(session, old_desk.settings, n).status for n in [*expired, used_in_time, fresh]
        }
    assert statuses == {
        expired[0]: "expired",
        expired[1]: "expired",
        used_in_time: "consumed",
        fresh: "issued",
    }
    assert old_desk.count("entries", "WHERE kind = 'stamp_expired'") == 2
    with pytest.raises(StampUnusableError, match="expired unused"), old_desk.db.write() as session:
        refund_stamp(session, old_desk.settings, expired[1], reason="r", actor="admin")


@pytest.mark.postgres_only
def test_sixteen_counters_consuming_one_stamp_make_exactly_one_use(
    pg_db: Database, settings: Settings
) -> None:
    stamp_key, trust_key = make_keys(pg_db)
    desk = StampDesk(pg_db, settings, StampKeys(settings, SECRETS), stamp_key, trust_key)
    number = desk.pay("PASSPORT").stamps[0].number
    barrier = threading.Barrier(16)
    outcomes: list[str] = []

    def counter(index: int) -> None:
        barrier.wait()
        try:
            with pg_db.write() as session:
                consume_stamp(session, settings, number, consulate="FR-PAR", actor=f"desk-{index}")
            outcomes.append("used")
        except StampUnusableError as refused:
            outcomes.append(f"refused:{refused.use.actor}")

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("used") == 1
    refusals = {o for o in outcomes if o != "used"}
    assert len(refusals) == 1  # every refusal names the one desk that used it
    assert len(outcomes) == 16
    assert desk.count("stamp_events", "WHERE kind = 'consumed'") == 1
    assert desk.count("entries", "WHERE kind = 'stamp_consumed'") == 1
    assert _balance(desk, "revenue:consular-fees:PASSPORT:EUR") == 5500
