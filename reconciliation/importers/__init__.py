"""Statement importers: every treasury, bank and acquirer file read into checked, normalized lines.

Two ways in. `read_import` parses a whole file and returns a ParsedImport (lines, statements, checks and
hash) or raises ImportRejectedError listing every malformed line: never a partial list. `stream_import`
yields the same lines and statements one by one for files too large to hold (the caller writes them in one
transaction and rolls back if ImportRejectedError comes at the end), with ImportChecks fed along the way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from reconciliation.importers.camt053 import read_camt053
from reconciliation.importers.checks import Finding, FindingKind, ImportChecks, Verdict, last_sequences
from reconciliation.importers.errors import ImportRejectedError, LineError
from reconciliation.importers.profiles import (
    ImportProfile,
    ProfileError,
    ProfileSet,
    load_profile,
    load_profiles,
)
from reconciliation.importers.sources import ImportSource, file_sha256
from reconciliation.importers.swift_mt940 import read_mt940
from reconciliation.importers.tabular import read_table
from reconciliation.lines import SequenceNumber, SourceKind, Statement, StatementLine

__all__ = [
    "Finding",
    "FindingKind",
    "ImportChecks",
    "ImportProfile",
    "ImportRejectedError",
    "ImportSource",
    "LineError",
    "ParsedImport",
    "ProfileError",
    "ProfileSet",
    "StatementFormat",
    "Verdict",
    "file_sha256",
    "load_profile",
    "load_profiles",
    "read_import",
    "stream_import",
]

# Bank statement formats that need no profile; CSV/XLSX exports and settlement reports need one.
StatementFormat = Literal["camt053", "mt940"]


@dataclass(frozen=True, slots=True)
class ParsedImport:
    """A completely parsed file: every line, every statement, the checks' verdict, and the file's hash."""

    sha256: str
    source: SourceKind
    profile: str | None
    profile_digest: str | None
    statements: tuple[Statement, ...]
    lines: tuple[StatementLine, ...]
    verdict: Verdict

    @property
    def last_sequences(self) -> dict[str, SequenceNumber]:
        """Per account, the sequence number to pass as `previous` when the next file is imported."""
        return last_sequences(self.statements)


def source_kind(layout: ImportProfile | StatementFormat) -> SourceKind:
    return layout.source if isinstance(layout, ImportProfile) else SourceKind(layout)


def stream_import(
    source: ImportSource, layout: ImportProfile | StatementFormat
) -> Iterator[StatementLine | Statement]:
    """The file's lines, each statement after its lines; at the end ImportRejectedError if any is bad."""
    if isinstance(layout, ImportProfile):
        return read_table(source, layout)
    if layout == "camt053":
        return read_camt053(source)
    if layout == "mt940":
        return read_mt940(source)
    raise ValueError(f"unknown statement format {layout!r}: give an import profile, 'camt053' or 'mt940'")


def read_import(
    source: ImportSource,
    layout: ImportProfile | StatementFormat,
    *,
    previous: Mapping[str, SequenceNumber] | None = None,
) -> ParsedImport:
    """Parse and check a whole file: a complete result, or ImportRejectedError with every error found."""
    kind = source_kind(layout)
    checks = ImportChecks(kind, previous)
    lines: list[StatementLine] = []
    statements: list[Statement] = []
    for item in stream_import(source, layout):
        checks.add(item)
        if isinstance(item, Statement):
            statements.append(item)
        else:
            lines.append(item)
    profile = layout if isinstance(layout, ImportProfile) else None
    return ParsedImport(
        sha256=file_sha256(source),
        source=kind,
        profile=profile.label if profile else None,
        profile_digest=profile.digest if profile else None,
        statements=tuple(statements),
        lines=tuple(lines),
        verdict=checks.verdict(),
    )
