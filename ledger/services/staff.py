"""Staff accounts and sign-in: Argon2id passwords, lockout after repeated failures, web sessions.

The session token lives only in the browser's cookie; the database keeps its SHA-256. Each session has its
own CSRF secret, which every form of the staff pages carries back."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.db.models_staff import StaffAccount, StaffSession
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.settings import StaffSettings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MAX_PASSWORD_LENGTH = 256  # Argon2 takes any length; a bound keeps a sign-in form from being a CPU sink
MIN_DISTINCT_CHARACTERS = 5


class StaffError(ValueError):
    """A staff account that cannot be created or changed as asked; says which field and why."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Who is signed in: a role, and for a cashier the one consulate they serve."""

    staff_id: int
    username: str
    display_name: str
    role: Role
    consulate: str

    @property
    def actor(self) -> str:
        """How the audit trail names them (stamp events, resolutions, entries)."""
        return f"staff:{self.staff_id}:{self.username}"


@dataclass(frozen=True, slots=True)
class StaffInfo:
    member: StaffMember
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    member: StaffMember
    token: str  # the cookie's value: shown to the browser once, stored only as a hash
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignInRefused:
    """Wrong username or password (never said which), or locked until a time."""

    locked_until: datetime | None = None

    @property
    def message(self) -> str:
        if self.locked_until is not None:
            return "too many failed attempts: this account is locked for a while"
        return "wrong username or password"


@dataclass(frozen=True, slots=True)
class ActiveSession:
    member: StaffMember
    csrf_token: str
    expires_at: datetime


# Passwords --------------------------------------------------------------------------------------------------


@cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def password_hasher(policy: StaffSettings) -> PasswordHasher:
    return _hasher(policy.argon2_time_cost, policy.argon2_memory_kib, policy.argon2_parallelism)


@cache
def _decoy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    # Verified against when there is no such account, so that a wrong username costs as much as a wrong
    # password and the response time does not tell which usernames exist.
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def check_password(password: str, *, username: str, policy: StaffSettings) -> None:
    """The password policy: long enough, bounded, not the username, not one character repeated."""
    if len(password) < policy.min_password_length:
        raise StaffError("password", f"at least {policy.min_password_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError("password", f"at most {MAX_PASSWORD_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise StaffError("password", "must not contain the username")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise StaffError("password", f"use at least {MIN_DISTINCT_CHARACTERS} different characters")


def _matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Accounts ---------------------------------------------------------------------------------------------------


def _member(account: StaffAccount) -> StaffMember:
    return StaffMember(
        account.id, account.username, account.display_name, Role(account.role), account.consulate
    )


def _check_role(role: Role, consulate: str, known_consulates: set[str] | None) -> None:
    if role is Role.CASHIER and not consulate:
        raise StaffError("consulate", "a cashier serves one consulate: give it")
    if role is not Role.CASHIER and consulate:
        raise StaffError("consulate", f"only cashiers are bound to a consulate, not {role.value}s")
    if consulate and known_consulates is not None and consulate not in known_consulates:
        raise StaffError("consulate", f"unknown consulate {consulate!r}")


def create_staff(
    session: Session,
    policy: StaffSettings,
    *,
    username: str,
    role: Role,
    password: str,
    display_name: str = "",
    consulate: str = "",
    known_consulates: set[str] | None = None,
) -> StaffMember:
    if not USERNAME.fullmatch(username):
        raise StaffError(
            "username", "3 to 40 characters: lower-case letters, digits, '.', '_' or '-', starting with one"
        )
    display_name = display_name.strip() or username
    if len(display_name) > 100:
        raise StaffError("display_name", "at most 100 characters")
    _check_role(role, consulate, known_consulates)
    check_password(password, username=username, policy=policy)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)) is not None:
        raise StaffError("username", f"{username!r} is taken")
    account = StaffAccount(
        username=username,
        display_name=display_name,
        role=role.value,
        consulate=consulate,
        password_hash=password_hasher(policy).hash(password),
        disabled=False,
        failed_attempts=0,
        created_at=clock.now(),
    )
    session.add(account)
    session.flush()
    return _member(account)


def list_staff(session: Session) -> list[StaffInfo]:
    return [
        StaffInfo(_member(a), a.disabled, a.failed_attempts, a.locked_until, a.created_at, a.last_sign_in_at)
        for a in session.scalars(select(StaffAccount).order_by(StaffAccount.username))
    ]


def _account(session: Session, username: str) -> StaffAccount:
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == username).with_for_update())
    if account is None:
        raise StaffError("username", f"no staff account {username!r}")
    return account


def set_disabled(session: Session, username: str, *, disabled: bool) -> StaffMember:
    """Disable (which also ends every session of the account at once) or enable again."""
    account = _account(session, username)
    account.disabled = disabled
    if disabled:
        session.execute(delete(StaffSession).where(StaffSession.staff_id == account.id))
    return _member(account)


