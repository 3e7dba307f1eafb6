"""SQLAlchemy models of staff sign-in: the accounts of cashiers, auditors and admins, and their sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base
from ledger.db.types import Instant

STAFF_ROLES = ("cashier", "auditor", "admin")


class StaffAccount(Base):
    """A person who signs in to the staff pages; a cashier serves one consulate."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(10))
    consulate: Mapped[str] = mapped_column(String(8), default="")
    password_hash: Mapped[str] = mapped_column(String(200))  # Argon2id, PHC string
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Instant)
    created_at: Mapped[datetime] = mapped_column(Instant)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(Instant)


class StaffSession(Base):
    """One signed-in browser: its token is kept only as a hash; the CSRF secret travels in its forms."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the cookie value
    staff_id: Mapped[int] = mapped_column(Integer, ForeignKey("staff_accounts.id"), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Instant)
    expires_at: Mapped[datetime] = mapped_column(Instant, index=True)
