"""camt.053 statements (.02 and .08): balances, batches, sequence numbers, and files that do not add up."""

from __future__ import annotations

import re
from datetime import date

import pytest

from ledger.money import Money
from reconciliation.importers import FindingKind, ImportRejectedError, read_import, stream_import
from reconciliation.lines import Balance, BatchDetail, SequenceNumber, SourceKind, Statement, StatementLine
from tests.reconciliation.statement_files import Detail, Entry, Stmt, camt053

IBAN = "MA64011519000001205000534921"


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_balanced_statement_gives_its_lines_and_balances(version: str) -> None:
    data = camt053(
        Stmt(
            [
                Entry(
                    "125.00",
                    account_ref="TGR-1",
                    details=[Detail("125.00", "ET-PAY-0001", name="أمينة الإدريسي")],
                ),
                Entry("20.50", sign="DBIT", value=None, details=[Detail(None, remittance="Frais de tenue")]),
                Entry("10.00", sign="DBIT", reversal=True),
            ],
            opening="1000.00",
            closing="1094.50",
            sequence=41,
            legal=12,
        ),
        version=version,
    )
    parsed = read_import(data, "camt053")
    first, second, third = parsed.lines
    assert first.source is SourceKind.CAMT053
    assert first.amount == Money(12500, "EUR")
    assert first.reference == "ET-PAY-0001"
    assert first.counterparty == "أمينة الإدريسي"
    assert first.entry_reference == "TGR-1"
    assert first.booking_date == date(2026, 11, 22)
    assert (first.entry_index, second.entry_index, third.entry_index) == (1, 2, 3)
    assert first.line_number == data.decode().splitlines().index("<Ntry>") + 1
    assert first.batch_details == ()
    assert second.amount == Money(-2050, "EUR")
    assert second.value_date is None
    assert second.reference is None
    assert second.description == "Frais de tenue"
    assert third.reversal
    (statement,) = parsed.statements
    assert statement == Statement(
        index=1,
        line_number=5,
        statement_id="STMT-1",
        account=IBAN,
        sequence=SequenceNumber(41),
        legal_sequence=12,
        opening=Balance(Money(100000, "EUR"), date(2026, 11, 22)),
        closing=Balance(Money(109450, "EUR"), date(2026, 11, 22)),
    )
    assert not parsed.verdict.findings
    assert parsed.last_sequences == {IBAN: SequenceNumber(41)}


def test_balances_that_do_not_add_up_quarantine_the_file() -> None:
    data = camt053(Stmt([Entry("125.00"), Entry("20.00", sign="DBIT")], opening="1000.00", closing="1115.00"))
    parsed = read_import(data, "camt053")
    assert parsed.verdict.quarantined
    assert parsed.verdict.reasons == (
        (
            "statement 1 (STMT-1): does not add up: opening 1000.00 EUR + entries 105.00 EUR = 1105.00 EUR, "
            "but the closing balance is 1115.00 EUR (difference 10.00 EUR)"
        ),
    )
    assert len(parsed.lines) == 2  # the content stays readable for the auditor


def test_a_debit_opening_balance_is_negative() -> None:
    data = camt053(Stmt([Entry("50.00")], opening="20.00", opening_sign="DBIT", closing="30.00"))
    parsed = read_import(data, "camt053")
    assert parsed.statements[0].opening == Balance(Money(-2000, "EUR"), date(2026, 11, 22))
    assert not parsed.verdict.quarantined


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_batch_entry_keeps_every_detail_with_its_amount_and_reference(version: str) -> None:
    batch = Entry(
        "90.00",
        batch_id="PO-20261122-7",
        details=[
            Detail("60.00", "ET-PAY-0011", name="Fatima Zahra"),
            Detail("40.00", reference="ET-PAY-0012", remittance="Visa"),
            Detail("10.00", "ET-PAY-0013", sign="DBIT"),
        ],
    )
    data = camt053(Stmt([batch], opening="0.00", closing="90.00"), version=version)
    parsed = read_import(data, "camt053")
    (line,) = parsed.lines
    assert line.batch_reference == "PO-20261122-7"
    assert line.reference is None
    expected_third = Money(-1000 if version == "08" else 1000, "EUR")  # .02 details carry no sign
    assert line.batch_details == (
        BatchDetail(Money(6000, "EUR"), "ET-PAY-0011", "ET-PAY-0011", "Fatima Zahra"),
        BatchDetail(Money(4000, "EUR"), "ET-PAY-0012", None, None, "Visa"),
        BatchDetail(expected_third, "ET-PAY-0013", "ET-PAY-0013"),
    )
    assert parsed.verdict.quarantined is (version == "02")


