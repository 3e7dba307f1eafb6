"""Stamp numbers: 16 random digits and a Luhn check digit, printed, typed back and carried as `cti`."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

BODY_DIGITS = 16
DIGITS = BODY_DIGITS + 1
CTI_LENGTH = 8  # 10**17 - 1 < 2**63: every number fits in 8 bytes, big-endian

_DIGITS = re.compile(r"[0-9]{17}")
# Cashiers type on French and Arabic keyboards: accept Arabic-Indic and Eastern Arabic-Indic digits too.
_TO_ASCII = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")


class StampNumberError(ValueError):
    """Text or bytes that are not a valid stamp number; the message says what is wrong."""


def luhn_check_digit(body: str) -> int:
    """The Luhn (ISO/IEC 7812) digit that makes `body` + digit valid; four lines do not need a dependency."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:  # doubled: the rightmost body digit sits next to the check digit
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return (10 - total % 10) % 10


@dataclass(frozen=True, slots=True, order=True)
class StampNumber:
    """A stamp's number, equal to the stamp's `cti`: 17 ASCII digits of which the last is a Luhn digit."""

    digits: str

    def __post_init__(self) -> None:
        if not isinstance(self.digits, str) or not _DIGITS.fullmatch(self.digits):
            raise StampNumberError(f"a stamp number is {DIGITS} digits, got {self.digits!r}")
        expected = luhn_check_digit(self.digits[:BODY_DIGITS])
        if int(self.digits[-1]) != expected:
            d = self.digits
            raise StampNumberError(
                f"stamp number {d[0:4]} {d[4:8]} {d[8:12]} {d[12:16]}-{d[16]}: the check digit should be "
                f"{expected}; a digit was mistyped"
            )

    @classmethod
    def generate(cls) -> StampNumber:
        """A fresh random number (16 digits from `secrets`); the database decides if it is unused."""
        body = f"{secrets.randbelow(10**BODY_DIGITS):0{BODY_DIGITS}d}"
        return cls(body + str(luhn_check_digit(body)))

    @classmethod
    def parse(cls, text: str) -> StampNumber:
        """Read a typed number: spaces and dashes anywhere are ignored, the check digit is not."""
        if not isinstance(text, str):
            raise StampNumberError(f"a stamp number must be text, got {type(text).__name__}")
        compact = _SEPARATORS.sub("", text.translate(_TO_ASCII))
        bad = next((c for c in compact if not "0" <= c <= "9"), None)
        if bad is not None:
            raise StampNumberError(f"stamp number {text!r} contains {bad!r}; only digits, spaces and dashes")
        if len(compact) != DIGITS:
            raise StampNumberError(f"stamp number {text!r} has {len(compact)} digits; it must have {DIGITS}")
        return cls(compact)

    @classmethod
    def from_cti(cls, cti: bytes) -> StampNumber:
        """The number carried in a stamp's `cti` claim (8 bytes, big-endian)."""
        if not isinstance(cti, bytes) or len(cti) != CTI_LENGTH:
            raise StampNumberError(f"cti must be {CTI_LENGTH} bytes")
        value = int.from_bytes(cti, "big")
        if value >= 10**DIGITS:
            raise StampNumberError(f"cti {cti.hex()} is larger than any {DIGITS}-digit stamp number")
        return cls(f"{value:0{DIGITS}d}")

    def to_cti(self) -> bytes:
        return int(self.digits).to_bytes(CTI_LENGTH, "big")

    def printed(self) -> str:
        """As printed under the QR: ``4821 0933 7561 0284-1``."""
        d = self.digits
        return f"{d[0:4]} {d[4:8]} {d[8:12]} {d[12:16]}-{d[16]}"

    def __int__(self) -> int:
        return int(self.digits)

    def __str__(self) -> str:
        return self.printed()
