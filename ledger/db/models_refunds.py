"""SQLAlchemy models of refunds, the stamps each refund names, and disputes (migration 0011)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base
from ledger.db.types import UUID, Instant

REFUND_STATES = ("pending", "succeeded", "declined", "unknown")
DISPUTE_STATES = ("open", "won", "lost")


class Refund(Base):
    """Money given back on a captured payment for the stamps it names; one provider attempt."""

    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("payments.id"), index=True)
    attempt_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("payment_attempts.id"), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(64))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Instant)
    resolved_at: Mapped[datetime | None] = mapped_column(Instant)


class RefundStamp(Base):
    """A stamp a refund gives the money back for; `live` until the provider declines the refund."""

    __tablename__ = "refund_stamps"

    refund_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("refunds.id"), primary_key=True)
    number: Mapped[str] = mapped_column(String(17), primary_key=True)
    fee_code: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int] = mapped_column(BigInteger)
    was_used: Mapped[bool] = mapped_column(Boolean)
    live: Mapped[bool] = mapped_column(Boolean)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)

    __table_args__ = (
        Index(
            "uq_refund_stamps_live",
            "number",
            unique=True,
            sqlite_where=text("live"),
            postgresql_where=text("live"),
        ),
    )


class Dispute(Base):
    """A chargeback opened by the cardholder's bank, with the entries it caused."""

    __tablename__ = "disputes"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("payments.id"), index=True)
    variant: Mapped[str] = mapped_column(String(40))
    provider_reference: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text, default="")
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID)
    closing_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    opened_at: Mapped[datetime] = mapped_column(Instant)
    closed_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (UniqueConstraint("variant", "provider_reference"),)
