"""A reconciliation run of one business day: every pass in one unit of work, recorded with its inputs.

The run reads the imports it is given and the ledger around the day, matches in passes (decisions
already taken, exact references, aggregates, amount and date with a discriminator, tolerance, reversal
pairs), sorts what is left into categories, checks the balance per treasury account, and writes the
run, its matches and its exceptions together. The same inputs give the same results, item for item.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.db.models_reconciliation import ReconImport, ReconRun, ReconRunImport
from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine, References
from ledger.money import Money
from ledger.services import clock
from ledger.services.journal import post_entry
from ledger.settings import ReconciliationSettings
from reconciliation.days import BusinessDay, today_in
from reconciliation.matching import leftovers, passes, window
from reconciliation.matching.balance import balance_check
from reconciliation.matching.sink import ExceptionSink
from reconciliation.matching.work import EXPORT, LEDGER, MATCH, MATCH_COLUMNS_ROUNDING, Work

ENGINE_VERSION = "etimbre-reconcile/1"
FIRST_DAY = date(
    2000, 1, 1
)  # no ledger predates it; dates near the calendar's ends cannot be searched around
Progress = Callable[[str], None]


class RunRefusedError(ValueError):
    """The run cannot start with these inputs; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What to reconcile: a business day and the imports to reconcile it against."""

    day: date
    import_ids: tuple[int, ...]
    currencies: tuple[str, ...] = ()  # empty: the currencies of the imports' lines
    actor: str = ""


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    business_day: str
    scope: str
    match_count: int
    exception_count: int
    exceptions: dict[str, int]
    counts: dict[str, Any]
    balances: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.exception_count == 0


def _imports(session: Session, import_ids: Sequence[int]) -> list[ReconImport]:
    rows = {row.id: row for row in session.scalars(select(ReconImport).where(ReconImport.id.in_(import_ids)))}
    missing = sorted(set(import_ids) - set(rows))
    if missing:
        raise RunRefusedError(f"no import {', '.join(map(str, missing))}")
    for row in rows.values():
        if row.status != "imported":
            why = "; ".join(row.reasons) or row.status
            raise RunRefusedError(
                f"import {row.id} ({row.file_name or row.sha256[:12]}) is {row.status}: {why}"
            )
    return [rows[i] for i in sorted(rows)]


def _allocate_run_id(session: Session) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return int(
            session.execute(text("SELECT nextval(pg_get_serial_sequence('recon_runs', 'id'))")).scalar_one()
        )
    # SQLite: the write transaction holds the database's write lock from its first statement.
    return int(session.execute(text("SELECT coalesce(max(id), 0) + 1 FROM recon_runs")).scalar_one())


_DIGEST_FIELDS = (
    "kind",
    "currency",
    "cash",
    "treasury",
    "gross",
    "fee",
    "payment_ref",
    "settlement_ref",
    "import_line_ref",
    "effective_at",
)


def _ledger_digest(work: Work) -> str:
    """SHA-256 of the ledger side: one line per item, in item order, fields separated by U+001F.

    PostgreSQL writes the lines itself, a chunk of items at a time, so a million items cross the wire as a
    hundred strings; SQLite's are read row by row. Both give the same bytes for the same items.
    """
    digest = hashlib.sha256()
    if work.postgres:
        fields = " || chr(31) || ".join(f"CAST({name} AS text)" for name in _DIGEST_FIELDS)
        chunks = work.session.execute(
            text(f"""
                SELECT string_agg(line, '' ORDER BY item) FROM (
                    SELECT item, item / 10000 AS chunk,
                           replace(CAST(entry_id AS text), '-', '') || chr(31) || {fields} || chr(31)
                           || coalesce(replace(CAST(reversed_by AS text), '-', ''), '') || chr(10) AS line
                      FROM {LEDGER}
                ) lines GROUP BY chunk ORDER BY chunk
            """),
            execution_options={"yield_per": 10},
        )
        for (chunk,) in chunks:
            digest.update(chunk.encode())
        return digest.hexdigest()
    rows = work.session.execute(
        text(f"SELECT entry_id, {', '.join(_DIGEST_FIELDS)}, reversed_by FROM {LEDGER} ORDER BY item"),
        execution_options={"yield_per": 5000},
    )
    for row in rows:
        entry, *values, reversed_by = row
        line = [
            work.as_uuid(entry).hex,
            *map(str, values),
            work.as_uuid(reversed_by).hex if reversed_by else "",
        ]
        digest.update("\x1f".join(line).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _tolerance_pass(
    work: Work, settings: ReconciliationSettings, currencies: Sequence[str], chart: Chart, actor: str
) -> int:
    """Pairs by reference a little apart: matched, and the difference posted to the rounding account."""
    tolerances = {c: settings.tolerance_for(c).minor for c in currencies}
    pairs = passes.tolerance_candidates(work, tolerances)
    base = work.next_match_no()
    day = work.day.day.isoformat()
    rows = []
    for number, pair in enumerate(pairs, start=base + 1):
        (
            xi,
            li,
            amt,
            cash,
            currency,
            entry_id,
            cls,
            treasury,
            provider,
            consulate,
            payment,
            settlement,
            key,
            _,
        ) = pair
        delta = Money(int(amt) - int(cash), str(currency))
        if int(treasury) != 0 or cls == "settlement":
            held = chart.account(Role.TREASURY, currency=delta.currency)
        else:
            held = chart.account(Role.CLEARING, currency=delta.currency, provider=str(provider))
        rounding = chart.account(Role.ROUNDING, currency=delta.currency)
        entry = work.as_uuid(entry_id)
        draft = EntryDraft(
            kind=EntryKind.RECONCILIATION,
            lines=(PostingLine(held, delta), PostingLine(rounding, -delta)),
            consulate=str(consulate),
            references=References(
                payment=str(payment), settlement=str(settlement), import_line=str(key)[:64]
            ),
            memo={"business_day": day, "rule": "tolerance"},
            reason=f"reconciliation of {day}: difference of {delta} within the tolerance "
            f"of {settings.tolerance_for(delta.currency)}, to the rounding account",
        )
        # Keyed on the pair: running the day again finds the entry instead of posting it twice.
        recorded = post_entry(
            work.session,
            draft,
            actor=actor or "reconciliation",
            idempotency_key=f"recon-rounding:{entry}:{key}",
        )
        rows.append(
            {
                "m": number,
                "li": li,
                "xi": xi,
                "cur": currency,
                "la": cash,
                "xa": amt,
                "rounding": work.uuid_param(recorded.entry_id),
            }
        )
    if rows:
        work.session.execute(
            text(f"""
                INSERT INTO {MATCH} ({MATCH_COLUMNS_ROUNDING})
                VALUES (:m, 1, 'tolerance', 'reference', :li, :xi, :cur, :la, :xa, :rounding)
            """),
            rows,
        )
    return len(rows)


def _match_counts(work: Work) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    # A match has exactly one first member; a batch line is a member, but its details are the items counted.
    for pass_, rule, groups, ledger, export in work.run(f"""
        SELECT m.pass, m.rule, sum(CASE WHEN m.member_no = 1 THEN 1 ELSE 0 END), count(m.li), count(m.xi)
          FROM {MATCH} m GROUP BY m.pass, m.rule ORDER BY m.pass, m.rule
    """):
        counts[f"{pass_}:{rule}"] = {"matches": int(groups), "ledger": int(ledger), "export": int(export)}
    for pass_, rule, batches in work.run(f"""
        SELECT m.pass, m.rule, count(*) FROM {MATCH} m
         WHERE m.xi IN (SELECT item FROM {EXPORT} WHERE is_batch = 1) GROUP BY m.pass, m.rule
    """):
        counts[f"{pass_}:{rule}"]["export"] -= int(batches)
    return counts


class _Clock:
    """Seconds per phase of a run (kept with the run, never in its report)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.started = self.at = time.perf_counter()
        self.wall = clock.now()
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.at, 3)
        self.at = now
        if self.progress is not None:
            self.progress(name)


