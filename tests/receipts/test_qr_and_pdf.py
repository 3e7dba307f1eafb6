"""QR images and the PDF receipt: they scan back to the stamp; every glyph drawn is in the embedded font."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from ledger.money import Money
from receipts.codec import verify_stamp
from receipts.numbers import StampNumber
from receipts.pdf import (
    BOLD,
    QR_SIZE,
    REGULAR,
    ReceiptData,
    ReceiptError,
    arabic,
    font_characters,
    layout,
    render_receipt,
    render_receipts,
)
from receipts.qr import QrError, make_qr, qr_png, qr_svg
from tests.receipts.conftest import NOW, StampWorld, realistic_claims

ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")


def receipt_for(world: StampWorld, **changes: object) -> ReceiptData:
    claims = realistic_claims()
    fields: dict[str, object] = {
        "stamp_text": world.issue(claims),
        "number": claims.number,
        "consulate_fr": "Consulat général du Royaume du Maroc à Paris",
        "consulate_ar": "القنصلية العامة للمملكة المغربية بباريس",
        "service_fr": "Passeport ordinaire",
        "service_ar": "جواز السفر العادي",
        "amount": Money(7500, "EUR"),
        "issued_at": claims.issued_at,
        "expires_at": claims.expires_at,
        "payment_reference": "PAY-2025-000123",
        "status_url": "https://etimbre.example.ma/s/48210933756102841",
        "timezone": "Europe/Paris",
        "authority_fr": "Royaume du Maroc — Ministère des Affaires étrangères",
        "authority_ar": "المملكة المغربية — وزارة الشؤون الخارجية",
    } | changes
    return ReceiptData(**fields)  # type: ignore[arg-type]


def decode(image: Image.Image) -> list[str]:
    return [
        b.text
        for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    ]


def test_png_scans_back_to_the_stamp(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    png = qr_png(text)
    assert png.startswith(b"\x89PNG")
    assert decode(Image.open(io.BytesIO(png))) == [text]


def test_svg_scans_back_to_the_stamp(world: StampWorld) -> None:
    """Rendered with a real SVG rasteriser when one is installed, else checked for its size in mm."""
    text = world.issue(realistic_claims())
    svg = qr_svg(text).decode()
    assert svg.startswith("<svg")
    assert 'width="39.00mm"' in svg
    converter = shutil.which("rsvg-convert")
    if converter is not None:
        png = subprocess.run(
            [converter, "-w", "400"], input=svg.encode(), capture_output=True, check=True
        ).stdout
        assert decode(Image.open(io.BytesIO(png))) == [text]


def test_qr_refuses_what_is_not_a_stamp() -> None:
    with pytest.raises(QrError, match="alphanumeric"):
        make_qr("et1:lower case")
    with pytest.raises(QrError, match=r"need QR version 1[1-9]"):
        make_qr("ET1:" + "AB" * 200)


@pytest.fixture(scope="module")
def pdftoppm() -> str:
    found = shutil.which("pdftoppm")
    if found is None:
        pytest.fail("pdftoppm is missing: apt-get install -y poppler-utils")
    return found


def rasterise(pdf: bytes, tmp_path: Path, tool: str, dpi: int = 150) -> list[Image.Image]:
    source = tmp_path / "receipt.pdf"
    source.write_bytes(pdf)
    subprocess.run([tool, "-r", str(dpi), "-png", str(source), str(tmp_path / "page")], check=True)
    return [Image.open(page) for page in sorted(tmp_path.glob("page-*.png"))]


def test_receipt_pdf_scans_back_to_a_genuine_stamp(world: StampWorld, tmp_path: Path, pdftoppm: str) -> None:
    receipt = receipt_for(world)
    pages = rasterise(render_receipt(receipt), tmp_path, pdftoppm)
    assert len(pages) == 1
    assert decode(pages[0]) == [receipt.stamp_text]
    verified = verify_stamp(decode(pages[0])[0], world.trust, audience="FR-PAR", now=NOW + timedelta(days=1))
    assert verified.number == receipt.number


def test_receipt_qr_is_vectors_at_least_30_mm_wide(world: StampWorld, tmp_path: Path, pdftoppm: str) -> None:
    receipt = receipt_for(world)
    pdf = render_receipt(receipt)
    assert b"/Subtype /Image" not in pdf  # nothing raster in the document
    dpi = 150
    (page,) = rasterise(pdf, tmp_path, pdftoppm, dpi=dpi)
    (found,) = zxingcpp.read_barcodes(page, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    corners = found.position
    width_px = (
        (corners.top_right.x - corners.top_left.x) ** 2 + (corners.top_right.y - corners.top_left.y) ** 2
    ) ** 0.5
    assert width_px / dpi * 25.4 >= 30
    assert found.ec_level == "Q"
    module_count = make_qr(receipt.stamp_text).modules_count
    assert QR_SIZE / (module_count + 8) * module_count / (72 / 25.4) >= 30  # by construction, too


def test_receipt_prints_what_a_cashier_and_a_citizen_read(world: StampWorld) -> None:
    texts = " | ".join(run.text for run in layout(receipt_for(world)).runs)
    for expected in (
        "4821 0933 7561 0284-1",
        "Consulat général du Royaume du Maroc à Paris",
        "Passeport ordinaire",
        "75,00\xa0€",
        "4 mars 2025, 11:00",  # issue, in the consulate's time zone
        "4 mars 2026",  # expiry
        "PAY-2025-000123",
        "https://etimbre.example.ma/s/48210933756102841",
        "Présentez ce code QR au guichet du consulat.",
        arabic("القنصلية العامة للمملكة المغربية بباريس"),
        arabic("قدم رمز QR هذا عند شباك القنصلية."),
    ):
        assert expected in texts


def test_receipt_fonts_are_amiri_and_embedded(world: StampWorld, tmp_path: Path) -> None:
    pdffonts = shutil.which("pdffonts")
    if pdffonts is None:
        pytest.fail("pdffonts is missing: apt-get install -y poppler-utils")
    source = tmp_path / "receipt.pdf"
    source.write_bytes(render_receipt(receipt_for(world)))
    listing = subprocess.run([pdffonts, str(source)], capture_output=True, text=True, check=True).stdout
    rows = listing.splitlines()[2:]
    assert len(rows) == 2
    for row in rows:
        name, *_, embedded, _subset, _unicode, _obj, _gen = row.split()
        assert re.fullmatch(r"[A-Z]{6}\+Amiri-(Regular|Bold)", name)
        assert embedded == "yes"


def test_every_character_drawn_exists_in_the_embedded_font(world: StampWorld) -> None:
    page = layout(receipt_for(world))
    cmaps = {REGULAR: font_characters(REGULAR), BOLD: font_characters(BOLD)}
    drawn_arabic = 0
    for run in page.runs:
        missing = {c for c in run.text if ord(c) not in cmaps[run.font]}
        assert not missing, f"{run.text!r} uses {sorted(missing)} missing from {run.font}"
        drawn_arabic += len(ARABIC.findall(run.text))
    assert drawn_arabic > 100


def test_arabic_is_shaped_and_reordered(world: StampWorld) -> None:
    texts = [run.text for run in layout(receipt_for(world)).runs]
    # Presentation forms (contextual glyphs) rather than bare letters: there is no shaping engine downstream.
    assert all(not re.search("[\u0621-\u064a]", t) for t in texts)
    assert any(re.search("[\ufe70-\ufeff]", t) for t in texts)
    # Digits and references in the Arabic column stay left-to-right.
    assert texts.count("4821 0933 7561 0284-1") >= 2
    assert texts.count("PAY-2025-000123") == 2


def test_amounts_are_formatted_per_locale(world: StampWorld) -> None:
    texts = {run.text for run in layout(receipt_for(world, amount=Money(45_500, "TND"))).runs}
    assert "45,500\xa0TND" in texts
    texts = {run.text for run in layout(receipt_for(world)).runs}
    assert "75,00\xa0€" in texts


def test_several_stamps_make_one_page_each(world: StampWorld, tmp_path: Path, pdftoppm: str) -> None:
    receipts = [receipt_for(world) for _ in range(2)]
    receipts[1] = receipt_for(world, stamp_text=world.issue(realistic_claims(fee_code="CNIE")))
    pages = rasterise(render_receipts(receipts), tmp_path, pdftoppm, dpi=120)
    assert [decode(p) for p in pages] == [[r.stamp_text] for r in receipts]


def test_same_receipt_same_bytes(world: StampWorld) -> None:
    receipt = receipt_for(world)
    assert render_receipt(receipt) == render_receipt(receipt)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stamp_text": "HC1:abc"}, "ET1:"),
        ({"stamp_text": "ET1:ABC"}, "not a readable stamp"),
        ({"number": StampNumber.parse("1111 2222 3333 4444-0")}, "is not the stamp's own number"),
        ({"service_ar": "  "}, "service_ar must not be empty"),
        ({"timezone": "Europe/Atlantis"}, "not an IANA time zone"),
        ({"issued_at": NOW.replace(tzinfo=None)}, "issued_at must be timezone-aware"),
    ],
)
def test_bad_receipt_data_says_which_field(
    world: StampWorld, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ReceiptError, match=message):
        receipt_for(world, **changes)
