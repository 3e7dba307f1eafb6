"""The auditor's reconciliation pages: upload an export with a profile, run a business day and watch its
progress, read the report; the exceptions queue with aging, and each resolution (manual match, posting to
suspense, the second auditor's approval or refusal).

A run goes on in a thread of the service while its page refreshes itself (no script needed) with the
phase the matcher has reached; the run itself commits all at once, as from the API or the CLI."""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.settings import Settings
from ledger.web.access import current_staff, staff_only
from ledger.web.pages import Message, page, translator
from reconciliation import imports, resolutions, runs
from reconciliation.days import today_in
from reconciliation.report_pdf import report_pdf

UPLOAD_LIMIT = 64 * 2**20  # as the API; larger files go through the CLI, which streams them from disk
KEPT_JOBS = 50
PHASES = ("load", "resolved", "exact", "aggregate", "window", "tolerance", "leftovers", "balance", "record")
STATUSES = ("open", "pending_approval", "cleared", "resolved", "superseded")
RowId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
JobId = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{8,32}$")]


@dataclass
class RunJob:
    """A run under way in the service: the phase reached, then the run or the reason it was refused."""

    job_id: str
    day: date
    started_by: str
    phase: str = "queued"
    run_id: int | None = None
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def percent(self) -> int:
        if self.done.is_set():
            return 100
        return int(100 * (PHASES.index(self.phase) + 1) / (len(PHASES) + 1)) if self.phase in PHASES else 0


def _jobs(state: State) -> dict[str, RunJob]:
    jobs: dict[str, RunJob] | None = state.get("reconciliation_jobs")
    if jobs is None:
        jobs = {}
        state["reconciliation_jobs"] = jobs
    return jobs


@dataclass
class UploadForm:
    file: UploadFile
    profile: str = ""
    csrf_token: str = ""


@dataclass
class RunForm:
    day: str = ""
    imports: list[str] | str = field(default_factory=list)
    csrf_token: str = ""

    @property
    def import_ids(self) -> list[int]:
        chosen = [self.imports] if isinstance(self.imports, str) else self.imports
        return [int(i) for i in chosen if i.isdigit() and len(i) < 10]


@dataclass
class DecisionForm:
    reason: str = ""
    account: str = ""
    entry: str = ""
    line: str = ""
    exception: str = ""
    csrf_token: str = ""


def _actor(request: Request[Any, Any, Any]) -> str:
    staff = current_staff(request)
    assert staff is not None  # the guard let only a signed-in auditor in
    return staff.actor


def _today(settings: Settings) -> date:
    return today_in(settings.service.treasury.timezone, clock.now())


def _profiles(settings: Settings) -> list[str]:
    names = sorted({f"{p.name}@{p.version}" for p in imports.profiles_for(settings)})
    return [*names, "camt053", "mt940"]


