"""Stamp commands: signing keys, the trust list, offline verification, expiry of unused stamps."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import Progress
from rich.table import Table

from ledger.cli import Context, console, instant, main, pass_context

if TYPE_CHECKING:
    from receipts.keys import VerificationKey

PURPOSES = click.Choice(["stamp", "trust-list", "audit"])
ALGORITHMS = click.Choice(["ES256", "EdDSA"])
ANCHORS_FILE = "trust-anchors.pem"


def prepare_keys(ctx: Context) -> None:
    """At start-up: production refuses to run without keys; the embedded default makes development keys."""
    from ledger.services import clock
    from ledger.services.signing_keys import (
        KeySetupError,
        ensure_development_keys,
        load_secrets,
        readiness_problems,
        require_production_keys,
    )

    settings = ctx.settings
    try:
        if settings.production:
            with ctx.database.read() as session:
                require_production_keys(session, settings, now=clock.now())
            return
        with ctx.database.read() as session:
            if not readiness_problems(session, settings, now=clock.now()):
                return
        secrets = load_secrets(settings)
        with ctx.database.write() as session:
            made = ensure_development_keys(session, settings, secrets, now=clock.now())
    except KeySetupError as error:
        raise click.ClickException(str(error)) from None
    for record in made:
        console.print(
            f"[bold red]DEVELOPMENT KEY[/] {record.purpose.value} key {record.kid.hex()} created: "
            "not for production"
        )
    if made and secrets.development:
        console.print(f"[bold red]DEVELOPMENT SECRETS[/] in {settings.keys_dir}")


# keys ----------------------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys: stamps, trust lists, audit seals (private keys sealed with ETIMBRE_KEY_PASSPHRASE)."""


def _new_key(
    ctx: Context,
    *,
    purpose: str,
    algorithm: str | None,
    validity_days: int,
    hsm: bool,
    label: str,
    rotate: bool,
) -> None:
    from ledger.services import clock
    from ledger.services.signing_keys import KeySetupError, create_hsm_key, create_key, load_secrets
    from receipts.algorithms import Algorithm
    from receipts.keys import KeyPurpose, SigningKeyError

    settings = ctx.settings
    chosen = Algorithm.from_label(algorithm) if algorithm else None
    validity = timedelta(days=validity_days)
    try:
        with ctx.database.write() as session:
            if hsm:
                record = create_hsm_key(
                    session,
                    settings,
                    KeyPurpose(purpose),
                    now=clock.now(),
                    algorithm=chosen or Algorithm.ES256,
                    validity=validity,
                    label=label,
                )
            else:
                record = create_key(
                    session,
                    KeyPurpose(purpose),
                    passphrase=load_secrets(settings).passphrase,
                    now=clock.now(),
                    algorithm=chosen,
                    validity=validity,
                    label=label,
                    rotate=rotate,
                )
    except (KeySetupError, SigningKeyError) as error:
        raise click.ClickException(str(error)) from None
    where = "in the HSM" if hsm else "sealed in the database"
    console.print(
        f"{record.purpose.value} key [bold]{record.kid.hex()}[/] ({record.algorithm.label}, {where}), "
        f"valid {record.not_before.date()} to {record.not_after.date()}"
    )


@keys.command("create")
@click.option("--purpose", type=PURPOSES, required=True)
@click.option("--algorithm", type=ALGORITHMS, help="Default ES256.")
@click.option("--validity-days", type=click.IntRange(1, 3650), default=732, show_default=True)
@click.option("--hsm", is_flag=True, help="Generate the key in the PKCS#11 token of [stamps] pkcs11_*.")
@click.option("--label", default="", help="A note kept with the key.")
@pass_context
def keys_create(
    ctx: Context, *, purpose: str, algorithm: str | None, validity_days: int, hsm: bool, label: str
) -> None:
    """Create a key; the newest active key of a purpose signs."""
    _new_key(
        ctx,
        purpose=purpose,
        algorithm=algorithm,
        validity_days=validity_days,
        hsm=hsm,
        label=label,
        rotate=False,
    )


@keys.command("rotate")
@click.option("--purpose", type=PURPOSES, required=True)
@click.option("--algorithm", type=ALGORITHMS, help="Default: the algorithm of the key it succeeds.")
@click.option("--validity-days", type=click.IntRange(1, 3650), default=732, show_default=True)
@click.option("--hsm", is_flag=True, help="Generate the new key in the PKCS#11 token.")
@click.option("--label", default="", help="A note kept with the key.")
@pass_context
def keys_rotate(
    ctx: Context, *, purpose: str, algorithm: str | None, validity_days: int, hsm: bool, label: str
) -> None:
    """A new key signs from now on; older keys keep verifying what they signed until they expire."""
    _new_key(
        ctx,
        purpose=purpose,
        algorithm=algorithm,
        validity_days=validity_days,
        hsm=hsm,
        label=label,
        rotate=True,
    )


