"""Audit commands: seal the journal, verify it, prove an entry, export a signed day, manage the audit key."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.cli import Context, console, instant, main, pass_context
from ledger.db.types import from_micros


@main.group("audit")
def audit_group() -> None:
    """Tamper evidence: seals over the journal, their verification, proofs and signed daily seals."""


def _seal_range(ctx: Context, value: str | None, option: str, *, start: bool) -> int | None:
    """A seal number, or the first (--from) / last (--to) seal cut at or after / before an instant."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    from ledger.services.audit.seals import seal_at

    moment = instant(value, option)
    assert moment is not None
    with ctx.database.read() as session:
        found = seal_at(session, moment, after=start)
    if found is None:
        raise click.BadParameter(
            f"no seal was cut {'after' if start else 'before'} {value}", param_hint=option
        )
    return found


@audit_group.command("seal")
@pass_context
def audit_seal(ctx: Context) -> None:
    """Seal every committed record not sealed yet (the service also does it on an interval)."""
    from ledger.services.audit.runner import seal_pending

    cut = seal_pending(ctx.database, max_records=ctx.settings.service.audit.max_records_per_seal)
    if not cut:
        console.print("nothing to seal: every committed record is sealed")
        return
    for header in cut:
        console.print(
            f"seal {header.seal_no}: {header.record_count} records, root {header.merkle_root.hex()}"
        )


@audit_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@pass_context
def audit_status(ctx: Context, as_json: bool) -> None:
    """The latest seal, what waits to be sealed, and the last signed day."""
    from ledger.services.audit.runner import status

    with ctx.database.read() as session:
        found = status(session)
    latest = found.latest.header if found.latest else None
    document: dict[str, Any] = {
        "latest_seal": None
        if latest is None
        else {
            "number": latest.seal_no,
            "hash": latest.hash().hex(),
            "merkle_root": latest.merkle_root.hex(),
            "made_at": from_micros(latest.made_at).isoformat(),
            "records": latest.record_count,
        },
        "unsealed": found.unsealed,
        "last_daily_seal": None
        if found.last_daily_day is None
        else {"day": found.last_daily_day, "seal": found.last_daily_seal},
    }
    if as_json:
        click.echo(json.dumps(document))
        return
    if latest is None:
        console.print("no seal yet")
    else:
        console.print(
            f"latest seal {latest.seal_no} cut {from_micros(latest.made_at).isoformat(timespec='seconds')}"
            f" ({latest.record_count} records), hash {latest.hash().hex()}"
        )
    console.print("waiting to be sealed: " + ", ".join(f"{n} {kind}" for kind, n in found.unsealed.items()))
    if found.last_daily_day:
        console.print(f"last signed day: {found.last_daily_day} (seal {found.last_daily_seal})")


def _trusted_keys(ctx: Context, public_keys: tuple[Path, ...]) -> list[Any]:
    """The audit keys to trust: the PEM files given (the treasury's own copies), else the keyring's."""
    from ledger.services.signing_keys import DatabaseKeyStore
    from receipts.keyring import Keyring
    from receipts.keys import KeyPurpose, SigningKeyError, VerificationKey

    try:
        if public_keys:
            return [VerificationKey.from_pem(path.read_bytes()) for path in public_keys]
    except (OSError, SigningKeyError) as error:
        raise click.ClickException(f"--public-key: {error}") from None
    with ctx.database.read() as session:
        keyring = Keyring(DatabaseKeyStore(session))
        return [record.verification_key() for record in keyring.verification_keys(KeyPurpose.AUDIT)]


