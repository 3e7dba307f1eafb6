"""ISO 20022 camt.053 bank statements, streamed with lxml iterparse so memory stays flat at any length."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from lxml import etree

from ledger.money import Money
from reconciliation.importers.errors import ErrorList
from reconciliation.importers.sources import ImportSource, open_binary, source_name
from reconciliation.importers.values import ValueFormatError, exact_money, parse_currency
from reconciliation.lines import Balance, BatchDetail, SequenceNumber, SourceKind, Statement, StatementLine

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(?P<version>\d{2})")
# Tested with .02 and .08; the elements read here keep their names and places from .02 to .13.
SUPPORTED_VERSIONS = range(2, 14)
_AMOUNT = re.compile(r"(?P<units>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_OPENING = ("OPBD", "PRCD")  # opening booked; else the previous statement's closing booked
_CLOSING = "CLBD"
_NOT_PROVIDED = "NOTPROVIDED"
_CODES = re.compile(r"(?:[A-Z0-9]{4})+")
# Parts of an entry the importer never reads (addresses, agents, charges, ...): not walked at all.
_SKIPPED = frozenset(
    {
        "PstlAdr", "CtctDtls", "RltdAgts", "Chrgs", "Avlbty", "Tax", "RltdDts", "RltdPric", "RltdQties",
        "Intrst", "CardTx", "CshDpst", "TechInptChanl", "SplmtryData", "RtrInf", "CorpActn", "SfkpgAcct",
        "FinInstrmId", "RltdAcct", "DbtrAcct", "CdtrAcct", "Purp",
    }
)  # fmt: skip
_DETAIL_AMOUNTS = ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt")
# Entry fields kept for the auditor's report, as (label, path).
_RAW_FIELDS = (
    ("NtryRef", "NtryRef"),
    ("AcctSvcrRef", "AcctSvcrRef"),
    ("Sts", "Sts/Cd"),
    ("Sts", "Sts"),
    ("BkTxCd", "BkTxCd"),
    ("Btch/NbOfTxs", "NtryDtls/Btch/NbOfTxs"),
    ("AddtlNtryInf", "AddtlNtryInf"),
)


class _Paths:
    """Qualified element paths for one namespace, built once: lxml caches the compiled paths by string."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        found = self._cache.get(path)
        if found is None:
            found = self._cache[path] = "/".join(f"{{{self.namespace}}}{step}" for step in path.split("/"))
        return found


@dataclass
class _StatementState:
    index: int
    element: etree._Element
    header_read: bool = False
    statement_id: str | None = None
    account: str | None = None
    sequence: SequenceNumber | None = None
    legal_sequence: int | None = None
    declared_entries: int | None = None
    balances: dict[str, Balance] = field(default_factory=dict)
    unbooked: int = 0


def read_camt053(source: ImportSource) -> Iterator[StatementLine | Statement]:
    """Stream a camt.053 file: each statement's booked entries as lines, then the statement itself.

    Malformed entries are collected and raised together (ImportRejectedError) at the end; once one is
    found no more lines are yielded. Entries that are not booked (PDNG, INFO) are counted, not yielded.
    """
    errors = ErrorList(source_name(source))
    with open_binary(source) as file:
        yield from _Reader(errors).read(file)
    errors.raise_if_any()


