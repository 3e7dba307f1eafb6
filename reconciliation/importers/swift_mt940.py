"""SWIFT MT940 statements via the mt-940 library: balances, :28C: numbers, :61: lines, :86: details."""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import mt940

from reconciliation.importers.errors import ErrorList
from reconciliation.importers.sources import ImportSource, open_binary, source_name
from reconciliation.importers.values import ValueFormatError, decimal_money
from reconciliation.lines import Balance, SequenceNumber, SourceKind, Statement, StatementLine

# Sign reversals (RC is money leaving), keep :61: references that a later :86: lacks, keep long :86:,
# and read lower-case marks and a byte-order mark: the library's fixes that 5.x leaves opt-in.
_OPTIONS = mt940.Options(
    reversal_sign=True,
    merge_keeps_values=True,
    unbounded_details=True,
    case_insensitive_marks=True,
    strip_bom=True,
)
_BLOCK_START = re.compile(r"(?m)^(?=:20:)")
_STATEMENT_LINE = re.compile(r"(?m)^:61:")
# SEPA-style :86: details: "/EREF/ET-1234/NAME/Amina El Idrissi/REMI/Passport fee".
_SLASH_FIELD = re.compile(r"/(?P<key>[A-Z]{2,4})/(?P<value>.*?)(?=/[A-Z]{2,4}/|$)", re.DOTALL)
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}
_OPENING = ("final_opening_balance", "opening_balance", "intermediate_opening_balance")
_CLOSING = ("final_closing_balance", "closing_balance", "intermediate_closing_balance")


def read_mt940(source: ImportSource, encoding: str = "utf-8") -> Iterator[StatementLine | Statement]:
    """Each statement's lines, then the statement; problems in any statement reject the whole file."""
    errors = ErrorList(source_name(source))
    with open_binary(source) as file:
        data = file.read()
    try:
        text = data.decode(encoding).removeprefix("\ufeff").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise errors.reject(
            line, None, f"bytes {data[error.start : error.end].hex(' ')} are not {encoding}"
        ) from None
    starts = [match.start() for match in _BLOCK_START.finditer(text)]
    if not starts:
        raise errors.reject(None, None, "contains no MT940 statement (no :20: tag at the start of a line)")
    for index, (start, end) in enumerate(zip(starts, [*starts[1:], len(text)], strict=True), start=1):
        yield from _read_block(text[start:end], index, text.count("\n", 0, start) + 1, errors)
    errors.raise_if_any()


def _read_block(
    block: str, index: int, first_line: int, errors: ErrorList
) -> Iterator[StatementLine | Statement]:
    try:
        transactions = mt940.models.Transactions(options=_OPTIONS)
        transactions.parse(block)
    except RuntimeError as error:
        # The library reports the tag value it could not read; find it to name the line.
        value = error.args[2] if len(error.args) > 2 and isinstance(error.args[2], str) else ""
        offset = block.find(value[:30]) if value else -1
        line = first_line + block.count("\n", 0, offset) if offset >= 0 else first_line
        errors.add(
            line, _tag_at(block, offset), f"cannot be read: {value.splitlines()[0] if value else error}"
        )
        return
    except (decimal.InvalidOperation, ValueError, KeyError) as error:
        errors.add(first_line, None, f"the statement starting here cannot be read ({error!r})")
        return
    data = transactions.data
    currency = transactions.currency
    if currency is None:
        errors.add(first_line, ":60F:", "the statement has no opening balance, so no currency")
        return
    line_numbers = [first_line + block.count("\n", 0, m.start()) for m in _STATEMENT_LINE.finditer(block)]
    for position, transaction in enumerate(transactions):
        line = line_numbers[position] if position < len(line_numbers) else first_line
        statement_line = _line(transaction.data, currency, index, line, errors)
        if statement_line is not None and not errors:
            yield statement_line
    yield Statement(
        index=index,
        line_number=first_line,
        statement_id=_clean(data.get("transaction_reference")),
        account=_clean(data.get("account_identification")),
        sequence=_sequence(data, first_line, errors),
        opening=_balance(data, _OPENING, first_line, ":60F:", errors),
        closing=_balance(data, _CLOSING, first_line, ":62F:", errors),
    )


def _tag_at(block: str, offset: int) -> str | None:
    if offset < 0:
        return None
    found = re.findall(r"(?m)^(:[0-9]{2}[A-Z]?:)", block[: offset + 1])
    return found[-1] if found else None


def _clean(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _sequence(data: dict[str, Any], line: int, errors: ErrorList) -> SequenceNumber | None:
    number = _clean(data.get("statement_number"))
    if number is None:
        return None
    page = _clean(data.get("sequence_number"))
    if not number.isdigit() or (page is not None and not page.isdigit()):
        errors.add(line, ":28C:", f"{number}/{page} is not a statement number/sequence")
        return None
    return SequenceNumber(int(number), int(page) if page is not None else None)


def _balance(
    data: dict[str, Any], keys: tuple[str, ...], line: int, tag: str, errors: ErrorList
) -> Balance | None:
    found = next((data[key] for key in keys if key in data), None)
    if found is None:
        return None
    amount = found.amount
    try:
        money = decimal_money(amount.amount, str(amount.currency))
    except ValueFormatError as error:
        errors.add(line, tag, str(error))
        return None
    return Balance(money, date(found.date.year, found.date.month, found.date.day))


def _line(
    data: dict[str, Any], currency: str, index: int, line: int, errors: ErrorList
) -> StatementLine | None:
    amount = data.get("amount")
    if amount is None:
        errors.add(line, ":61:", "has no amount")
        return None
    try:
        money = decimal_money(amount.amount, str(amount.currency or currency))
    except ValueFormatError as error:
        errors.add(line, ":61:", str(error))
        return None
    value_date = data["date"]
    entry_date = data.get("entry_date") or value_date
    details = data.get("transaction_details")
    fields = _slash_fields(details)
    customer_reference = _clean(data.get("customer_reference"))
    if customer_reference in _NO_REFERENCE:
        customer_reference = None
    reference = _clean(data.get("end_to_end_reference")) or fields.get("EREF") or customer_reference
    raw = [
        (label, text)
        for label, key in (
            ("status", "status"),
            ("transaction type", "id"),
            ("customer reference", "customer_reference"),
            ("bank reference", "bank_reference"),
            ("supplementary details", "extra_details"),
            (":86:", "transaction_details"),
            ("purpose", "purpose"),
        )
        if (text := _clean(data.get(key))) is not None
    ]
    return StatementLine(
        source=SourceKind.MT940,
        line_number=line,
        booking_date=date(entry_date.year, entry_date.month, entry_date.day),
        value_date=date(value_date.year, value_date.month, value_date.day),
        amount=money,
        reference=reference,
        counterparty=_clean(data.get("applicant_name")) or fields.get("NAME"),
        description=_clean(data.get("purpose"))
        or fields.get("REMI")
        or (_clean(details) if not fields else None),
        entry_reference=_clean(data.get("bank_reference")),
        reversal=str(data.get("status") or "").upper().startswith("R"),
        statement_index=index,
        raw=tuple(raw),
    )


def _slash_fields(details: object) -> dict[str, str]:
    if not isinstance(details, str) or not details.startswith("/"):
        return {}
    flat = details.replace("\n", "")
    return {m["key"]: m["value"].strip() for m in _SLASH_FIELD.finditer(flat) if m["value"].strip()}
