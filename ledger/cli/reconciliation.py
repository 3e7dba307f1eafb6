"""`etimbre reconcile`: import the day's files, run the reconciliation, read reports, resolve exceptions.

    etimbre reconcile --day 2026-11-22 --export tgr.csv --profile treasury-default \\
        [--settlement stripe.csv --settlement-profile settlement-stripe] [--out reports/]

exits 0 when everything matched, 3 when exceptions remain (an auditor must look), 1 on an error (a file
rejected or quarantined, a run refused). Suitable for cron or a systemd timer (docs/reconciliation.md).
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ledger.cli import Context, console, main, pass_context

EXCEPTIONS_REMAIN = 3
PHASES = ("load", "resolved", "exact", "aggregate", "window", "tolerance", "leftovers", "balance", "record")
errors = Console(stderr=True)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def _progress(*, quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        disable=quiet,
        transient=False,
    )


def _pairs(files: tuple[Path, ...], profiles: tuple[str, ...], what: str) -> list[tuple[Path, str]]:
    if not files:
        return []
    if len(profiles) == 1:
        profiles = profiles * len(files)
    if len(profiles) != len(files):
        raise click.UsageError(f"give one profile for every {what} file, in the same order (or one for all)")
    return list(zip(files, profiles, strict=True))


def _import(ctx: Context, path: Path, profile: str, actor: str, progress: Progress) -> int:
    """Import one file (once); the import id to reconcile, or a ClickException saying why not."""
    from reconciliation.imports import import_file, profiles_for, resolve_layout

    try:
        layout = resolve_layout(profile, profiles_for(ctx.settings))
    except LookupError as error:
        raise click.BadParameter(str(error), param_hint="--profile") from None
    task = progress.add_task(f"import {path.name}", total=None)
    outcome = import_file(
        ctx.database,
        path,
        layout,
        file_name=path.name,
        actor=actor,
        progress=lambda lines: progress.update(task, completed=lines),
    )
    progress.update(task, total=outcome.lines, completed=outcome.lines)
    if outcome.status == "rejected":
        for problem in outcome.errors[:50]:
            errors.print(f"  {path.name}: {problem}", highlight=False, markup=False)
        more = outcome.error_count - min(50, len(outcome.errors))
        if more > 0:
            errors.print(f"  ... and {more} more (etimbre reconcile import-show {outcome.import_id})")
        raise click.ClickException(outcome.message)
    if outcome.status == "quarantined":
        raise click.ClickException(outcome.message)
    errors.print(outcome.message, highlight=False, markup=False)
    for flag in outcome.flags:
        errors.print(f"  [yellow]flag[/]: {flag['message']}")
    return outcome.import_id


def _summary_tables(summary: Any) -> None:
    matched = Table("pass:rule", "matches", "ledger", "export", title="Matched")
    for name, figures in sorted(summary.counts["matched"].items()):
        matched.add_row(name, str(figures["matches"]), str(figures["ledger"]), str(figures["export"]))
    console.print(matched)
    exceptions = Table("category", "count", title="Exceptions")
    for category, count in sorted(summary.exceptions.items()):
        exceptions.add_row(category, str(count))
    console.print(exceptions)
    from ledger.money import Money

    balances = Table("account", "bank", "book", "difference", "status", title="Balance check")
    for check in summary.balances:
        currency = check["currency"]
        balances.add_row(
            check["account"],
            Money(check["bank_movement"], currency).to_str(),
            Money(check["book_movement"], currency).to_str(),
            Money(check["difference"], currency).to_str(),
            check["status"],
        )
    console.print(balances)


def _write_reports(ctx: Context, run_id: int, day: date, out: Path) -> list[Path]:
    from reconciliation.report_pdf import report_pdf
    from reconciliation.reports import report_csv, report_json

    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"reconciliation-{day.isoformat()}-run{run_id}"
    with ctx.database.read() as session:
        stem.with_suffix(".json").write_bytes(report_json(session, run_id))
        with stem.with_suffix(".csv").open("wb") as table:
            for chunk in report_csv(session, run_id):
                table.write(chunk)
        stem.with_suffix(".pdf").write_bytes(report_pdf(session, run_id))
    return [stem.with_suffix(suffix) for suffix in (".json", ".csv", ".pdf")]


@main.group(invoke_without_command=True)
@click.option("--day", help="Business day to reconcile, YYYY-MM-DD, in the treasury's time zone.")
@click.option(
    "--export",
    "exports",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Treasury export or bank statement of the day (repeatable).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    help="Import profile of each --export (NAME, NAME@VERSION, camt053 or mt940).",
)
@click.option(
    "--settlement",
    "settlements",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Acquirer settlement report (repeatable).",
)
@click.option(
    "--settlement-profile", "settlement_profiles", multiple=True, help="Import profile of each --settlement."
)
@click.option(
    "--import",
    "import_ids",
    multiple=True,
    type=click.IntRange(min=1),
    help="Also reconcile a file imported before (its import id).",
)
@click.option("--currency", "currencies", multiple=True, help="Reconcile only these currencies.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the JSON, CSV and PDF reports here.",
)
@click.option(
    "--auditor",
    envvar="ETIMBRE_AUDITOR",
    default="scheduled",
    show_default=True,
    help="Who runs it, for the record (or ETIMBRE_AUDITOR).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def reconcile(  # noqa: PLR0917 - click passes every option by name
    click_ctx: click.Context,
    day: str | None,
    exports: tuple[Path, ...],
    profiles: tuple[str, ...],
    settlements: tuple[Path, ...],
    settlement_profiles: tuple[str, ...],
    import_ids: tuple[int, ...],
    currencies: tuple[str, ...],
    out: Path | None,
    auditor: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Reconcile a business day with the treasury's export and the acquirers' settlement reports.

    Exits 0 when everything matched, 3 when exceptions remain, 1 on an error.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    business_day = _day(day, "--day")
    if business_day is None:
        raise click.UsageError("give --day (or a subcommand: etimbre reconcile --help)")
    files = _pairs(exports, profiles, "--export") + _pairs(settlements, settlement_profiles, "--settlement")
    if not files and not import_ids:
        raise click.UsageError("give the day's files: --export FILE --profile NAME")
    ctx = click_ctx.ensure_object(Context)
    from reconciliation.runs import RunPlan, RunRefusedError
    from reconciliation.runs import reconcile as run_day

    actor = f"cli:{auditor}"
    with _progress(quiet=quiet or as_json) as progress:
        ids = [_import(ctx, path, profile, actor, progress) for path, profile in files]
        task = progress.add_task(f"reconcile {business_day.isoformat()}", total=len(PHASES))
        settings = ctx.settings
        try:
            summary = run_day(
                ctx.database,
                RunPlan(
                    business_day, tuple(dict.fromkeys([*ids, *import_ids])), tuple(currencies), actor=actor
                ),
                settings=settings.service.reconciliation,
                timezone=settings.service.treasury.timezone,
                chart=settings.chart,
                progress=lambda phase: progress.update(task, advance=1, description=f"reconcile: {phase}"),
            )
        except RunRefusedError as error:
            raise click.ClickException(str(error)) from None
    written = _write_reports(ctx, summary.run_id, business_day, out) if out is not None else []
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run": summary.run_id,
                    "business_day": summary.business_day,
                    "scope": summary.scope,
                    "matches": summary.match_count,
                    "exceptions": summary.exceptions,
                    "balances": summary.balances,
                    "reports": [str(path) for path in written],
                },
                ensure_ascii=False,
            )
        )
    else:
        _summary_tables(summary)
        for path in written:
            console.print(f"report: {path}")
        console.print(
            f"run {summary.run_id}: {summary.match_count} matches, {summary.exception_count} exception(s)"
        )
    if summary.exception_count:
        sys.exit(EXCEPTIONS_REMAIN)


@reconcile.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", required=True, help="NAME, NAME@VERSION, camt053 or mt940.")
@click.option("--auditor", envvar="ETIMBRE_AUDITOR", default="scheduled", show_default=True)
@pass_context
def import_command(ctx: Context, path: Path, profile: str, auditor: str) -> None:
    """Import one file (the same file twice adds nothing); exit 1 if it is rejected or quarantined."""
    with _progress(quiet=False) as progress:
        import_id = _import(ctx, path, profile, f"cli:{auditor}", progress)
    console.print(f"import {import_id}")


@reconcile.command("imports")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@pass_context
def imports_command(ctx: Context, limit: int) -> None:
    """The latest imports."""
    from reconciliation.imports import list_imports

    with ctx.database.read() as session:
        found = list_imports(session, limit=limit)
    table = Table("id", "status", "file", "profile", "lines", "currencies", "sha256")
    for item in found:
        table.add_row(
            str(item.import_id),
            item.status,
            item.file_name,
            item.profile or item.source,
            str(item.lines),
            ",".join(item.currencies),
            item.sha256[:16],
        )
    console.print(table)


@reconcile.command("import-show")
@click.argument("import_id", type=int)
@pass_context
def import_show(ctx: Context, import_id: int) -> None:
    """One import: statements, flags, reasons, and every error of a rejected file."""
    from reconciliation.imports import ImportNotFoundError, get_import

    try:
        with ctx.database.read() as session:
            view = get_import(session, import_id)
    except ImportNotFoundError as error:
        raise click.ClickException(str(error)) from None
    outcome = view.outcome
    console.print(outcome.message, highlight=False, markup=False)
    console.print(
        f"sha256 {outcome.sha256}; profile {outcome.profile or outcome.source} ({view.profile_digest[:16]})"
    )
    for reason in outcome.reasons:
        console.print(f"  reason: {reason}", highlight=False, markup=False)
    for flag in outcome.flags:
        console.print(f"  flag: {flag['message']}", highlight=False, markup=False)
    for problem in outcome.errors:
        console.print(f"  {problem}", highlight=False, markup=False)


@reconcile.command("runs")
@click.option("--day", help="Only this business day.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@pass_context
def runs_command(ctx: Context, day: str | None, limit: int) -> None:
    """The latest runs."""
    from reconciliation.runs import list_runs

    wanted = _day(day, "--day")
    with ctx.database.read() as session:
        found = list_runs(session, business_day=wanted.isoformat() if wanted else None, limit=limit)
    table = Table("run", "day", "scope", "matches", "exceptions", "by", "finished")
    for run in found:
        table.add_row(
            str(run.id),
            run.business_day,
            run.scope,
            str(run.match_count),
            str(run.exception_count),
            run.started_by,
            run.finished_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@reconcile.command("report")
@click.argument("run_id", type=int)
@click.option(
    "--format", "kind", type=click.Choice(["json", "csv", "pdf"]), default="json", show_default=True
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@pass_context
def report_command(ctx: Context, run_id: int, kind: str, output: Path | None) -> None:
    """A run's report; the same inputs give the same bytes."""
    from reconciliation.report_pdf import report_pdf
    from reconciliation.reports import report_csv, report_json
    from reconciliation.runs import RunNotFoundError

    try:
        with ctx.database.read() as session:
            if kind == "json":
                chunks = [report_json(session, run_id)]
            elif kind == "pdf":
                chunks = [report_pdf(session, run_id)]
            else:
                chunks = list(report_csv(session, run_id))
    except RunNotFoundError as error:
        raise click.ClickException(str(error)) from None
    if output is not None:
        output.write_bytes(b"".join(chunks))
        return
    stream = sys.stdout.buffer
    for chunk in chunks:
        stream.write(chunk)
    stream.flush()


