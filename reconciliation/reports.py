"""A run's reports: JSON (summary and every exception) and CSV (every match member and every exception).

Reports hold no wall-clock time, no run id and no database-assigned exception id, and list everything in
a fixed order: the same inputs give a byte-identical report. Amounts are decimal strings with exactly the
currency's decimals, next to integer minor units.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger.db.models_reconciliation import ReconException, ReconImport, ReconImportLine, ReconRun
from ledger.money import Money
from reconciliation.runs import get_run

REPORT_FORMAT = 1
CSV_COLUMNS = (
    "row",
    "kind",
    "pass",
    "rule",
    "category",
    "match",
    "member",
    "currency",
    "entry_id",
    "payment_reference",
    "import_id",
    "line_key",
    "line_number",
    "line_reference",
    "ledger_amount",
    "export_amount",
    "rounding_entry_id",
    "message",
)


def _amount(minor: int | None, currency: str) -> str:
    return "" if minor is None else Money(minor, currency).to_str()


def _line_key(sha256: str | None, line_number: int | None, detail_no: int | None) -> str:
    if sha256 is None or line_number is None:
        return ""
    return f"{sha256[:16]}:{line_number}" + (f":{detail_no}" if detail_no else "")


def _uuid(value: Any) -> str:
    if value is None:
        return ""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=bytes(value)))


def _balance(check: dict[str, Any]) -> dict[str, Any]:
    currency = str(check["currency"])
    shown = dict(check)
    for key, value in check.items():
        if isinstance(value, int) and not isinstance(value, bool):
            shown[key] = {"amount": Money(value, currency).to_str(), "minor": value}
    shown["statements"] = [
        {
            **statement,
            "opening": _amount(statement["opening"], currency),
            "closing": _amount(statement["closing"], currency),
        }
        for statement in check.get("statements", [])
    ]
    return shown


def _exceptions(session: Session, run_id: int) -> Iterator[dict[str, Any]]:
    rows = session.execute(
        select(ReconException, ReconImport.sha256, ReconImportLine.line_number, ReconImportLine.detail_no)
        .outerjoin(ReconImport, ReconImport.id == ReconException.import_id)
        .outerjoin(
            ReconImportLine,
            (ReconImportLine.import_id == ReconException.import_id)
            & (ReconImportLine.item_no == ReconException.item_no),
        )
        .where(ReconException.run_id == run_id)
        .order_by(ReconException.id),
        execution_options={"yield_per": 2000},
    )
    for number, (exception, sha256, line_number, detail_no) in enumerate(rows, start=1):
        currency = exception.currency
        ledger_currency = str(exception.detail.get("ledger_currency", currency))
        detail = {
            k: v for k, v in exception.detail.items() if k not in ("message", "ledger_currency", "check")
        }
        yield {
            "n": number,
            "category": exception.category,
            "currency": currency,
            "reference": exception.reference,
            "ledger": None
            if exception.entry_id is None and exception.ledger_amount is None
            else {
                "entry_id": _uuid(exception.entry_id) or None,
                "amount": _amount(exception.ledger_amount, ledger_currency),
                "currency": ledger_currency,
                "minor": exception.ledger_amount,
            },
            "export": None
            if exception.import_id is None and exception.export_amount is None
            else {
                "import_id": exception.import_id,
                "item": exception.item_no,
                "line": line_number,
                "line_key": _line_key(sha256, line_number, detail_no) or None,
                "amount": _amount(exception.export_amount, currency),
                "minor": exception.export_amount,
            },
            "holds": {
                "role": exception.cash_role,
                "provider": exception.provider,
                "consulate": exception.consulate,
            },
            "message": exception.detail.get("message", ""),
            **({"detail": detail} if detail else {}),
        }


def report_data(session: Session, run_id: int) -> dict[str, Any]:
    run = get_run(session, run_id)
    return {
        "report": "etimbre reconciliation",
        "format": REPORT_FORMAT,
        "engine": run.engine_version,
        "business_day": run.business_day,
        "timezone": run.timezone,
        "scope": run.scope.split(","),
        "parameters": run.parameters,
        "inputs": run.inputs,
        "counts": run.counts,
        "balances": [_balance(check) for check in run.balances],
        "exceptions": list(_exceptions(session, run_id)),
    }


def report_json(session: Session, run_id: int) -> bytes:
    """The run's report as one JSON document (sorted keys, two-space indent, UTF-8, final newline)."""
    text_ = json.dumps(report_data(session, run_id), ensure_ascii=False, sort_keys=True, indent=2)
    return (text_ + "\n").encode()


def _csv_line(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def report_csv(session: Session, run_id: int) -> Iterator[bytes]:
    """Every match member, then every exception, one CSV row each (UTF-8, CRLF), streamed."""
    run: ReconRun = get_run(session, run_id)
    yield _csv_line(list(CSV_COLUMNS))
    matches = session.execute(
        text("""
            SELECT m.pass, m.rule, m.match_no, m.member_no, m.currency, m.entry_id, e.payment_ref,
                   e.settlement_ref, m.import_id, i.sha256, l.line_number, l.detail_no, l.reference,
                   l.batch_reference, m.ledger_amount, m.export_amount, m.rounding_entry_id
              FROM recon_matches m
              LEFT JOIN entries e ON e.id = m.entry_id
              LEFT JOIN recon_imports i ON i.id = m.import_id
              LEFT JOIN recon_import_lines l ON l.import_id = m.import_id AND l.item_no = m.item_no
             WHERE m.run_id = :run
             ORDER BY m.match_no, m.member_no
        """),
        {"run": run.id},
        execution_options={"yield_per": 5000},
    )
    row = 0
    for (
        pass_,
        rule,
        match_no,
        member_no,
        currency,
        entry_id,
        payment_ref,
        settlement_ref,
        import_id,
        sha256,
        line_number,
        detail_no,
        reference,
        batch_reference,
        ledger_amount,
        export_amount,
        rounding,
    ) in matches:
        row += 1
        yield _csv_line(
            [
                row,
                "match",
                pass_,
                rule,
                "",
                match_no,
                member_no,
                currency,
                _uuid(entry_id),
                payment_ref or settlement_ref or "",
                import_id if import_id is not None else "",
                _line_key(sha256, line_number, detail_no),
                line_number if line_number is not None else "",
                reference or batch_reference or "",
                _amount(ledger_amount, currency),
                _amount(export_amount, currency),
                _uuid(rounding),
                "",
            ]
        )
    for exception in _exceptions(session, run.id):
        row += 1
        ledger, export = exception["ledger"] or {}, exception["export"] or {}
        yield _csv_line(
            [
                row,
                "exception",
                "",
                "",
                exception["category"],
                "",
                "",
                exception["currency"],
                ledger.get("entry_id") or "",
                exception["reference"],
                export.get("import_id") if export.get("import_id") is not None else "",
                export.get("line_key") or "",
                export.get("line") if export.get("line") is not None else "",
                "",
                ledger.get("amount", ""),
                export.get("amount", ""),
                "",
                exception["message"],
            ]
        )
