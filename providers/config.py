"""The providers file (`config/providers.toml`): named variants, checked with errors naming file and key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import msgspec

from ledger.money import MoneyError, check_currency
from providers.errors import ProviderConfigError
from providers.model import Mode

_VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_SECRET_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}")
ALL_CONSULATES = "*"

OptionValue = str | int | float | bool | list[str]


class Timeouts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Seconds for each phase of a provider call (httpx timeouts)."""

    connect: float = 3.0
    read: float = 20.0
    write: float = 10.0
    pool: float = 3.0

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class _VariantTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    provider: str
    mode: Literal["online", "terminal"]
    base_url: str
    currencies: list[str]
    consulates: list[str]
    secrets: dict[str, str | list[str]] = {}
    options: dict[str, OptionValue] = {}
    timeouts: Timeouts = Timeouts()
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantConfig:
    """One configured variant (`cmi-online`, `counter-paris`, ...) of an installed provider."""

    name: str
    provider: str
    mode: Mode
    base_url: str
    currencies: frozenset[str]
    consulates: frozenset[str] | None  # None: every consulate
    secrets: Mapping[str, tuple[str, ...]]  # secret key -> environment variable names (rotation: several)
    options: Mapping[str, OptionValue]
    timeouts: Timeouts
    enabled: bool = True
    description: str = ""
    source: str = "<memory>"

    def where(self, key: str = "") -> str:
        """`config/providers.toml: variants.cmi-online.options.client_id`, for error messages."""
        return f"{self.source}: variants.{self.name}" + (f".{key}" if key else "")

    def serves(self, *, consulate: str, currency: str) -> bool:
        return (
            self.enabled
            and currency in self.currencies
            and (self.consulates is None or consulate in self.consulates)
        )

    def option_str(self, key: str, default: str | None = None) -> str:
        value = self.options.get(key, default)
        if value is None:
            raise ProviderConfigError(f"{self.where('options.' + key)}: required option is missing")
        if not isinstance(value, str) or not value:
            raise ProviderConfigError(f"{self.where('options.' + key)}: must be a non-empty string")
        return value

    def option_optional_str(self, key: str) -> str | None:
        return self.option_str(key) if key in self.options else None

    def option_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ProviderConfigError(f"{self.where('options.' + key)}: must be an integer >= {minimum}")
        return value

    def option_bool(self, key: str, default: bool) -> bool:
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            raise ProviderConfigError(f"{self.where('options.' + key)}: must be true or false")
        return value

    def option_choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.option_str(key, default)
        if value not in choices:
            raise ProviderConfigError(
                f"{self.where('options.' + key)}: must be one of {', '.join(choices)}, got {value!r}"
            )
        return value


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    source: str
    variants: Mapping[str, VariantConfig]

    def variant(self, name: str) -> VariantConfig:
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none"
            raise ProviderConfigError(
                f"{self.source}: no variant named {name!r} (configured: {known})"
            ) from None