def test_batch_details_that_do_not_add_up_quarantine_the_file() -> None:
    batch = Entry("100.00", details=[Detail("60.00", "ET-1"), Detail("30.00", "ET-2")])
    parsed = read_import(camt053(Stmt([batch], opening="0.00", closing="100.00")), "camt053")
    (finding,) = parsed.verdict.findings
    assert finding.kind is FindingKind.BATCH_MISMATCH
    assert (
        finding.message
        == "entry 1 (line 10): its 2 batch details add up to 90.00 EUR, the entry is 100.00 EUR"
    )


def test_sequence_gaps_are_flagged_within_the_file_and_against_the_last_import() -> None:
    data = camt053(
        Stmt([Entry("1.00")], opening="0.00", closing="1.00", sequence=7, identifier="S7"),
        Stmt([Entry("1.00")], opening="1.00", closing="2.00", sequence=8, identifier="S8"),
        Stmt([Entry("1.00")], opening="2.00", closing="3.00", sequence=11, identifier="S11"),
        Stmt([Entry("1.00")], opening="3.00", closing="4.00", sequence=11, identifier="S11b"),
    )
    parsed = read_import(data, "camt053", previous={IBAN: SequenceNumber(4)})
    assert not parsed.verdict.quarantined
    assert [(f.kind, f.message) for f in parsed.verdict.flags] == [
        (
            FindingKind.SEQUENCE_GAP,
            f"statement 1 (S7) of account {IBAN} is number 7, the one before was 4: 2 statements missing",
        ),
        (
            FindingKind.SEQUENCE_GAP,
            f"statement 3 (S11) of account {IBAN} is number 11, the one before was 8: 2 statements missing",
        ),
        (
            FindingKind.SEQUENCE_REPEAT,
            f"statement 4 (S11b) of account {IBAN} is number 11, not after 11: repeated or out of order",
        ),
    ]
    assert read_import(data, "camt053", previous={"another account": SequenceNumber(4)}).verdict.flags[
        0
    ].message == (
        f"statement 3 (S11) of account {IBAN} is number 11, the one before was 8: 2 statements missing"
    )


def test_pending_entries_are_not_lines_but_count_towards_the_declared_total() -> None:
    entries = [Entry("5.00"), Entry("7.00", status="PDNG")]
    parsed = read_import(camt053(Stmt(entries, opening="0.00", closing="5.00", declared=2)), "camt053")
    assert [line.amount for line in parsed.lines] == [Money(500, "EUR")]
    assert parsed.statements[0].unbooked_entries == 1
    assert not parsed.verdict.findings


def test_a_statement_without_closing_balance_is_quarantined() -> None:
    data = camt053(Stmt([Entry("5.00")], opening="0.00", closing="5.00")).replace(
        b"<Cd>CLBD</Cd>", b"<Cd>CLAV</Cd>"
    )
    parsed = read_import(data, "camt053")
    assert parsed.verdict.reasons == (
        "statement 1 (STMT-1): no closing booked balance, so it cannot be checked",
    )


