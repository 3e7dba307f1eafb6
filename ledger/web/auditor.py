"""The auditor's pages: balances by slice and date, the journal with filters and each entry in detail, and
the ledger's seal status. Read-only, like the auditor role (reconciliation has its own module)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.db.types import from_micros
from ledger.domain.entries import EntryKind
from ledger.services import clock, journal
from ledger.services.apikeys import Role
from ledger.services.audit import runner
from ledger.services.audit.verify import verify
from ledger.services.balances import SliceFilter, balances
from ledger.settings import Settings
from ledger.web.access import current_staff, staff_only
from ledger.web.pages import Message, page, translator

# What a filter field may hold; anything else is named back to the auditor and ignored.
FIELDS = {
    "consulate": re.compile(r"^[A-Z]{2}-[A-Z]{3}$"),
    "fee_code": re.compile(r"^[A-Z][A-Z0-9-]{0,23}$"),
    "provider": re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$"),
    "currency": re.compile(r"^[A-Z]{3}$"),
    "payment": re.compile(r"^[A-Za-z0-9:._/-]{1,64}$"),
    "stamp": re.compile(r"^[0-9]{17}$"),
}
PAGE_SIZE = 50
LAST_CHECK = "last_seal_verification"
EntryPath = Annotated[uuid.UUID, PathParameter(description="a ledger entry")]


class _Filters:
    """The query's filter fields, checked; ``problems`` lists the fields given in a wrong form."""

    def __init__(self, request: Request[Any, Any, Any], names: tuple[str, ...]) -> None:
        self.values: dict[str, str] = {}
        self.problems: list[str] = []
        for name in names:
            raw = request.query_params.get(name, "").strip()
            if not raw:
                continue
            if name == "stamp":
                raw = raw.replace(" ", "").replace("-", "")
            if name in ("consulate", "fee_code", "currency"):
                raw = raw.upper()
            if FIELDS[name].fullmatch(raw):
                self.values[name] = raw
            else:
                self.problems.append(name)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def _day(request: Request[Any, Any, Any], name: str, problems: list[str]) -> date | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(name)
        return None


def _start_of(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))


def _problem_messages(request: Request[Any, Any, Any], problems: list[str]) -> list[Message]:
    t = translator(request)
    return [Message("error", t("audit.bad_filter", field=t(f"audit.field_{name}"))) for name in problems]


