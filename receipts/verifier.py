"""The offline verifier: QR text, a photo or scan (PNG/JPEG) or a PDF receipt -> a decision per stamp."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image, UnidentifiedImageError

from receipts.claims import StampClaims
from receipts.codec import DEFAULT_CLOCK_SKEW, PREFIX, StampTrust, VerifiedStamp, verify_stamp
from receipts.fees import LANGUAGES
from receipts.numbers import StampNumber
from receipts.reasons import Reason, StampRejected

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_PDF_PAGES = 20
PDF_DPI = 200  # a 30 mm QR of version 10 gets ~4 pixels per module at 200 dpi
_PDF_TIMEOUT_S = 60
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verifier's answer: genuine with its claims, or refused with a stable reason and a message."""

    genuine: bool
    message: str
    reason: Reason | None = None
    stamp: VerifiedStamp | None = None
    text: str | None = None

    @property
    def claims(self) -> StampClaims | None:
        return self.stamp.claims if self.stamp is not None else None

    @property
    def number(self) -> StampNumber | None:
        return self.stamp.number if self.stamp is not None else None

    def to_json(self) -> dict[str, Any]:
        """Plain data for a CLI or an API body."""
        claims = self.claims
        return {
            "genuine": self.genuine,
            "reason": self.reason.value if self.reason is not None else None,
            "message": self.message,
            "stamp": None
            if claims is None or self.stamp is None
            else {
                "number": claims.number.printed(),
                "issuer": claims.issuer,
                "consulate": claims.audience,
                "fee_code": claims.fee_code,
                "fee_number": self.stamp.fee.number,
                "fee_labels": {language: self.stamp.fee.label(language) for language in LANGUAGES},
                "amount": claims.amount.to_str(),
                "currency": claims.amount.currency,
                "channel": claims.channel.value,
                "schedule_version": claims.schedule_version,
                "case_reference": claims.case_reference,
                "issued_at": claims.issued_at.isoformat(),
                "expires_at": claims.expires_at.isoformat(),
                "kid": self.stamp.kid.hex(),
                "algorithm": self.stamp.algorithm.label,
            },
        }


def decide(
    text: str,
    trust: StampTrust,
    *,
    audience: str | None,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> Decision:
    """Verify scanned QR text; never raises for a bad stamp, the decision says why."""
    try:
        stamp = verify_stamp(text, trust, audience=audience, now=now, clock_skew=clock_skew)
    except StampRejected as rejected:
        return Decision(genuine=False, reason=rejected.reason, message=rejected.message, text=text)
    return Decision(
        genuine=True,
        message=f"genuine stamp {stamp.number.printed()} for {stamp.claims.audience}",
        stamp=stamp,
        text=text,
    )


class UnreadableFileError(ValueError):
    """A file that is neither a PNG, a JPEG nor a PDF, or that cannot be decoded."""


def _qr_texts_in_image(image: Image.Image) -> list[str]:
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [barcode.text for barcode in found if barcode.valid]


def _render_pdf(data: bytes) -> list[Image.Image]:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise UnreadableFileError("reading a PDF needs pdftoppm (Debian package poppler-utils)")
    with tempfile.TemporaryDirectory(prefix="etimbre-verify-") as work:
        source = Path(work, "in.pdf")
        source.write_bytes(data)
        # Fixed argument list, no shell: the file name is ours, the content only reaches poppler.
        completed = subprocess.run(  # noqa: S603
            [
                pdftoppm,
                "-r",
                str(PDF_DPI),
                "-gray",
                "-png",
                "-l",
                str(MAX_PDF_PAGES),
                str(source),
                str(Path(work, "p")),
            ],
            capture_output=True,
            timeout=_PDF_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            detail = completed.stderr.decode(errors="replace").strip().splitlines()
            raise UnreadableFileError(
                f"pdftoppm could not render the PDF: {detail[-1] if detail else 'no detail'}"
            )
        pages = sorted(Path(work).glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        images = []
        for page in pages:
            with Image.open(page) as opened:
                opened.load()
                images.append(opened.copy())
        return images


def stamp_texts_in_file(data: bytes) -> list[str]:
    """Every QR text found in a PNG/JPEG image or in the pages of a PDF, in reading order."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFileError(f"{len(data)} bytes; files up to {MAX_FILE_BYTES} bytes are read")
    if data.startswith(_PDF_MAGIC):
        images = _render_pdf(data)
    elif data.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
        try:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                images = [opened.copy()]
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise UnreadableFileError(f"the image cannot be decoded: {exc}") from exc
    else:
        raise UnreadableFileError("not a PNG, JPEG or PDF file")
    return [text for image in images for text in _qr_texts_in_image(image)]


def decide_file(
    data: bytes,
    trust: StampTrust,
    *,
    audience: str | None,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Decision]:
    """One decision per QR code in the file (a receipt may carry several stamps); a file without a stamp
    or that cannot be read gives one refusal saying so."""
    try:
        texts = stamp_texts_in_file(data)
    except UnreadableFileError as exc:
        return [Decision(genuine=False, reason=Reason.UNREADABLE_FILE, message=str(exc))]
    if not texts:
        return [Decision(genuine=False, reason=Reason.NO_STAMP_FOUND, message="no QR code found in the file")]
    # Other QR codes on the page (a payment link, say) are judged too: a bad prefix says what they are.
    decisions = [decide(t, trust, audience=audience, now=now, clock_skew=clock_skew) for t in texts]
    stamps = [d for d, t in zip(decisions, texts, strict=True) if t.startswith(PREFIX)]
    return stamps or decisions
