"""The pages' languages: message catalogs read from ``i18n/*.toml`` and locale formats from Babel."""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from babel.dates import format_date, format_datetime

from ledger.money import Money

Language = Literal["fr", "ar"]
LANGUAGES: tuple[Language, ...] = ("fr", "ar")
DEFAULT: Language = "fr"
CATALOG_DIR = Path(__file__).resolve().parent / "i18n"


class CatalogError(Exception):
    """A catalog that cannot be used: which file and key, and what is wrong."""


def _flatten(table: dict[str, Any], prefix: str, into: dict[str, str], source: Path) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", into, source)
        elif isinstance(value, str):
            into[name] = value
        else:
            raise CatalogError(f"{source}: {name}: give text, not {type(value).__name__}")


@cache
def catalog(language: Language) -> dict[str, str]:
    """Every message of one language by its dotted key (``fees.title``); ``meta.*`` describe the language."""
    path = CATALOG_DIR / f"{language}.toml"
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    messages: dict[str, str] = {}
    _flatten(raw, "", messages, path)
    # An area may keep its messages in its own file (staff.fr.toml): merges of the main catalog stay easy.
    for extra in sorted(CATALOG_DIR.glob(f"*.{language}.toml")):
        with extra.open("rb") as handle:
            more: dict[str, str] = {}
            _flatten(tomllib.load(handle), "", more, extra)
        clashes = sorted(set(more) & set(messages))
        if clashes:
            raise CatalogError(f"{extra}: {clashes[0]} is already defined in another catalog file")
        messages.update(more)
    for required in ("meta.locale", "meta.dir", "meta.name"):
        if required not in messages:
            raise CatalogError(f"{path}: {required} is missing")
    return messages


def language_of(value: str | None) -> Language | None:
    """A supported language from a query parameter or cookie, or None."""
    for language in LANGUAGES:
        if value == language:
            return language
    return None


class Named(Protocol):
    """Anything labelled in both languages: config Labels, the stamps' fee table entries."""

    @property
    def fr(self) -> str: ...

    @property
    def ar(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Translator:
    """Messages, names and formats for one language."""

    language: Language

    @property
    def messages(self) -> dict[str, str]:
        return catalog(self.language)

    @property
    def locale(self) -> str:
        return self.messages["meta.locale"]

    @property
    def direction(self) -> str:
        return self.messages["meta.dir"]

    def __call__(self, key: str, /, **values: object) -> str:
        """The message for ``key`` with ``{name}`` placeholders filled; an unknown key is a bug (KeyError)."""
        text = self.messages[key]
        return text.format(**values) if values else text

    def label(self, named: Named) -> str:
        return named.ar if self.language == "ar" else named.fr

    def money(self, amount: Money) -> str:
        return amount.format(self.locale)

    def when(self, moment: datetime, timezone: str | None = None) -> str:
        """A date and time for people, in ``timezone`` (IANA name) when given, else as stored."""
        zone = zoneinfo.ZoneInfo(timezone) if timezone else None
        return str(format_datetime(moment, "medium", tzinfo=zone, locale=self.locale))

    def day(self, value: date | datetime) -> str:
        return str(format_date(value, "long", locale=self.locale))