@dataclass(frozen=True, slots=True)
class _Outcome:
    elsewhere_runs: list[int]
    resolutions: list[tuple[int, str]]
    balances: list[dict[str, Any]]


def _match(
    work: Work,
    sink: ExceptionSink,
    facts: set[str],
    *,
    plan: RunPlan,
    scope: str,
    currencies: Sequence[str],
    import_ids: Sequence[int],
    settings: ReconciliationSettings,
    chart: Chart,
    phase: _Clock,
) -> _Outcome:
    day = plan.day.isoformat()
    elsewhere_runs = passes.latest_other_runs(work, day, scope)
    passes.take_reconciled_elsewhere(work, elsewhere_runs)
    resolutions = passes.apply_resolutions(work)
    phase("resolved")
    passes.exact_pass(work, facts)
    phase("exact")
    passes.batch_pass(work, facts)
    work.refresh()
    passes.payout_pass(work, sink, facts)
    work.refresh()
    phase("aggregate")
    window.window_pass(work, sink, settings.max_candidates)
    work.refresh()
    phase("window")
    _tolerance_pass(work, settings, currencies, chart, plan.actor)
    work.refresh()
    phase("tolerance")
    passes.reversal_pass(work)
    work.refresh()
    work.analyze()
    leftovers.export_leftovers(work, sink, facts)
    work.refresh()
    leftovers.ledger_leftovers(work, sink, import_ids)
    phase("leftovers")
    balances = balance_check(
        work, sink, currencies, import_ids, lambda c: chart.account(Role.TREASURY, currency=c).code
    )
    phase("balance")
    return _Outcome(elsewhere_runs, resolutions, balances)


