"""The auditor's PDF summary of a run: inputs, what matched how, the balance check, and the exceptions.

Written with reportlab in invariant mode (no creation date, a fixed document id), from the same data as
the JSON report, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.orm import Session

from reconciliation.reports import report_data

# The summary lists this many exceptions; the JSON and CSV reports list them all.
SHOWN_EXCEPTIONS = 200
_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _latin(value: Any) -> str:
    # The built-in fonts cover Latin-1; other scripts (Arabic names) are left to the JSON and CSV reports.
    return str(value).encode("latin-1", "replace").decode("latin-1")


def _text(value: Any) -> str:
    """For a Paragraph, which reads markup."""
    return escape(_latin(value))


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    table = Table([[_latin(cell) for cell in row] for row in rows], colWidths=widths, repeatRows=1)
    table.setStyle(_GRID)
    return table


def report_pdf(session: Session, run_id: int) -> bytes:
    data = report_data(session, run_id)
    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph(_text(f"Reconciliation of {data['business_day']} ({data['timezone']})"), styles["Title"]),
        Paragraph(
            _text(
                f"Currencies {', '.join(data['scope'])}; engine {data['engine']}; "
                f"report format {data['format']}"
            ),
            styles["Normal"],
        ),
        Spacer(1, 4 * mm),
        Paragraph("Inputs", styles["Heading2"]),
    ]
    ledger = data["inputs"]["ledger"]
    inputs = [["input", "what", "SHA-256"]]
    inputs.append(
        [
            "ledger",
            f"{ledger['entries_of_the_day']} entries of the day, {ledger['entries']} searched",
            ledger["sha256"],
        ]
    )
    inputs.extend(
        [
            f"import {item['id']}",
            f"{item['file_name']} ({item['profile'] or item['source']}, {item['lines']} lines)",
            item["sha256"],
        ]
        for item in data["inputs"]["imports"]
    )
    story += [_table(inputs, [30 * mm, 120 * mm, 120 * mm]), Spacer(1, 4 * mm)]

    counts = data["counts"]
    story.append(Paragraph("Matched", styles["Heading2"]))
    matched = [["pass:rule", "matches", "ledger entries", "export lines"]]
    for name, figures in sorted(counts["matched"].items()):
        matched.append([name, figures["matches"], figures["ledger"], figures["export"]])
    matched.append(
        ["ledger entries of the day / export lines", "", counts["ledger_items"], counts["export_items"]]
    )
    story += [_table(matched), Spacer(1, 4 * mm)]

    story.append(Paragraph("Exceptions by category", styles["Heading2"]))
    by_category = [["category", "count"]] + [[k, v] for k, v in sorted(counts["exceptions"].items())]
    if len(by_category) == 1:
        by_category.append(["none", 0])
    story += [_table(by_category), Spacer(1, 4 * mm)]

    story.append(Paragraph("Balance check per treasury account", styles["Heading2"]))
    balances = [
        ["account", "bank", "book", "difference", "in exceptions (bank / book)", "unexplained", "status"]
    ]
    balances.extend(
        [
            check["account"],
            check["bank_movement"]["amount"],
            check["book_movement"]["amount"],
            check["difference"]["amount"],
            f"{check['bank_in_exceptions']['amount']} / {check['book_in_exceptions']['amount']}",
            f"{check['bank_unexplained']['amount']} / {check['book_unexplained']['amount']}",
            check["status"],
        ]
        for check in data["balances"]
    )
    story += [_table(balances), Spacer(1, 4 * mm)]

    exceptions = data["exceptions"]
    story.append(Paragraph(f"Exceptions ({len(exceptions)})", styles["Heading2"]))
    listed = [["#", "category", "reference", "ledger", "export", "what"]]
    for exception in exceptions[:SHOWN_EXCEPTIONS]:
        ledger_side = exception["ledger"] or {}
        export_side = exception["export"] or {}
        listed.append(
            [
                exception["n"],
                exception["category"],
                _latin(exception["reference"]),
                f"{ledger_side.get('amount', '')} {ledger_side.get('currency', '')}".strip(),
                f"{export_side.get('amount', '')} {exception['currency'] if export_side else ''}".strip(),
                Paragraph(_text(exception["message"]), styles["BodyText"]),
            ]
        )
    if len(exceptions) > SHOWN_EXCEPTIONS:
        listed.append(
            [
                "",
                "",
                "",
                "",
                "",
                f"... and {len(exceptions) - SHOWN_EXCEPTIONS} more in the JSON and CSV reports",
            ]
        )
    table = Table(listed, colWidths=[12 * mm, 32 * mm, 45 * mm, 30 * mm, 30 * mm, 120 * mm], repeatRows=1)
    table.setStyle(_GRID)
    story.append(table)

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Reconciliation {data['business_day']}",
        author="eTimbre ledger",
        invariant=1,
    )
    document.build(story)
    return buffer.getvalue()
