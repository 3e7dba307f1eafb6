"""The verifier: recompute every seal from the rows and name what was altered, removed, inserted or rewritten."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.services.audit import merkle
from ledger.services.audit.daily import (
    DailySeal,
    DailySealError,
    check_signature,
    history_leaves,
    seal_hashes,
    stored_dailies,
)
from ledger.services.audit.encoding import FieldType, decode_fields, decode_integer
from ledger.services.audit.header import FORMAT, GENESIS, SealHeader
from ledger.services.audit.kinds import REGISTRY, RecordKind, registry
from ledger.services.audit.records import dialect_of, member_key, position, read_range, seal_digests
from ledger.services.audit.seals import Member, StoredSeal, latest, load_range, members, unsealed_counts
from receipts.keys import VerificationKey

DEFAULT_TOLERANCE_US = 60_000_000
Progress = Callable[[int], None]


class Problem(StrEnum):
    """What the verifier found (stable codes, documented in docs/audit-seals.md)."""

    ALTERED = "altered"  # a sealed record no longer encodes to the leaf its seal lists
    REMOVED = "removed"  # a sealed record is gone
    INSERTED = "inserted"  # a record lies in a sealed range but its seal does not list it
    BACKDATED = "backdated"  # recorded before every transaction open at the previous seal: slipped in
    SEAL_REWRITTEN = "seal_rewritten"  # a seal no longer hashes to the hash stored with it
    CHAIN_BROKEN = "chain_broken"  # a seal no longer hashes to what the next seal recorded
    SEAL_MISSING = "seal_missing"  # a seal number is missing from the chain
    MEMBERS_REWRITTEN = "members_rewritten"  # a seal's member list no longer gives its Merkle root
    CONTENT_CHANGED = "content_changed"  # a seal's records differ from its digest in no way named above
    DAILY_MISMATCH = "daily_mismatch"  # the database differs from a signed daily seal
    DAILY_INVALID = "daily_invalid"  # a daily seal document that does not verify


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    seal_no: int | None
    message: str
    kind: str | None = None
    key: str | None = None


@dataclass(slots=True)
class Report:
    first_seal: int | None = None
    last_seal: int | None = None
    seals: int = 0
    records: int = 0
    unsealed: dict[str, int] = field(default_factory=dict)
    daily_seals: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def describe_key(kind: RecordKind, key: bytes) -> str:
    """A member key as people read it: `0190c6e2-…` for an entry, `0190c6e2-… line 2` for a posting."""
    fields, _ = decode_fields(key)
    parts: list[str] = []
    for value, spec in zip(fields, kind.key, strict=False):
        if value is None:
            parts.append("NULL")
        elif spec.type is FieldType.UUID and len(value) == 16:
            parts.append(str(uuid.UUID(bytes=value)))
        elif spec.type is FieldType.INTEGER:
            parts.append(f"{spec.name.replace('_no', '')} {decode_integer(value)}")
        else:
            parts.append(value.decode("utf-8", "replace"))
    return " ".join(parts)


# The chain ---------------------------------------------------------------------------------------------------


def _check_chain(seals: Sequence[StoredSeal], before: StoredSeal | None, first: int, report: Report) -> None:
    expected = first
    previous = before
    for seal in seals:
        header = seal.header
        while expected < header.seal_no:
            report.findings.append(
                Finding(Problem.SEAL_MISSING, expected, f"seal {expected} is missing from the chain")
            )
            expected += 1
            previous = None
        expected = header.seal_no + 1
        recomputed = header.hash()
        if recomputed != seal.stored_hash or header.format != FORMAT:
            report.findings.append(
                Finding(
                    Problem.SEAL_REWRITTEN,
                    header.seal_no,
                    f"seal {header.seal_no} was rewritten: it hashes to {recomputed.hex()}, "
                    f"not to the {seal.stored_hash.hex()} stored with it",
                )
            )
        if sum(kind.record_count for kind in header.kinds) != header.record_count:
            report.findings.append(
                Finding(
                    Problem.SEAL_REWRITTEN,
                    header.seal_no,
                    f"seal {header.seal_no} was rewritten: its record count is not the sum of its kinds'",
                )
            )
        if header.seal_no == 1 and header.previous_hash != GENESIS:
            report.findings.append(
                Finding(
                    Problem.CHAIN_BROKEN, 1, "seal 1 does not start the chain (its previous hash is not zero)"
                )
            )
        if previous is not None:
            _check_link(previous, header, report)
        previous = seal


def _check_link(previous: StoredSeal, header: SealHeader, report: Report) -> None:
    before = previous.header
    if header.previous_hash != before.hash():
        report.findings.append(
            Finding(
                Problem.CHAIN_BROKEN,
                before.seal_no,
                f"seal {before.seal_no} was rewritten after seal {header.seal_no} was cut: it now hashes to "
                f"{before.hash().hex()}, seal {header.seal_no} recorded {header.previous_hash.hex()}",
            )
        )
    for kind in header.kinds:
        earlier = before.kind(kind.kind)
        if earlier is not None and earlier.end_position != kind.first_position:
            report.findings.append(
                Finding(
                    Problem.CHAIN_BROKEN,
                    header.seal_no,
                    f"seal {header.seal_no} does not start its {kind.kind} records where seal "
                    f"{before.seal_no} ended ({kind.first_position} ≠ {earlier.end_position})",
                    kind=kind.kind,
                )
            )


# The records -------------------------------------------------------------------------------------------------


def _mismatching_seals(
    session: Session, kind: RecordKind, seals: Sequence[StoredSeal], progress: Progress | None
) -> Iterator[int]:
    """Seals whose records of `kind` no longer concatenate to their digest (one pass over the journal)."""
    expected = {}
    for seal in seals:
        covered = seal.header.kind(kind.name)
        if covered is not None:
            expected[seal.header.seal_no] = (covered.record_count, covered.content_digest)
    for seal_no, count, digest in seal_digests(session, kind, sorted(expected), progress):
        if (count, digest) != expected[seal_no]:
            yield seal_no


def _locate(session: Session, seal: StoredSeal, kind: RecordKind, report: Report) -> None:
    """Name the records of `kind` in `seal` that differ from its member list."""
    header = seal.header
    covered = header.kind(kind.name)
    assert covered is not None
    stored = members(session, header.seal_no)
    ordered = [name for name in sorted(stored, key=str.encode)]
    leaves = [member.leaf for name in ordered for member in stored[name]]
    if merkle.root(leaves) != header.merkle_root:
        report.findings.append(
            Finding(
                Problem.MEMBERS_REWRITTEN,
                header.seal_no,
                f"the member list of seal {header.seal_no} was rewritten: its leaves no longer give the "
                "seal's Merkle root, so the records named below may not be all",
            )
        )
    before = {member.key: member.leaf for member in stored.get(kind.name, [])}
    now: dict[bytes, bytes] = {}
    named = 0
    for record in read_range(session, kind, covered.first_position, covered.end_position):
        now[member_key(kind, record)] = merkle.leaf_hash(record)
    for key, leaf in now.items():
        if key not in before:
            named += 1
            report.findings.append(
                Finding(
                    Problem.INSERTED,
                    header.seal_no,
                    f"{kind.name} {describe_key(kind, key)} was inserted into seal {header.seal_no}'s range "
                    "after the seal was cut",
                    kind.name,
                    describe_key(kind, key),
                )
            )
        elif before[key] != leaf:
            named += 1
            report.findings.append(
                Finding(
                    Problem.ALTERED,
                    header.seal_no,
                    f"{kind.name} {describe_key(kind, key)} was altered after seal {header.seal_no} sealed it",
                    kind.name,
                    describe_key(kind, key),
                )
            )
    for key in before:
        if key not in now:
            named += 1
            report.findings.append(
                Finding(
                    Problem.REMOVED,
                    header.seal_no,
                    f"{kind.name} {describe_key(kind, key)} sealed in seal {header.seal_no} was removed",
                    kind.name,
                    describe_key(kind, key),
                )
            )
    if not named:
        report.findings.append(
            Finding(
                Problem.CONTENT_CHANGED,
                header.seal_no,
                f"the {kind.name} records of seal {header.seal_no} no longer match its digest",
                kind.name,
            )
        )


def _deep(session: Session, seal: StoredSeal, kinds: Sequence[RecordKind], report: Report) -> set[str]:
    """Recompute a seal's digests and Merkle root from the rows; the kinds whose records differ."""
    header = seal.header
    leaves: list[bytes] = []
    damaged: set[str] = set()
    for kind in kinds:
        covered = header.kind(kind.name)
        if covered is None:
            continue
        records = read_range(session, kind, covered.first_position, covered.end_position)
        if (len(records), hashlib.sha256(b"".join(records)).digest()) != (
            covered.record_count,
            covered.content_digest,
        ):
            damaged.add(kind.name)
        leaves += [merkle.leaf_hash(record) for record in records]
    if not damaged and merkle.root(leaves) != header.merkle_root:
        report.findings.append(
            Finding(
                Problem.SEAL_REWRITTEN,
                header.seal_no,
                f"seal {header.seal_no} was rewritten: its Merkle root does not match its records",
            )
        )
    if not damaged:
        stored = members(session, header.seal_no)
        if [member.leaf for name in sorted(stored, key=str.encode) for member in stored[name]] != leaves:
            report.findings.append(
                Finding(
                    Problem.MEMBERS_REWRITTEN,
                    header.seal_no,
                    f"the member list of seal {header.seal_no} was rewritten (its records are intact)",
                )
            )
    return damaged


