"""A stamp service on a fresh database of each engine: keys (cheap Argon2id), secrets, and a way to pay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.issuance import CapturedPayment, IssuedPayment, record_captured_payment
from ledger.services.signing_keys import KeySecrets, StampKeys, create_key
from ledger.settings import Settings
from receipts.envelope import KdfParams
from receipts.keys import KeyPurpose, KeyRecord

FAST_KDF = KdfParams(memory_kib=8192, iterations=1, lanes=1)
SECRETS = KeySecrets("test passphrase, not a secret", b"test receipt secret, not a secret")


@dataclass
class StampDesk:
    db: Database
    settings: Settings
    keys: StampKeys
    stamp_key: KeyRecord
    trust_list_key: KeyRecord
    _count: int = 0

    def pay(
        self,
        *fee_codes: str,
        consulate: str = "FR-PAR",
        amount: Money | None = None,
        payment_ref: str | None = None,
        channel: str = "counter",
        when: datetime | None = None,
        **changes: Any,
    ) -> IssuedPayment:
        fee_codes = fee_codes or ("PASSPORT",)
        now = when or clock.now()
        if amount is None:
            place = self.settings.consulate(consulate)
            amount = Money.zero(place.currency)
            for code in fee_codes:
                amount += self.settings.fees.price(code, place, now).amount
        self._count += 1
        payment = CapturedPayment(
            payment_ref=payment_ref or f"test-{self._count}-{now.timestamp()}",
            consulate=consulate,
            fee_codes=tuple(fee_codes),
            channel=channel,  # type: ignore[arg-type]
            provider="terminal",
            amount=amount,
            captured_at=now,
            priced_at=now,
            **changes,
        )
        with self.db.write() as session:
            return record_captured_payment(session, self.settings, self.keys, payment, actor="test")

    def count(self, table: str, where: str = "") -> int:
        with self.db.read() as session:
            return int(session.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def make_keys(db: Database, *, now: datetime | None = None) -> tuple[KeyRecord, KeyRecord]:
    start = (now or clock.now()) - timedelta(minutes=5)
    with db.write() as session:
        stamp = create_key(session, KeyPurpose.STAMP, passphrase=SECRETS.passphrase, now=start, kdf=FAST_KDF)
        trust = create_key(
            session, KeyPurpose.TRUST_LIST, passphrase=SECRETS.passphrase, now=start, kdf=FAST_KDF
        )
    return stamp, trust


@pytest.fixture
def desk(db: Database, settings: Settings) -> StampDesk:
    stamp, trust = make_keys(db)
    return StampDesk(db, settings, StampKeys(settings, SECRETS), stamp, trust)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Move the services' clock: `frozen_clock(instant)`."""

    def move(moment: datetime) -> None:
        monkeypatch.setattr(clock, "now", lambda: moment)

    return move
