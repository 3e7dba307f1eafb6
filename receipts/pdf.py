"""The PDF receipt: French and Arabic, the stamp's QR drawn as vectors, set in the embedded Amiri font."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import arabic_reshaper
import fontpkg_amiri
from babel.dates import format_date, format_datetime
from bidi import get_display
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ledger.money import Money
from receipts.claims import ClaimsError
from receipts.codec import PREFIX, unverified_number
from receipts.numbers import StampNumber
from receipts.qr import QUIET_ZONE, dark_runs, modules
from receipts.reasons import StampRejected

REGULAR = "Amiri"
BOLD = "Amiri-Bold"
_FONT_FILES = {REGULAR: "Amiri-Regular.ttf", BOLD: "Amiri-Bold.ttf"}
QR_SIZE = 45 * mm  # with its quiet zone; the symbol itself is about 39 mm wide (>= 30 mm asked)
_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 18 * mm
_COLUMN = (_PAGE_WIDTH - 2 * _MARGIN - 10 * mm) / 2
_MIN_FONT_SIZE = 7.0
# Bidi marks steer the reordering; once get_display has reordered a line they have no job left.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")


class ReceiptError(ValueError):
    """Receipt data that cannot be printed; the message names the field."""


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """Everything printed on one stamp's receipt; the service fills it from the ledger and the config."""

    stamp_text: str  # the "ET1:..." QR content
    number: StampNumber
    consulate_fr: str
    consulate_ar: str
    service_fr: str
    service_ar: str
    amount: Money
    issued_at: datetime
    expires_at: datetime
    payment_reference: str
    status_url: str  # where anyone can check the stamp's status
    timezone: str = "UTC"  # the consulate's IANA zone: dates are printed in its local time
    locale_fr: str = "fr_FR"
    locale_ar: str = "ar_MA"
    authority_fr: str = ""  # e.g. "Royaume du Maroc - Ministère des Affaires étrangères"
    authority_ar: str = ""

    def __post_init__(self) -> None:
        if not self.stamp_text.startswith(PREFIX):
            raise ReceiptError(f"stamp_text must be an {PREFIX} stamp")
        try:
            carried = unverified_number(self.stamp_text)
        except (StampRejected, ClaimsError, ValueError) as exc:
            raise ReceiptError(f"stamp_text is not a readable stamp: {exc}") from exc
        if carried != self.number:
            # The printed digits and the QR must lead to the same ledger row.
            raise ReceiptError(f"number {self.number} is not the stamp's own number {carried}")
        for name in (
            "consulate_fr",
            "consulate_ar",
            "service_fr",
            "service_ar",
            "payment_reference",
            "status_url",
        ):
            if not str(getattr(self, name)).strip():
                raise ReceiptError(f"{name} must not be empty")
        for name in ("issued_at", "expires_at"):
            if getattr(self, name).tzinfo is None:
                raise ReceiptError(f"{name} must be timezone-aware")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ReceiptError(f"timezone {self.timezone!r} is not an IANA time zone") from exc


@dataclass(frozen=True, slots=True)
class TextRun:
    """One line as drawn: `text` is in visual order (Arabic already shaped), anchored left or right."""

    text: str
    font: str
    size: float
    x: float
    y: float
    align: str  # "left", "right" or "center"


@dataclass(frozen=True, slots=True)
class Page:
    runs: tuple[TextRun, ...]
    qr_text: str
    qr_x: float
    qr_y: float


@cache
def register_fonts() -> tuple[str, ...]:
    """Register Amiri (shipped by the fontpkg-amiri package, embedded in every PDF) once per process."""
    for name, file in _FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(fontpkg_amiri.ROOT / "files" / file)))
    return tuple(_FONT_FILES)


def font_characters(font: str) -> frozenset[int]:
    """Code points the embedded font has a glyph for (its cmap)."""
    register_fonts()
    face = pdfmetrics.getFont(font).face
    return frozenset(face.charToGlyph)


def arabic(text: str) -> str:
    """Logical Arabic -> shaped presentation forms in visual order, ready for a font without shaping.

    Text without Arabic letters (a stamp number, a URL, a reference) stays left-to-right as typed.
    """
    if not _ARABIC_LETTER.search(text):
        return _latin(text)
    return _BIDI_CONTROLS.sub("", get_display(arabic_reshaper.reshape(text), base_dir="R"))


def _latin(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)


def _fit(text: str, font: str, size: float, width: float) -> float:
    while size > _MIN_FONT_SIZE and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


class _Layout:
    def __init__(self) -> None:
        self.runs: list[TextRun] = []

    def add(self, text: str, *, font: str, size: float, x: float, y: float, align: str, width: float) -> None:
        self.runs.append(TextRun(text, font, _fit(text, font, size, width), x, y, align))

    def pair(self, y: float, french: str, arabic_text: str, *, font: str = REGULAR, size: float = 11) -> None:
        self.add(_latin(french), font=font, size=size, x=_MARGIN, y=y, align="left", width=_COLUMN)
        self.add(
            arabic(arabic_text),
            font=font,
            size=size,
            x=_PAGE_WIDTH - _MARGIN,
            y=y,
            align="right",
            width=_COLUMN,
        )


