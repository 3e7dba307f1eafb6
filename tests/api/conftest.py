"""The ASGI app on a fresh database of each engine, with one API key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.services.apikeys import Role, create_key
from ledger.settings import Settings


@dataclass(frozen=True)
class Keys:
    admin: dict[str, str]
    auditor: dict[str, str]
    cashier: dict[str, str]  # serves FR-PAR
    other_cashier: dict[str, str]  # serves BE-BRU


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def keys(db: Database) -> Keys:
    with db.write() as session:
        return Keys(
            admin=_bearer(create_key(session, Role.ADMIN, label="admin").secret),
            auditor=_bearer(create_key(session, Role.AUDITOR, label="auditor").secret),
            cashier=_bearer(create_key(session, Role.CASHIER, consulate="FR-PAR", label="paris").secret),
            other_cashier=_bearer(
                create_key(session, Role.CASHIER, consulate="BE-BRU", label="brussels").secret
            ),
        )


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(settings, db, background=False)) as test_client:
        yield test_client


PASSPHRASE = "test passphrase, not a secret"
RECEIPT_SECRET = "test receipt secret, not a secret either"


@pytest.fixture
def stamp_keys(db: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A stamp key and a trust-list key in the database (cheap Argon2id), their secrets in the environment."""
    from ledger.services import clock
    from ledger.services.signing_keys import create_key
    from receipts.envelope import KdfParams
    from receipts.keys import KeyPurpose

    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", RECEIPT_SECRET)
    fast = KdfParams(memory_kib=8192, iterations=1, lanes=1)
    now = clock.now() - timedelta(minutes=1)
    with db.write() as session:
        stamp = create_key(session, KeyPurpose.STAMP, passphrase=PASSPHRASE, now=now, kdf=fast)
        trust = create_key(session, KeyPurpose.TRUST_LIST, passphrase=PASSPHRASE, now=now, kdf=fast)
    return {"stamp": stamp.kid.hex(), "trust-list": trust.kid.hex()}
