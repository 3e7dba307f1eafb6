"""SQLAlchemy models of the e-stamps: stamps, their append-only events, and the signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base
from ledger.db.types import UUID, Instant

STAMP_STATUSES = ("issued", "consumed", "refunded", "expired")
EVENT_KINDS = STAMP_STATUSES


class Stamp(Base):
    """One e-stamp as issued: what it is for, its signed text, where it stands (issued until used once)."""

    __tablename__ = "stamps"

    number: Mapped[str] = mapped_column(String(17), primary_key=True)  # 17 digits, the stamp's cti
    consulate: Mapped[str] = mapped_column(String(8))
    fee_code: Mapped[str] = mapped_column(String(24))
    fee_number: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    schedule_version: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(40))  # whose clearing account a refund goes back to
    payment_ref: Mapped[str] = mapped_column(String(64), index=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)  # the payment_captured entry
    line_no: Mapped[int] = mapped_column(SmallInteger)  # the fee's place in its payment (1-based)
    case_reference: Mapped[str | None] = mapped_column(String(32))
    kid: Mapped[str] = mapped_column(String(16))  # hex of the key that signed it
    text: Mapped[str] = mapped_column(String(220))  # the "ET1:..." QR content
    receipt_token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex; never the token
    issued_at: Mapped[datetime] = mapped_column(Instant)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(10))
    status_changed_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (Index("ix_stamps_status_expires_at", "status", "expires_at"),)


class StampEvent(Base):
    """What happened to a stamp, when, where and by whom; append-only, at most one final event per stamp."""

    __tablename__ = "stamp_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    number: Mapped[str] = mapped_column(String(17), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(Instant)
    consulate: Mapped[str] = mapped_column(String(8))  # where
    actor: Mapped[str] = mapped_column(String(64))  # by whom
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the ledger entry it caused
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(
            "uq_stamp_events_final",
            "number",
            unique=True,
            sqlite_where=text("kind <> 'issued'"),
            postgresql_where=text("kind <> 'issued'"),
        ),
    )


class SigningKey(Base):
    """A key of the keyring: public half, validity, status, and the sealed private half (None in an HSM)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(16), primary_key=True)  # hex of the 8-byte key id
    purpose: Mapped[str] = mapped_column(String(12))
    algorithm: Mapped[int] = mapped_column(SmallInteger)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # SubjectPublicKeyInfo DER
    not_before: Mapped[datetime] = mapped_column(Instant)
    not_after: Mapped[datetime] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(Instant)
    retired_at: Mapped[datetime | None] = mapped_column(Instant)
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    label: Mapped[str] = mapped_column(String(100), default="")
