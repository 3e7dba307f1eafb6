"""Typed settings, read from the TOML files in `config/` and overridden by ETIMBRE_* environment variables."""

from __future__ import annotations

import json
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from ledger.domain.chart import AccountTemplate, AccountType, Chart, Role
from ledger.domain.consulates import CONSULATE_CODE, Consulate
from ledger.domain.fees import Fee, FeeSchedule, ScheduleVersion
from ledger.domain.labels import Labels
from ledger.money import Money, MoneyError, check_currency

_T = TypeVar("_T")
ENV_PREFIX = "ETIMBRE_"
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class ConfigError(Exception):
    """A configuration that cannot be used. Says which file, which key and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class DatabaseSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    url: str = ""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    host: str = "127.0.0.1"
    port: Port = 8000
    public_url: str = "http://127.0.0.1:8000"


class LogSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    format: Literal["console", "json"] = "console"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class LedgerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    checkpoint_interval_seconds: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 3600
    close_after_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 90)] = 72


class TreasurySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    timezone: str = "Africa/Casablanca"


EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=64)]


class StampSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    issuer: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] = "MA"
    validity_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 365
    clock_skew_seconds: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 300
    refund_window_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 90
    trust_list_max_age_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 90)] = 168
    keys_dir: str = ""
    # Names of environment variables, not secrets: the secrets themselves never appear in a file.
    passphrase_env: EnvName = "ETIMBRE_KEY_PASSPHRASE"  # noqa: S105
    receipt_secret_env: EnvName = "ETIMBRE_RECEIPT_SECRET"  # noqa: S105
    pkcs11_module: str = ""
    pkcs11_token: str = ""
    pkcs11_pin_env: EnvName = "ETIMBRE_PKCS11_PIN"


class AuditSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    seal_interval_seconds: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 5
    max_records_per_seal: Annotated[int, msgspec.Meta(ge=100, le=10_000_000)] = 100_000
    sign_daily: bool = True
    lateness_tolerance_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 60


class ReconciliationSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """How the daily reconciliation matches and who must approve what (see docs/reconciliation.md)."""

    # A counterpart dated up to this many days from its ledger entry still matches; further is "timing".
    window_days: Annotated[int, msgspec.Meta(ge=0, le=31)] = 3
    # How many days either side of the business day the ledger and earlier imports are searched.
    search_days: Annotated[int, msgspec.Meta(ge=0, le=62)] = 10
    # Above this many equal amounts on either side, the amount-and-date pass does not compare them.
    max_candidates: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    # Per currency (ISO code, or "default" in whole units): differences matched and posted to rounding.
    tolerance: dict[str, str] = msgspec.field(default_factory=lambda: {"default": "0"})
    # Per currency: postings of a difference above this need a second, different auditor's approval.
    approval_threshold: dict[str, str] = msgspec.field(default_factory=lambda: {"default": "100"})
    # Import profiles; empty: config/import_profiles next to this configuration.
    profiles_dir: str = ""

    def tolerance_for(self, currency: str) -> Money:
        return _per_currency(self.tolerance, currency)

    def approval_threshold_for(self, currency: str) -> Money:
        return _per_currency(self.approval_threshold, currency)


class PaymentSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Online and terminal payments: providers file, how long a checkout lives, the resolver's pace."""

    # The provider variants (config/providers.toml next to this configuration when empty).
    providers_file: str = ""
    # A citizen who has not paid within this many minutes has abandoned the payment: it expires.
    checkout_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 30
    # The service runs the resolver (unknown and stale attempts, abandoned payments) on this interval
    # (0: never; then run `etimbre payments resolve`).
    resolver_interval_seconds: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 5
    # An unknown outcome is first checked after this delay, then after twice as long each time ...
    first_check_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 10
    # ... and handed to the manual queue once it has stayed unknown this long.
    give_up_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] = 72


def _per_currency(table: Mapping[str, str], currency: str) -> Money:
    # "default" is whole units (valid in every currency, JPY and KWD alike); checked at load.
    return Money.parse(table.get(currency, table.get("default", "0")), currency)


class StaffSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Staff sign-in for the web pages: password policy, lockout, sessions, Argon2id cost."""

    min_password_length: Annotated[int, msgspec.Meta(ge=8, le=128)] = 12
    # This many wrong passwords in a row lock the account for lockout_minutes.
    max_failed_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    lockout_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 15
    session_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 7)] = 10
    # Argon2id cost; a stored hash made with other values is re-hashed at the next sign-in.
    argon2_time_cost: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    argon2_memory_kib: Annotated[int, msgspec.Meta(ge=8192, le=4 * 1024 * 1024)] = 65536
    argon2_parallelism: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4


class ServiceSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    environment: Literal["development", "production"] = "development"
    data_dir: str = "./data"
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    log: LogSettings = LogSettings()
    ledger: LedgerSettings = LedgerSettings()
    treasury: TreasurySettings = TreasurySettings()
    stamps: StampSettings = StampSettings()
    audit: AuditSettings = AuditSettings()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    payments: PaymentSettings = PaymentSettings()
    staff: StaffSettings = StaffSettings()


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "database": DatabaseSettings,
    "server": ServerSettings,
    "log": LogSettings,
    "ledger": LedgerSettings,
    "treasury": TreasurySettings,
    "stamps": StampSettings,
    "audit": AuditSettings,
    "reconciliation": ReconciliationSettings,
    "payments": PaymentSettings,
    "staff": StaffSettings,
}


# Raw shapes of the reference-data files, validated before they become domain objects.
class _LabelsFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    fr: Annotated[str, msgspec.Meta(min_length=1)]
    ar: Annotated[str, msgspec.Meta(min_length=1)]
    en: Annotated[str, msgspec.Meta(min_length=1)]


class _ConsulateFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    code: str
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    currency: str
    timezone: str
    name: _LabelsFile


class _ConsulatesFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    consulate: list[_ConsulateFile]


class _FeeFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9-]{0,23}$")]
    number: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    label: _LabelsFile
    prices: dict[str, str]
    consulate_prices: dict[str, str] = {}


class _VersionFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    effective_from: datetime
    fee: list[_FeeFile]


class _FeesFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    example_data: bool = False
    version: list[_VersionFile]


class _RoleFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    code: str
    type: AccountType
    name: _LabelsFile


class _AccountsFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    role: dict[str, _RoleFile]


@dataclass(frozen=True, slots=True)
class Settings:
    service: ServiceSettings
    config_dir: Path
    consulates: dict[str, Consulate]
    fees: FeeSchedule
    chart: Chart

    @property
    def database_url(self) -> str:
        if self.service.database.url:
            return self.service.database.url
        return f"sqlite:///{Path(self.service.data_dir).resolve() / 'etimbre.db'}"

    @property
    def data_dir(self) -> Path:
        return Path(self.service.data_dir).resolve()

    @property
    def keys_dir(self) -> Path:
        """Where development secrets and exported trust anchors go (default <data_dir>/keys)."""
        return Path(self.service.stamps.keys_dir or Path(self.service.data_dir) / "keys").resolve()

    @property
    def production(self) -> bool:
        return self.service.environment == "production"

    def consulate(self, code: str) -> Consulate:
        try:
            return self.consulates[code]
        except KeyError:
            raise LookupError(f"unknown consulate {code!r}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), "", f"not valid TOML: {error}") from None


_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _convert(data: Any, kind: type[_T], source: str, renames: Mapping[str, str] | None = None) -> _T:
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        match = _AT_PATH.search(message)
        key = match["path"].replace("[", ".").replace("]", "") if match else ""
        problem = message[: match.start()] if match else message
        if renames and key in renames:
            source, key = "environment", renames[key]
        raise ConfigError(source, key, problem) from None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Fold ETIMBRE_<SECTION>_<KEY> variables into the settings; returns key path → variable name."""
    sections = {name: set(kind.__struct_fields__) for name, kind in _SECTIONS.items()}
    top = set(ServiceSettings.__struct_fields__) - set(sections)
    applied: dict[str, str] = {}
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable.removeprefix(ENV_PREFIX).lower()
        if name in top:
            data[name] = value
            applied[name] = variable
            continue
        for section, keys in sections.items():
            key = name.removeprefix(section + "_")
            if name.startswith(section + "_") and key in keys:
                data.setdefault(section, {})[key] = _table(value) if value.lstrip().startswith("{") else value
                applied[f"{section}.{key}"] = variable
    return applied