class AuditController(Controller):
    path = "/audit"
    guards = [staff_only(Role.AUDITOR)]

    @get("/", name="web-audit-balances", sync_to_thread=True)
    def balances_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        settings: Settings = state.settings
        database: Database = state.database
        filters = _Filters(request, ("consulate", "fee_code", "provider", "currency"))
        problems = list(filters.problems)
        day = _day(request, "as_of", problems)
        split = frozenset(
            s for s in request.query_params.getall("split", []) if s in ("consulate", "fee_code")
        )
        timezone = settings.service.treasury.timezone
        # A day means its end in the treasury's time zone; no day means now.
        as_of = (
            _start_of(day + timedelta(days=1), timezone) - timedelta(microseconds=1) if day else clock.now()
        )
        where = SliceFilter(
            consulate=filters.get("consulate"),
            fee_code=filters.get("fee_code"),
            provider=filters.get("provider"),
            currency=filters.get("currency"),
        )
        with database.read() as session:
            rows = balances(session, where, as_of=as_of, split=split)
        return page(
            request,
            "auditor/balances.html",
            status_code=400 if problems else 200,
            messages=_problem_messages(request, problems),
            rows=rows,
            filters=filters.values,
            as_of=as_of,
            day=day.isoformat() if day else "",
            split=split,
            timezone=timezone,
            consulates=sorted(settings.consulates),
        )

    @get("/journal", name="web-audit-journal", sync_to_thread=True)
    def journal_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        settings: Settings = state.settings
        database: Database = state.database
        filters = _Filters(request, ("consulate", "payment", "stamp"))
        problems = list(filters.problems)
        since = _day(request, "since", problems)
        until = _day(request, "until", problems)
        kind_text = request.query_params.get("kind", "")
        kind = EntryKind(kind_text) if kind_text in {k.value for k in EntryKind} else None
        if kind_text and kind is None:
            problems.append("kind")
        after = _after(request.query_params.get("after", ""), problems)
        timezone = settings.service.treasury.timezone
        where = journal.EntryFilter(
            since=_start_of(since, timezone) if since else None,
            until=_start_of(until + timedelta(days=1), timezone) if until else None,
            consulate=filters.get("consulate"),
            kind=kind,
            payment=filters.get("payment"),
            stamp=filters.get("stamp"),
        )
        with database.read() as session:
            found = journal.list_entries(session, where, limit=PAGE_SIZE, after=after)
        query = {k: v for k, v in request.query_params.items() if k != "after"}
        following = None
        if found.next_after is not None:
            moment, entry_id = found.next_after
            following = {**query, "after": f"{moment.isoformat()}~{entry_id}"}
        return page(
            request,
            "auditor/journal.html",
            status_code=400 if problems else 200,
            messages=_problem_messages(request, problems),
            entries=found.entries,
            filters={**filters.values, "kind": kind.value if kind else ""},
            since=since.isoformat() if since else "",
            until=until.isoformat() if until else "",
            kinds=[k.value for k in EntryKind],
            consulates=sorted(settings.consulates),
            following=following,
            timezone=timezone,
        )

    @get("/journal/{entry_id:uuid}", name="web-audit-entry", sync_to_thread=True)
    def entry_page(self, request: Request[Any, Any, Any], state: State, entry_id: EntryPath) -> Template:
        database: Database = state.database
        with database.read() as session:
            try:
                entry = journal.get_entry(session, entry_id)
            except journal.EntryNotFoundError:
                raise NotFoundException(f"no entry {entry_id}") from None
        return page(
            request, "auditor/entry.html", entry=entry, timezone=state.settings.service.treasury.timezone
        )

    @get("/seals", name="web-audit-seals", sync_to_thread=True)
    def seals_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        database: Database = state.database
        with database.read() as session:
            found = runner.status(session)
        latest = found.latest
        return page(
            request,
            "auditor/seals.html",
            check=state.get(LAST_CHECK),
            status=found,
            latest=latest,
            made_at=from_micros(latest.header.made_at) if latest else None,
            complete_through=from_micros(latest.header.complete_through) if latest else None,
            intact=latest.header.hash() == latest.stored_hash if latest else None,
            waiting=sum(found.unsealed.values()),
            timezone=state.settings.service.treasury.timezone,
        )

    @post("/seals/verify", name="web-audit-seals-verify", sync_to_thread=True, status_code=303)
    def verify_seals(self, request: Request[Any, Any, Any], state: State) -> Redirect:
        """Recompute every seal from the rows now (as `etimbre audit verify`); the outcome is kept for the
        seal page until the service restarts (the CLI's JSON report is the archived record)."""
        settings: Settings = state.settings
        database: Database = state.database
        staff = current_staff(request)
        tolerance = settings.service.audit.lateness_tolerance_seconds * 1_000_000
        with database.read() as session:
            report = verify(session, tolerance_us=tolerance, database=database)
        state[LAST_CHECK] = SealCheck(
            at=clock.now(),
            by=staff.actor if staff is not None else "",
            ok=report.ok,
            seals=report.seals,
            records=report.records,
            findings=tuple(finding.message for finding in report.findings[:20]),
            more=max(0, len(report.findings) - 20),
        )
        return Redirect("/web/audit/seals", status_code=303)


@dataclass(frozen=True, slots=True)
class SealCheck:
    """The last verification of the seals made from the seal page."""

    at: datetime
    by: str
    ok: bool
    seals: int
    records: int
    findings: tuple[str, ...]
    more: int


def _after(text: str, problems: list[str]) -> tuple[datetime, uuid.UUID] | None:
    """The journal's keyset cursor, as the page wrote it in its "next" link."""
    if not text:
        return None
    moment, _, entry_id = text.partition("~")
    try:
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError(moment)
        return parsed, uuid.UUID(entry_id)
    except ValueError:
        problems.append("after")
        return None


AUDITOR_ROUTES: list[Any] = [AuditController]
