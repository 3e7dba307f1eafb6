"""The verifier: recompute every seal from the rows; name what was altered, removed, inserted or rewritten."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.services.audit.chain import check_chain, check_daily
from ledger.services.audit.contents import Progress, deep_check, locate, mismatching_seals
from ledger.services.audit.daily import DailySeal, stored_dailies
from ledger.services.audit.findings import Report
from ledger.services.audit.kinds import REGISTRY, RecordKind, registry
from ledger.services.audit.lateness import backdated_sealed, unsealed
from ledger.services.audit.seals import StoredSeal, latest, load_range
from receipts.keys import VerificationKey

DEFAULT_TOLERANCE_US = 60_000_000


def _damaged(
    session: Session,
    *,
    seals: Sequence[StoredSeal],
    kinds: Sequence[RecordKind],
    deep: bool,
    progress: Progress | None,
    report: Report,
    database: Database | None,
) -> dict[int, set[str]]:
    """Seal number → the kinds whose records no longer match the seal."""
    damaged: dict[int, set[str]] = {}
    if deep:
        for seal in seals:
            for name in deep_check(session, seal, kinds, report):
                damaged.setdefault(seal.header.seal_no, set()).add(name)
            if progress is not None:
                progress(seal.header.record_count)
        return damaged
    if database is None or len(kinds) < 2:
        for kind in kinds:
            for seal_no in mismatching_seals(session, kind, seals, progress):
                damaged.setdefault(seal_no, set()).add(kind.name)
        return damaged

    # Each kind on its own connection: the database streams one while this process hashes another.
    def check(kind: RecordKind) -> list[int]:
        with database.read() as own:
            return list(mismatching_seals(own, kind, seals, progress))

    with ThreadPoolExecutor(max_workers=len(kinds), thread_name_prefix="verify") as pool:
        for kind, found in zip(kinds, pool.map(check, kinds), strict=True):
            for seal_no in found:
                damaged.setdefault(seal_no, set()).add(kind.name)
    return damaged


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
    database: Database | None = None,
) -> Report:
    """Check seals first..last (default: all) against the rows and the chain, the records not sealed yet,
    and every daily seal given (archived copies) or stored; signatures are checked when `keys` are given.
    With `database`, the record kinds are streamed in parallel, each on a connection of its own."""
    kinds = registry(kinds)
    newest = latest(session)
    report = Report()
    for daily in [*dailies, *stored_dailies(session)]:
        check_daily(session, daily, keys, report)
    if newest is None:
        unsealed(session, kinds, None, tolerance_us, report)
        return report
    first = max(1, first or 1)
    last = min(newest.header.seal_no, last or newest.header.seal_no)
    report.first_seal, report.last_seal = first, last
    loaded = load_range(session, max(1, first - 1), last)
    before = loaded[0] if loaded and loaded[0].header.seal_no == first - 1 else None
    seals = [seal for seal in loaded if seal.header.seal_no >= first]
    report.seals = len(seals)
    report.records = sum(seal.header.record_count for seal in seals)
    check_chain(seals, before, first, report)
    by_number = {seal.header.seal_no: seal for seal in seals}
    damaged = _damaged(
        session, seals=seals, kinds=kinds, deep=deep, progress=progress, report=report, database=database
    )
    for seal_no in sorted(damaged):
        for kind in kinds:
            if kind.name in damaged[seal_no]:
                locate(session, by_number[seal_no], kind, report)
    for kind in kinds:
        if kind.recorded_at is not None and last >= max(first, 2):
            backdated_sealed(session, kind, (max(first, 2), last), tolerance_us, report)
    if last == newest.header.seal_no:
        unsealed(session, kinds, newest, tolerance_us, report)
    report.findings.sort(key=lambda f: (f.seal_no is None, f.seal_no or 0))
    return report
