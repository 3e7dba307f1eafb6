"""Import profiles: versioned TOML descriptions of CSV/XLSX exports and settlement reports, checked."""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import msgspec

from ledger.money import MoneyError, check_currency
from reconciliation.importers.values import NumberFormat
from reconciliation.lines import SettlementCategory, SourceKind

DEFAULT_PROFILE_DIR = Path(__file__).resolve().parents[2] / "config" / "import_profiles"

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_THOUSANDS = {",", ".", " ", "\u00a0", "\u202f", "'"}
_ASCII_SAMPLE = "\r\n\t ;,.\"'0123456789azAZ-"
_TREASURY_ONLY = ("amount", "debit", "credit", "indicator")
_SETTLEMENT_ONLY = ("gross", "fee", "net", "category")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class _ProfileSection(_Strict):
    name: str
    version: int
    kind: Literal["treasury", "settlement"] = "treasury"
    format: Literal["csv", "xlsx"] = "csv"
    description: str = ""
    provider: str | None = None


class _FileSection(_Strict):
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    quote_char: str = '"'
    skip_rows: int = 0
    sheet: str | None = None
    omit_columns: list[str] = []


class _NumbersSection(_Strict):
    decimal_mark: Literal[".", ","] = "."
    thousands_separators: list[str] = []


class _DatesSection(_Strict):
    format: str = "%Y-%m-%d"
    value_date_format: str | None = None


class _AmountSection(_Strict):
    sign: Literal["signed", "debit_credit", "indicator"] = "signed"
    negate: bool = False
    credit_marks: list[str] = []
    debit_marks: list[str] = []
    currency: str | None = None
    fees_negative: bool = False


class _ColumnsSection(_Strict):
    booking_date: str
    value_date: str | None = None
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    indicator: str | None = None
    currency: str | None = None
    reference: str | None = None
    counterparty: str | None = None
    description: str | None = None
    entry_reference: str | None = None
    batch_reference: str | None = None
    gross: str | None = None
    fee: str | None = None
    net: str | None = None
    category: str | None = None


