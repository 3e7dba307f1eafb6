"""The fee table a stamp refers to: each fee code has a stable number (what the QR carries) and labels."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LANGUAGES = ("fr", "ar", "en")
MAX_FEE_NUMBER = 65535  # three bytes on the wire at most; numbers 1-23 take one
FEE_CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class FeeTableError(ValueError):
    """A fee table that cannot be used (duplicate code or number, bad label); the message says which."""


@dataclass(frozen=True, slots=True)
class Fee:
    """A consular fee as stamps and verifiers know it.

    `number` is what a stamp carries instead of the code (a code such as "PASSPORT-MINOR" would not fit
    the QR budget); once published it is never reused for another fee.
    """

    code: str
    number: int
    fr: str
    ar: str
    en: str

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not FEE_CODE_PATTERN.fullmatch(self.code):
            raise FeeTableError(f"fee code must be 1-32 letters, digits, '.', '_' or '-', got {self.code!r}")
        if type(self.number) is not int or not 1 <= self.number <= MAX_FEE_NUMBER:
            raise FeeTableError(f"fee {self.code}: number must be 1..{MAX_FEE_NUMBER}, got {self.number!r}")
        for language in LANGUAGES:
            label = getattr(self, language)
            if not isinstance(label, str) or not label.strip():
                raise FeeTableError(f"fee {self.code}: the {language} label must be non-empty text")

    def label(self, language: str) -> str:
        if language not in LANGUAGES:
            raise ValueError(f"fee labels exist in {', '.join(LANGUAGES)}, not {language!r}")
        return str(getattr(self, language))


class FeeTable:
    """Fees by code and by number, both unique."""

    __slots__ = ("_by_code", "_by_number")

    def __init__(self, fees: Iterable[Fee] = ()) -> None:
        self._by_code: dict[str, Fee] = {}
        self._by_number: dict[int, Fee] = {}
        for fee in fees:
            if fee.code in self._by_code:
                raise FeeTableError(f"fee code {fee.code} is listed twice")
            if fee.number in self._by_number:
                holder = self._by_number[fee.number].code
                raise FeeTableError(f"fee number {fee.number} is given to both {holder} and {fee.code}")
            self._by_code[fee.code] = fee
            self._by_number[fee.number] = fee

    def by_code(self, code: str) -> Fee | None:
        return self._by_code.get(code)

    def by_number(self, number: int) -> Fee | None:
        return self._by_number.get(number)

    def number_of(self, code: str) -> int:
        """The number a stamp carries for `code`; a code without one cannot be stamped."""
        fee = self._by_code.get(code)
        if fee is None:
            raise FeeTableError(f"fee code {code!r} has no number in the fee table: it cannot be stamped")
        return fee.number

    def __iter__(self) -> Iterator[Fee]:
        return iter(sorted(self._by_code.values(), key=lambda fee: fee.number))

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeeTable) and self._by_code == other._by_code

    def __hash__(self) -> int:
        return hash(frozenset(self._by_code.values()))

    def __repr__(self) -> str:
        return f"FeeTable({list(self)!r})"
