"""The offline verifier: the same decision from the QR text, a photo of the code, or the PDF receipt."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image, ImageDraw, ImageFilter

from receipts.numbers import StampNumber
from receipts.pdf import render_receipts
from receipts.qr import qr_png
from receipts.reasons import Reason
from receipts.verifier import decide, decide_file
from tests.receipts.conftest import NOW, StampWorld, realistic_claims
from tests.receipts.test_qr_and_pdf import receipt_for

LATER = NOW + timedelta(days=3)


def test_genuine_text_gives_the_claims(world: StampWorld) -> None:
    claims = realistic_claims()
    decision = decide(world.issue(claims), world.trust, audience="FR-PAR", now=LATER)
    assert decision.genuine
    assert decision.reason is None
    assert decision.claims == claims
    assert decision.number == claims.number
    body = decision.to_json()
    assert body["stamp"]["number"] == "4821 0933 7561 0284-1"
    assert body["stamp"]["amount"] == "27.50"
    assert body["stamp"]["currency"] == "EUR"
    assert body["stamp"]["kid"] == world.es256.kid.hex()
    assert body["stamp"]["fee_code"] == "PASSPORT-MINOR"
    assert body["stamp"]["fee_labels"]["ar"] == "جواز السفر (قاصر)"


def test_refusal_gives_reason_and_message_and_no_claims(world: StampWorld) -> None:
    decision = decide(world.issue(realistic_claims()), world.trust, audience="MA-RAB", now=LATER)
    assert not decision.genuine
    assert decision.reason is Reason.WRONG_CONSULATE
    assert "FR-PAR, not MA-RAB" in decision.message
    assert decision.claims is None  # nothing from a refused stamp is handed out as fact
    assert decision.to_json()["reason"] == "wrong_consulate"


def photo_of(png: bytes, *, fmt: str) -> bytes:
    """The QR pasted off-centre on a grey page, slightly rotated and blurred, as a phone would see it."""
    code = Image.open(io.BytesIO(png)).convert("L")
    page = Image.new("L", (code.width * 2, code.height * 2), 200)
    ImageDraw.Draw(page).text((10, 10), "Reçu", fill=0)
    page.paste(code, (code.width // 3, code.width // 2))
    page = page.rotate(7, expand=True, fillcolor=200).filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    page.save(out, format=fmt, quality=80) if fmt == "JPEG" else page.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_of_the_qr_gives_the_same_decision(world: StampWorld, fmt: str) -> None:
    text = world.issue(realistic_claims())
    decisions = decide_file(photo_of(qr_png(text), fmt=fmt), world.trust, audience="FR-PAR", now=LATER)
    assert [d.genuine for d in decisions] == [True]
    assert decisions[0].text == text


def test_pdf_with_several_stamps_gives_one_decision_each(world: StampWorld) -> None:
    refunded = StampNumber.generate()
    receipts = [
        receipt_for(world),
        receipt_for(world, stamp_text=world.issue(realistic_claims(number=refunded)), number=refunded),
    ]
    trust = world.trust_with(denied=frozenset({refunded}))
    decisions = decide_file(render_receipts(receipts), trust, audience="FR-PAR", now=LATER)
    assert [(d.genuine, d.reason) for d in decisions] == [(True, None), (False, Reason.DENIED)]


def test_image_without_a_qr_code(world: StampWorld) -> None:
    blank = io.BytesIO()
    Image.new("L", (300, 300), 255).save(blank, format="PNG")
    decisions = decide_file(blank.getvalue(), world.trust, audience="FR-PAR", now=LATER)
    assert [(d.genuine, d.reason) for d in decisions] == [(False, Reason.NO_STAMP_FOUND)]


def test_a_qr_code_that_is_not_a_stamp(world: StampWorld) -> None:
    import qrcode

    image = qrcode.make("https://example.com/pay")
    out = io.BytesIO()
    image.save(out)
    decisions = decide_file(out.getvalue(), world.trust, audience="FR-PAR", now=LATER)
    assert [d.reason for d in decisions] == [Reason.BAD_PREFIX]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a PNG, JPEG or PDF"),
        (b"\x89PNG\r\n\x1a\nbroken", "cannot be decoded"),
        (b"%PDF-1.4\nnot really", "pdftoppm could not render"),
    ],
)
def test_unreadable_files_say_why(world: StampWorld, data: bytes, message: str) -> None:
    decisions = decide_file(data, world.trust, audience="FR-PAR", now=LATER)
    assert len(decisions) == 1
    assert decisions[0].reason is Reason.UNREADABLE_FILE
    assert message in decisions[0].message