def _overview(
    request: Request[Any, Any, Any],
    *,
    messages: list[Message] | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    with database.read() as session:
        recent_imports = imports.list_imports(session, limit=20)
        recent_runs = runs.list_runs(session, limit=20)
    return page(
        request,
        "auditor/reconciliation.html",
        status_code=status_code,
        messages=messages,
        profiles=_profiles(settings),
        imports=recent_imports,
        runs=recent_runs,
        today=_today(settings).isoformat(),
        timezone=settings.service.treasury.timezone,
    )


def _exception_page(
    request: Request[Any, Any, Any],
    exception_id: int,
    *,
    messages: list[Message] | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    with database.read() as session:
        try:
            view = resolutions.get_exception(session, exception_id, today=_today(settings))
        except resolutions.ExceptionNotFoundError:
            raise NotFoundException(f"no exception {exception_id}") from None
    return page(
        request,
        "auditor/exception.html",
        status_code=status_code,
        messages=messages,
        exception=view,
        me=_actor(request),
        timezone=settings.service.treasury.timezone,
    )


class ReconciliationPages(Controller):
    path = "/audit"
    guards = [staff_only(Role.AUDITOR)]

    @get("/reconciliation", name="web-reconciliation", sync_to_thread=True)
    def overview(self, request: Request[Any, Any, Any]) -> Template:
        return _overview(request)

    @post(
        "/reconciliation/imports",
        name="web-reconciliation-upload",
        request_max_body_size=UPLOAD_LIMIT,
        status_code=201,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Template:
        t = translator(request)
        settings: Settings = state.settings
        database: Database = state.database
        try:
            content = await data.file.read()
        finally:
            await data.file.close()
        name = (data.file.filename or "upload")[-255:]
        if not content:
            return _overview(request, messages=[Message("error", t("recon.empty_file"))], status_code=400)
        try:
            layout = imports.resolve_layout(data.profile, imports.profiles_for(settings))
        except LookupError as error:
            message = Message("error", t("recon.bad_profile", problem=str(error)))
            return _overview(request, messages=[message], status_code=422)
        actor = _actor(request)
        outcome = await to_thread.run_sync(
            lambda: imports.import_file(database, content, layout, file_name=name, actor=actor)
        )
        if outcome.status == "rejected":
            lines = "; ".join(f"{e.line}: {e.problem}" for e in outcome.errors[:5])
            message = Message("error", t("recon.rejected", count=outcome.error_count, lines=lines))
            return _overview(request, messages=[message], status_code=422)
        if outcome.usable and not outcome.duplicate:
            return _overview(request, messages=[Message("success", outcome.message)], status_code=201)
        return _overview(request, messages=[Message("info", outcome.message)], status_code=200)

    @post("/reconciliation/runs", name="web-reconciliation-run", sync_to_thread=False, status_code=303)
    def start_run(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[RunForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        t = translator(request)
        settings: Settings = state.settings
        database: Database = state.database
        try:
            day = date.fromisoformat(data.day)
        except ValueError:
            return _overview(request, messages=[Message("error", t("recon.bad_day"))], status_code=422)
        if not runs.FIRST_DAY <= day <= _today(settings):
            message = Message("error", t("recon.day_range", first=runs.FIRST_DAY.isoformat()))
            return _overview(request, messages=[message], status_code=422)
        if not data.import_ids:
            return _overview(request, messages=[Message("error", t("recon.no_import"))], status_code=422)
        job = RunJob(secrets.token_urlsafe(12), day, _actor(request))
        plan = runs.RunPlan(day, tuple(data.import_ids), actor=job.started_by)

        def work() -> None:
            def reached(phase: str) -> None:
                job.phase = phase

            try:
                summary = runs.reconcile(
                    database,
                    plan,
                    settings=settings.service.reconciliation,
                    timezone=settings.service.treasury.timezone,
                    chart=settings.chart,
                    progress=reached,
                )
                job.run_id = summary.run_id
            except runs.RunRefusedError as refused:
                job.error = str(refused)
            except Exception as error:  # noqa: BLE001 - told on the progress page; nothing was committed
                job.error = f"the run failed and nothing was written ({type(error).__name__})"
            finally:
                job.done.set()

        jobs = _jobs(state)
        for finished in [key for key, earlier in jobs.items() if earlier.done.is_set()][:-KEPT_JOBS]:
            del jobs[finished]  # the runs themselves are in the database; only recent progress is kept
        jobs[job.job_id] = job
        threading.Thread(target=work, name=f"reconcile-{job.job_id}", daemon=True).start()
        return Redirect(f"/web/audit/reconciliation/jobs/{job.job_id}", status_code=303)

    @get("/reconciliation/jobs/{job_id:str}", name="web-reconciliation-job", sync_to_thread=False)
    def job(self, request: Request[Any, Any, Any], state: State, job_id: JobId) -> Template | Redirect:
        job = _jobs(state).get(job_id)
        if job is None:
            raise NotFoundException(f"no run under way with id {job_id}")
        if job.done.is_set() and job.run_id is not None:
            return Redirect(f"/web/audit/reconciliation/runs/{job.run_id}", status_code=303)
        return page(request, "auditor/run_progress.html", job=job, phases=PHASES)

    @get("/reconciliation/runs/{run_id:int}", name="web-reconciliation-report", sync_to_thread=True)
    def report(self, request: Request[Any, Any, Any], state: State, run_id: RowId) -> Template:
        settings: Settings = state.settings
        database: Database = state.database
        with database.read() as session:
            try:
                run = runs.get_run(session, run_id)
            except runs.RunNotFoundError:
                raise NotFoundException(f"no reconciliation run {run_id}") from None
            found = [
                view
                for status in STATUSES
                for view in resolutions.list_exceptions(
                    session, today=_today(settings), status=status, run_id=run_id, limit=500
                )
            ]
        return page(
            request,
            "auditor/run_report.html",
            run=run,
            checks=[
                {
                    "account": check["account"],
                    "status": check["status"],
                    **{
                        name: Money(int(check[name]), check["currency"])
                        for name in ("bank_movement", "book_movement", "difference")
                    },
                }
                for check in run.balances
            ],
            exceptions=found,
            timezone=settings.service.treasury.timezone,
        )

    @get("/reconciliation/runs/{run_id:int}/report.pdf", name="web-reconciliation-pdf", sync_to_thread=True)
    def report_file(self, state: State, run_id: RowId) -> Response[bytes]:
        database: Database = state.database
        with database.read() as session:
            try:
                runs.get_run(session, run_id)
            except runs.RunNotFoundError:
                raise NotFoundException(f"no reconciliation run {run_id}") from None
            body = report_pdf(session, run_id)
        return Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="reconciliation-run-{run_id}.pdf"'},
        )

    # Exceptions --------------------------------------------------------------------------------------------

    @get("/exceptions", name="web-exceptions", sync_to_thread=True)
    def exceptions(self, request: Request[Any, Any, Any], state: State) -> Template:
        settings: Settings = state.settings
        database: Database = state.database
        status = request.query_params.get("status", "open")
        if status not in STATUSES:
            status = "open"
        with database.read() as session:
            found = resolutions.list_exceptions(session, today=_today(settings), status=status, limit=200)
        return page(
            request, "auditor/exceptions.html", exceptions=found, status=status, statuses=STATUSES[:-1]
        )

    @get("/exceptions/{exception_id:int}", name="web-exception", sync_to_thread=True)
    def exception(self, request: Request[Any, Any, Any], exception_id: RowId) -> Template:
        return _exception_page(request, exception_id)

    @post(
        "/exceptions/{exception_id:int}/match",
        name="web-exception-match",
        sync_to_thread=True,
        status_code=303,
    )
    def match(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        settings: Settings = state.settings
        decision = resolutions.Decision(_actor(request), data.reason.strip(), data.account.strip() or None)

        def resolve(session: Any) -> object:
            entry_id = uuid.UUID(data.entry.strip()) if data.entry.strip() else None
            line = None
            if data.line.strip():
                import_id, _, item = data.line.strip().partition(":")
                line = (int(import_id), int(item))
            other = int(data.exception) if data.exception.strip() else None
            return resolutions.match_by_hand(
                session,
                exception_id,
                decision,
                settings=settings.service.reconciliation,
                chart=settings.chart,
                entry_id=entry_id,
                line=line,
                other_exception=other,
            )

        return _resolve(request, state, exception_id, resolve)

    @post(
        "/exceptions/{exception_id:int}/post", name="web-exception-post", sync_to_thread=True, status_code=303
    )
    def post_difference(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        settings: Settings = state.settings
        decision = resolutions.Decision(_actor(request), data.reason.strip(), data.account.strip() or None)
        return _resolve(
            request,
            state,
            exception_id,
            lambda session: resolutions.post_difference(
                session,
                exception_id,
                decision,
                settings=settings.service.reconciliation,
                chart=settings.chart,
            ),
        )

    @post(
        "/exceptions/{exception_id:int}/resolutions/{resolution_id:int}/approve",
        name="web-resolution-approve",
        sync_to_thread=True,
        status_code=303,
    )
    def approve(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        resolution_id: RowId,
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        settings: Settings = state.settings
        decision = resolutions.Decision(_actor(request), data.reason.strip())
        return _resolve(
            request,
            state,
            exception_id,
            lambda session: resolutions.approve(session, resolution_id, decision, chart=settings.chart),
        )

    @post(
        "/exceptions/{exception_id:int}/resolutions/{resolution_id:int}/reject",
        name="web-resolution-reject",
        sync_to_thread=True,
        status_code=303,
    )
    def reject(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        resolution_id: RowId,
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        decision = resolutions.Decision(_actor(request), data.reason.strip())
        return _resolve(
            request, state, exception_id, lambda session: resolutions.reject(session, resolution_id, decision)
        )


def _resolve(
    request: Request[Any, Any, Any], state: State, exception_id: int, work: Any
) -> Template | Redirect:
    """One resolution in one unit of work; a refusal is shown on the exception's page, nothing written."""
    t = translator(request)
    database: Database = state.database
    try:
        with database.write() as session:
            work(session)
    except (ValueError, resolutions.ResolutionConflictError) as refused:
        # ResolutionInvalidError is a ValueError too, as are a malformed entry id or line.
        problem = refused.message if isinstance(refused, resolutions.ResolutionInvalidError) else str(refused)
        message = Message("error", t("recon.refused", problem=problem))
        status = 409 if isinstance(refused, resolutions.ResolutionConflictError) else 422
        return _exception_page(request, exception_id, messages=[message], status_code=status)
    except (resolutions.ExceptionNotFoundError, resolutions.ResolutionNotFoundError) as missing:
        raise NotFoundException(str(missing)) from None
    return Redirect(f"/web/audit/exceptions/{exception_id}", status_code=303)


RECONCILIATION_ROUTES: list[Any] = [ReconciliationPages]