def _counts(work: Work, sink: ExceptionSink, export_lines: int) -> dict[str, Any]:
    return {
        "ledger_items": int(work.scalar(f"SELECT count(*) FROM {LEDGER} WHERE in_day = 1") or 0),
        "ledger_items_in_window": int(work.scalar(f"SELECT count(*) FROM {LEDGER}") or 0),
        "export_items": int(work.scalar(f"SELECT count(*) FROM {EXPORT} WHERE is_batch = 0") or 0),
        "export_lines": export_lines,
        "matched": _match_counts(work),
        "exceptions": dict(sorted(sink.counts.items())),
    }


def _record_matches(work: Work, run_id: int) -> int:
    # The bulk passes wrote the ids already; the others' members (few) get theirs here.
    work.run(f"""
        UPDATE {MATCH} SET entry_id = (SELECT l.entry_id FROM {LEDGER} l WHERE l.item = {MATCH}.li)
         WHERE li IS NOT NULL AND entry_id IS NULL
    """)
    work.run(f"""
        UPDATE {MATCH} SET import_id = (SELECT x.import_id FROM {EXPORT} x WHERE x.item = {MATCH}.xi),
                           item_no = (SELECT x.item_no FROM {EXPORT} x WHERE x.item = {MATCH}.xi)
         WHERE xi IS NOT NULL AND import_id IS NULL
    """)
    work.run(f"""
        INSERT INTO recon_matches (run_id, match_no, member_no, pass, rule, currency, entry_id,
                                   import_id, item_no, ledger_amount, export_amount, rounding_entry_id)
        SELECT {int(run_id)}, match_no, member_no, pass, rule, currency, entry_id, import_id, item_no,
               ledger_amount, export_amount, rounding_entry_id
          FROM {MATCH}
    """)
    return int(work.scalar(f"SELECT count(DISTINCT match_no) FROM {MATCH}") or 0)


def _inputs(
    work: Work, imports: Sequence[ReconImport], counts: dict[str, Any], outcome: _Outcome
) -> dict[str, Any]:
    return {
        "ledger": {
            "sha256": _ledger_digest(work),
            "entries": counts["ledger_items_in_window"],
            "entries_of_the_day": counts["ledger_items"],
        },
        "imports": [
            {
                "id": row.id,
                "sha256": row.sha256,
                "file_name": row.file_name,
                "source": row.source,
                "profile": row.profile,
                "profile_digest": row.profile_digest,
                "lines": row.line_count,
            }
            for row in imports
        ],
        "resolutions": {
            "count": len(outcome.resolutions),
            "sha256": hashlib.sha256(repr(outcome.resolutions).encode()).hexdigest(),
        },
        "runs_of_other_days": outcome.elsewhere_runs,
    }


def reconcile(
    database: Database,
    plan: RunPlan,
    *,
    settings: ReconciliationSettings,
    timezone: str,
    chart: Chart,
    progress: Progress | None = None,
) -> RunSummary:
    """Reconcile one business day against the given imports; everything commits together."""
    with database.write() as session:
        return reconcile_in(
            session, plan, settings=settings, timezone=timezone, chart=chart, progress=progress
        )


