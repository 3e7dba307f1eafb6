"""Staff accounts and sign-in on both engines: password policy, Argon2id, lockout, sessions."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import select, text

from ledger.db.engine import Database
from ledger.db.models_staff import StaffAccount
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.services.staff import (
    SignedIn,
    SignInRefused,
    StaffError,
    active_session,
    create_staff,
    csrf_matches,
    list_staff,
    set_disabled,
    set_password,
    set_role,
    sign_in,
    sign_out,
)
from ledger.settings import StaffSettings

PASSWORD = "correct horse battery"


def _create(db: Database, policy: StaffSettings, username: str = "amina", **kwargs: object) -> None:
    arguments: dict[str, object] = {"role": Role.CASHIER, "consulate": "FR-PAR", "password": PASSWORD}
    arguments.update(kwargs)
    with db.write() as session:
        create_staff(session, policy, username=username, known_consulates={"FR-PAR", "BE-BRU"}, **arguments)  # type: ignore[arg-type]


def _signed_in(outcome: SignedIn | SignInRefused) -> SignedIn:
    assert isinstance(outcome, SignedIn), outcome
    return outcome


@pytest.mark.parametrize(
    ("username", "changes", "field"),
    [
        ("amina", {"password": "short1"}, "password"),
        ("amina", {"password": "amina-is-my-password"}, "password"),
        ("amina", {"password": "aaaaaaaaaaaaaaaa"}, "password"),
        ("amina", {"password": "x" * 200 + "abcdefghij" * 10}, "password"),
        ("Amina Benali", {}, "username"),
        ("amina", {"consulate": ""}, "consulate"),
        ("amina", {"consulate": "XX-NOP"}, "consulate"),
        ("amina", {"role": Role.AUDITOR}, "consulate"),
    ],
)
def test_create_refuses_what_the_policy_forbids(
    db: Database, policy: StaffSettings, username: str, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(StaffError) as refused:
        _create(db, policy, username, **changes)
    assert refused.value.field == field
    with db.read() as session:
        assert list_staff(session) == []


def test_passwords_are_stored_as_argon2id_and_usernames_are_unique(
    db: Database, policy: StaffSettings
) -> None:
    _create(db, policy)
    with db.read() as session:
        stored = session.scalar(select(StaffAccount.password_hash))
    assert stored is not None and stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    with pytest.raises(StaffError, match="taken"):
        _create(db, policy)
    with db.write() as session, pytest.raises(Exception, match=r"argon2id|check"):
        session.execute(text("UPDATE staff_accounts SET password_hash = 'plain'"))


def test_sign_in_opens_a_session_known_only_by_its_hash(db: Database, policy: StaffSettings) -> None:
    _create(db, policy, display_name="Amina Benali")
    signed = _signed_in(sign_in(db, policy, "amina", PASSWORD))
    assert (signed.member.role, signed.member.consulate) == (Role.CASHIER, "FR-PAR")
    assert signed.member.actor == f"staff:{signed.member.staff_id}:amina"
    with db.read() as session:
        rows = session.execute(text("SELECT token_hash, csrf_secret FROM staff_sessions")).all()
        assert len(rows) == 1
        assert signed.token not in rows[0][0]
        active = active_session(session, signed.token)
        assert active is not None
        assert active.member.display_name == "Amina Benali"
        assert csrf_matches(active, signed.csrf_token)
        assert not csrf_matches(active, signed.csrf_token[:-1] + "x")
        assert not csrf_matches(active, None)
        assert active_session(session, signed.token + "x") is None
        assert active_session(session, signed.token, now=signed.expires_at) is None
    with db.write() as session:
        assert sign_out(session, signed.token)
    with db.read() as session:
        assert active_session(session, signed.token) is None


def test_wrong_and_unknown_say_the_same_thing(db: Database, policy: StaffSettings) -> None:
    _create(db, policy)
    wrong = sign_in(db, policy, "amina", PASSWORD + "!")
    unknown = sign_in(db, policy, "nobody", PASSWORD)
    invalid = sign_in(db, policy, "'; DROP TABLE staff_accounts; --", PASSWORD)
    assert wrong == unknown == invalid == SignInRefused()
    assert wrong.message == "wrong username or password"


def test_lockout_after_repeated_failures_then_unlocks_after_the_period(
    db: Database, policy: StaffSettings
) -> None:
    _create(db, policy)
    now = clock.now()
    for _ in range(policy.max_failed_attempts - 1):
        assert sign_in(db, policy, "amina", "wrong password!", now=now) == SignInRefused()
    locked = sign_in(db, policy, "amina", "wrong password!", now=now)
    assert isinstance(locked, SignInRefused)
    assert locked.locked_until == now + timedelta(minutes=policy.lockout_minutes)
    # Even the right password is refused while the lock holds.
    assert isinstance(sign_in(db, policy, "amina", PASSWORD, now=now + timedelta(minutes=1)), SignInRefused)
    later = now + timedelta(minutes=policy.lockout_minutes, seconds=1)
    _signed_in(sign_in(db, policy, "amina", PASSWORD, now=later))
    with db.read() as session:
        (info,) = list_staff(session)
    assert info.failed_attempts == 0
    assert info.last_sign_in_at == later


def test_a_success_resets_the_failure_count(db: Database, policy: StaffSettings) -> None:
    _create(db, policy)
    for _ in range(policy.max_failed_attempts - 1):
        sign_in(db, policy, "amina", "wrong password!")
    _signed_in(sign_in(db, policy, "amina", PASSWORD))
    for _ in range(policy.max_failed_attempts - 1):
        sign_in(db, policy, "amina", "wrong password!")
    _signed_in(sign_in(db, policy, "amina", PASSWORD))


def test_a_hash_made_with_other_parameters_is_rehashed_at_sign_in(
    db: Database, policy: StaffSettings
) -> None:
    _create(db, policy)
    stronger = msgspec.structs.replace(policy, argon2_time_cost=2)
    _signed_in(sign_in(db, stronger, "amina", PASSWORD))
    with db.read() as session:
        stored = session.scalar(select(StaffAccount.password_hash))
    assert stored is not None and ",t=2," in stored
    _signed_in(sign_in(db, stronger, "amina", PASSWORD))


def test_disabling_role_change_and_new_password_end_open_sessions(
    db: Database, policy: StaffSettings
) -> None:
    _create(db, policy)
    first = _signed_in(sign_in(db, policy, "amina", PASSWORD))
    with db.write() as session:
        set_role(session, "amina", Role.CASHIER, consulate="BE-BRU", known_consulates={"BE-BRU"})
    with db.read() as session:
        assert active_session(session, first.token) is None
    second = _signed_in(sign_in(db, policy, "amina", PASSWORD))
    assert second.member.consulate == "BE-BRU"
    with db.write() as session:
        set_password(session, policy, "amina", "another good passphrase")
    with db.read() as session:
        assert active_session(session, second.token) is None
    third = _signed_in(sign_in(db, policy, "amina", "another good passphrase"))
    with db.write() as session:
        set_disabled(session, "amina", disabled=True)
    with db.read() as session:
        assert active_session(session, third.token) is None
    assert sign_in(db, policy, "amina", "another good passphrase") == SignInRefused()
    with db.write() as session:
        set_disabled(session, "amina", disabled=False)
    _signed_in(sign_in(db, policy, "amina", "another good passphrase"))
    with db.write() as session, pytest.raises(StaffError, match="no staff account"):
        set_disabled(session, "nobody", disabled=True)
