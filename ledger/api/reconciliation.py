"""Reconciliation for treasury auditors: upload exports, run a day, read runs and reports, resolve exceptions.

Every handler needs an auditor key; the key identifies the auditor in every resolution, so the second
auditor who approves a large write-off is a different key from the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream
from sqlalchemy.orm import Session

from ledger.api import problems
from ledger.api.auth import principal_of, requires
from ledger.api.idempotency import IdempotencyKey, canonical, run_once
from ledger.api.problems import ApiProblem
from ledger.api.reconciliation_schemas import (
    FILE_NAME,
    PROFILE,
    Bucket,
    Category,
    DecisionIn,
    ExceptionOut,
    ExceptionPageOut,
    ExceptionStatus,
    ImportDetailOut,
    ImportOut,
    MatchIn,
    PostIn,
    ResolutionOut,
    RunIn,
    RunOut,
)
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.settings import Settings
from reconciliation import imports, resolutions, runs
from reconciliation.days import today_in
from reconciliation.report_pdf import report_pdf
from reconciliation.reports import report_csv, report_json

# Ids are 32-bit in the database: larger numbers are refused as invalid, not looked up.
ID_MAX = 2**31 - 1
RowId = Annotated[int, PathParameter(ge=1, le=ID_MAX)]
UPLOAD_LIMIT = 64 * 2**20  # larger files go through the CLI, which streams them from disk
AUDITORS = requires(Role.AUDITOR)


@dataclass
class FileUpload(Operation):
    """The upload's body in the OpenAPI document: the file's bytes, whatever its format."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, max_length=UPLOAD_LIMIT
                    )
                )
            },
            description="the file as the treasury, the bank or the acquirer sent it",
            required=True,
        )


def _today(settings: Settings) -> date:
    return today_in(settings.service.treasury.timezone, clock.now())


def _invalid(field: str, message: str, status: int = 422) -> ApiProblem:
    return ApiProblem(
        status,
        "field-invalid",
        "A value cannot be used",
        detail=f"{field}: {message}",
        extra={"errors": [{"field": field, "message": message, "source": "body"}]},
    )