@audit_group.command("verify")
@click.option("--from", "first", help="First seal: a seal number or an instant (default: the first seal).")
@click.option("--to", "last", help="Last seal: a seal number or an instant (default: the latest seal).")
@click.option("--deep", is_flag=True, help="Also recompute every Merkle root and member list (slower).")
@click.option(
    "--daily",
    "dailies",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="An archived daily seal document to hold the database against (repeatable).",
)
@click.option(
    "--public-key",
    "public_keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="A trusted audit public key (PEM, repeatable); default: the audit keys of the keyring.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@pass_context
def audit_verify(
    ctx: Context,
    *,
    first: str | None,
    last: str | None,
    deep: bool,
    dailies: tuple[Path, ...],
    public_keys: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Recompute every seal from the rows; name what was altered, removed, inserted or rewritten."""
    from sqlalchemy import func, select

    from ledger.db.models_audit import AuditSeal
    from ledger.services.audit.daily import DailySealError, parse_document
    from ledger.services.audit.verify import verify

    try:
        archived = [parse_document(path.read_bytes()) for path in dailies]
    except DailySealError as error:
        raise click.ClickException(f"daily seal: {error}") from None
    keys = _trusted_keys(ctx, public_keys)
    if archived and not keys:
        raise click.ClickException("give the audit public key (--public-key) to check the daily seals")
    start = _seal_range(ctx, first, "--from", start=True)
    end = _seal_range(ctx, last, "--to", start=False)
    tolerance = ctx.settings.service.audit.lateness_tolerance_seconds * 1_000_000
    with ctx.database.read() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(AuditSeal.record_count), 0)).where(
                AuditSeal.seal_no.between(start or 1, end or 2**62)
            )
        )
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("records", total=int(total or 0))
            report = verify(
                session,
                first=start,
                last=end,
                deep=deep,
                tolerance_us=tolerance,
                dailies=archived,
                keys=keys,
                progress=lambda done: progress.advance(task, done),
                database=ctx.database,
            )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "seals": {"first": report.first_seal, "last": report.last_seal, "count": report.seals},
                    "records": report.records,
                    "unsealed": report.unsealed,
                    "daily_seals": report.daily_seals,
                    "findings": [
                        {
                            "problem": f.problem.value,
                            "seal": f.seal_no,
                            "kind": f.kind,
                            "key": f.key,
                            "message": f.message,
                        }
                        for f in report.findings
                    ],
                }
            )
        )
    else:
        console.print(
            f"seals {report.first_seal}–{report.last_seal}: {report.seals} seals, {report.records} records;"
            f" not sealed yet: {', '.join(f'{n} {kind}' for kind, n in report.unsealed.items())}"
        )
        if report.daily_seals:
            console.print(f"daily seals checked: {', '.join(report.daily_seals)}")
        for finding in report.findings:
            console.print(f"[red]{finding.problem.value}[/]: {finding.message}", highlight=False)
        console.print("[green]intact[/]" if report.ok else f"[red]{len(report.findings)} problem(s)[/]")
    if not report.ok:
        sys.exit(1)


@audit_group.command("prove")
@click.argument("entry_id", type=click.UUID)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the proof to a file.")
@pass_context
def audit_prove(ctx: Context, entry_id: uuid.UUID, out: Path | None) -> None:
    """An inclusion proof for an entry and its postings (JSON), checkable with docs/audit-seals.md alone."""
    from ledger.services.audit.proofs import ProofError, prove
    from ledger.services.journal import EntryNotFoundError

    try:
        with ctx.database.read() as session:
            proof = prove(session, entry_id)
    except (ProofError, EntryNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    text = json.dumps(proof.to_json(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"proof of entry {entry_id} (seal {proof.seal.header.seal_no}) written to {out}")


@audit_group.command("export-day")
@click.option("--day", required=True, help="The business day, YYYY-MM-DD (treasury time zone).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the document to a file.")
@pass_context
def audit_export_day(ctx: Context, day: str, out: Path | None) -> None:
    """The signed daily seal of a business day, for the treasury to archive (signed now if not yet)."""
    from ledger.services import clock
    from ledger.services.audit.daily import DailySealError, sign_day, stored
    from ledger.services.audit.keys import database_audit_keys
    from ledger.services.signing_keys import KeySetupError, StampKeys
    from receipts.keys import SigningKeyError

    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--day") from None
    settings = ctx.settings
    with ctx.database.read() as session:
        daily = stored(session, wanted)
    if daily is None:
        try:
            with ctx.database.write() as session:
                daily = sign_day(
                    session,
                    wanted,
                    timezone=settings.service.treasury.timezone,
                    keys=database_audit_keys(StampKeys(settings)),
                    now=clock.now(),
                    max_records=settings.service.audit.max_records_per_seal,
                )
        except (DailySealError, KeySetupError) as error:
            raise click.ClickException(str(error)) from None
        except SigningKeyError as error:
            raise click.ClickException(f"{error} (etimbre keys create --purpose audit)") from None
    document = daily.document()
    if out is None:
        click.echo(document.decode(), nl=False)
    else:
        out.write_bytes(document)
        console.print(f"daily seal of {day} (seal {daily.statement.seal_no}) written to {out}")


@audit_group.command("public-key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the PEM to a file.")
@pass_context
def audit_public_key(ctx: Context, out: Path | None) -> None:
    """The audit public keys (PEM) the treasury keeps to check daily seals and proofs."""
    pems = "".join(key.to_pem() for key in _trusted_keys(ctx, ()))
    if not pems:
        raise click.ClickException("no audit key yet: etimbre keys create --purpose audit")
    if out is None:
        click.echo(pems, nl=False)
    else:
        out.write_text(pems, encoding="ascii")
        console.print(f"audit public keys written to {out}")