def load_providers_config(path: Path) -> ProvidersConfig:
    """Read and check the providers file; every error names the file, the key and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProviderConfigError(f"{path}: cannot read the providers file ({exc.strerror})") from exc
    return parse_providers_config(text, source=str(path))


def parse_providers_config(text: str, *, source: str) -> ProvidersConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProviderConfigError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - {"variants"})
    if unknown:
        raise ProviderConfigError(
            f"{source}: unknown top-level key {unknown[0]!r} (expected only [variants])"
        )
    tables = document.get("variants", {})
    if not isinstance(tables, dict):
        raise ProviderConfigError(f"{source}: variants must be a table of named variants")
    variants = {name: _variant(name, table, source) for name, table in tables.items()}
    return ProvidersConfig(source=source, variants=variants)


def _variant(name: str, table: object, source: str) -> VariantConfig:
    where = f"{source}: variants.{name}"
    if not _VARIANT_NAME.fullmatch(name):
        raise ProviderConfigError(f"{where}: a variant name is lower-case letters, digits and '-'")
    try:
        raw = msgspec.convert(table, _VariantTable)
    except msgspec.ValidationError as exc:
        # msgspec reports "... - at `$.timeouts.connect`": rewrite the path into the TOML key.
        message, found, path = str(exc).rpartition(" - at ")
        key = path.strip("`").removeprefix("$").lstrip(".") if found else ""
        raise ProviderConfigError(f"{where}{'.' + key if key else ''}: {message if found else exc}") from exc
    base_url = httpx.URL(raw.base_url)
    if base_url.scheme not in {"http", "https"} or not base_url.host:
        raise ProviderConfigError(f"{where}.base_url: must be an absolute http(s) URL, got {raw.base_url!r}")
    if not raw.currencies:
        raise ProviderConfigError(f"{where}.currencies: list at least one ISO 4217 currency")
    for currency in raw.currencies:
        try:
            check_currency(currency)
        except MoneyError as exc:
            raise ProviderConfigError(f"{where}.currencies: {exc}") from exc
    if not raw.consulates:
        raise ProviderConfigError(f'{where}.consulates: list consulate codes, or ["*"] for all')
    for phase in ("connect", "read", "write", "pool"):
        if not getattr(raw.timeouts, phase) > 0:
            raise ProviderConfigError(f"{where}.timeouts.{phase}: must be a positive number of seconds")
    return VariantConfig(
        name=name,
        provider=raw.provider,
        mode=Mode(raw.mode),
        base_url=str(base_url).rstrip("/"),
        currencies=frozenset(raw.currencies),
        consulates=None if ALL_CONSULATES in raw.consulates else frozenset(raw.consulates),
        secrets={
            key: _secret_names(f"{where}.secrets.{key}", key, value) for key, value in raw.secrets.items()
        },
        options=dict(raw.options),
        timeouts=raw.timeouts,
        enabled=raw.enabled,
        description=raw.description,
        source=source,
    )


def _secret_names(where: str, key: str, value: str | list[str]) -> tuple[str, ...]:
    if not _SECRET_KEY.fullmatch(key):
        raise ProviderConfigError(f"{where}: a secret key is lower-case letters, digits and '_'")
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise ProviderConfigError(f"{where}: name at least one environment variable")
    for env_name in names:
        if not _ENV_NAME.fullmatch(env_name):
            # Most likely someone pasted the secret itself: never echo it back.
            raise ProviderConfigError(
                f"{where}: must be the NAME of an environment variable (A-Z, 0-9, '_'), "
                "never the secret itself"
            )
    return names


class Secrets:
    """Secret values of one variant, read from the environment; never printed."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, tuple[str, ...]]) -> None:
        self._values = dict(values)

    def one(self, key: str) -> str:
        return self._values[key][0]

    def all(self, key: str) -> tuple[str, ...]:
        """Every configured value, current first (several during a rotation)."""
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        return f"Secrets({', '.join(sorted(self._values))}: <redacted>)"


def resolve_secrets(
    variant: VariantConfig,
    required: Mapping[str, str],
    env: Mapping[str, str],
    optional: Mapping[str, str] | None = None,
) -> Secrets:
    """Read the variant's secrets from `env`.

    `required`/`optional` map secret keys to what they are, for messages. For a key that lists several
    variables (rotation) the first must be set; the others are used when set.
    """
    optional = optional or {}
    values: dict[str, tuple[str, ...]] = {}
    for key in variant.secrets:
        if key not in required and key not in optional:
            expected = ", ".join(sorted({*required, *optional})) or "none"
            raise ProviderConfigError(
                f"{variant.where('secrets.' + key)}: unknown secret for provider {variant.provider!r} "
                f"(expected: {expected})"
            )
    for key, what in {**required, **optional}.items():
        names = variant.secrets.get(key)
        if names is None:
            if key in required:
                raise ProviderConfigError(
                    f"{variant.where('secrets.' + key)}: missing; name the environment variable that "
                    f"holds the {what}"
                )
            continue
        first, *others = names
        if not env.get(first):
            raise ProviderConfigError(
                f"{variant.where('secrets.' + key)}: environment variable {first} is not set "
                f"(it must hold the {what})"
            )
        values[key] = (env[first], *(env[name] for name in others if env.get(name)))
    return Secrets(values)
