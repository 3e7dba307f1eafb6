"""Treasury CSV exports as real systems write them, byte for byte: BOMs, CRLF, code pages, cut-off files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ledger.money import Money
from reconciliation.importers import ImportRejectedError, ProfileSet, read_import, stream_import
from reconciliation.importers.profiles import parse_profile
from reconciliation.lines import SourceKind, Statement, StatementLine

HEADER = (
    b"entry_id,booking_date,value_date,amount,currency,reference,counterparty,description,batch_reference"
)


def rejected(data: bytes, profiles: ProfileSet, name: str = "treasury-default") -> list[str]:
    with pytest.raises(ImportRejectedError) as caught:
        read_import(data, profiles.get(name))
    return [str(error) for error in caught.value.errors]


def test_default_export_with_bom_crlf_quotes_and_trailing_empty_lines(profiles: ProfileSet) -> None:
    data = (
        b"\xef\xbb\xbf" + HEADER + b"\r\n"
        b"TGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-PAY-0001,Amina El Idrissi,Passeport,\r\n"
        b'TGR-2,2026-11-22,,-20.50,EUR,,"Banque, Paris","frais\r\nde tenue",\r\n'
        b"TGR-3,2026-11-22,2026-11-23,99,MAD,ET-PAY-0002,,,PO-77\r\n"
        b"\r\n\r\n\r\n"
    )
    parsed = read_import(data, profiles.get("treasury-default"))
    first, second, third = parsed.lines
    assert (first.line_number, second.line_number, third.line_number) == (2, 3, 5)
    assert first.amount == Money(12500, "EUR")
    assert first.reference == "ET-PAY-0001"
    assert first.counterparty == "Amina El Idrissi"
    assert first.entry_reference == "TGR-1"
    assert first.source is SourceKind.TREASURY_CSV
    assert second.amount == Money(-2050, "EUR")
    assert second.value_date is None
    assert second.counterparty == "Banque, Paris"
    assert second.description == "frais\r\nde tenue"
    assert third.amount == Money(9900, "MAD")
    assert third.batch_reference == "PO-77"
    assert third.value_date == date(2026, 11, 23)
    assert ("reference", "ET-PAY-0002") in third.raw
    assert parsed.statements == (Statement(index=1, line_number=1),)
    assert parsed.profile == "treasury-default@1"
    assert not parsed.verdict.findings


def test_french_semicolons_decimal_commas_and_grouped_thousands(profiles: ProfileSet) -> None:
    text = (
        "Date opération;Date valeur;Référence;Tiers;Libellé;Débit;Crédit\r\n"
        "22/11/2026;23/11/2026;ET-PAY-0009;Société Générale;Virement reçu;;1 234,50\r\n"
        "22/11/2026;23/11/2026;;Trésor;Commission;1\u00a0000,00;\r\n"
        "22/11/2026;22/11/2026;ET-PAY-0010;Hélène Côté;Timbre;;0,50\r\n"
        ";;;;;;\r\n"
        ";;;;;;\r\n"
    )
    data = text.encode("cp1252")
    assert b"\xa0" in data  # the no-break space, as Windows-1252 writes it
    lines = read_import(data, profiles.get("treasury-fr")).lines
    assert [line.amount for line in lines] == [Money(123450, "EUR"), Money(-100000, "EUR"), Money(50, "EUR")]
    assert lines[0].counterparty == "Société Générale"
    assert lines[0].booking_date == date(2026, 11, 22)
    assert lines[0].value_date == date(2026, 11, 23)
    assert lines[2].counterparty == "Hélène Côté"


def test_windows_1256_arabic_names_and_indicator_column(profiles: ProfileSet) -> None:
    text = (
        "تاريخ العملية;تاريخ القيمة;المرجع;اسم المودع;البيان;المبلغ;دائن/مدين\r\n"
        "22/11/2026;22/11/2026;ET-PAY-0101;أمينة الإدريسي;رسوم قنصلية;1,250.00;C\r\n"
        "22/11/2026;22/11/2026;ET-PAY-0102;يوسف بنعلي;استرجاع;300.00;مدين\r\n"
        "22/11/2026;23/11/2026;ET-PAY-0103;فاطمة الزهراء;جواز سفر;75.5;دائن\r\n"
    )
    data = text.encode("cp1256")
    assert "أمينة".encode() not in data
    lines = read_import(data, profiles.get("treasury-ar-1256")).lines
    assert [line.counterparty for line in lines] == ["أمينة الإدريسي", "يوسف بنعلي", "فاطمة الزهراء"]
    assert [line.amount for line in lines] == [Money(125000, "MAD"), Money(-30000, "MAD"), Money(7550, "MAD")]
    assert lines[0].description == "رسوم قنصلية"


def test_a_truncated_last_line_is_reported_with_its_line_number(profiles: ProfileSet) -> None:
    data = HEADER + b"\nTGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-1,,,\nTGR-2,2026-11-22,2026-1"
    assert rejected(data, profiles) == [
        "line 3: expected 9 fields, found 3; the file ends inside this line (truncated?)"
    ]


def test_a_file_cut_inside_a_quoted_field_is_reported(profiles: ProfileSet) -> None:
    data = HEADER + b'\r\nTGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-1,"Amina El'
    assert rejected(data, profiles) == ["line 2: the file ends inside a quoted field (truncated?)"]


def test_a_last_line_without_newline_but_complete_is_fine(profiles: ProfileSet) -> None:
    data = HEADER + b"\nTGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-1,,,"
    assert [line.amount for line in read_import(data, profiles.get("treasury-default")).lines] == [
        Money(12500, "EUR")
    ]


def test_every_malformed_line_is_listed_and_nothing_is_imported(profiles: ProfileSet) -> None:
    data = (
        HEADER + b"\n"
        b"TGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-1,,,\n"
        b"TGR-2,2026-11-22,2026-11-22,12.345,EUR,ET-2,,,\n"
        b"TGR-3,22/11/2026,2026-11-22,10.00,EUR,ET-3,,,\n"
        b"TGR-4,2026-11-22,2026-11-22,10.00,EURO,ET-4,,,\n"
        b"TGR-5,2026-11-22,2026-11-22,10.00,EUR,ET-5,,\n"
        b"TGR-6,2026-11-22,2026-11-22,,EUR,ET-6,,,\n"
        b"TGR-7,2026-11-22,2026-11-22,1,000.00,EUR,ET-7,,,\n"
    )
    assert rejected(data, profiles) == [
        (
            "line 3, column 'amount' (4): '12.345' has 3 decimal places; EUR allows 2 decimal places "
            "(amounts are never rounded)"
        ),
        "line 4, column 'booking_date' (2): '22/11/2026' is not a date in the format %Y-%m-%d",
        "line 5, column 'currency' (5): currency must be three capital letters (ISO 4217), got 'EURO'",
        "line 6: expected 9 fields, found 8",
        "line 7, column 'amount' (4): is empty",
        "line 8: expected 9 fields, found 10",
    ]


def test_streaming_stops_yielding_lines_after_the_first_error(profiles: ProfileSet) -> None:
    data = (
        HEADER + b"\n"
        b"TGR-1,2026-11-22,,1.00,EUR,,,,\n"
        b"TGR-2,2026-11-22,,bad,EUR,,,,\n"
        b"TGR-3,2026-11-22,,3.00,EUR,,,,\n"
    )
    seen: list[StatementLine | Statement] = []
    with pytest.raises(ImportRejectedError, match="line 3, column 'amount'"):
        seen.extend(stream_import(data, profiles.get("treasury-default")))
    assert [line.line_number for line in seen] == [2]


def test_a_missing_column_names_the_column_and_the_header(profiles: ProfileSet) -> None:
    data = b"entry_id,booking_date,amount,currency,reference,counterparty,description,batch_reference\n"
    assert rejected(data, profiles) == [
        (
            "line 1, column 'value_date': missing column 'value_date'; the header has 'entry_id', "
            "'booking_date', 'amount', 'currency', 'reference', 'counterparty', 'description', "
            "'batch_reference'"
        )
    ]


def test_an_empty_file_has_no_header(profiles: ProfileSet) -> None:
    assert rejected(b"\r\n\r\n", profiles) == ["the file has no header line"]


def test_bytes_that_are_not_the_profile_encoding(profiles: ProfileSet) -> None:
    data = HEADER + b"\nTGR-1,2026-11-22,,1.00,EUR,,Soci\xe9t\xe9,,\n"
    assert rejected(data, profiles) == [
        "line 2: bytes e9 are not valid utf-8-sig (profile treasury-default@1)"
    ]


def test_a_utf8_file_given_to_a_code_page_profile_is_refused(profiles: ProfileSet) -> None:
    data = "\ufeffDate opération;Date valeur;Référence;Tiers;Libellé;Débit;Crédit\r\n".encode()
    assert rejected(data, profiles, "treasury-fr") == [
        (
            "line 1: the file starts with a UTF-8 byte-order mark but profile treasury-fr@1 reads cp1252: "
            "is this the right profile?"
        )
    ]


def test_debit_and_credit_both_filled_is_an_error(profiles: ProfileSet) -> None:
    data = (
        "Date opération;Date valeur;Référence;Tiers;Libellé;Débit;Crédit\r\n"
        "22/11/2026;23/11/2026;X;Y;Z;1,00;2,00\r\n"
        "22/11/2026;23/11/2026;X;Y;Z;;\r\n"
        "22/11/2026;23/11/2026;X;Y;Z;-1,00;\r\n"
    ).encode("cp1252")
    assert rejected(data, profiles, "treasury-fr") == [
        "line 2, column 'Débit' (6)/'Crédit' (7): both debit and credit hold an amount",
        "line 3, column 'Débit' (6)/'Crédit' (7): neither debit nor credit hold an amount",
        "line 4, column 'Débit' (6): -1.00 is negative; debit and credit hold amounts without sign",
    ]


def test_an_unknown_credit_debit_mark_is_an_error(profiles: ProfileSet) -> None:
    text = (
        "تاريخ العملية;تاريخ القيمة;المرجع;اسم المودع;البيان;المبلغ;دائن/مدين\r\n"
        "22/11/2026;22/11/2026;R;N;B;10.00;X\r\n"
    )
    (error,) = rejected(text.encode("cp1256"), profiles, "treasury-ar-1256")
    assert error.startswith("line 2, column 'دائن/مدين' (7): 'x' is neither a credit nor a debit mark")


def test_header_rows_are_skipped_and_lines_keep_their_file_numbers() -> None:
    profile = parse_profile(
        b"""
