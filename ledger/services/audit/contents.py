"""Checking the records against their seals: digests in one pass, then naming what differs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy.orm import Session

from ledger.services.audit import merkle
from ledger.services.audit.findings import Finding, Problem, Report, describe_key
from ledger.services.audit.kinds import REGISTRY, RecordKind, registry
from ledger.services.audit.records import member_key, read_range, seal_digests
from ledger.services.audit.seals import Member, StoredSeal, members

Progress = Callable[[int], None]


def mismatching_seals(
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


def locate(session: Session, seal: StoredSeal, kind: RecordKind, report: Report) -> None:
    """Name the records of `kind` in `seal` that differ from its member list."""
    header = seal.header
    covered = header.kind(kind.name)
    assert covered is not None
    stored = members(session, header.seal_no)
    leaves = [member.leaf for name in sorted(stored, key=str.encode) for member in stored[name]]
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
                    f"{kind.name} {describe_key(kind, key)} was altered after seal {header.seal_no} took it",
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


def deep_check(session: Session, seal: StoredSeal, kinds: Sequence[RecordKind], report: Report) -> set[str]:
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


def leaves_of(session: Session, seal: StoredSeal, kinds: Sequence[RecordKind] = REGISTRY) -> list[Member]:
    """The members of a seal recomputed from the rows, in leaf order (for proofs over an intact seal)."""
    found: list[Member] = []
    for kind in registry(kinds):
        covered = seal.header.kind(kind.name)
        if covered is None:
            continue
        found.extend(
            Member(merkle.leaf_hash(record), member_key(kind, record))
            for record in read_range(session, kind, covered.first_position, covered.end_position)
        )
    return found