# Records slipped in with a past date ------------------------------------------------------------------------


def _backdated(
    session: Session, kind: RecordKind, first: int, last: int, tolerance_us: int, report: Report
) -> None:
    """Records in seals first..last recorded before every transaction open when the seal before was cut."""
    assert kind.recorded_at is not None
    dialect = dialect_of(session)
    at = position(dialect)
    keys = ", ".join(f.sql for f in kind.key)
    covered = f"{at} >= s.first_position AND {at} < s.end_position"
    late = f"{kind.recorded_at} < p.complete_through - :tolerance"
    source = (
        f"CROSS JOIN LATERAL (SELECT t.* FROM {kind.table} t WHERE {covered} AND {late}) t"
        if dialect == "postgresql"
        else f"JOIN {kind.table} t ON {covered} AND {late}"
    )
    rows = session.execute(
        text(
            f"SELECT s.seal_no, {kind.recorded_at} AS recorded_at, p.complete_through, {keys} "
            f"FROM audit_seal_kinds s JOIN audit_seals p ON p.seal_no = s.seal_no - 1 {source} "
            f"WHERE s.kind = :kind AND s.seal_no BETWEEN :first AND :last ORDER BY s.seal_no"
        ),
        {"kind": kind.name, "first": first, "last": last, "tolerance": tolerance_us},
    ).all()
    for row in rows:
        key = _key_text(kind, row[3:])
        report.findings.append(
            Finding(
                Problem.BACKDATED,
                row.seal_no,
                f"{kind.name} {key} was sealed in seal {row.seal_no} but recorded "
                f"{(row.complete_through - row.recorded_at) / 1e6:.0f} s before the oldest transaction open "
                f"when seal {row.seal_no - 1} was cut: it was slipped in behind the service's back",
                kind.name,
                key,
            )
        )