class _ProfileFile(_Strict):
    profile: _ProfileSection
    columns: _ColumnsSection
    file: _FileSection = msgspec.field(default_factory=_FileSection)
    numbers: _NumbersSection = msgspec.field(default_factory=_NumbersSection)
    dates: _DatesSection = msgspec.field(default_factory=_DatesSection)
    amount: _AmountSection = msgspec.field(default_factory=_AmountSection)
    # Checked by hand, not as dict[str, SettlementCategory]: msgspec would not name the offending key.
    categories: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class ImportProfile:
    """A checked profile; `digest` (SHA-256 of the file) lets a run record exactly what it used."""

    name: str
    version: int
    kind: Literal["treasury", "settlement"]
    format: Literal["csv", "xlsx"]
    description: str
    provider: str | None
    encoding: str
    delimiter: str
    quote_char: str
    skip_rows: int
    sheet: str | None
    omit_columns: frozenset[str]
    numbers: NumberFormat
    date_format: str
    value_date_format: str
    sign: Literal["signed", "debit_credit", "indicator"]
    negate: bool
    credit_marks: frozenset[str]
    debit_marks: frozenset[str]
    currency: str | None
    fees_negative: bool
    # Mappings do not hash; the digest already stands for the whole file.
    columns: Mapping[str, str] = field(hash=False)
    categories: Mapping[str, SettlementCategory] = field(hash=False)
    path: str
    digest: str

    @property
    def source(self) -> SourceKind:
        if self.kind == "settlement":
            return SourceKind.SETTLEMENT
        return SourceKind.TREASURY_XLSX if self.format == "xlsx" else SourceKind.TREASURY_CSV

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def load_profile(path: Path | str) -> ImportProfile:
    """Read and check one profile file; any problem raises ProfileError naming the file and the key."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ProfileError(path, None, f"cannot be read ({error.strerror})") from None
    return parse_profile(content, path)


def parse_profile(content: bytes, path: Path | str = "<profile>") -> ImportProfile:
    try:
        spec = msgspec.toml.decode(content, type=_ProfileFile)
    except msgspec.ValidationError as error:
        key, problem = _split_location(str(error))
        raise ProfileError(path, key, problem) from None
    except msgspec.DecodeError as error:
        raise ProfileError(path, None, f"is not valid TOML: {error}") from None
    _check(spec, path)
    columns = {name: header for name, header in msgspec.structs.asdict(spec.columns).items() if header}
    return ImportProfile(
        name=spec.profile.name,
        version=spec.profile.version,
        kind=spec.profile.kind,
        format=spec.profile.format,
        description=spec.profile.description,
        provider=spec.profile.provider,
        encoding=codecs.lookup(spec.file.encoding).name,
        delimiter=spec.file.delimiter,
        quote_char=spec.file.quote_char,
        skip_rows=spec.file.skip_rows,
        sheet=spec.file.sheet,
        omit_columns=frozenset(spec.file.omit_columns),
        numbers=NumberFormat(spec.numbers.decimal_mark, frozenset(spec.numbers.thousands_separators)),
        date_format=spec.dates.format,
        value_date_format=spec.dates.value_date_format or spec.dates.format,
        sign=spec.amount.sign,
        negate=spec.amount.negate,
        credit_marks=frozenset(m.casefold() for m in spec.amount.credit_marks),
        debit_marks=frozenset(m.casefold() for m in spec.amount.debit_marks),
        currency=spec.amount.currency,
        fees_negative=spec.amount.fees_negative,
        columns=columns,
        categories={name.casefold(): SettlementCategory(value) for name, value in spec.categories.items()},
        path=str(path),
        digest=hashlib.sha256(content).hexdigest(),
    )


def _split_location(message: str) -> tuple[str | None, str]:
    # msgspec says "Expected `int`, got `str` - at `$.numbers.decimal_mark`"; lead with the key instead.
    found = re.fullmatch(r"(?s)(?P<problem>.*) - at `\$\.?(?P<key>[^`]*)`", message)
    if found is None:
        return None, message
    return found["key"] or None, found["problem"]


def _check(spec: _ProfileFile, path: Path | str) -> None:
    head = spec.profile
    if not _NAME.fullmatch(head.name):
        raise ProfileError(
            path, "profile.name", f"{head.name!r} must be lower-case letters, digits and dashes"
        )
    if head.version < 1:
        raise ProfileError(path, "profile.version", f"must be 1 or more, got {head.version}")
    _check_file(spec.file, path)
    _check_numbers(spec.numbers, path)
    _check_date_format(spec.dates.format, "dates.format", path)
    if spec.dates.value_date_format is not None:
        _check_date_format(spec.dates.value_date_format, "dates.value_date_format", path)
    if (spec.amount.currency is None) == (spec.columns.currency is None):
        raise ProfileError(
            path, "amount.currency", "give either a fixed amount.currency or a columns.currency, not both"
        )
    if spec.amount.currency is not None:
        try:
            check_currency(spec.amount.currency)
        except MoneyError as error:
            raise ProfileError(path, "amount.currency", str(error)) from None
    if head.kind == "settlement":
        _check_settlement(spec, path)
    else:
        _check_treasury(spec, path)


def _check_file(file: _FileSection, path: Path | str) -> None:
    try:
        codecs.lookup(file.encoding)
    except LookupError:
        raise ProfileError(path, "file.encoding", f"unknown encoding {file.encoding!r}") from None
    if not _ascii_compatible(file.encoding):
        # Lines are split and numbered on the raw bytes, which needs an encoding that keeps ASCII as is.
        raise ProfileError(
            path, "file.encoding", f"{file.encoding!r} is not ASCII-compatible; use utf-8 or a code page"
        )
    if len(file.delimiter) != 1:
        raise ProfileError(path, "file.delimiter", f"must be one character, got {file.delimiter!r}")
    if len(file.quote_char) != 1 or file.quote_char == file.delimiter:
        raise ProfileError(
            path,
            "file.quote_char",
            f"must be one character other than the delimiter, got {file.quote_char!r}",
        )
    if file.skip_rows < 0:
        raise ProfileError(path, "file.skip_rows", f"must not be negative, got {file.skip_rows}")


def _ascii_compatible(encoding: str) -> bool:
    try:
        return _ASCII_SAMPLE.encode("ascii").decode(encoding) == _ASCII_SAMPLE
    except UnicodeDecodeError:
        return False


def _check_numbers(numbers: _NumbersSection, path: Path | str) -> None:
    wrong = set(numbers.thousands_separators) - _THOUSANDS
    if numbers.decimal_mark in numbers.thousands_separators:
        wrong.add(numbers.decimal_mark)
    if wrong:
        raise ProfileError(
            path,
            "numbers.thousands_separators",
            f"{sorted(wrong)} cannot separate thousands here; use ',', '.', ' ', no-break space (\\u00a0), "
            'narrow no-break space (\\u202f) or "\'", other than the decimal mark',
        )


def _check_settlement(spec: _ProfileFile, path: Path | str) -> None:
    if not spec.profile.provider:
        raise ProfileError(path, "profile.provider", "a settlement profile names its provider")
    for name in _TREASURY_ONLY:
        if getattr(spec.columns, name) is not None:
            raise ProfileError(path, f"columns.{name}", "settlement profiles read gross, fee and net instead")
    for name in ("gross", "fee", "category"):
        if getattr(spec.columns, name) is None:
            raise ProfileError(path, f"columns.{name}", "a settlement profile needs this column")
    known = ", ".join(category.value for category in SettlementCategory)
    if not spec.categories:
        raise ProfileError(path, "categories", f"map the report's categories to the ledger's ({known})")
    for name, value in spec.categories.items():
        if value not in SettlementCategory.__members__.values():
            raise ProfileError(path, f"categories.{name}", f"{value!r} is not one of {known}")


def _check_treasury(spec: _ProfileFile, path: Path | str) -> None:
    amount = spec.amount
    for name in _SETTLEMENT_ONLY:
        if getattr(spec.columns, name) is not None:
            raise ProfileError(path, f"columns.{name}", "only settlement profiles have this column")
    if spec.categories:
        raise ProfileError(path, "categories", "only settlement profiles have categories")
    needed = {
        "signed": ("amount",),
        "debit_credit": ("debit", "credit"),
        "indicator": ("amount", "indicator"),
    }
    for name in needed[amount.sign]:
        if getattr(spec.columns, name) is None:
            raise ProfileError(path, f"columns.{name}", f"amount.sign = {amount.sign!r} needs this column")
    if amount.sign == "indicator":
        if not amount.credit_marks or not amount.debit_marks:
            raise ProfileError(
                path, "amount.credit_marks", "amount.sign = 'indicator' needs credit_marks and debit_marks"
            )
        both = {m.casefold() for m in amount.credit_marks} & {m.casefold() for m in amount.debit_marks}
        if both:
            raise ProfileError(
                path, "amount.debit_marks", f"{sorted(both)} cannot mean both credit and debit"
            )


def _check_date_format(date_format: str, key: str, path: Path | str) -> None:
    sample = date(2026, 11, 22)
    try:
        # A format is usable when it writes and reads back a whole calendar date.
        ok = datetime.strptime(sample.strftime(date_format), date_format).date() == sample  # noqa: DTZ007
    except ValueError:
        ok = False
    if not ok:
        raise ProfileError(
            path, key, f"{date_format!r} does not read a whole date (day, month and year), e.g. '%d/%m/%Y'"
        )


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Every profile of a directory, by name and version."""

    profiles: Mapping[tuple[str, int], ImportProfile]

    def get(self, name: str, version: int | None = None) -> ImportProfile:
        """The named profile, at `version` or else its latest version."""
        versions = sorted(v for (n, v) in self.profiles if n == name)
        if not versions:
            known = ", ".join(sorted({n for n, _ in self.profiles})) or "none"
            raise LookupError(f"no import profile named {name!r} (known: {known})")
        chosen = versions[-1] if version is None else version
        if chosen not in versions:
            raise LookupError(f"import profile {name!r} has no version {version} (has {versions})")
        return self.profiles[(name, chosen)]

    def __iter__(self) -> Iterator[ImportProfile]:
        return iter(self.profiles[key] for key in sorted(self.profiles))


def load_profiles(directory: Path | str = DEFAULT_PROFILE_DIR) -> ProfileSet:
    """Load every `*.toml` of `directory`; two files with the same name and version are an error."""
    found: dict[tuple[str, int], ImportProfile] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        profile = load_profile(path)
        key = (profile.name, profile.version)
        if key in found:
            raise ProfileError(
                path, "profile.version", f"{profile.label} is also defined in {found[key].path}"
            )
        found[key] = profile
    return ProfileSet(found)
