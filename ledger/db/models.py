"""SQLAlchemy models of the ledger; the migrations create the same tables and the triggers that guard them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.db.types import UUID, Instant

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(160), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    type: Mapped[str] = mapped_column(String(10))
    role: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(40), default="")
    consulate: Mapped[str] = mapped_column(String(8), default="")
    fee_code: Mapped[str] = mapped_column(String(24), default="")
    opened_at: Mapped[datetime] = mapped_column(Instant)


class Entry(Base):
    __tablename__ = "entries"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    consulate: Mapped[str] = mapped_column(String(8), default="")
    effective_at: Mapped[datetime] = mapped_column(Instant, index=True)
    recorded_at: Mapped[datetime] = mapped_column(Instant)
    posting_count: Mapped[int] = mapped_column(SmallInteger)
    payment_ref: Mapped[str] = mapped_column(String(64), default="")
    stamp_ref: Mapped[str] = mapped_column(String(32), default="")
    settlement_ref: Mapped[str] = mapped_column(String(64), default="")
    import_line_ref: Mapped[str] = mapped_column(String(64), default="")
    memo: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("entries.id"), unique=True)


class Posting(Base):
    __tablename__ = "postings"

    entry_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("entries.id", deferrable=True, initially="DEFERRED"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    # No foreign key to accounts on purpose: a key-share lock on a hot account row would serialise
    # payments. The entry trigger checks the account and its currency instead; accounts are never deleted.
    account_id: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units; debit positive, credit negative
    effective_at: Mapped[datetime] = mapped_column(Instant)
    consulate: Mapped[str] = mapped_column(String(8), default="")
    fee_code: Mapped[str] = mapped_column(String(24), default="")

    __table_args__ = (
        Index(
            "ix_postings_balance",
            "account_id",
            "effective_at",
            postgresql_include=["amount", "consulate", "fee_code"],
        ),
    )


class IdempotencyKey(Base):
    """A claimed idempotency key: the request it was first used for, and the entry that request made."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("entries.id", deferrable=True, initially="DEFERRED")
    )
    claimed_at: Mapped[datetime] = mapped_column(Instant)


class BalanceKey(Base):
    """Every (account, consulate, fee code) that has a checkpoint: the slices balances are kept for."""

    __tablename__ = "balance_keys"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consulate: Mapped[str] = mapped_column(String(8), primary_key=True)
    fee_code: Mapped[str] = mapped_column(String(24), primary_key=True)


class BalanceCheckpoint(Base):
    """The balance of one slice as of a closed instant, so that reading a balance never sums all history."""

    __tablename__ = "balance_checkpoints"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consulate: Mapped[str] = mapped_column(String(8), primary_key=True)
    fee_code: Mapped[str] = mapped_column(String(24), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(Instant, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    posting_count: Mapped[int] = mapped_column(BigInteger)


class CheckpointCut(Base):
    """An instant through which the books are closed: nothing may be posted at or before it any more."""

    __tablename__ = "checkpoint_cuts"

    as_of: Mapped[datetime] = mapped_column(Instant, primary_key=True)
    made_at: Mapped[datetime] = mapped_column(Instant)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(10))
    consulate: Mapped[str] = mapped_column(String(8), default="")
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(Instant)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant)


class RequestKey(Base):
    """An API request's Idempotency-Key and, once it finished, the response to replay."""

    __tablename__ = "request_keys"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(SmallInteger)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    media_type: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(Instant)
    completed_at: Mapped[datetime | None] = mapped_column(Instant)


# The other areas' tables live in their own modules; importing them registers them on Base.metadata.
from ledger.db import (  # noqa: E402, F401
    models_audit,
    models_payments,
    models_reconciliation,
    models_refunds,
    models_stamps,
)
