"""Treasury exports as XLSX workbooks, read in openpyxl's read-only mode."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from ledger.money import Money
from reconciliation.importers import ImportRejectedError, ProfileSet, read_import
from reconciliation.lines import SourceKind

COLUMNS = [
    "entry_id", "booking_date", "value_date", "amount", "currency",
    "reference", "counterparty", "description", "batch_reference",
]  # fmt: skip


def workbook(*rows: list[object], title: str = "Export") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_typed_cells_and_text_cells_both_read(profiles: ProfileSet) -> None:
    data = workbook(
        ["TGR-1", date(2026, 11, 22), date(2026, 11, 23), 125.5, "EUR", "ET-PAY-0001", "أمينة الإدريسي"],
        ["TGR-2", "2026-11-22", None, "-20.50", "eur", 4711, None, "frais"],
        [],
        ["TGR-3", datetime(2026, 11, 22, 18, 30), None, 7.125, "TND", "ET-PAY-0003"],
    )
    lines = read_import(data, profiles.get("treasury-xlsx")).lines
    first, second, third = lines
    assert first.source is SourceKind.TREASURY_XLSX
    assert (first.line_number, second.line_number, third.line_number) == (2, 3, 5)
    assert first.amount == Money(12550, "EUR")
    assert first.value_date == date(2026, 11, 23)
    assert first.counterparty == "أمينة الإدريسي"
    assert second.amount == Money(-2050, "EUR")
    assert second.reference == "4711"
    assert third.amount == Money(7125, "TND")
    assert third.booking_date == date(2026, 11, 22)


def test_cells_that_need_rounding_are_refused_with_row_and_column_letter(profiles: ProfileSet) -> None:
    data = workbook(
        ["TGR-1", date(2026, 11, 22), None, 12.345, "EUR"],
        ["TGR-2", 20261122, None, 1, "EUR"],
    )
    with pytest.raises(ImportRejectedError) as caught:
        read_import(data, profiles.get("treasury-xlsx"))
    assert [str(error) for error in caught.value.errors] == [
        (
            "line 2, column 'amount' (D): '12.345' has 3 decimal places; EUR allows 2 decimal places "
            "(amounts are never rounded)"
        ),
        "line 3, column 'booking_date' (B): 20261122 is a number, not a date",
    ]


def test_a_cut_off_workbook_is_refused(profiles: ProfileSet) -> None:
    data = workbook(["TGR-1", date(2026, 11, 22), None, 1, "EUR"])
    with pytest.raises(ImportRejectedError, match="is not a readable XLSX workbook"):
        read_import(data[: len(data) // 2], profiles.get("treasury-xlsx"))


def test_a_damaged_sheet_inside_a_sound_archive_is_refused(profiles: ProfileSet) -> None:
    sound = zipfile.ZipFile(io.BytesIO(workbook(*[["TGR", date(2026, 11, 22), None, 1, "EUR"]] * 50)))
    damaged = io.BytesIO()
    with zipfile.ZipFile(damaged, "w") as out:
        for item in sound.infolist():
            content = sound.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content[: len(content) // 2]
            out.writestr(item, content)
    with pytest.raises(ImportRejectedError, match="the workbook is damaged or cut short"):
        read_import(damaged.getvalue(), profiles.get("treasury-xlsx"))