def _key_text(kind: RecordKind, values: Sequence[object]) -> str:
    parts = []
    for value, spec in zip(values, kind.key, strict=True):
        if spec.type is FieldType.UUID and isinstance(value, bytes | uuid.UUID):
            parts.append(str(value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=value)))
        elif spec.type is FieldType.INTEGER:
            parts.append(f"{spec.name.replace('_no', '')} {value}")
        else:
            parts.append(str(value))
    return " ".join(parts)


def _unsealed(
    session: Session, kinds: Sequence[RecordKind], last: StoredSeal | None, tolerance_us: int, report: Report
) -> None:
    at = position(dialect_of(session))
    for kind in kinds:
        covered = last.header.kind(kind.name) if last else None
        end = covered.end_position if covered else 0
        report.unsealed[kind.name] = unsealed_counts(session, last, [kind])[kind.name]
        if kind.recorded_at is None or last is None:
            continue
        keys = ", ".join(f.sql for f in kind.key)
        for row in session.execute(
            text(
                f"SELECT {kind.recorded_at}, {keys} FROM {kind.table} t"
                f" WHERE {at} >= :end AND {kind.recorded_at} < :limit"
            ),
            {"end": end, "limit": last.header.complete_through - tolerance_us},
        ):
            key = _key_text(kind, row[1:])
            report.findings.append(
                Finding(
                    Problem.BACKDATED,
                    None,
                    f"{kind.name} {key} is not sealed yet but was recorded "
                    f"{(last.header.complete_through - row[0]) / 1e6:.0f} s before the oldest transaction open "
                    f"when the last seal ({last.header.seal_no}) was cut: it was slipped in behind the "
                    "service's back",
                    kind.name,
                    key,
                )
            )


# Daily seals -------------------------------------------------------------------------------------------------