@keys.command("list")
@click.option("--purpose", type=PURPOSES)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def keys_list(ctx: Context, purpose: str | None, as_json: bool) -> None:
    """Every key, newest first."""
    from ledger.services.signing_keys import list_keys
    from receipts.keys import KeyPurpose

    with ctx.database.read() as session:
        infos = list_keys(session, KeyPurpose(purpose) if purpose else None)
    rows = [
        {
            "kid": i.record.kid.hex(),
            "purpose": i.record.purpose.value,
            "algorithm": i.record.algorithm.label,
            "status": i.record.status.value,
            "not_before": i.record.not_before.isoformat(),
            "not_after": i.record.not_after.isoformat(),
            "storage": "hsm" if i.hsm else "sealed",
            "label": i.label,
        }
        for i in infos
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("kid", "purpose", "algorithm", "status", "valid from", "valid until", "storage", "label")
    for row in rows:
        table.add_row(
            *(
                row[k]
                for k in (
                    "kid",
                    "purpose",
                    "algorithm",
                    "status",
                    "not_before",
                    "not_after",
                    "storage",
                    "label",
                )
            )
        )
    console.print(table)


@keys.command("retire")
@click.argument("kid")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def keys_retire(ctx: Context, kid: str, yes: bool) -> None:
    """Retire a key: it signs no more and EVERYTHING IT SIGNED IS REFUSED (for a compromised key)."""
    from ledger.services import clock
    from ledger.services.signing_keys import retire_key
    from receipts.keys import SigningKeyError

    if not yes:
        click.confirm(f"Retire key {kid}? Every stamp it signed will be refused.", abort=True)
    try:
        with ctx.database.write() as session:
            record = retire_key(session, kid, now=clock.now())
    except SigningKeyError as error:
        raise click.ClickException(str(error)) from None
    console.print(f"{record.purpose.value} key {record.kid.hex()} retired at {record.retired_at}")


# trust list ----------------------------------------------------------------------------------------------


@main.group("trust-list")
def trust_list_group() -> None:
    """The signed trust list offline verifiers use."""


@trust_list_group.command("export")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("trust-list.cose"),
    show_default=True,
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON rendering here.",
)
@click.option(
    "--anchors",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where to write the trust-list public keys (default: {ANCHORS_FILE} beside --out).",
)
@pass_context
def trust_list_export(ctx: Context, out: Path, json_out: Path | None, anchors: Path | None) -> None:
    """Sign the current trust list and write it (and the trust anchors verifiers must pin)."""
    from ledger.services.signing_keys import KeySetupError, StampKeys
    from ledger.services.trust_lists import sign_trust_list, trust_anchors
    from receipts.keyring import NoSigningKeyError
    from receipts.keys import KeyStatus

    settings = ctx.settings
    try:
        with ctx.database.read() as session:
            signed = sign_trust_list(session, settings, StampKeys(settings))
            pinned = [a for a in trust_anchors(session) if a.status is KeyStatus.ACTIVE]
    except (KeySetupError, NoSigningKeyError) as error:
        raise click.ClickException(str(error)) from None
    out.write_bytes(signed.document)
    anchors = anchors or out.with_name(ANCHORS_FILE)
    anchors.write_text("".join(anchor.to_pem() for anchor in pinned), encoding="ascii")
    if json_out is not None:
        json_out.write_text(
            json.dumps(signed.trust_list.to_json(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
    listed = signed.trust_list
    console.print(
        f"trust list: {out} ({len(signed.document)} bytes, {len(listed.keys)} stamp keys, "
        f"{len(listed.fees)} fees, {len(listed.denied)} denied), signed by {signed.anchor.kid.hex()}, "
        f"usable offline until {listed.usable_until.isoformat()}; anchors: {anchors}"
    )


# verify --------------------------------------------------------------------------------------------------


def _anchors(paths: tuple[Path, ...], trust_list: Path) -> list[VerificationKey]:
    from receipts.keys import SigningKeyError
    from receipts.keys import VerificationKey as VerificationKeyClass

    files = list(paths) or [trust_list.with_name(ANCHORS_FILE)]
    anchors = []
    for path in files:
        if not path.exists():
            raise click.UsageError(
                f"no trust anchor file {path}: give --anchor PEM (from `etimbre trust-list export`)"
            )
        blocks = path.read_text(encoding="ascii", errors="replace").split("-----END PUBLIC KEY-----")
        for block in blocks:
            if "-----BEGIN PUBLIC KEY-----" in block:
                try:
                    anchors.append(VerificationKeyClass.from_pem(block + "-----END PUBLIC KEY-----\n"))
                except SigningKeyError as error:
                    raise click.UsageError(f"{path}: {error}") from None
    if not anchors:
        raise click.UsageError(f"{files[0]} holds no PEM public key")
    return anchors


@main.command("verify")
@click.argument("target")
@click.option(
    "--trust-list", "trust_list", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--anchor",
    "anchor_files",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help=f"PEM file of trusted trust-list keys (default: {ANCHORS_FILE} beside the trust list).",
)
@click.option("--consulate", help="Also check the stamp is for this consulate (e.g. FR-PAR).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def verify(
    target: str, trust_list: Path, anchor_files: tuple[Path, ...], consulate: str | None, as_json: bool
) -> None:
    """Verify offline: TARGET is the QR text ("ET1:..."), '-' for text on stdin, or a PNG/JPEG/PDF file.

    Exit 0 when every stamp is genuine, 1 when one is refused, 2 when the trust list cannot be used."""
    from ledger.services import clock
    from receipts.trust_list import TrustListError, load_trust_list
    from receipts.verifier import decide, decide_file

    now = clock.now()
    anchors = _anchors(anchor_files, trust_list)
    try:
        trust = load_trust_list(trust_list.read_bytes(), anchors, now=now)
    except TrustListError as error:
        click.echo(f"trust list refused ({error.reason.value}): {error.message}", err=True)
        sys.exit(2)
    if target == "-":
        decisions = [decide(sys.stdin.read(), trust, audience=consulate, now=now)]
    elif target.startswith("ET1:") or not Path(target).exists():
        decisions = [decide(target, trust, audience=consulate, now=now)]
    else:
        decisions = decide_file(Path(target).read_bytes(), trust, audience=consulate, now=now)
    for decision in decisions:
        if as_json:
            click.echo(json.dumps(decision.to_json(), ensure_ascii=False))
        elif decision.genuine and decision.stamp is not None:
            claims = decision.stamp.claims
            console.print(
                f"[bold green]GENUINE[/] {claims.number.printed()}  {claims.audience}  "
                f"{decision.stamp.fee.code} ({decision.stamp.fee.fr})  {claims.amount}  "
                f"valid until {claims.expires_at.date()}"
            )
        else:
            reason = decision.reason.value if decision.reason else "refused"
            console.print(f"[bold red]REFUSED[/] {reason}: {decision.message}")
    if not as_json:
        console.print("[dim]offline check; whether a stamp was already used only the service can tell[/]")
    sys.exit(0 if all(d.genuine for d in decisions) else 1)


# stamps --------------------------------------------------------------------------------------------------


@main.group("stamps")
def stamps_group() -> None:
    """Stamps in the ledger."""


@stamps_group.command("expire")
@click.option("--as-of", "as_of", required=True, help="Expire stamps unused past their date at this instant.")
@click.option("--batch", type=click.IntRange(1, 5000), default=500, show_default=True)
@pass_context
def stamps_expire(ctx: Context, as_of: str, batch: int) -> None:
    """Apply the expiry policy: unused stamps past their date move to revenue:expired-stamps."""
    from sqlalchemy import func, select

    from ledger.db.models_stamps import Stamp
    from ledger.services import clock
    from ledger.services.stamps import expire_stamps

    moment = instant(as_of, "--as-of")
    assert moment is not None
    if moment > clock.now():
        raise click.BadParameter(
            "stamps expire only in the past; give an instant before now", param_hint="--as-of"
        )
    settings = ctx.settings
    cutoff = moment - timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    with ctx.database.read() as session:
        due = (
            session.scalar(
                select(func.count())
                .select_from(Stamp)
                .where(Stamp.status == "issued", Stamp.expires_at <= cutoff)
            )
            or 0
        )
    expired = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("expiring stamps", total=due)
        while True:
            try:
                with ctx.database.write() as session:
                    done = expire_stamps(
                        session, settings, as_of=moment, actor="cli:stamps-expire", limit=batch
                    )
            except ValueError as error:
                raise click.ClickException(str(error)) from None
            if not done:
                break
            expired += len(done)
            progress.update(task, advance=len(done))
    console.print(f"{expired} stamps expired as of {moment.isoformat()}")