class _Reader:
    def __init__(self, errors: ErrorList) -> None:
        self.errors = errors
        self.q = _Paths("")
        self.cut = 0
        # A statement repeats the same few days and currencies on every entry: read each one once.
        self.dates: dict[str, date] = {}
        self.currencies: dict[str, str] = {}
        self.entries = 0
        self.statements = 0

    def read(self, file: object) -> Iterator[StatementLine | Statement]:
        events = etree.iterparse(
            file,
            events=("end",),
            tag=("{*}Stmt", "{*}Bal", "{*}Ntry"),
            # Statements come from outside: no DTDs, entities or network fetches (XXE).
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            remove_comments=True,
            # Pretty-printed statements indent every element; no text nodes for the indentation.
            remove_blank_text=True,
        )
        try:
            yield from self._events(events)
        except etree.XMLSyntaxError as error:
            raise self.errors.reject(error.lineno, None, f"is not well-formed XML ({error.msg})") from None
        if not self.statements:
            raise self.errors.reject(None, None, "contains no camt.053 statement (<Stmt>)")

    def _events(self, events: Iterator[tuple[str, etree._Element]]) -> Iterator[StatementLine | Statement]:
        # End events only, for the statement-level elements: the fewer events, the faster the stream.
        statement: _StatementState | None = None
        for _, element in events:
            if not self.cut:
                self._check_namespace(element)
            name = element.tag[self.cut :]
            stmt = element if name == "Stmt" else element.getparent()
            if statement is None or statement.element is not stmt:
                if stmt is None or stmt.tag[self.cut :] != "Stmt":
                    continue
                self.statements += 1
                statement = _StatementState(self.statements, stmt)
            if name == "Ntry":
                line = self._entry(statement, element)
                if line is not None and not self.errors:
                    yield line
                _forget(element)
            elif name == "Bal":
                self._balance(statement, element)
            elif name == "Stmt":
                yield self._statement(statement)
                _forget(element)
                statement = None

    def _check_namespace(self, element: etree._Element) -> None:
        namespace = etree.QName(element).namespace or ""
        match = _NAMESPACE.fullmatch(namespace)
        if match is None or int(match["version"]) not in SUPPORTED_VERSIONS:
            root = element.getroottree().getroot()
            raise self.errors.reject(
                _line_of(root), "Document", f"namespace {namespace!r} is not camt.053.001.02 to .13"
            )
        self.q = _Paths(namespace)
        self.cut = len(namespace) + 2  # "{namespace}Name"

    def _text(self, element: etree._Element, path: str) -> str | None:
        text = element.findtext(self.q(path))
        if text is None:
            return None
        return text.strip() or None

    def _header(self, statement: _StatementState) -> None:
        # Called once the header's elements are complete (at the first entry or the statement's end),
        # before earlier siblings are dropped to keep memory flat.
        if statement.header_read:
            return
        statement.header_read = True
        stmt = statement.element
        statement.statement_id = self._text(stmt, "Id")
        statement.account = self._text(stmt, "Acct/Id/IBAN") or self._text(stmt, "Acct/Id/Othr/Id")
        electronic = self._number(stmt, "ElctrncSeqNb")
        statement.legal_sequence = self._number(stmt, "LglSeqNb")
        number = electronic if electronic is not None else statement.legal_sequence
        statement.sequence = SequenceNumber(number) if number is not None else None
        statement.declared_entries = self._number(stmt, "TxsSummry/TtlNtries/NbOfNtries")

    def _number(self, element: etree._Element, path: str) -> int | None:
        text = self._text(element, path)
        if text is None:
            return None
        if not text.isdigit():
            self.errors.add(_line_of(element), path, f"{text!r} is not a whole number")
            return None
        return int(text)

    def _statement(self, state: _StatementState) -> Statement:
        self._header(state)
        opening = next((state.balances[code] for code in _OPENING if code in state.balances), None)
        return Statement(
            index=state.index,
            line_number=_line_of(state.element),
            statement_id=state.statement_id,
            account=state.account,
            sequence=state.sequence,
            legal_sequence=state.legal_sequence,
            opening=opening,
            closing=state.balances.get(_CLOSING),
            unbooked_entries=state.unbooked,
            declared_entry_count=state.declared_entries,
        )

    def _balance(self, statement: _StatementState, element: etree._Element) -> None:
        fields, _ = self._flatten(element)
        code = fields.get("Tp/CdOrPrtry/Cd") or fields.get("Tp/CdOrPrtry/Prtry")
        if code not in (*_OPENING, _CLOSING):
            return
        problems: list[tuple[str, str]] = []
        amount = self._amount(fields, "Amt", problems)
        booked = self._date(fields, "Dt", problems)
        sign = fields.get("CdtDbtInd")
        if sign not in ("CRDT", "DBIT"):
            problems.append(("CdtDbtInd", f"{sign!r} is neither CRDT nor DBIT"))
        line = _line_of(element)
        for column, problem in problems:
            self.errors.add(line, f"Bal/{column}", problem)
        if amount is not None and booked is not None and not problems:
            if code in statement.balances:
                self.errors.add(line, "Bal/Tp", f"a second {code} balance in the same statement")
            statement.balances[code] = Balance(-amount if sign == "DBIT" else amount, booked)

    def _flatten(self, element: etree._Element) -> tuple[dict[str, str], list[dict[str, str]]]:
        """The element's leaves by relative path ("Amt", "Amt@Ccy", "BookgDt/Dt"), each TxDtls apart.

        One walk over the children instead of a path search per field: a tenth of the cost at 50,000
        entries. A repeated leaf (RmtInf/Ustrd) keeps its texts joined by a space.
        """
        fields: dict[str, str] = {}
        details: list[dict[str, str]] = []
        self._walk(element, "", fields, details)
        return fields, details

    def _walk(
        self, element: etree._Element, prefix: str, fields: dict[str, str], details: list[dict[str, str]]
    ) -> None:
        cut = self.cut
        for child in element:
            tag = child.tag
            if tag.__class__ is not str:
                continue  # a processing instruction or an unresolved entity
            name = tag[cut:]
            if name in _SKIPPED:
                continue
            path = prefix + name
            if path == "NtryDtls/TxDtls":
                detail: dict[str, str] = {}
                self._walk(child, "", detail, details)
                details.append(detail)
            elif path == "BkTxCd":
                # Only shown in the report: its text in one C call, not a Python walk of five elements.
                fields[path] = _bank_transaction_code(
                    etree.tostring(child, method="text", encoding="unicode")
                )
            elif len(child):
                if path == "NtryDtls/Btch":
                    fields[path] = ""
                self._walk(child, path + "/", fields, details)
            else:
                text = (child.text or "").strip()
                if path in fields:
                    if text:
                        fields[path] = f"{fields[path]} {text}".lstrip()
                else:
                    fields[path] = text
                if name == "Amt":
                    fields[path + "@Ccy"] = child.get("Ccy") or ""

    def _amount(self, fields: dict[str, str], path: str, problems: list[tuple[str, str]]) -> Money | None:
        text = fields.get(path)
        if text is None:
            problems.append((path, "is missing"))
            return None
        match = _AMOUNT.fullmatch(text)
        if match is None:
            problems.append((path, f"{text!r} is not an amount such as 1234.50"))
            return None
        code = fields.get(path + "@Ccy", "")
        currency = self.currencies.get(code)
        if currency is None:
            try:
                currency = self.currencies[code] = parse_currency(code)
            except ValueFormatError as error:
                problems.append((f"{path}/@Ccy", str(error)))
                return None
        try:
            return exact_money(match["units"], match["fraction"] or "", currency, text)
        except ValueFormatError as error:
            problems.append((path, str(error)))
            return None

    def _date(self, fields: dict[str, str], path: str, problems: list[tuple[str, str]]) -> date | None:
        # Dt holds an ISODate, DtTm an ISODateTime: the date the bank wrote, in its own time zone.
        text = fields.get(f"{path}/Dt")
        column = f"{path}/Dt"
        if text is None and f"{path}/DtTm" in fields:
            text, column = fields[f"{path}/DtTm"], f"{path}/DtTm"
        if text is None:
            problems.append((path, "is missing"))
            return None
        # Keyed on the date part, so DtTm values with their seconds do not grow the cache per entry.
        key = text[:10]
        day = self.dates.get(key)
        if day is None:
            try:
                day = date.fromisoformat(key)
            except ValueError:
                day = None
        shape_ok = len(text) == 10 if column.endswith("/Dt") else text[10:11] == "T"
        if day is None or not shape_ok:
            problems.append((column, f"{text!r} is not an ISO date such as 2026-11-22"))
            return None
        self.dates[key] = day
        return day

    def _entry(self, statement: _StatementState, entry: etree._Element) -> StatementLine | None:
        self._header(statement)
        self.entries += 1
        fields, raw_details = self._flatten(entry)
        status = fields.get("Sts/Cd") or fields.get("Sts")
        if status and status != "BOOK":
            statement.unbooked += 1
            return None
        problems: list[tuple[str, str]] = []
        amount = self._amount(fields, "Amt", problems)
        sign = fields.get("CdtDbtInd")
        if sign not in ("CRDT", "DBIT"):
            problems.append(("CdtDbtInd", f"{sign!r} is neither CRDT nor DBIT"))
        booked = self._date(fields, "BookgDt", problems)
        value_date = None
        if "ValDt/Dt" in fields or "ValDt/DtTm" in fields:
            value_date = self._date(fields, "ValDt", problems)
        details = tuple(self._detail(detail, sign, problems) for detail in raw_details)
        line = _line_of(entry)
        for column, problem in problems:
            self.errors.add(line, f"Ntry/{column}", problem)
        if problems or amount is None or booked is None:
            return None
        entry_reference = fields.get("AcctSvcrRef") or fields.get("NtryRef") or None
        note = fields.get("AddtlNtryInf") or None
        batch_id = fields.get("NtryDtls/Btch/PmtInfId") or fields.get("NtryDtls/Btch/MsgId")
        is_batch = len(details) > 1 or "NtryDtls/Btch" in fields
        single = details[0] if details and not is_batch else None
        return StatementLine(
            source=SourceKind.CAMT053,
            line_number=line,
            booking_date=booked,
            value_date=value_date,
            amount=-amount if sign == "DBIT" else amount,
            reference=single.reference if single else None,
            counterparty=single.counterparty if single else None,
            description=(single.remittance if single else None) or note,
            entry_reference=entry_reference,
            reversal=fields.get("RvslInd") in ("true", "1"),
            batch_reference=(batch_id or entry_reference) if is_batch else None,
            batch_details=details if is_batch else (),
            statement_index=statement.index,
            entry_index=self.entries,
            raw=tuple((label, fields[path]) for label, path in _RAW_FIELDS if fields.get(path)),
        )

    def _detail(
        self, fields: dict[str, str], entry_sign: str | None, problems: list[tuple[str, str]]
    ) -> BatchDetail:
        # .08 puts Amt and CdtDbtInd on the detail; .02 only has AmtDtls/TxAmt (or InstdAmt).
        path = "Amt" if "Amt" in fields else next((p for p in _DETAIL_AMOUNTS if p in fields), None)
        amount = None
        if path is not None:
            found: list[tuple[str, str]] = []
            amount = self._amount(fields, path, found)
            problems.extend((f"NtryDtls/TxDtls/{column}", problem) for column, problem in found)
        sign = fields.get("CdtDbtInd") or entry_sign
        if amount is not None and sign == "DBIT":
            amount = -amount
        end_to_end = fields.get("Refs/EndToEndId") or None
        if end_to_end == _NOT_PROVIDED:
            end_to_end = None
        party = "Cdtr" if sign == "DBIT" else "Dbtr"
        return BatchDetail(
            amount=amount,
            reference=fields.get("RmtInf/Strd/CdtrRefInf/Ref")
            or end_to_end
            or fields.get("Refs/TxId")
            or None,
            end_to_end_id=end_to_end,
            counterparty=fields.get(f"RltdPties/{party}/Nm")
            or fields.get(f"RltdPties/{party}/Pty/Nm")
            or None,
            remittance=fields.get("RmtInf/Ustrd") or fields.get("AddtlTxInf") or None,
        )


def _bank_transaction_code(text: str) -> str:
    """`PMNTRCDTESCT` (domain, family, sub-family codes run together) as `PMNT/RCDT/ESCT`."""
    text = "".join(text.split())
    if _CODES.fullmatch(text):
        return "/".join(text[i : i + 4] for i in range(0, len(text), 4))
    return text


def _line_of(element: etree._Element) -> int:
    # lxml-stubs leaves `sourceline` untyped; lxml gives the line of the start tag, or None for built trees.
    line: object = element.sourceline
    return line if isinstance(line, int) else 0


def _forget(element: etree._Element) -> None:
    """Free a handled element and the siblings before it, so the tree never holds more than one entry."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
