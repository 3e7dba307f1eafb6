"""A captured payment becomes one ledger entry and one signed stamp per fee, in one transaction."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.money import Money
from ledger.services import clock, journal
from ledger.services.issuance import PaymentAlreadyRecordedError, PaymentError, PriceMismatchError
from ledger.services.signing_keys import retire_key, token_hash
from ledger.services.stamps import LedgerTrust
from receipts.codec import verify_stamp
from receipts.keyring import NoSigningKeyError
from receipts.numbers import StampNumber
from tests.stamps.conftest import StampDesk


def test_a_counter_payment_posts_one_entry_and_signs_one_stamp_per_fee(desk: StampDesk) -> None:
    paid = desk.pay("PASSPORT", "CNIE", "CNIE")
    assert [s.fee_code for s in paid.stamps] == ["PASSPORT", "CNIE", "CNIE"]
    assert [s.amount for s in paid.stamps] == [Money(5500, "EUR"), Money(800, "EUR"), Money(800, "EUR")]
    assert len({s.number for s in paid.stamps}) == 3
    with desk.db.read() as session:
        entry = journal.get_entry(session, paid.entry_id)
        trust = LedgerTrust(session, desk.settings)
        for stamp in paid.stamps:
            verified = verify_stamp(stamp.text, trust, audience="FR-PAR", now=clock.now())
            assert verified.number == stamp.number
            assert verified.claims.amount == stamp.amount
            assert verified.claims.schedule_version == 2  # the 2026.1 schedule is the second version
            assert verified.fee.code == stamp.fee_code
    assert entry.kind.value == "payment_captured"
    assert entry.references.payment.startswith("test-")
    lines = [(p.account, p.amount.minor, p.fee_code) for p in entry.postings]
    assert lines == [
        ("assets:clearing:terminal:EUR", 7100, ""),
        ("liabilities:stamps-outstanding:FR-PAR", -5500, "PASSPORT"),
        ("liabilities:stamps-outstanding:FR-PAR", -800, "CNIE"),
        ("liabilities:stamps-outstanding:FR-PAR", -800, "CNIE"),
    ]
    assert desk.count("stamps", "WHERE status = 'issued'") == 3
    assert desk.count("stamp_events", "WHERE kind = 'issued'") == 3


def test_stamp_validity_and_currency_follow_the_consulate_and_settings(desk: StampDesk) -> None:
    kuwait = next(c for c in desk.settings.consulates.values() if c.currency == "KWD")
    paid = desk.pay("PASSPORT-MINOR", consulate=kuwait.code)
    stamp = paid.stamps[0]
    assert stamp.amount == Money(8625, "KWD")
    assert stamp.expires_at - stamp.issued_at == timedelta(days=desk.settings.service.stamps.validity_days)
    assert stamp.issued_at.microsecond == 0


def test_the_amount_charged_must_be_the_published_price_and_nothing_is_written_otherwise(
    desk: StampDesk,
) -> None:
    with pytest.raises(
        PriceMismatchError, match=r"amount: 50.00 EUR was charged but the published price is 55.00 EUR"
    ):
        desk.pay("PASSPORT", amount=Money(5000, "EUR"))
    with pytest.raises(PriceMismatchError, match="published price"):
        desk.pay("PASSPORT", amount=Money(5500, "USD"))
    assert desk.count("stamps") == 0
    assert desk.count("entries") == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consulate": "XX-NOP"}, "consulate"),
        ({"payment_ref": "has space"}, "payment_ref"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_a_malformed_payment_names_its_field(desk: StampDesk, changes: dict[str, str], field: str) -> None:
    with pytest.raises(PaymentError) as refused:
        desk.pay("PASSPORT", amount=Money(5500, "EUR"), **changes)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert desk.count("entries") == 0


def test_an_unknown_fee_code_is_refused(desk: StampDesk) -> None:
    with pytest.raises(PaymentError, match=r"fee_codes: fee code 'NOPE' is not in fee schedule 2026\.1"):
        desk.pay("NOPE", amount=Money(100, "EUR"))
    assert desk.count("stamps") == 0


def test_recording_the_same_payment_twice_gives_the_same_stamps(desk: StampDesk) -> None:
    now = clock.now()
    first = desk.pay("PASSPORT", "CNIE", payment_ref="cmi-123", when=now)
    again = desk.pay("PASSPORT", "CNIE", payment_ref="cmi-123", when=now)
    assert again.replayed
    assert not first.replayed
    assert again.stamps == first.stamps
    assert again.entry_id == first.entry_id
    assert desk.count("stamps") == 2
    with pytest.raises(PaymentAlreadyRecordedError, match="cmi-123 was already recorded"):
        desk.pay("PASSPORT", payment_ref="cmi-123", when=now)
    assert desk.count("entries") == 1


def test_only_the_hash_of_a_receipt_link_is_stored(desk: StampDesk) -> None:
    stamp = desk.pay("PASSPORT").stamps[0]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", stamp.receipt_token)
    with desk.db.read() as session:
        row = session.execute(text("SELECT * FROM stamps")).mappings().one()
    assert row["receipt_token_hash"] == token_hash(stamp.receipt_token)
    assert all(stamp.receipt_token not in str(value) for value in row.values())


def test_a_number_already_taken_is_drawn_again(desk: StampDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = desk.pay("PASSPORT").stamps[0].number
    fresh = StampNumber.generate()
    draws = iter([taken, fresh])
    monkeypatch.setattr(StampNumber, "generate", classmethod(lambda cls: next(draws)))
    again = desk.pay("PASSPORT")
    assert again.stamps[0].number == fresh
    with desk.db.read() as session:
        verified = verify_stamp(
            again.stamps[0].text, LedgerTrust(session, desk.settings), audience="FR-PAR", now=clock.now()
        )
    assert verified.number == fresh
    assert desk.count("stamps") == 2


def test_without_a_stamp_key_nothing_is_written(desk: StampDesk) -> None:
    with desk.db.write() as session:
        retire_key(session, desk.stamp_key.kid.hex(), now=clock.now())
    with pytest.raises(NoSigningKeyError, match="rotate the stamp key"):
        desk.pay("PASSPORT")
    assert desk.count("entries") == 0
    assert desk.count("stamps") == 0


def test_a_case_reference_too_long_for_the_qr_code_is_refused(desk: StampDesk) -> None:
    with pytest.raises(ValueError, match="144"):
        desk.pay("PASSPORT", case_reference="A" * 30)
    assert desk.count("entries") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE stamps SET amount = 1",
        "UPDATE stamps SET status = 'consumed', status_changed_at = 1, consulate = 'BE-BRU'",
        "DELETE FROM stamps",
        "UPDATE stamp_events SET actor = 'someone else'",
        "DELETE FROM stamp_events",
        "UPDATE signing_keys SET not_after = not_after + 1",
        "DELETE FROM signing_keys",
    ],
)
def test_the_database_refuses_to_rewrite_stamps_events_and_keys(desk: StampDesk, statement: str) -> None:
    desk.pay("PASSPORT")
    with pytest.raises(DBAPIError, match="etimbre"), desk.db.write() as session:
        session.execute(text(statement))


def test_a_stamp_moves_once_and_never_back(desk: StampDesk) -> None:
    number = desk.pay("PASSPORT").stamps[0].number.digits
    with desk.db.write() as session:
        session.execute(
            text("UPDATE stamps SET status = 'expired', status_changed_at = 1 WHERE number = :n"),
            {"n": number},
        )
    for status in ("issued", "consumed"):
        with pytest.raises(DBAPIError, match="etimbre"), desk.db.write() as session:
            session.execute(text(f"UPDATE stamps SET status = '{status}' WHERE number = :n"), {"n": number})


def test_two_final_events_for_one_stamp_are_refused(desk: StampDesk) -> None:
    number = desk.pay("PASSPORT").stamps[0].number.digits
    insert = text(
        "INSERT INTO stamp_events (number, kind, at, consulate, actor, entry_id, detail) "
        "SELECT number, :kind, 1, consulate, 'x', entry_id, '' FROM stamps WHERE number = :n"
    )
    with desk.db.write() as session:
        session.execute(insert, {"kind": "consumed", "n": number})
    with pytest.raises(DBAPIError), desk.db.write() as session:
        session.execute(insert, {"kind": "refunded", "n": number})