def reconcile_in(
    session: Session,
    plan: RunPlan,
    *,
    settings: ReconciliationSettings,
    timezone: str,
    chart: Chart,
    progress: Progress | None = None,
) -> RunSummary:
    """The run inside the caller's unit of work (which must be a write transaction)."""
    if not plan.import_ids:
        raise RunRefusedError("give at least one import (the treasury export of the day)")
    today = today_in(timezone, clock.now())
    if not FIRST_DAY <= plan.day <= today:
        raise RunRefusedError(
            f"day {plan.day.isoformat()}: a business day from {FIRST_DAY.isoformat()} to today "
            f"({today.isoformat()} in {timezone}) can be reconciled"
        )
    phase = _Clock(progress)
    business_day = BusinessDay(plan.day, timezone)
    day = plan.day.isoformat()
    imports = _imports(session, plan.import_ids)
    import_ids = [row.id for row in imports]
    found = sorted({c for row in imports for c in row.currencies.split(",") if c})
    currencies = sorted(set(plan.currencies)) if plan.currencies else found
    if not currencies:
        raise RunRefusedError("the imports hold no lines: nothing to reconcile")
    scope = ",".join(currencies)
    run_id = _allocate_run_id(session)
    work = Work(session, business_day, window_days=settings.window_days, search_days=settings.search_days)
    work.create()
    export_lines = work.load_export(import_ids)
    work.load_ledger(currencies)
    facts = work.facts()
    work.index(facts)
    phase("load")
    sink = ExceptionSink(work, run_id, day)
    outcome = _match(
        work,
        sink,
        facts,
        plan=plan,
        scope=scope,
        currencies=currencies,
        import_ids=import_ids,
        settings=settings,
        chart=chart,
        phase=phase,
    )
    counts = _counts(work, sink, export_lines)
    inputs = _inputs(work, imports, counts, outcome)
    match_count = _record_matches(work, run_id)
    phase("record")
    phase.timings["total"] = round(time.perf_counter() - phase.started, 3)
    session.add(
        ReconRun(
            id=run_id,
            business_day=day,
            scope=scope,
            timezone=timezone,
            day_start=business_day.start,
            day_end=business_day.end,
            parameters={
                "currencies": currencies,
                "imports": import_ids,
                "window_days": settings.window_days,
                "search_days": settings.search_days,
                "max_candidates": settings.max_candidates,
                "tolerance": {c: settings.tolerance_for(c).to_str() for c in currencies},
            },
            inputs=inputs,
            counts=counts,
            balances=outcome.balances,
            engine_version=ENGINE_VERSION,
            started_at=phase.wall,
            finished_at=clock.now(),
            timings=phase.timings,
            started_by=plan.actor[:100],
            match_count=match_count,
            exception_count=sink.total,
        )
    )
    session.add_all(ReconRunImport(run_id=run_id, import_id=i) for i in import_ids)
    session.flush()
    if not work.postgres:
        work.drop()
    return RunSummary(
        run_id=run_id,
        business_day=day,
        scope=scope,
        match_count=match_count,
        exception_count=sink.total,
        exceptions=dict(sorted(sink.counts.items())),
        counts=counts,
        balances=outcome.balances,
        timings=phase.timings,
    )


# Reading -------------------------------------------------------------------------------------------------


class RunNotFoundError(LookupError):
    pass


def get_run(session: Session, run_id: int) -> ReconRun:
    run = session.get(ReconRun, run_id)
    if run is None:
        raise RunNotFoundError(f"no reconciliation run {run_id}")
    return run


def list_runs(
    session: Session, *, business_day: str | None = None, limit: int = 50, before: int | None = None
) -> list[ReconRun]:
    """Newest first."""
    query = select(ReconRun).order_by(ReconRun.id.desc()).limit(limit)
    if business_day is not None:
        query = query.where(ReconRun.business_day == business_day)
    if before is not None:
        query = query.where(ReconRun.id < before)
    return list(session.scalars(query))


def latest_run_ids(session: Session) -> set[int]:
    """The latest run of every (business day, scope): the runs whose exceptions are current."""
    return {
        int(row[0])
        for row in session.execute(text("SELECT max(id) FROM recon_runs GROUP BY business_day, scope"))
        if row[0] is not None
    }