def test_a_statement_missing_entries_it_declares_is_quarantined() -> None:
    parsed = read_import(
        camt053(Stmt([Entry("5.00")], opening="0.00", closing="5.00", declared=3)), "camt053"
    )
    assert parsed.verdict.reasons == ("statement 1 (STMT-1): declares 3 entries but holds 1",)


def test_entries_in_another_currency_are_quarantined() -> None:
    entries = [Entry("5.00"), Entry("7.00", currency="USD")]
    parsed = read_import(camt053(Stmt(entries, opening="0.00", closing="5.00")), "camt053")
    assert parsed.verdict.reasons == ("statement 1 (STMT-1): has entries in USD, its balances are EUR",)


def test_malformed_entries_are_all_reported_with_line_and_element() -> None:
    data = camt053(
        Stmt(
            [
                Entry("12.345"),
                Entry("5.00", sign="CRED"),
                Entry("1.00", booked="22/11/2026"),
                Entry("1,00"),
                Entry("1.00", booked="2026-11-22Z"),
            ],
            opening="0.00",
            closing="0.00",
        )
    )
    with pytest.raises(ImportRejectedError) as caught:
        read_import(data, "camt053")
    assert [str(error) for error in caught.value.errors] == [
        (
            "line 10, column Ntry/Amt: '12.345' has 3 decimal places; EUR allows 2 decimal places "
            "(amounts are never rounded)"
        ),
        "line 13, column Ntry/CdtDbtInd: 'CRED' is neither CRDT nor DBIT",
        "line 16, column Ntry/BookgDt/Dt: '22/11/2026' is not an ISO date such as 2026-11-22",
        "line 19, column Ntry/Amt: '1,00' is not an amount such as 1234.50",
        "line 22, column Ntry/BookgDt/Dt: '2026-11-22Z' is not an ISO date such as 2026-11-22",
    ]


def test_a_truncated_file_is_rejected_after_streaming_nothing_usable() -> None:
    data = camt053(Stmt([Entry("1.00"), Entry("2.00")], opening="0.00", closing="3.00"))
    cut = data[: data.rindex(b"<Ntry>") + 30]
    seen: list[StatementLine | Statement] = []
    with pytest.raises(ImportRejectedError) as caught:
        seen.extend(stream_import(cut, "camt053"))
    (error,) = caught.value.errors
    assert error.line == cut.count(b"\n") + 1
    assert "is not well-formed XML" in error.problem
    assert all(not isinstance(item, Statement) for item in seen)


def test_another_iso_20022_message_is_refused() -> None:
    data = camt053(Stmt([Entry("1.00")], opening="0.00", closing="1.00")).replace(
        b"camt.053.001.08", b"camt.052.001.08"
    )
    with pytest.raises(
        ImportRejectedError,
        match=re.escape("namespace 'urn:iso:std:iso:20022:tech:xsd:camt.052.001.08' is not"),
    ):
        read_import(data, "camt053")


def test_a_file_without_statements_is_refused() -> None:
    with pytest.raises(ImportRejectedError, match=r"contains no camt\.053 statement"):
        read_import(b'<?xml version="1.0"?><Document xmlns="urn:x"/>', "camt053")


def test_external_entities_are_never_resolved() -> None:
    data = camt053(
        Stmt([Entry("1.00", details=[Detail("1.00", remittance="&secret;")])], opening="0.00", closing="1.00")
    ).replace(
        b"<Document",
        b'<!DOCTYPE Document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n<Document',
        1,
    )
    (line,) = read_import(data, "camt053").lines
    assert line.description is None
    assert "root:" not in repr(line)


def test_booking_date_times_give_the_bank_s_calendar_date() -> None:
    data = camt053(Stmt([Entry("1.00")], opening="0.00", closing="1.00")).replace(
        b"<BookgDt><Dt>2026-11-22</Dt></BookgDt>",
        b"<BookgDt><DtTm>2026-11-22T23:30:00-05:00</DtTm></BookgDt>",
    )
    (line,) = read_import(data, "camt053").lines
    assert line.booking_date == date(2026, 11, 22)
