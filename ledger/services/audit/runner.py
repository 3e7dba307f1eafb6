"""Sealing as the service and the CLI run it: seal what is pending, sign ended days, report status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.db.models_audit import AuditDailySeal
from ledger.services.audit.daily import DailySeal, due_days, sign_day
from ledger.services.audit.header import SealHeader
from ledger.services.audit.keys import AuditKeys
from ledger.services.audit.kinds import REGISTRY, RecordKind
from ledger.services.audit.seals import StoredSeal, cut_seal, latest, unsealed_counts
from ledger.settings import Settings

log = structlog.get_logger("etimbre.audit")
MAX_SEALS_PER_RUN = 1000


def seal_pending(
    database: Database, *, max_records: int, kinds: Sequence[RecordKind] = REGISTRY
) -> list[SealHeader]:
    """Cut seals until every final record is sealed; each seal is its own transaction."""
    cut: list[SealHeader] = []
    while len(cut) < MAX_SEALS_PER_RUN:
        with database.write() as session:
            header = cut_seal(session, kinds=kinds, max_records=max_records)
        if header is None:
            break
        cut.append(header)
    return cut


def sign_due(database: Database, settings: Settings, keys: AuditKeys, now: datetime) -> list[DailySeal]:
    """Sign every business day that ended and is not signed yet (oldest first). Raises NoSigningKeyError
    when there is a day to sign and no active audit key."""
    timezone = settings.service.treasury.timezone
    signed: list[DailySeal] = []
    with database.read() as session:
        days = due_days(session, now, timezone)
    for day in days:
        with database.write() as session:
            signed.append(
                sign_day(
                    session,
                    day,
                    timezone=timezone,
                    keys=keys,
                    now=now,
                    max_records=settings.service.audit.max_records_per_seal,
                )
            )
    return signed


@dataclass(frozen=True, slots=True)
class SealStatus:
    latest: StoredSeal | None
    unsealed: dict[str, int]  # records per kind not sealed yet
    last_daily_day: str | None
    last_daily_seal: int | None


def status(session: Session, kinds: Sequence[RecordKind] = REGISTRY) -> SealStatus:
    newest = latest(session)
    daily = session.execute(
        select(AuditDailySeal.day, AuditDailySeal.seal_no).order_by(AuditDailySeal.day.desc()).limit(1)
    ).first()
    return SealStatus(
        latest=newest,
        unsealed=unsealed_counts(session, newest, kinds),
        last_daily_day=daily.day if daily else None,
        last_daily_seal=daily.seal_no if daily else None,
    )
