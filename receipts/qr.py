"""QR codes of stamps: one alphanumeric segment at error correction Q, as a module grid, PNG or SVG."""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.util import MODE_ALPHA_NUM, QRData

MAX_VERSION = 10  # ET1 stamps fit version 10-Q: 57 x 57 modules
QUIET_ZONE = 4  # modules of white around the code, as ISO/IEC 18004 asks


class QrError(ValueError):
    """Text that does not make a stamp QR code (not alphanumeric, or too long for version 10-Q)."""


def make_qr(text: str, *, max_version: int = MAX_VERSION) -> qrcode.QRCode:
    """The QR code for `text`: one alphanumeric-mode segment, EC level Q, the smallest version that fits."""
    try:
        data = QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=True)
    except (UnicodeEncodeError, ValueError, TypeError) as exc:
        raise QrError(f"QR text must be QR-alphanumeric (0-9 A-Z space $%*+-./:): {exc}") from exc
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE)
    code.add_data(data)
    try:
        code.make(fit=True)
    except ValueError as exc:  # qrcode 8.2 fails on long runs of zero codewords (python-qrcode #330)
        raise QrError(f"the QR encoder failed on this text: {exc}") from exc
    if code.version > max_version:
        raise QrError(
            f"{len(text)} characters need QR version {code.version}; stamps stay at {max_version} or below"
        )
    return code


@lru_cache(maxsize=64)
def modules(text: str) -> tuple[tuple[bool, ...], ...]:
    """The dark (True) and light modules, quiet zone excluded, row by row.

    Cached: choosing the mask is most of the cost, and a stamp's PNG, SVG and PDF share one grid.
    """
    code = make_qr(text)
    return tuple(tuple(bool(cell) for cell in row) for row in code.modules)


def dark_runs(grid: tuple[tuple[bool, ...], ...]) -> list[tuple[int, int, int]]:
    """Horizontal runs of dark modules as (row, first column, length): one rectangle each when drawn."""
    runs = []
    for y, row in enumerate(grid):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append((y, start, x - start))
            else:
                x += 1
    return runs


def qr_png(text: str, *, module_px: int = 6) -> bytes:
    """A black-on-white PNG with the quiet zone, `module_px` pixels per module."""
    grid = modules(text)
    size = len(grid) + 2 * QUIET_ZONE
    image = Image.new("1", (size, size), 1)
    pixels = image.load()
    assert pixels is not None
    for y, row in enumerate(grid):
        for x, dark in enumerate(row):
            if dark:
                pixels[x + QUIET_ZONE, y + QUIET_ZONE] = 0
    # Drawing one pixel per module then scaling is much faster than drawing module-sized squares.
    scaled = image.resize((size * module_px, size * module_px), Image.Resampling.NEAREST)
    out = io.BytesIO()
    scaled.save(out, format="PNG", optimize=False)
    return out.getvalue()


def qr_svg(text: str, *, module_mm: float = 0.6) -> bytes:
    """An SVG sized in millimetres (one path in module units); 0.6 mm modules: a 39 mm version 10 code."""
    grid = modules(text)
    size = len(grid) + 2 * QUIET_ZONE
    path = "".join(f"M{x + QUIET_ZONE},{y + QUIET_ZONE}h{n}v1h-{n}z" for y, x, n in dark_runs(grid))
    width = f"{size * module_mm:.2f}mm"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{width}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>'
    ).encode()
