"""Checking the chain of seals, and the database against signed daily seals."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from ledger.services.audit import merkle
from ledger.services.audit.daily import (
    DailySeal,
    DailySealError,
    check_signature,
    history_leaves,
    seal_hashes,
)
from ledger.services.audit.findings import Finding, Problem, Report
from ledger.services.audit.header import FORMAT, GENESIS, SealHeader
from ledger.services.audit.seals import StoredSeal, load_range
from receipts.keys import VerificationKey


def check_chain(seals: Sequence[StoredSeal], before: StoredSeal | None, first: int, report: Report) -> None:
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
