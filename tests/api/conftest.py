"""The ASGI app on a fresh database of each engine, with one API key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
