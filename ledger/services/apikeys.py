"""API keys: random secrets shown once, stored only as a hash, each with a role (cashiers: one consulate)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.db.models import ApiKey
from ledger.services import clock

PREFIX = "etk"


class Role(enum.StrEnum):
    CASHIER = "cashier"
    AUDITOR = "auditor"
    ADMIN = "admin"


class ApiKeyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role, and for a cashier the one consulate they serve."""

    role: Role
    consulate: str
    key_id: int
    label: str

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}:{self.label}" if self.label else f"apikey:{self.key_id}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    secret: str  # shown once, never stored
    key_id: int
    role: Role
    consulate: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    role: Role,
    *,
    consulate: str = "",
    label: str = "",
    known_consulates: set[str] | None = None,
) -> IssuedKey:
    if role is Role.CASHIER and not consulate:
        raise ApiKeyError("a cashier key is bound to one consulate: give --consulate")
    if role is not Role.CASHIER and consulate:
        raise ApiKeyError(f"only cashier keys are bound to a consulate, not {role} keys")
    if consulate and known_consulates is not None and consulate not in known_consulates:
        raise ApiKeyError(f"unknown consulate {consulate!r}")
    prefix = secrets.token_hex(6)
    secret = f"{PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        prefix=prefix,
        secret_hash=_digest(secret),
        role=role.value,
        consulate=consulate,
        label=label[:100],
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    return IssuedKey(secret, key.id, role, consulate)


def authenticate(session: Session, presented: str) -> Principal | None:
    """The principal for a presented key, or None for an unknown, malformed or revoked key."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _digest(presented)):
        return None
    return Principal(Role(key.role), key.consulate, key.id, key.label)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: int
    role: Role
    consulate: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def list_keys(session: Session) -> list[KeyInfo]:
    return [
        KeyInfo(k.id, Role(k.role), k.consulate, k.label, k.created_at, k.revoked_at)
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id))
    ]


def revoke_key(session: Session, key_id: int) -> bool:
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=clock.now())
    )
    return bool(getattr(result, "rowcount", 0))