def _table(value: str) -> Any:
    # A table setting (per-currency amounts) comes from the environment as JSON: {"EUR": "0.02"}.
    try:
        return json.loads(value)
    except ValueError:
        return value  # left as text: the settings check then names the variable and what it expected


def _check_reconciliation(settings: ReconciliationSettings, source: str) -> None:
    if settings.window_days > settings.search_days:
        raise ConfigError(source, "reconciliation.window_days", "must not be more than search_days")
    for name in ("tolerance", "approval_threshold"):
        table: dict[str, str] = getattr(settings, name)
        for currency, amount in table.items():
            key = f"reconciliation.{name}.{currency}"
            if currency == "default":
                if not re.fullmatch(r"[0-9]{1,12}", amount):
                    raise ConfigError(source, key, f"{amount!r}: give whole units (valid in every currency)")
                continue
            try:
                check_currency(currency)
                Money.parse(amount, currency)
            except MoneyError as error:
                raise ConfigError(source, key, str(error)) from None


def _labels(raw: _LabelsFile) -> Labels:
    return Labels(fr=raw.fr, ar=raw.ar, en=raw.en)


def _consulates(path: Path) -> dict[str, Consulate]:
    raw = _convert(_read_toml(path), _ConsulatesFile, str(path))
    consulates: dict[str, Consulate] = {}
    for index, item in enumerate(raw.consulate):
        key = f"consulate.{index}"
        if not CONSULATE_CODE.fullmatch(item.code):
            raise ConfigError(
                str(path), f"{key}.code", f"{item.code!r} is not of the form CC-XXX (e.g. FR-PAR)"
            )
        if item.code in consulates:
            raise ConfigError(str(path), f"{key}.code", f"consulate {item.code} is listed twice")
        try:
            check_currency(item.currency)
        except MoneyError as error:
            raise ConfigError(str(path), f"{key}.currency", str(error)) from None
        try:
            zoneinfo.ZoneInfo(item.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(str(path), f"{key}.timezone", f"unknown time zone {item.timezone!r}") from None
        consulates[item.code] = Consulate(
            code=item.code,
            name=_labels(item.name),
            country=item.country,
            currency=item.currency,
            timezone=item.timezone,
        )
    if not consulates:
        raise ConfigError(str(path), "consulate", "at least one consulate is needed")
    return consulates


def _price(text: str, currency: str, source: str, key: str) -> Money:
    try:
        return Money.parse(text, currency)
    except MoneyError as error:
        raise ConfigError(source, key, str(error)) from None


def _check_fee_number(
    fee: _FeeFile, number_of: dict[str, int], code_of: dict[int, str], source: str, key: str
) -> None:
    """A fee keeps one stamp number in every version, and no two fees ever share one."""
    earlier = number_of.get(fee.code)
    if earlier is not None and earlier != fee.number:
        raise ConfigError(
            source,
            f"{key}.number",
            f"fee {fee.code} has number {earlier} in an earlier version, not {fee.number}",
        )
    holder = code_of.get(fee.number)
    if holder is not None and holder != fee.code:
        raise ConfigError(
            source,
            f"{key}.number",
            f"number {fee.number} is already given to fee {holder}; numbers are never reused",
        )
    number_of[fee.code] = fee.number
    code_of[fee.number] = fee.code


def _fee_schedule(path: Path, consulates: dict[str, Consulate]) -> FeeSchedule:
    source = str(path)
    raw = _convert(_read_toml(path), _FeesFile, source)
    versions: list[ScheduleVersion] = []
    number_of: dict[str, int] = {}  # fee code -> its stamp number, across every version
    code_of: dict[int, str] = {}
    for v_index, version in enumerate(raw.version):
        v_key = f"version.{v_index}"
        if version.effective_from.tzinfo is None:
            raise ConfigError(source, f"{v_key}.effective_from", "needs a time zone (write it in UTC with Z)")
        if versions and version.effective_from <= versions[-1].effective_from:
            raise ConfigError(
                source, f"{v_key}.effective_from", "versions must be listed in increasing date order"
            )
        if any(v.version == version.version for v in versions):
            raise ConfigError(source, f"{v_key}.version", f"version {version.version} is listed twice")
        fees: dict[str, Fee] = {}
        for f_index, fee in enumerate(version.fee):
            f_key = f"{v_key}.fee.{f_index}"
            if fee.code in fees:
                raise ConfigError(
                    source, f"{f_key}.code", f"fee {fee.code} is listed twice in {version.version}"
                )
            prices: dict[str, Money] = {}
            for currency, text in fee.prices.items():
                try:
                    check_currency(currency)
                except MoneyError as error:
                    raise ConfigError(source, f"{f_key}.prices.{currency}", str(error)) from None
                prices[currency] = _price(text, currency, source, f"{f_key}.prices.{currency}")
            by_consulate: dict[str, Money] = {}
            for code, text in fee.consulate_prices.items():
                if code not in consulates:
                    raise ConfigError(source, f"{f_key}.consulate_prices.{code}", f"unknown consulate {code}")
                by_consulate[code] = _price(
                    text, consulates[code].currency, source, f"{f_key}.consulate_prices.{code}"
                )
            _check_fee_number(fee, number_of, code_of, source, f_key)
            fees[fee.code] = Fee(fee.code, _labels(fee.label), prices, by_consulate, number=fee.number)
        versions.append(ScheduleVersion(version.version, version.effective_from, fees, number=v_index + 1))
    if not versions:
        raise ConfigError(source, "version", "at least one schedule version is needed")
    return FeeSchedule(versions=tuple(versions), example_data=raw.example_data)


def _chart(path: Path) -> Chart:
    source = str(path)
    raw = _convert(_read_toml(path), _AccountsFile, source)
    templates: dict[Role, AccountTemplate] = {}
    for name, role_file in raw.role.items():
        try:
            role = Role(name)
        except ValueError:
            raise ConfigError(
                source, f"role.{name}", f"unknown account role (known: {', '.join(Role)})"
            ) from None
        template = AccountTemplate(role, role_file.code, role_file.type, _labels(role_file.name))
        try:
            unknown = template.placeholders - {"provider", "consulate", "fee", "currency"}
        except ValueError as error:
            raise ConfigError(source, f"role.{name}.code", f"bad placeholder syntax: {error}") from None
        if unknown:
            raise ConfigError(source, f"role.{name}.code", f"unknown placeholder {{{sorted(unknown)[0]}}}")
        if "{currency}" not in template.code and "{consulate}" not in template.code:
            raise ConfigError(source, f"role.{name}.code", "an account code must name its {currency}")
        templates[role] = template
    missing = [role.value for role in Role if role not in templates]
    if missing:
        raise ConfigError(source, "role", f"missing account roles: {', '.join(missing)}")
    codes = [t.code for t in templates.values()]
    if len(set(codes)) != len(codes):
        raise ConfigError(source, "role", "two roles share one account code")
    return Chart(templates)


def load_settings(config_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate everything; raises ConfigError naming the file, the key and the problem."""
    environ = os.environ if environ is None else environ
    directory = Path(config_dir or environ.get("ETIMBRE_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    settings_path = directory / "settings.toml"
    data = _read_toml(settings_path)
    renames = _apply_environment(data, environ)
    service = _convert(data, ServiceSettings, str(settings_path), renames)
    try:
        zoneinfo.ZoneInfo(service.treasury.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            str(settings_path), "treasury.timezone", f"unknown time zone {service.treasury.timezone!r}"
        ) from None
    _check_reconciliation(service.reconciliation, str(settings_path))
    url = service.database.url
    if url and not url.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
        raise ConfigError(
            renames.get("database.url", str(settings_path)),
            "database.url",
            "must be sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE",
        )
    if service.stamps.refund_window_days > service.stamps.validity_days:
        raise ConfigError(
            renames.get("stamps.refund_window_days", str(settings_path)),
            "stamps.refund_window_days",
            f"a stamp lives {service.stamps.validity_days} days; it cannot be refundable for longer",
        )
    if service.environment == "production" and not url:
        raise ConfigError(str(settings_path), "database.url", "production needs an explicit database URL")
    consulates = _consulates(directory / "consulates.toml")
    return Settings(
        service=service,
        config_dir=directory,
        consulates=consulates,
        fees=_fee_schedule(directory / "fees.toml", consulates),
        chart=_chart(directory / "accounts.toml"),
    )


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