[profile]
name = "bank-with-title"
version = 1
[file]
delimiter = "\\t"
skip_rows = 2
[amount]
currency = "EUR"
[columns]
booking_date = "Date"
amount = "Amount"
reference = "Ref"
"""
    )
    data = b"Bank X statement\tNovember 2026\nAccount\tFR76 3000\nDate\tAmount\tRef\n2026-11-22\t5.00\tET-1\n"
    (line,) = read_import(data, profile).lines
    assert line.line_number == 4
    assert line.amount == Money(500, "EUR")


def test_the_same_file_has_the_same_hash(profiles: ProfileSet) -> None:
    data = HEADER + b"\nTGR-1,2026-11-22,,1.00,EUR,,,,\n"
    profile = profiles.get("treasury-default")
    first, again = read_import(data, profile), read_import(bytes(data), profile)
    assert first.sha256 == again.sha256
    assert len(first.sha256) == 64
    assert read_import(data + b"\n", profile).sha256 != first.sha256


def test_the_documented_example_reads_as_documented(profiles: ProfileSet) -> None:
    page = (Path(__file__).parents[2] / "docs" / "treasury-export.md").read_text(encoding="utf-8")
    example = page.split("```csv\n", 1)[1].split("```", 1)[0]
    lines = read_import(example.encode(), profiles.get("treasury-default")).lines
    assert [line.amount for line in lines] == [
        Money(12500, "EUR"),
        Money(6000, "EUR"),
        Money(184235, "EUR"),
        Money(-2050, "EUR"),
    ]
    assert lines[1].counterparty == "أمينة الإدريسي"
    assert lines[2].batch_reference == "po_1QxA"