@reconcile.command("exceptions")
@click.option(
    "--status",
    type=click.Choice(["open", "pending_approval", "resolved", "cleared", "superseded"]),
    default="open",
    show_default=True,
)
@click.option("--category", help="Only this category (missing_in_ledger, amount_mismatch, ...).")
@click.option("--day", help="Only this business day.")
@click.option("--bucket", type=click.Choice(["0-2", "3-7", "8-30", ">30"]), help="Only this age (days).")
@click.option("--run", "run_id", type=int, help="Only this run.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def exceptions_command(  # noqa: PLR0917 - click passes every option by name
    ctx: Context,
    status: str,
    category: str | None,
    day: str | None,
    bucket: str | None,
    run_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Exceptions with their age; by default the open ones."""
    from ledger.services import clock
    from reconciliation.days import today_in
    from reconciliation.resolutions import list_exceptions

    today = today_in(ctx.settings.service.treasury.timezone, clock.now())
    with ctx.database.read() as session:
        found = list_exceptions(
            session,
            today=today,
            status=status,
            category=category,
            business_day=_day(day, "--day"),
            bucket=bucket,
            run_id=run_id,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps([_exception_json(e) for e in found], ensure_ascii=False))
        return
    table = Table(
        "id", "day", "age", "category", "reference", "ledger", "export", "what", title=f"{status} exceptions"
    )
    for e in found:
        table.add_row(
            str(e.id),
            e.business_day.isoformat(),
            e.bucket,
            e.category,
            e.reference,
            str(e.ledger_amount or ""),
            str(e.export_amount or ""),
            e.message,
        )
    console.print(table)


def _exception_json(view: Any) -> dict[str, Any]:
    return {
        "id": view.id,
        "run": view.run_id,
        "category": view.category,
        "business_day": view.business_day.isoformat(),
        "age_days": view.age_days,
        "bucket": view.bucket,
        "status": view.status,
        "reference": view.reference,
        "entry": str(view.entry_id) if view.entry_id else None,
        "line": f"{view.line[0]}:{view.line[1]}" if view.line else None,
        "ledger_amount": view.ledger_amount.to_str() if view.ledger_amount else None,
        "export_amount": view.export_amount.to_str() if view.export_amount else None,
        "currency": view.currency,
        "message": view.message,
        "resolutions": [
            {"id": r.id, "action": r.action, "status": r.status, "actor": r.actor, "reason": r.reason}
            for r in view.resolutions
        ],
    }


def _resolve(ctx: Context, work: Any) -> None:
    from reconciliation.resolutions import (
        ExceptionNotFoundError,
        ResolutionConflictError,
        ResolutionInvalidError,
        ResolutionNotFoundError,
    )

    try:
        with ctx.database.write() as session:
            view = work(session)
    except (
        ExceptionNotFoundError,
        ResolutionNotFoundError,
        ResolutionConflictError,
        ResolutionInvalidError,
    ) as e:
        raise click.ClickException(str(e)) from None
    amount = f" {view.amount}" if view.amount is not None else ""
    entries = f"; entries {', '.join(map(str, view.entry_ids))}" if view.entry_ids else ""
    state = view.status.replace("_", " ")
    console.print(
        f"resolution {view.id}: {view.action}{amount} ({state}) by {view.actor}{entries}", highlight=False
    )


def _who(auditor: str | None) -> str:
    if not auditor or not auditor.strip():
        raise click.UsageError("say who you are: --auditor NAME (or ETIMBRE_AUDITOR)")
    return f"cli:{auditor.strip()}"


AUDITOR = click.option("--auditor", envvar="ETIMBRE_AUDITOR", help="Who decides (or ETIMBRE_AUDITOR).")
REASON = click.option("--reason", required=True, help="Why: kept with the resolution and the ledger entry.")


@reconcile.command("match")
@click.argument("exception_id", type=int)
@click.option("--entry", "entry_id", type=click.UUID, help="The ledger entry the exception lacks.")
@click.option("--line", help="The export line it lacks, as IMPORT:ITEM.")
@click.option("--with", "other", type=int, help="Another exception holding the missing side.")
@click.option("--account", help="Where a difference goes (default: suspense).")
@REASON
@AUDITOR
@pass_context
def match_command(  # noqa: PLR0917 - click passes every option by name
    ctx: Context,
    exception_id: int,
    entry_id: uuid.UUID | None,
    line: str | None,
    other: int | None,
    account: str | None,
    reason: str,
    auditor: str | None,
) -> None:
    """Match an exception by hand; a difference is posted (a large one waits for approval)."""
    from reconciliation.resolutions import Decision, match_by_hand

    pair = None
    if line is not None:
        head, _, tail = line.partition(":")
        if not (head.isdigit() and tail.isdigit()):
            raise click.BadParameter("write the line as IMPORT:ITEM, e.g. 12:345", param_hint="--line")
        pair = (int(head), int(tail))
    settings = ctx.settings
    decision = Decision(_who(auditor), reason, account)
    _resolve(
        ctx,
        lambda session: match_by_hand(
            session,
            exception_id,
            decision,
            settings=settings.service.reconciliation,
            chart=settings.chart,
            entry_id=entry_id,
            line=pair,
            other_exception=other,
        ),
    )


@reconcile.command("post")
@click.argument("exception_id", type=int)
@click.option("--account", help="A named account instead of suspense.")
@REASON
@AUDITOR
@pass_context
def post_command(
    ctx: Context, exception_id: int, account: str | None, reason: str, auditor: str | None
) -> None:
    """Post an exception's difference to suspense (or --account); a large one waits for approval."""
    from reconciliation.resolutions import Decision, post_difference

    settings = ctx.settings
    decision = Decision(_who(auditor), reason, account)
    _resolve(
        ctx,
        lambda session: post_difference(
            session, exception_id, decision, settings=settings.service.reconciliation, chart=settings.chart
        ),
    )


@reconcile.command("approve")
@click.argument("resolution_id", type=int)
@REASON
@AUDITOR
@pass_context
def approve_command(ctx: Context, resolution_id: int, reason: str, auditor: str | None) -> None:
    """Approve a posting that waits for a second auditor (not the one who made it)."""
    from reconciliation.resolutions import Decision, approve

    decision = Decision(_who(auditor), reason)
    chart = ctx.settings.chart
    _resolve(ctx, lambda session: approve(session, resolution_id, decision, chart=chart))


@reconcile.command("reject")
@click.argument("resolution_id", type=int)
@REASON
@AUDITOR
@pass_context
def reject_command(ctx: Context, resolution_id: int, reason: str, auditor: str | None) -> None:
    """Refuse a posting that waits for approval; the exception is open again."""
    from reconciliation.resolutions import Decision, reject

    decision = Decision(_who(auditor), reason)
    _resolve(ctx, lambda session: reject(session, resolution_id, decision))