def check_daily(
    session: Session, daily: DailySeal, keys: Sequence[VerificationKey] | None, report: Report
) -> None:
    """Hold the database against a daily seal: its signature (when keys are given), the seal it signs and
    the history of seal hashes before it."""
    statement = daily.statement
    label = f"the daily seal of {statement.day}"
    report.daily_seals.append(statement.day)
    if keys is not None:
        try:
            check_signature(daily, keys)
        except DailySealError as error:
            report.findings.append(Finding(Problem.DAILY_INVALID, statement.seal_no, str(error)))
            return
    seal = load_range(session, statement.seal_no, statement.seal_no)
    if not seal:
        report.findings.append(
            Finding(
                Problem.DAILY_MISMATCH,
                statement.seal_no,
                f"seal {statement.seal_no}, signed in {label}, is missing from the database",
            )
        )
        return
    header = seal[0].header
    if header.hash() != statement.seal_hash or header.merkle_root != statement.merkle_root:
        report.findings.append(
            Finding(
                Problem.DAILY_MISMATCH,
                statement.seal_no,
                f"seal {statement.seal_no} differs from {label}: it hashes to {header.hash().hex()}, the "
                f"treasury holds {statement.seal_hash.hex()}; the chain was rewritten at or before it",
            )
        )
        return
    hashes = seal_hashes(session, statement.seal_no)
    if len(hashes) != statement.seal_no or merkle.root(history_leaves(hashes)) != statement.history_root:
        report.findings.append(
            Finding(
                Problem.DAILY_MISMATCH,
                statement.seal_no,
                f"the seals before seal {statement.seal_no} differ from the history signed in {label}: "
                "an earlier seal was rewritten or removed",
            )
        )


# The whole check ---------------------------------------------------------------------------------------------


def verify(
    session: Session,
    *,
    first: int | None = None,
    last: int | None = None,
    deep: bool = False,
    tolerance_us: int = DEFAULT_TOLERANCE_US,
    kinds: Sequence[RecordKind] = REGISTRY,
    progress: Progress | None = None,
    dailies: Sequence[DailySeal] = (),
    keys: Sequence[VerificationKey] | None = None,
) -> Report:
    """Check seals first..last (default: all) against the rows, the chain, the records not sealed yet,
    and every daily seal given (archived copies) or stored (signatures checked when `keys` are given)."""
    kinds = registry(kinds)
    newest = latest(session)
    report = Report()
    for daily in [*dailies, *stored_dailies(session)]:
        check_daily(session, daily, keys, report)
    if newest is None:
        _unsealed(session, kinds, None, tolerance_us, report)
        return report
    first = max(1, first or 1)
    last = min(newest.header.seal_no, last or newest.header.seal_no)
    report.first_seal, report.last_seal = first, last
    loaded = load_range(session, max(1, first - 1), last)
    before = loaded[0] if loaded and loaded[0].header.seal_no == first - 1 else None
    seals = [seal for seal in loaded if seal.header.seal_no >= first]
    report.seals = len(seals)
    report.records = sum(seal.header.record_count for seal in seals)
    _check_chain(seals, before, first, report)
    by_number = {seal.header.seal_no: seal for seal in seals}
    damaged: dict[int, set[str]] = {}
    if deep:
        for seal in seals:
            for name in _deep(session, seal, kinds, report):
                damaged.setdefault(seal.header.seal_no, set()).add(name)
            if progress is not None:
                progress(seal.header.record_count)
    else:
        for kind in kinds:
            for seal_no in _mismatching_seals(session, kind, seals, progress):
                damaged.setdefault(seal_no, set()).add(kind.name)
    for seal_no in sorted(damaged):
        for kind in kinds:
            if kind.name in damaged[seal_no]:
                _locate(session, by_number[seal_no], kind, report)
    for kind in kinds:
        if kind.recorded_at is not None and last >= max(first, 2):
            _backdated(session, kind, max(first, 2), last, tolerance_us, report)
    if last == newest.header.seal_no:
        _unsealed(session, kinds, newest, tolerance_us, report)
    report.findings.sort(key=lambda f: (f.seal_no is None, f.seal_no or 0))
    return report


def leaves_of(session: Session, seal: StoredSeal, kinds: Sequence[RecordKind] = REGISTRY) -> list[Member]:
    """The members of a seal recomputed from the rows, in leaf order (for proofs over an intact seal)."""
    found: list[Member] = []
    for kind in registry(kinds):
        covered = seal.header.kind(kind.name)
        if covered is None:
            continue
        for record in read_range(session, kind, covered.first_position, covered.end_position):
            found.append(Member(merkle.leaf_hash(record), member_key(kind, record)))
    return found