class ReconciliationController(Controller):
    path = "/reconciliation"
    tags = ["reconciliation"]
    guards = [AUDITORS]

    # Imports ---------------------------------------------------------------------------------------------

    @post(
        "/imports",
        operation_id="uploadImport",
        summary="Upload a treasury export, bank statement or settlement report, read with an import profile",
        description="The body is the file as it is. The same file twice adds nothing (200, `duplicate`); "
        "a file failing the integrity checks is quarantined (201, with its reasons); a malformed file is "
        "rejected with every error's line and column (422).",
        responses={
            **problems.responses(400, 401, 403, 413, 422),
            200: ResponseSpec(
                data_container=ImportOut, description="The same file was imported before: nothing added"
            ),
        },
        request_max_body_size=UPLOAD_LIMIT,
        operation_class=FileUpload,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        state: State,
        profile: Annotated[
            str,
            QueryParameter(
                max_length=70,
                pattern=PROFILE,
                description="import profile as NAME or NAME@VERSION, or camt053, or mt940",
            ),
        ],
        file_name: Annotated[str, QueryParameter(max_length=255, pattern=FILE_NAME)] = "",
    ) -> Response[ImportOut]:
        settings: Settings = state.settings
        database: Database = state.database
        data = await request.body()  # bounded by request_max_body_size (413 above it)
        if not data:
            raise _invalid("body", "the file is empty", 400)
        try:
            layout = imports.resolve_layout(profile, imports.profiles_for(settings))
        except LookupError as error:
            raise _invalid("profile", str(error)) from None
        actor = principal_of(request).actor
        outcome = await to_thread.run_sync(
            lambda: imports.import_file(database, data, layout, file_name=file_name or "upload", actor=actor)
        )
        if outcome.status == "rejected":
            raise ApiProblem(
                422,
                "import-rejected",
                "The file is malformed: nothing was imported",
                detail=outcome.message,
                extra={
                    "import_id": outcome.import_id,
                    "errors": [
                        {"line": e.line, "column": e.column, "problem": e.problem} for e in outcome.errors
                    ],
                },
            )
        return Response(ImportOut.of(outcome), status_code=200 if outcome.duplicate else 201)

    @get(
        "/imports",
        operation_id="listImports",
        summary="Imported files, newest first",
        responses=problems.responses(401, 403),
        sync_to_thread=True,
    )
    def list_imports(
        self,
        state: State,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=ID_MAX, description="an import id: older ones")
        ] = None,
    ) -> list[ImportOut]:
        database: Database = state.database
        with database.read() as session:
            return [ImportOut.of(o) for o in imports.list_imports(session, limit=limit, before=before)]

    @get(
        "/imports/{import_id:int}",
        operation_id="getImport",
        summary="One import with its statements, flags and, when rejected, every error",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def get_import(self, state: State, import_id: RowId) -> ImportDetailOut:
        database: Database = state.database
        with database.read() as session:
            return ImportDetailOut.of(imports.get_import(session, import_id))

    # Runs ------------------------------------------------------------------------------------------------

    @post(
        "/runs",
        operation_id="startRun",
        summary="Reconcile a business day against imported files",
        responses=problems.responses(400, 401, 403, 409, 422),
        sync_to_thread=True,
    )
    def start_run(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[RunIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RunOut]:
        settings: Settings = state.settings
        principal = principal_of(request)
        plan = runs.RunPlan(data.day, tuple(data.imports), tuple(data.currencies), actor=principal.actor)

        def work(session: Session) -> RunOut:
            # The key is claimed in the run's own unit of work: a retry replays the answer, never runs twice.
            summary = runs.reconcile_in(
                session,
                plan,
                settings=settings.service.reconciliation,
                timezone=settings.service.treasury.timezone,
                chart=settings.chart,
            )
            return RunOut.of(runs.get_run(session, summary.run_id))

        return run_once(
            state.database,
            scope=f"reconciliation-run:{principal.key_id}",
            key=idempotency_key,
            request=("POST /reconciliation/runs", canonical(data)),
            status=201,
            work=work,
        )

    @get(
        "/runs",
        operation_id="listRuns",
        summary="Runs, newest first",
        responses=problems.responses(400, 401, 403),
        sync_to_thread=True,
    )
    def list_runs(
        self,
        state: State,
        day: Annotated[date | None, QueryParameter(description="business day")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=ID_MAX, description="a run id: older ones")
        ] = None,
    ) -> list[RunOut]:
        database: Database = state.database
        with database.read() as session:
            found = runs.list_runs(
                session, business_day=day.isoformat() if day else None, limit=limit, before=before
            )
            return [RunOut.of(run) for run in found]

    @get(
        "/runs/{run_id:int}",
        operation_id="getRun",
        summary="One run: parameters, inputs and their hashes, counts per pass and category, balance check",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def get_run(self, state: State, run_id: RowId) -> RunOut:
        database: Database = state.database
        with database.read() as session:
            return RunOut.of(runs.get_run(session, run_id))

    @get(
        "/runs/{run_id:int}/report.json",
        operation_id="getRunReportJson",
        summary="The run's report as JSON: the same inputs give the same bytes",
        media_type="application/json",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def report_json(self, state: State, run_id: RowId) -> Response[bytes]:
        database: Database = state.database
        with database.read() as session:
            body = report_json(session, run_id)
        return Response(body, media_type="application/json")

    @get(
        "/runs/{run_id:int}/report.csv",
        operation_id="getRunReportCsv",
        summary="Every match member and every exception of the run, one CSV row each",
        media_type="text/csv",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def report_csv(self, state: State, run_id: RowId) -> Stream:
        database: Database = state.database
        with database.read() as session:
            runs.get_run(session, run_id)  # a 404 before the stream starts

        def rows() -> Iterator[bytes]:
            with database.read() as session:
                yield from report_csv(session, run_id)

        return Stream(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="reconciliation-run-{run_id}.csv"'},
        )

    @get(
        "/runs/{run_id:int}/report.pdf",
        operation_id="getRunReportPdf",
        summary="The auditor's PDF summary of the run",
        media_type="application/pdf",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def report_pdf(self, state: State, run_id: RowId) -> Response[bytes]:
        database: Database = state.database
        with database.read() as session:
            body = report_pdf(session, run_id)
        return Response(body, media_type="application/pdf")

    # Exceptions ------------------------------------------------------------------------------------------

    @get(
        "/exceptions",
        operation_id="listExceptions",
        summary="Exceptions with their age; by default the open ones of each day's latest run",
        responses=problems.responses(400, 401, 403),
        sync_to_thread=True,
    )
    def list_exceptions(
        self,
        state: State,
        status: Annotated[ExceptionStatus, QueryParameter()] = "open",
        category: Annotated[Category | None, QueryParameter()] = None,
        day: Annotated[date | None, QueryParameter(description="business day")] = None,
        bucket: Annotated[Bucket | None, QueryParameter(description="age in days")] = None,
        run: Annotated[int | None, QueryParameter(ge=1, le=ID_MAX)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        after: Annotated[
            int | None, QueryParameter(ge=0, le=ID_MAX, description="the `next` of the previous page")
        ] = None,
    ) -> ExceptionPageOut:
        settings: Settings = state.settings
        database: Database = state.database
        with database.read() as session:
            found = resolutions.list_exceptions(
                session,
                today=_today(settings),
                status=status,
                category=category,
                business_day=day,
                bucket=bucket,
                run_id=run,
                limit=limit + 1,
                after=after,
            )
        page = found[:limit]
        return ExceptionPageOut(
            exceptions=[ExceptionOut.of(view) for view in page],
            next=page[-1].id if len(found) > limit else None,
        )

    @get(
        "/exceptions/{exception_id:int}",
        operation_id="getException",
        summary="One exception with every resolution made on it",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def get_exception(self, state: State, exception_id: RowId) -> ExceptionOut:
        settings: Settings = state.settings
        database: Database = state.database
        with database.read() as session:
            return ExceptionOut.of(resolutions.get_exception(session, exception_id, today=_today(settings)))

    @post(
        "/exceptions/{exception_id:int}/match",
        operation_id="matchException",
        summary="Match an exception by hand with the ledger entry or export line it lacks",
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def match(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        data: JSONBody[MatchIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ResolutionOut]:
        settings: Settings = state.settings
        principal = principal_of(request)
        line = None
        if data.line is not None:
            import_id, _, item = data.line.partition(":")
            line = (int(import_id), int(item))

        def work(session: Session) -> ResolutionOut:
            return ResolutionOut.of(
                resolutions.match_by_hand(
                    session,
                    exception_id,
                    resolutions.Decision(principal.actor, data.reason, data.account),
                    settings=settings.service.reconciliation,
                    chart=settings.chart,
                    entry_id=data.entry,
                    line=line,
                    other_exception=data.exception,
                )
            )

        return run_once(
            state.database,
            scope=f"reconciliation-resolve:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /reconciliation/exceptions/{exception_id}/match", canonical(data)),
            status=201,
            work=work,
        )

    @post(
        "/exceptions/{exception_id:int}/post",
        operation_id="postException",
        summary="Post an exception's difference to suspense (or a named account) with a reason",
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def post_difference(
        self,
        request: Request[Any, Any, Any],
        state: State,
        exception_id: RowId,
        data: JSONBody[PostIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ResolutionOut]:
        settings: Settings = state.settings
        principal = principal_of(request)

        def work(session: Session) -> ResolutionOut:
            return ResolutionOut.of(
                resolutions.post_difference(
                    session,
                    exception_id,
                    resolutions.Decision(principal.actor, data.reason, data.account),
                    settings=settings.service.reconciliation,
                    chart=settings.chart,
                )
            )

        return run_once(
            state.database,
            scope=f"reconciliation-resolve:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /reconciliation/exceptions/{exception_id}/post", canonical(data)),
            status=201,
            work=work,
        )

    @post(
        "/resolutions/{resolution_id:int}/approve",
        operation_id="approveResolution",
        summary="Approve a posting that waits for a second auditor (not the one who made it)",
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def approve(
        self,
        request: Request[Any, Any, Any],
        state: State,
        resolution_id: RowId,
        data: JSONBody[DecisionIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ResolutionOut]:
        settings: Settings = state.settings
        principal = principal_of(request)

        def work(session: Session) -> ResolutionOut:
            decision = resolutions.Decision(principal.actor, data.reason)
            return ResolutionOut.of(
                resolutions.approve(session, resolution_id, decision, chart=settings.chart)
            )

        return run_once(
            state.database,
            scope=f"reconciliation-decide:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /reconciliation/resolutions/{resolution_id}/approve", canonical(data)),
            status=201,
            work=work,
        )

    @post(
        "/resolutions/{resolution_id:int}/reject",
        operation_id="rejectResolution",
        summary="Refuse a posting that waits for approval: the exception is open again",
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def reject(
        self,
        request: Request[Any, Any, Any],
        state: State,
        resolution_id: RowId,
        data: JSONBody[DecisionIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ResolutionOut]:
        principal = principal_of(request)

        def work(session: Session) -> ResolutionOut:
            decision = resolutions.Decision(principal.actor, data.reason)
            return ResolutionOut.of(resolutions.reject(session, resolution_id, decision))

        return run_once(
            state.database,
            scope=f"reconciliation-decide:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /reconciliation/resolutions/{resolution_id}/reject", canonical(data)),
            status=201,
            work=work,
        )
