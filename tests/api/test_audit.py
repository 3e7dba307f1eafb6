"""What an auditor reads over HTTP: seal status, seals, a signed day, and an inclusion proof."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

from litestar import Litestar
from litestar.testing import TestClient

from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.audit import daily
from ledger.settings import Settings
from tests.api.conftest import Keys
from tests.audit.conftest import audit_keys, pay, seal


def test_an_auditor_reads_the_latest_seal_and_what_waits_to_be_sealed(
    client: TestClient[Litestar], keys: Keys, db: Database, settings: Settings
) -> None:
    empty = client.get("/audit/seals/latest", headers=keys.auditor)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {
        "latest": None,
        "unsealed": {"entry": 0, "posting": 0, "resolution": 0, "stamp_event": 0},
        "last_daily_seal": None,
    }
    pay(db, settings, 2)
    assert client.get("/audit/seals/latest", headers=keys.auditor).json()["unsealed"] == {
        "entry": 2,
        "posting": 4,
        "resolution": 0,
        "stamp_event": 0,
    }
    header = seal(db)
    assert header is not None
    body = client.get("/audit/seals/latest", headers=keys.auditor).json()
    latest = body["latest"]
    assert (latest["number"], latest["record_count"], latest["intact"]) == (1, 6, True)
    # The header bytes given out hash to the seal hash: a client can check it without the server.
    raw = base64.b64decode(latest["header"])
    assert hashlib.sha256(b"\x02" + raw).hexdigest() == latest["hash"] == header.hash().hex()
    assert body["unsealed"] == {"entry": 0, "posting": 0, "resolution": 0, "stamp_event": 0}
    assert client.get("/audit/seals/1", headers=keys.admin).json() == latest
    assert client.get("/audit/seals/2", headers=keys.auditor).status_code == 404


def test_cashiers_and_anonymous_callers_cannot_read_seals(client: TestClient[Litestar], keys: Keys) -> None:
    assert client.get("/audit/seals/latest", headers=keys.cashier).status_code == 403
    assert client.get("/audit/seals/latest").status_code == 401


def test_an_auditor_gets_a_proof_once_the_entry_is_sealed_and_the_signed_day_over_it(
    client: TestClient[Litestar], keys: Keys, db: Database, settings: Settings, tmp_path: object
) -> None:
    entry = pay(db, settings, 1)[0]
    waiting = client.get(f"/audit/entries/{entry}/proof", headers=keys.auditor)
    assert waiting.status_code == 409
    assert waiting.headers["content-type"].startswith("application/problem+json")
    assert waiting.json()["type"] == "/problems/not-sealed-yet"
    seal(db)
    proof = client.get(f"/audit/entries/{entry}/proof", headers=keys.auditor)
    assert proof.status_code == 200, proof.text
    body = proof.json()
    assert [r["kind"] for r in body["records"]] == ["entry", "posting", "posting"]
    assert body["history"] is None
    yesterday = daily.local_day(clock.now(), settings.service.treasury.timezone) - timedelta(days=1)
    assert client.get(f"/audit/daily-seals/{yesterday}", headers=keys.auditor).status_code == 404
    with db.write() as session:
        signed = daily.sign_day(
            session,
            yesterday,
            timezone=settings.service.treasury.timezone,
            keys=audit_keys(db, settings),
            now=clock.now(),
        )
    document = client.get(f"/audit/daily-seals/{yesterday}", headers=keys.auditor)
    assert document.status_code == 200
    assert document.json()["statement"] == base64.b64encode(signed.statement_bytes).decode()
    with_history = client.get(f"/audit/entries/{entry}/proof", headers=keys.auditor).json()
    assert with_history["history"]["daily_seal"]["day"] == yesterday.isoformat()
    assert client.get("/audit/daily-seals/2026-13-01", headers=keys.auditor).status_code == 400
    other = entry.hex[:31] + ("1" if entry.hex[-1] == "0" else "0")  # never the sealed entry itself
    assert client.get(f"/audit/entries/{other}/proof", headers=keys.auditor).status_code in (
        400,
        404,
    )
