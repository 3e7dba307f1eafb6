"""Staff accounts for the web pages: create (the password is prompted or read from stdin), list, disable."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from ledger.cli import Context, console, main, pass_context
from ledger.services import clock


@main.group()
def staff() -> None:
    """Staff accounts (cashiers, auditors, admins) that sign in to the web pages."""


def _password(from_stdin: bool) -> str:
    # Never an argument: it would sit in the shell history and in every process listing.
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@staff.command("create")
@click.option("--username", required=True, help="What they type to sign in (lower case).")
@click.option("--role", type=click.Choice(["cashier", "auditor", "admin"]), required=True)
@click.option("--consulate", default="", help="The consulate a cashier serves (cashiers only).")
@click.option("--display-name", default="", help="The name shown on the pages (default: the username).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_context
def staff_create(  # noqa: PLR0917 - click passes every option by name
    ctx: Context, username: str, role: str, consulate: str, display_name: str, password_stdin: bool
) -> None:
    """Create a staff account; the password is asked for twice (or read from stdin)."""
    from ledger.services.apikeys import Role
    from ledger.services.staff import StaffError, create_staff

    settings = ctx.settings
    password = _password(password_stdin)
    try:
        with ctx.database.write() as session:
            member = create_staff(
                session,
                settings.service.staff,
                username=username,
                role=Role(role),
                password=password,
                display_name=display_name,
                consulate=consulate,
                known_consulates=set(settings.consulates),
            )
    except StaffError as error:
        raise click.UsageError(str(error)) from None
    where = f" at {member.consulate}" if member.consulate else ""
    console.print(f"staff account {member.username} created: {member.role.value}{where}")


@staff.command("list")
@pass_context
def staff_list(ctx: Context) -> None:
    from ledger.services.staff import list_staff

    with ctx.database.read() as session:
        accounts = list_staff(session)
    now = clock.now()
    table = Table("username", "name", "role", "consulate", "state", "last sign-in")
    for info in accounts:
        member = info.member
        if info.disabled:
            state = "disabled"
        elif info.locked_until is not None and info.locked_until > now:
            state = f"locked until {info.locked_until.isoformat(timespec='seconds')}"
        else:
            state = "active"
        table.add_row(
            member.username,
            member.display_name,
            member.role.value,
            member.consulate,
            state,
            info.last_sign_in_at.isoformat(timespec="seconds") if info.last_sign_in_at else "",
        )
    console.print(table)


@staff.command("disable")
@click.argument("username")
@pass_context
def staff_disable(ctx: Context, username: str) -> None:
    """Stop someone signing in; their open sessions end at once."""
    from ledger.services.staff import StaffError, set_disabled

    try:
        with ctx.database.write() as session:
            set_disabled(session, username, disabled=True)
    except StaffError as error:
        raise click.ClickException(str(error)) from None
    console.print(f"staff account {username} disabled")


@staff.command("enable")
@click.argument("username")
@pass_context
def staff_enable(ctx: Context, username: str) -> None:
    from ledger.services.staff import StaffError, set_disabled

    try:
        with ctx.database.write() as session:
            set_disabled(session, username, disabled=False)
    except StaffError as error:
        raise click.ClickException(str(error)) from None
    console.print(f"staff account {username} enabled")


@staff.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_context
def staff_password(ctx: Context, username: str, password_stdin: bool) -> None:
    """Set a new password (and lift a lock); open sessions end."""
    from ledger.services.staff import StaffError, set_password

    password = _password(password_stdin)
    try:
        with ctx.database.write() as session:
            set_password(session, ctx.settings.service.staff, username, password)
    except StaffError as error:
        raise click.UsageError(str(error)) from None
    console.print(f"password of {username} changed")


@staff.command("role")
@click.argument("username")
@click.option("--role", type=click.Choice(["cashier", "auditor", "admin"]), required=True)
@click.option("--consulate", default="", help="The consulate a cashier serves (cashiers only).")
@pass_context
def staff_role(ctx: Context, username: str, role: str, consulate: str) -> None:
    """Change what someone may do; their open sessions end."""
    from ledger.services.apikeys import Role
    from ledger.services.staff import StaffError, set_role

    try:
        with ctx.database.write() as session:
            member = set_role(
                session,
                username,
                Role(role),
                consulate=consulate,
                known_consulates=set(ctx.settings.consulates),
            )
    except StaffError as error:
        raise click.UsageError(str(error)) from None
    where = f" at {member.consulate}" if member.consulate else ""
    console.print(f"{member.username} is now {member.role.value}{where}")
