"""`etimbre staff` on both engines: the password comes from a prompt or stdin, never an argument."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from ledger.db.engine import Database
from ledger.services.staff import SignedIn, sign_in
from ledger.settings import StaffSettings, get_settings

Run = Callable[..., Result]
CHEAP_ARGON2 = {
    "ETIMBRE_STAFF_ARGON2_TIME_COST": "1",
    "ETIMBRE_STAFF_ARGON2_MEMORY_KIB": "8192",
    "ETIMBRE_STAFF_ARGON2_PARALLELISM": "1",
}


@pytest.fixture
def run(database_url: str) -> Iterator[Run]:
    get_settings.cache_clear()

    def invoke(*args: str, input: str | None = None) -> Result:
        env = {"ETIMBRE_DATABASE_URL": database_url, **CHEAP_ARGON2}
        return CliRunner().invoke(main, list(args), env=env, input=input)

    yield invoke
    get_settings.cache_clear()


def test_create_list_disable_enable(run: Run, db: Database, policy: StaffSettings) -> None:
    created = run(
        "staff", "create", "--username", "amina", "--role", "cashier", "--consulate", "FR-PAR",
        "--display-name", "Amina Benali", "--password-stdin", input="a long counter password\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "created: cashier at FR-PAR" in created.output
    prompted = run(
        "staff", "create", "--username", "omar", "--role", "auditor",
        input="auditor's own passphrase\nauditor's own passphrase\n",
    )  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    assert "auditor's own passphrase" not in prompted.output  # hidden input is not echoed
    assert isinstance(sign_in(db, policy, "omar", "auditor's own passphrase"), SignedIn)
    listed = run("staff", "list")
    assert "Amina Benali" in listed.output and "omar" in listed.output
    assert run("staff", "disable", "amina").exit_code == 0
    assert "disabled" in run("staff", "list").output
    assert not isinstance(sign_in(db, policy, "amina", "a long counter password"), SignedIn)
    assert run("staff", "enable", "amina").exit_code == 0
    assert isinstance(sign_in(db, policy, "amina", "a long counter password"), SignedIn)
    moved = run("staff", "role", "amina", "--role", "cashier", "--consulate", "BE-BRU")
    assert moved.exit_code == 0, moved.output
    assert "amina is now cashier at BE-BRU" in moved.output
    assert run("staff", "role", "amina", "--role", "auditor", "--consulate", "BE-BRU").exit_code == 2
    missing = run("staff", "disable", "nobody")
    assert missing.exit_code == 1
    assert "no staff account 'nobody'" in missing.output


def test_bad_input_is_named_and_nothing_is_written(run: Run) -> None:
    short = run(
        "staff", "create", "--username", "amina", "--role", "admin", "--password-stdin", input="short\n"
    )
    assert short.exit_code == 2
    assert "password: at least 12 characters" in short.output
    cashier = run(
        "staff", "create", "--username", "amina", "--role", "cashier", "--password-stdin",
        input="a long counter password\n",
    )  # fmt: skip
    assert cashier.exit_code == 2
    assert "consulate" in cashier.output
    as_argument = run("staff", "create", "--username", "amina", "--role", "admin", "--password", "x" * 20)
    assert as_argument.exit_code == 2
    assert "No such option" in as_argument.output
    mismatch = run(
        "staff",
        "create",
        "--username",
        "amina",
        "--role",
        "admin",
        input="one password here\nanother one here\n",
    )
    assert mismatch.exit_code != 0
    assert "amina" not in run("staff", "list").output


def test_new_password_lifts_the_lock(run: Run, db: Database, policy: StaffSettings) -> None:
    run(
        "staff",
        "create",
        "--username",
        "amina",
        "--role",
        "admin",
        "--password-stdin",
        input="first long password\n",
    )
    for _ in range(policy.max_failed_attempts):
        sign_in(db, policy, "amina", "not the password")
    assert "locked until" in run("staff", "list").output
    changed = run("staff", "password", "amina", "--password-stdin", input="second long password\n")
    assert changed.exit_code == 0, changed.output
    assert isinstance(sign_in(db, policy, "amina", "second long password"), SignedIn)