def layout(data: ReceiptData) -> Page:
    """Where every line goes; pure, so that tests can read exactly what will be drawn."""
    register_fonts()  # widths are measured with the real font
    zone = ZoneInfo(data.timezone)
    out = _Layout()
    y = _PAGE_HEIGHT - _MARGIN - 4 * mm
    if data.authority_fr or data.authority_ar:
        out.pair(y, data.authority_fr, data.authority_ar, font=BOLD, size=12)
        y -= 8 * mm
    out.pair(
        y, "Reçu de paiement — timbre électronique", "وصل الأداء — الطابع الإلكتروني", font=BOLD, size=15
    )
    y -= 6 * mm
    qr_y = y - QR_SIZE
    qr_x = (_PAGE_WIDTH - QR_SIZE) / 2
    y = qr_y - 7 * mm
    printed = data.number.printed()
    out.add(
        printed, font=BOLD, size=18, x=_PAGE_WIDTH / 2, y=y, align="center", width=_PAGE_WIDTH - 2 * _MARGIN
    )
    y -= 6 * mm
    out.pair(
        y,
        "Numéro du timbre (à saisir si le QR est illisible)",
        "رقم الطابع (يدخل إذا تعذرت قراءة الرمز)",
        size=9,
    )
    y -= 12 * mm

    issued_fr = format_datetime(data.issued_at, "d MMMM y, HH:mm", tzinfo=zone, locale=data.locale_fr)
    issued_ar = format_datetime(data.issued_at, "d MMMM y، HH:mm", tzinfo=zone, locale=data.locale_ar)
    expires_local = data.expires_at.astimezone(zone).date()
    rows = [
        ("Consulat", "القنصلية", data.consulate_fr, data.consulate_ar),
        ("Service", "الخدمة", data.service_fr, data.service_ar),
        (
            "Montant payé",
            "المبلغ المؤدى",
            data.amount.format(data.locale_fr),
            data.amount.format(data.locale_ar),
        ),
        ("Émis le", "تاريخ الإصدار", issued_fr, issued_ar),
        (
            "Valable jusqu'au",
            "صالح إلى غاية",
            format_date(expires_local, "long", locale=data.locale_fr),
            format_date(expires_local, "long", locale=data.locale_ar),
        ),
        ("Référence du paiement", "مرجع الأداء", data.payment_reference, data.payment_reference),
        ("Numéro du timbre", "رقم الطابع", printed, printed),
    ]
    for label_fr, label_ar, value_fr, value_ar in rows:
        out.pair(y, label_fr, label_ar, size=9)
        y -= 5 * mm
        out.pair(y, value_fr, value_ar, font=BOLD, size=12)
        y -= 9 * mm

    y -= 4 * mm
    out.pair(y, "Vérification", "التحقق", font=BOLD, size=11)
    y -= 6 * mm
    out.pair(y, "État du timbre :", "حالة الطابع:", size=10)
    y -= 5 * mm
    out.pair(y, data.status_url, data.status_url, size=10)
    y -= 6 * mm
    out.pair(y, "Présentez ce code QR au guichet du consulat.", "قدم رمز QR هذا عند شباك القنصلية.", size=10)
    y -= 6 * mm
    out.pair(
        y,
        "Ce timbre vaut paiement pour son porteur : conservez-le.",
        "هذا الطابع يثبت الأداء لحامله: احتفظ به.",
        size=10,
    )
    return Page(runs=tuple(out.runs), qr_text=data.stamp_text, qr_x=qr_x, qr_y=qr_y)


def _draw_qr(canvas: Canvas, text: str, x: float, y: float) -> None:
    grid = modules(text)
    module = QR_SIZE / (len(grid) + 2 * QUIET_ZONE)
    left = x + QUIET_ZONE * module
    top = y + QR_SIZE - QUIET_ZONE * module
    # In module units from the symbol's top-left corner (y down): small integers, exact edges, no seams.
    # Written as PDF operators directly: reportlab's path API formats ~800 rectangles number by number
    # in pure Python, a third of the receipt's time; integers need no formatting care.
    rectangles = " ".join(f"{column} {row} {length} 1 re" for row, column, length in dark_runs(grid))
    canvas.saveState()
    placement = f"1 0 0 1 {left:.3f} {top:.3f} cm {module:.5f} 0 0 {-module:.5f} 0 0 cm"
    canvas.addLiteral(f"{placement} 0 g {rectangles} f")
    canvas.restoreState()


def _draw(canvas: Canvas, page: Page) -> None:
    _draw_qr(canvas, page.qr_text, page.qr_x, page.qr_y)
    for run in page.runs:
        canvas.setFont(run.font, run.size)
        if run.align == "left":
            canvas.drawString(run.x, run.y, run.text)
        elif run.align == "right":
            canvas.drawRightString(run.x, run.y, run.text)
        else:
            canvas.drawCentredString(run.x, run.y, run.text)
    canvas.showPage()


def render_receipts(receipts: Sequence[ReceiptData]) -> bytes:
    """One A4 page per stamp (a counter payment for several fees gives one PDF); fonts embedded."""
    if not receipts:
        raise ReceiptError("a receipt needs at least one stamp")
    register_fonts()
    out = io.BytesIO()
    # invariant: no creation date or random id, so the same receipt is the same bytes.
    canvas = Canvas(out, pagesize=A4, invariant=True, pageCompression=1, initialFontName=REGULAR)
    first = receipts[0]
    canvas.setTitle(f"Reçu eTimbre {first.number.printed()}")
    canvas.setSubject("Reçu de paiement de droits consulaires — وصل أداء الرسوم القنصلية")
    for receipt in receipts:
        _draw(canvas, layout(receipt))
    canvas.save()
    return out.getvalue()


def render_receipt(receipt: ReceiptData) -> bytes:
    return render_receipts([receipt])
