"""SQLAlchemy models of payments, their provider attempts and the provider events applied to them.

Migration 0009 creates the same tables with the triggers that keep states moving forward.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base
from ledger.db.types import UUID, Instant

_IN_FLIGHT = "terminal_id IS NOT NULL AND state IN ('created', 'pending', 'authorized', 'unknown')"


class Payment(Base):
    """What a citizen or a cashier pays: priced from the fee schedule, taken by one provider variant."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)  # random: the public status link
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # ours; the gateway's order id
    consulate: Mapped[str] = mapped_column(String(8))
    fee_codes: Mapped[str] = mapped_column(String(500))  # comma-separated, one stamp each
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    priced_at: Mapped[datetime] = mapped_column(Instant)
    channel: Mapped[str] = mapped_column(String(8))  # online | counter
    variant: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(40))
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    cashier: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="created")
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    disputed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the payment_captured entry
    captured_at: Mapped[datetime | None] = mapped_column(Instant)
    parked_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    created_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)

    __table_args__ = (
        Index("ix_payments_state_expires_at", "state", "expires_at"),
        Index("ix_payments_provider_reference", "variant", "provider_reference"),
        Index(
            "uq_payments_terminal_in_flight",
            "variant",
            "terminal_id",
            unique=True,
            sqlite_where=text(_IN_FLIGHT),
            postgresql_where=text(_IN_FLIGHT),
        ),
    )

    @property
    def fees(self) -> tuple[str, ...]:
        return tuple(self.fee_codes.split(","))


class PaymentAttempt(Base):
    """One call to a provider, stored with its idempotency key before the call is made."""

    __tablename__ = "payment_attempts"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("payments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(12), default="prepared")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    operation_reference: Mapped[str | None] = mapped_column(String(64))
    provider_operation_reference: Mapped[str | None] = mapped_column(String(255))
    unknown_cause: Mapped[str | None] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    checks: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(Instant)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    manual_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Instant)
    dispatched_at: Mapped[datetime | None] = mapped_column(Instant)
    resolved_at: Mapped[datetime | None] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)

    __table_args__ = (
        Index(
            "ix_payment_attempts_due",
            "next_check_at",
            sqlite_where=text("next_check_at IS NOT NULL"),
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )


class ProviderEventRecord(Base):
    """A provider event as applied: stored once per (variant, event id) with the change it caused."""

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    variant: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(255))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("payments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    body_sha256: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(Instant)
    received_at: Mapped[datetime] = mapped_column(Instant)
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("variant", "event_id"),)
