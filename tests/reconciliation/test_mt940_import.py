"""MT940 statements via mt-940: :28C: numbers, :60F:/:62F: balances, :61: lines with their :86: details."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.money import Money
from reconciliation.importers import FindingKind, ImportRejectedError, read_import
from reconciliation.lines import Balance, SequenceNumber, SourceKind
from tests.reconciliation.statement_files import MT940_TWO_STATEMENTS

ACCOUNT = "MA64011519000001205000534921"


def test_statements_lines_and_details() -> None:
    parsed = read_import(MT940_TWO_STATEMENTS.encode(), "mt940")
    fee_line = 7
    first, fee, reversal, later = parsed.lines
    assert first.source is SourceKind.MT940
    assert first.line_number == 5
    assert first.amount == Money(12500, "EUR")
    assert first.reference == "ET-PAY-0001"
    assert first.counterparty == "Amina El Idrissi"
    assert first.description == "Passeport ordinaire"
    assert first.entry_reference == "TGR-8841"
    assert first.booking_date == date(2026, 11, 22)
    assert fee.line_number == fee_line
    assert fee.amount == Money(-2050, "EUR")
    assert fee.reference is None  # NONREF
    assert fee.description == "Frais de tenue de compte"
    assert reversal.reversal
    assert reversal.amount == Money(-1000, "EUR")  # RC: a credit taken back
    assert (later.statement_index, later.line_number) == (2, 16)
    one, two = parsed.statements
    assert (one.sequence, two.sequence) == (SequenceNumber(41, 1), SequenceNumber(42, 1))
    assert one.account == ACCOUNT
    assert one.statement_id == "TGR20261122"
    assert one.opening == Balance(Money(100000, "EUR"), date(2026, 11, 21))
    assert two.closing == Balance(Money(115450, "EUR"), date(2026, 11, 23))
    assert not parsed.verdict.findings
    assert parsed.last_sequences == {ACCOUNT: SequenceNumber(42, 1)}


def test_a_statement_that_does_not_add_up_is_quarantined() -> None:
    data = MT940_TWO_STATEMENTS.replace(":62F:C261123EUR1154,50", ":62F:C261123EUR1164,50").encode()
    parsed = read_import(data, "mt940")
    assert parsed.verdict.reasons == (
        (
            "statement 2 (TGR20261123): does not add up: opening 1094.50 EUR + entries 60.00 EUR = "
            "1154.50 EUR, but the closing balance is 1164.50 EUR (difference 10.00 EUR)"
        ),
    )


def test_a_missing_statement_number_is_flagged() -> None:
    data = MT940_TWO_STATEMENTS.replace(":28C:00042/001", ":28C:00044/001").encode()
    parsed = read_import(data, "mt940", previous={ACCOUNT: SequenceNumber(39, 2)})
    assert not parsed.verdict.quarantined
    assert [(f.kind, f.line_number, f.message) for f in parsed.verdict.flags] == [
        (
            FindingKind.SEQUENCE_GAP,
            1,
            (
                f"statement 1 (TGR20261122) of account {ACCOUNT} is number 41/1, the one before was 39/2: "
                "1 statement missing"
            ),
        ),
        (
            FindingKind.SEQUENCE_GAP,
            12,
            (
                f"statement 2 (TGR20261123) of account {ACCOUNT} is number 44/1, the one before was 41/1: "
                "2 statements missing"
            ),
        ),
    ]


def test_the_next_page_of_the_same_statement_follows() -> None:
    data = MT940_TWO_STATEMENTS.replace(":28C:00042/001", ":28C:00041/002").encode()
    assert not read_import(data, "mt940").verdict.findings


def test_amounts_needing_rounding_and_unreadable_lines_are_reported() -> None:
    data = (
        MT940_TWO_STATEMENTS.replace(":61:2611221122D20,50NCHG", ":61:2611221122D20,505NCHG")
        .replace(":61:2611231123C60,00NTRF", ":61:2611231123X60,00NTRF")
        .encode()
    )
    with pytest.raises(ImportRejectedError) as caught:
        read_import(data, "mt940")
    assert [str(error) for error in caught.value.errors] == [
        (
            "line 7, column :61:: '-20.505' has 3 decimal places; EUR allows 2 decimal places "
            "(amounts are never rounded)"
        ),
        "line 16, column :61:: cannot be read: 2611231123X60,00NTRFET-PAY-0003//TGR-8850",
    ]


def test_a_byte_order_mark_and_bare_newlines_are_fine() -> None:
    data = ("\ufeff" + MT940_TWO_STATEMENTS.replace("\r\n", "\n")).encode()
    assert len(read_import(data, "mt940").lines) == 4


def test_a_file_without_statements_is_refused() -> None:
    with pytest.raises(ImportRejectedError, match=r"contains no MT940 statement \(no :20: tag"):
        read_import(b"hello\r\n", "mt940")