def set_role(
    session: Session,
    username: str,
    role: Role,
    *,
    consulate: str = "",
    known_consulates: set[str] | None = None,
) -> StaffMember:
    """Change what someone may do; their open sessions end so that no page keeps the old role."""
    _check_role(role, consulate, known_consulates)
    account = _account(session, username)
    account.role, account.consulate = role.value, consulate
    session.execute(delete(StaffSession).where(StaffSession.staff_id == account.id))
    return _member(account)


def set_password(session: Session, policy: StaffSettings, username: str, password: str) -> StaffMember:
    """A new password (and the lock lifted); every open session of the account ends."""
    account = _account(session, username)
    check_password(password, username=username, policy=policy)
    account.password_hash = password_hasher(policy).hash(password)
    account.failed_attempts, account.locked_until = 0, None
    session.execute(delete(StaffSession).where(StaffSession.staff_id == account.id))
    return _member(account)


# Sign-in and sessions ---------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    database: Database,
    policy: StaffSettings,
    username: str,
    password: str,
    *,
    now: datetime | None = None,
) -> SignedIn | SignInRefused:
    """Check a password and open a session, or count the failure (and lock after too many).

    Argon2 runs outside any write transaction (it takes tens of milliseconds on purpose); the outcome is
    then written in one short unit of work, with the failure counter incremented in place."""
    moment = now or clock.now()
    hasher = password_hasher(policy)
    if len(password) > MAX_PASSWORD_LENGTH or not USERNAME.fullmatch(username):
        account = None
    else:
        with database.read() as session:
            account = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    if account is not None and account.locked_until is not None and account.locked_until > moment:
        return SignInRefused(locked_until=account.locked_until)
    stored = account.password_hash if account is not None and not account.disabled else None
    decoy = _decoy_hash(policy.argon2_time_cost, policy.argon2_memory_kib, policy.argon2_parallelism)
    genuine = _matches(hasher, stored or decoy, password[:MAX_PASSWORD_LENGTH]) and stored is not None
    if account is None or stored is None:
        return SignInRefused()
    with database.write() as session:
        if not genuine:
            return _count_failure(session, policy, account.id, moment)
        changed = session.execute(
            update(StaffAccount)
            .where(
                StaffAccount.id == account.id,
                StaffAccount.password_hash == stored,  # not changed or disabled meanwhile
                StaffAccount.disabled.is_(False),
            )
            .values(failed_attempts=0, locked_until=None, last_sign_in_at=moment)
        )
        if getattr(changed, "rowcount", 0) != 1:
            return SignInRefused()
        if hasher.check_needs_rehash(stored):
            session.execute(
                update(StaffAccount)
                .where(StaffAccount.id == account.id)
                .values(password_hash=hasher.hash(password))
            )
        session.execute(delete(StaffSession).where(StaffSession.expires_at <= moment))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = moment + timedelta(hours=policy.session_hours)
        session.add(
            StaffSession(
                token_hash=_digest(token),
                staff_id=account.id,
                csrf_secret=csrf,
                created_at=moment,
                expires_at=expires_at,
            )
        )
        return SignedIn(_member(account), token, csrf, expires_at)


def _count_failure(session: Session, policy: StaffSettings, staff_id: int, moment: datetime) -> SignInRefused:
    session.execute(
        update(StaffAccount)
        .where(StaffAccount.id == staff_id)
        .values(failed_attempts=StaffAccount.failed_attempts + 1)
    )
    failures = session.scalar(select(StaffAccount.failed_attempts).where(StaffAccount.id == staff_id))
    if failures is None or failures < policy.max_failed_attempts:
        return SignInRefused()
    until = moment + timedelta(minutes=policy.lockout_minutes)
    session.execute(
        update(StaffAccount).where(StaffAccount.id == staff_id).values(failed_attempts=0, locked_until=until)
    )
    return SignInRefused(locked_until=until)


def active_session(session: Session, token: str, *, now: datetime | None = None) -> ActiveSession | None:
    """The signed-in staff member behind a cookie, or None (unknown, expired, or the account disabled)."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(StaffSession, StaffAccount)
        .join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _digest(token))
    ).one_or_none()
    if row is None:
        return None
    staff_session, account = row
    if account.disabled or staff_session.expires_at <= (now or clock.now()):
        return None
    return ActiveSession(_member(account), staff_session.csrf_secret, staff_session.expires_at)


def csrf_matches(active: ActiveSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(active.csrf_token.encode(), presented.encode())


def sign_out(session: Session, token: str) -> bool:
    result = session.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))
    return bool(getattr(result, "rowcount", 0))
