"""Models of tamper evidence: seals, the records each seal covers per kind, and the signed daily seals."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base


class AuditSeal(Base):
    """One link of the seal chain; times are microseconds since 1970 (UTC), as they are hashed."""

    __tablename__ = "audit_seals"

    seal_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    format: Mapped[int] = mapped_column(SmallInteger)
    made_at: Mapped[int] = mapped_column(BigInteger, index=True)
    complete_through: Mapped[int] = mapped_column(BigInteger)
    record_count: Mapped[int] = mapped_column(BigInteger)
    merkle_root: Mapped[bytes] = mapped_column(LargeBinary)
    previous_hash: Mapped[bytes] = mapped_column(LargeBinary)
    seal_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)


class AuditSealKind(Base):
    """The records of one kind a seal covers: a position range, a digest, and the member list (leaf + key)."""

    __tablename__ = "audit_seal_kinds"

    seal_no: Mapped[int] = mapped_column(BigInteger, ForeignKey("audit_seals.seal_no"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_position: Mapped[int] = mapped_column(BigInteger)
    end_position: Mapped[int] = mapped_column(BigInteger)
    record_count: Mapped[int] = mapped_column(BigInteger)
    content_digest: Mapped[bytes] = mapped_column(LargeBinary)
    members: Mapped[bytes] = mapped_column(LargeBinary)


class AuditDailySeal(Base):
    """The seal signed at the end of a business day, and the document exported to the treasury."""

    __tablename__ = "audit_daily_seals"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    seal_no: Mapped[int] = mapped_column(BigInteger, ForeignKey("audit_seals.seal_no"))
    seal_hash: Mapped[bytes] = mapped_column(LargeBinary)
    kid: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[bytes] = mapped_column(LargeBinary)
