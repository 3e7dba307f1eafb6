"""Treasury exports and acquirer settlement reports in CSV or XLSX, read into lines by an import profile."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO, cast

from ledger.money import Money
from reconciliation.importers.errors import ErrorList
from reconciliation.importers.profiles import ImportProfile
from reconciliation.importers.sources import ImportSource, open_binary, source_name
from reconciliation.importers.values import (
    ValueFormatError,
    float_money,
    parse_currency,
    parse_date,
)
from reconciliation.lines import SettlementAmounts, Statement, StatementLine

_UTF8 = {"utf-8", "utf-8-sig"}
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    cells: Sequence[object]
    # No line break after this record: the file ends inside it, which is how a cut-off file looks.
    unterminated: bool = False


def read_table(source: ImportSource, profile: ImportProfile) -> Iterator[StatementLine | Statement]:
    """Stream the lines of a CSV/XLSX export, then its one Statement.

    Every malformed line is collected; at the end ImportRejectedError lists them all. Once an error is
    found no further lines are yielded, but a caller that stored the earlier ones must discard them.
    """
    errors = ErrorList(source_name(source))
    with open_binary(source) as file:
        if profile.format == "csv":
            records = _csv_records(file, profile, errors)
        else:
            records = _xlsx_records(file, profile, errors)
        header = next((r for r in records if not _blank(r.cells)), None)
        if header is None:
            raise errors.reject(None, None, "the file has no header line")
        reader = _RowReader(profile, header, errors)
        for record in records:
            if _blank(record.cells):
                continue
            line = reader.read(record)
            if line is not None and not errors:
                yield line
    errors.raise_if_any()
    yield Statement(index=1, line_number=header.line)


def _blank(cells: Sequence[object]) -> bool:
    # Spreadsheets saved as CSV end with rows of bare delimiters (";;;;"): no data, not an error.
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


class _LineCount:
    def __init__(self) -> None:
        self.lines = 0
        self.unterminated = False


def _csv_records(file: BinaryIO, profile: ImportProfile, errors: ErrorList) -> Iterator[_Record]:
    count = _LineCount()
    reader = csv.reader(
        _decoded_lines(file, profile, errors, count),
        delimiter=profile.delimiter,
        quotechar=profile.quote_char,
        strict=True,
    )
    while True:
        start = count.lines + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if count.unterminated:
                errors.add(start, None, "the file ends inside a quoted field (truncated?)")
            else:
                errors.add(start, None, f"not readable as CSV: {error}")
            continue
        yield _Record(start, cells, count.unterminated)


def _decoded_lines(
    file: BinaryIO, profile: ImportProfile, errors: ErrorList, count: _LineCount
) -> Iterator[str]:
    # Split on the raw bytes, then decode each line: a bad byte is reported on its own line, and the
    # profile check guarantees the encoding keeps "\n" as is.
    encoding = profile.encoding
    for line in file:
        count.lines += 1
        raw = line
        if count.lines == 1 and raw.startswith(_BOM):
            if encoding not in _UTF8:
                raise errors.reject(
                    1,
                    None,
                    f"the file starts with a UTF-8 byte-order mark but profile {profile.label} reads "
                    f"{encoding}: is this the right profile?",
                )
            raw = raw[len(_BOM) :]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as error:
            bad = raw[error.start : error.end].hex(" ")
            errors.add(count.lines, None, f"bytes {bad} are not valid {encoding} (profile {profile.label})")
            text = raw.decode(encoding, errors="replace")
        count.unterminated = not text.endswith(("\n", "\r"))
        if count.lines > profile.skip_rows:
            yield text


def _xlsx_records(file: BinaryIO, profile: ImportProfile, errors: ErrorList) -> Iterator[_Record]:
    import openpyxl  # only XLSX imports pay for loading openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, SyntaxError) as error:
        raise errors.reject(None, None, f"is not a readable XLSX workbook ({error})") from None
    try:
        if profile.sheet is None:
            sheet = workbook.worksheets[0]
        elif profile.sheet in workbook.sheetnames:
            sheet = workbook[profile.sheet]
        else:
            raise errors.reject(
                None, None, f"has no sheet named {profile.sheet!r} (sheets: {', '.join(workbook.sheetnames)})"
            )
        if not hasattr(sheet, "reset_dimensions"):
            raise errors.reject(None, None, f"sheet {sheet.title!r} is not a worksheet")
        # Writers get the stored dimension wrong often enough; read what is there instead.
        sheet.reset_dimensions()
        try:
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number > profile.skip_rows:
                    yield _Record(number, row)
        except (zipfile.BadZipFile, EOFError, ValueError, KeyError, SyntaxError) as error:
            # SyntaxError covers the XML parse errors of a damaged sheet (ElementTree's and lxml's).
            raise errors.reject(None, None, f"the workbook is damaged or cut short ({error})") from None
    finally:
        workbook.close()


def _normalized(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def _text(cell: object) -> str | None:
    if cell is None or cell.__class__ is str:
        return cell  # the common case first: CSV cells are text already
    if isinstance(cell, float) and cell.is_integer():
        # A spreadsheet stores a typed-in reference number as a float.
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    text = str(cell).strip()
    return text or None


def _sheet_value(cell: object) -> object:
    if isinstance(cell, str):
        return cell.strip() or None
    return cell


class _RowReader:
    """Turns the records after the header into lines, by the profile's column mapping."""

    def __init__(self, profile: ImportProfile, header: _Record, errors: ErrorList) -> None:
        self.profile = profile
        self.errors = errors
        self.names = [_text(cell) or "" for cell in header.cells]
        self.is_csv = profile.format == "csv"
        self.positions: dict[str, int] = {}
        self.labels: dict[str, str] = {}
        self.problems: list[tuple[str | None, str]] = []
        self.currencies: dict[str, str] = {}
        normalized = [_normalized(name) for name in self.names]
        for field, wanted in profile.columns.items():
            found = [i for i, name in enumerate(normalized) if name == _normalized(wanted)]
            if len(found) == 1:
                self.positions[field] = found[0]
                self.labels[field] = self._label(found[0])
            elif found:
                errors.add(header.line, repr(wanted), f"appears {len(found)} times in the header")
            else:
                shown = ", ".join(repr(name) for name in self.names)
                errors.add(header.line, repr(wanted), f"missing column {wanted!r}; the header has {shown}")
        errors.raise_if_any()
        self.kept = [
            (i, name) for i, name in enumerate(self.names) if name and name not in profile.omit_columns
        ]
        # Where the optional text fields sit (-1: not mapped), read directly on every line.
        self.texts = tuple(
            self.positions.get(field, -1)
            for field in ("reference", "counterparty", "description", "entry_reference", "batch_reference")
        )

    def _label(self, index: int) -> str:
        if self.is_csv:
            return f"{self.names[index]!r} ({index + 1})"
        from openpyxl.utils import get_column_letter

        return f"{self.names[index]!r} ({get_column_letter(index + 1)})"

    def read(self, record: _Record) -> StatementLine | None:
        # Cells once normalized: text stripped, empty text None; spreadsheet numbers and dates kept typed.
        if self.is_csv:
            cells: list[object] = [cell.strip() or None for cell in cast("list[str]", record.cells)]
        else:
            cells = [_sheet_value(cell) for cell in record.cells]
        width = len(self.names)
        if not self.is_csv:
            # A sheet row has as many cells as its last filled one: pad or trim the empty ones.
            if len(cells) < width:
                cells.extend([None] * (width - len(cells)))
            elif _blank(cells[width:]):
                del cells[width:]
        if len(cells) != width:
            # Strict even for empty extra fields: a stray delimiter shifts every value after it.
            self._report(record, None, f"expected {width} fields, found {len(cells)}")
            return None
        self.problems = []
        line = self._line(record, cells)
        if line is None and not self.problems:
            # Never drop a line silently: every path above that gives up records why, and this says so if not.
            self.problems.append((None, "could not be read"))
        if self.problems:
            for column, problem in self.problems:
                self._report(record, column, problem)
            return None
        return line

    def _report(self, record: _Record, column: str | None, problem: str) -> None:
        if record.unterminated:
            problem += "; the file ends inside this line (truncated?)"
        self.errors.add(record.line, column, problem)

    def _cell(self, cells: Sequence[object], field: str, *, required: bool = False) -> object:
        position = self.positions.get(field)
        cell = None if position is None else cells[position]
        if required and cell is None:
            self.problems.append((self.labels[field], "is empty"))
        return cell

    def _date(self, cells: Sequence[object], field: str, date_format: str, *, required: bool) -> date | None:
        cell = self._cell(cells, field, required=required)
        if cell is None:
            return None
        if isinstance(cell, str):
            try:
                return parse_date(cell, date_format)
            except ValueFormatError as error:
                self.problems.append((self.labels[field], str(error)))
                return None
        if isinstance(cell, datetime):
            return cell.date()
        if isinstance(cell, date):
            return cell
        self.problems.append((self.labels[field], f"{cell!r} is a number, not a date"))
        return None

    def _money(
        self, cells: Sequence[object], field: str, currency: str | None, *, required: bool
    ) -> Money | None:
        cell = self._cell(cells, field, required=required)
        if cell is None or currency is None:
            return None
        try:
            if isinstance(cell, str):
                return self.profile.numbers.parse(cell, currency)
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                return float_money(cell, currency)
            return self.profile.numbers.parse(str(cell), currency)
        except ValueFormatError as error:
            self.problems.append((self.labels[field], str(error)))
            return None

    def _currency(self, cells: Sequence[object]) -> str | None:
        if self.profile.currency is not None:
            return self.profile.currency
        cell = _text(self._cell(cells, "currency", required=True))
        if cell is None:
            return None
        known = self.currencies.get(cell)
        if known is not None:
            return known
        try:
            known = self.currencies[cell] = parse_currency(cell)
        except ValueFormatError as error:
            self.problems.append((self.labels["currency"], str(error)))
            return None
        return known

    def _line(self, record: _Record, cells: list[object]) -> StatementLine | None:
        profile = self.profile
        booked = self._date(cells, "booking_date", profile.date_format, required=True)
        value_date = self._date(cells, "value_date", profile.value_date_format, required=False)
        currency = self._currency(cells)
        settlement = None
        if profile.kind == "settlement":
            settlement = self._settlement(cells, currency)
            amount = settlement.net if settlement else None
        else:
            amount = self._treasury_amount(cells, currency)
        if self.problems or booked is None or amount is None:
            return None
        reference, counterparty, description, entry_reference, batch_reference = (
            None if i < 0 else _text(cells[i]) for i in self.texts
        )
        return StatementLine(
            source=profile.source,
            line_number=record.line,
            booking_date=booked,
            value_date=value_date,
            amount=amount,
            reference=reference,
            counterparty=counterparty,
            description=description,
            entry_reference=entry_reference,
            batch_reference=batch_reference,
            settlement=settlement,
            raw=tuple([(name, text) for i, name in self.kept if (text := _text(cells[i])) is not None]),
        )

    def _problem(self, field: str, problem: str) -> None:
        self.problems.append((self.labels.get(field, field), problem))

    def _treasury_amount(self, cells: list[object], currency: str | None) -> Money | None:
        if self.profile.sign == "debit_credit":
            return self._debit_credit_amount(cells, currency)
        amount = self._money(cells, "amount", currency, required=True)
        if amount is None:
            return None
        if self.profile.sign == "signed":
            return -amount if self.profile.negate else amount
        return self._indicated_amount(cells, amount)

    def _debit_credit_amount(self, cells: list[object], currency: str | None) -> Money | None:
        debit = self._money(cells, "debit", currency, required=False)
        credit = self._money(cells, "credit", currency, required=False)
        for field, value in (("debit", debit), ("credit", credit)):
            if value is not None and value.minor < 0:
                self._problem(
                    field, f"{value.to_str()} is negative; debit and credit hold amounts without sign"
                )
        if self.problems or currency is None:
            return None
        has_debit = debit is not None and debit.minor != 0
        has_credit = credit is not None and credit.minor != 0
        if has_debit == has_credit:
            which = "both debit and credit" if has_debit else "neither debit nor credit"
            self.problems.append(
                (f"{self.labels['debit']}/{self.labels['credit']}", f"{which} hold an amount")
            )
            return None
        return credit if credit is not None and has_credit else -debit if debit is not None else None

    def _indicated_amount(self, cells: list[object], amount: Money) -> Money | None:
        profile = self.profile
        if amount.minor < 0:
            self._problem(
                "amount", f"{amount.to_str()} is negative; the sign is in {self.labels['indicator']}"
            )
            return None
        mark = (_text(self._cell(cells, "indicator", required=True)) or "").casefold()
        if mark in profile.credit_marks:
            return amount
        if mark in profile.debit_marks:
            return -amount
        if mark:
            marks = f"credit {sorted(profile.credit_marks)}, debit {sorted(profile.debit_marks)}"
            self._problem("indicator", f"{mark!r} is neither a credit nor a debit mark ({marks})")
        return None

    def _settlement(self, cells: list[object], currency: str | None) -> SettlementAmounts | None:
        profile = self.profile
        gross = self._money(cells, "gross", currency, required=True)
        fee = self._money(cells, "fee", currency, required=False)
        net = self._money(cells, "net", currency, required="net" in self.positions)
        name = _text(self._cell(cells, "category", required=True))
        category = profile.categories.get(name.casefold()) if name else None
        if name and category is None:
            self._problem(
                "category", f"unknown category {name!r} (profile knows {', '.join(profile.categories)})"
            )
        if gross is None or category is None or currency is None:
            return None
        fee = Money.zero(currency) if fee is None else (-fee if profile.fees_negative else fee)
        expected = gross - fee
        if net is not None and net != expected:
            shown = f"gross {gross.to_str()} minus fee {fee.to_str()} = {expected.to_str()}"
            self._problem("net", f"{net.to_str()} is not {shown}")
            return None
        assert profile.provider is not None
        return SettlementAmounts(profile.provider, category, gross, fee, expected)
