"""The cashier's verdicts on both engines: genuine, used, wrong consulate, expired, refunded, forged, and
"unreadable, scan again" for a scan mangled by a keyboard layout, never somebody else's stamp."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import base45
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.counter_checks import CounterCheck, Verdict, check_scan, consume_scanned
from ledger.services.signing_keys import StampKeys
from ledger.services.stamps import find_stamp, refund_stamp
from ledger.settings import Settings
from receipts.numbers import StampNumber, luhn_check_digit
from tests.stamps.conftest import SECRETS, StampDesk, make_keys

# A QWERTY code typed through a French AZERTY layout: the digit row unshifted, A/Q and Z/W swapped, and ':'
# arriving as ';' or '.' depending on the scanner's emulation.
AZERTY_DIGITS = str.maketrans("1234567890", "&é\"'(-è_çà")
AZERTY_LETTERS = str.maketrans("AQZWM", "QAWZ?")


def _azerty(text: str, colon: str) -> str:
    return text.translate(AZERTY_DIGITS).translate(AZERTY_LETTERS).replace(":", colon)


def _check(desk: StampDesk, scanned: str, consulate: str = "FR-PAR") -> CounterCheck:
    with desk.db.read() as session:
        return check_scan(session, desk.settings, scanned, consulate=consulate)


def _consume(desk: StampDesk, scanned: str, consulate: str = "FR-PAR", actor: str = "staff:1:amina"):  # type: ignore[no-untyped-def]
    with desk.db.write() as session:
        return consume_scanned(session, desk.settings, scanned, consulate=consulate, actor=actor)


def test_genuine_then_used_once_by_the_code_or_the_digits(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    for scanned in (stamp.text, f"  {stamp.text}\r\n", stamp.number.printed(), stamp.number.digits):
        check = _check(desk, scanned)
        assert check.verdict is Verdict.GENUINE, (scanned, check.message)
        assert check.number == stamp.number
        assert check.fee is not None and check.fee.code == "PASSPORT"
        assert check.amount == stamp.amount
    used = _consume(desk, stamp.text + "\n")
    assert used.consumption is not None
    assert used.consumption.actor == "staff:1:amina"
    again = _consume(desk, stamp.number.printed(), actor="staff:2:omar")
    assert again.consumption is None
    for scanned in (stamp.text, stamp.number.printed()):
        check = _check(desk, scanned)
        assert check.verdict is Verdict.USED
        assert check.used is not None
        assert (check.used.consulate, check.used.actor, check.used.at) == (
            "FR-PAR",
            "staff:1:amina",
            used.consumption.at,
        )
        assert "staff:1:amina" in check.message
        assert check.amount == stamp.amount


@pytest.mark.parametrize("colon", [";", ".", ":"])
def test_a_scan_through_an_azerty_layout_is_unreadable_never_a_stamp(desk: StampDesk, colon: str) -> None:
    stamps = desk.pay("PASSPORT", "CNIE", "PASSPORT-MINOR").stamps
    for stamp in stamps:
        for mangled in (_azerty(stamp.text, colon), _azerty(stamp.number.printed(), colon)):
            check = _check(desk, mangled)
            assert check.verdict is Verdict.UNREADABLE, (mangled, check)
            assert "scan again" in check.message
            assert "AZERTY" in check.message
            assert check.number is None
            assert _consume(desk, mangled).consumption is None
    # The stamps are untouched and still usable with a proper scan.
    assert all(_check(desk, s.text).verdict is Verdict.GENUINE for s in stamps)


@pytest.mark.parametrize(
    "scanned",
    [
        "",
        "   ",
        "hello",
        "et1:" + "A" * 40,  # caps lock
        "ET1:" + "Z" * 1000,
        "4821 0933 7561 0284",  # a digit short
        "1234 5678 9012 3456-0",  # wrong check digit
        "ET1:ÿÿ",
    ],
)
def test_garbage_is_unreadable(desk: StampDesk, scanned: str) -> None:
    assert _check(desk, scanned).verdict is Verdict.UNREADABLE


def test_another_consulates_stamp_is_refused_without_its_details(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT", consulate="BE-BRU").stamps[0]
    for scanned in (stamp.text, stamp.number.printed()):
        check = _check(desk, scanned, consulate="FR-PAR")
        assert check.verdict is Verdict.WRONG_CONSULATE
        assert (check.fee, check.amount, check.used) == (None, None, None)
        assert _consume(desk, scanned, consulate="FR-PAR").consumption is None
    with desk.db.read() as session:
        assert find_stamp(session, desk.settings, stamp.number).status == "issued"
    assert _check(desk, stamp.text, consulate="BE-BRU").verdict is Verdict.GENUINE


def test_refunded_stamps_say_so(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    with desk.db.write() as session:
        refund_stamp(session, desk.settings, stamp.number, reason="service not delivered", actor="admin")
    assert _check(desk, stamp.text).verdict is Verdict.REFUNDED
    by_digits = _check(desk, stamp.number.printed())
    assert by_digits.verdict is Verdict.REFUNDED
    assert by_digits.used is not None and by_digits.used.kind == "refunded"
    assert _consume(desk, stamp.text).consumption is None


def test_expired_stamps_say_so(
    db: Database, settings: Settings, frozen_clock: Callable[[datetime], None]
) -> None:
    make_keys(db, now=clock.now() - timedelta(days=401))
    stamp_key, trust_key = make_keys(db)
    desk = StampDesk(db, settings, StampKeys(settings, SECRETS), stamp_key, trust_key)
    real = clock.now()
    frozen_clock(real - timedelta(days=400))
    stamp = desk.pay("PASSPORT").stamps[0]
    frozen_clock(real)
    assert _check(desk, stamp.text).verdict is Verdict.EXPIRED
    assert _check(desk, stamp.number.printed()).verdict is Verdict.EXPIRED
    assert _consume(desk, stamp.text).consumption is None


def test_forgeries_are_named(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    raw = bytearray(base45.b45decode(stamp.text.removeprefix("ET1:")))
    raw[-1] ^= 0x01  # one bit of the signature
    tampered = "ET1:" + base45.b45encode(bytes(raw)).decode()
    check = _check(desk, tampered)
    assert check.verdict is Verdict.FORGED
    assert check.reason == "bad_signature"
    assert _consume(desk, tampered).consumption is None
    body = "4821093375610284"
    never_issued = StampNumber(body + str(luhn_check_digit(body)))
    assert _check(desk, never_issued.printed()).verdict is Verdict.FORGED
    assert _check(desk, stamp.text).verdict is Verdict.GENUINE


@pytest.mark.postgres_only
def test_eight_counters_pressing_use_on_one_scan_use_it_once(pg_db: Database, settings: Settings) -> None:
    import threading

    stamp_key, trust_key = make_keys(pg_db)
    desk = StampDesk(pg_db, settings, StampKeys(settings, SECRETS), stamp_key, trust_key)
    stamp = desk.pay("PASSPORT").stamps[0]
    barrier = threading.Barrier(8)
    outcomes: list[tuple[bool, Verdict, str]] = []

    def counter(index: int) -> None:
        barrier.wait()
        with pg_db.write() as session:
            used = consume_scanned(
                session, settings, stamp.text, consulate="FR-PAR", actor=f"staff:{index}:desk"
            )
        actor = used.check.used.actor if used.check.used is not None else ""
        outcomes.append((used.consumption is not None, used.check.verdict, actor))

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o[0]]
    assert len(winners) == 1
    losers = [o for o in outcomes if not o[0]]
    assert len(losers) == 7
    # Every other counter is told "already used", and by whom.
    assert {verdict for _, verdict, _ in losers} == {Verdict.USED}
    assert len({actor for _, _, actor in losers}) == 1
    assert desk.count("stamp_events", "WHERE kind = 'consumed'") == 1


# Text a scanner could send: the QR alphabet, AZERTY's symbols, digits, separators and anything else.
SCANNER_TEXT = st.text(
    alphabet=st.sampled_from(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:&é\"'(è_çà);,!?§ùµ²\t\r\nabcxyzé€"
    ),
    max_size=240,
)


@settings_(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=SCANNER_TEXT, prefix=st.sampled_from(["", "ET1:", "ET&;", "et1:", "4821 "]))
def test_no_scanned_noise_is_ever_a_usable_stamp(desk: StampDesk, noise: str, prefix: str) -> None:
    check = _check(desk, prefix + noise)
    assert check.verdict in {Verdict.UNREADABLE, Verdict.FORGED}, (prefix + noise, check)
    assert not check.consumable
    if check.verdict is Verdict.UNREADABLE:
        assert check.number is None
