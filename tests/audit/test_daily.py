"""Signed daily seals on both engines: which days are due, once per day, an empty seal when nothing moved,
keys rotated, and the service sealing and signing on its own."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.audit import daily, runner, seals
from ledger.services.audit.verify import verify
from ledger.settings import Settings, load_settings
from receipts.envelope import KdfParams
from receipts.keys import KeyPurpose
from tests.audit.conftest import PASSPHRASE, audit_keys, pay, seal

ZONE = "Africa/Casablanca"


def test_a_day_is_signed_once_it_is_over_and_only_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pay(db, settings, 2)
    first = seal(db)
    assert first is not None
    keys = audit_keys(tmp_path)
    today = daily.local_day(clock.now(), ZONE)
    with (
        db.write() as session,
        pytest.raises(daily.DayNotOverError, match="is not over yet in Africa/Casablanca"),
    ):
        daily.sign_day(session, today, timezone=ZONE, keys=keys, now=clock.now())
    tomorrow = clock.now() + timedelta(days=1, hours=1)
    with db.write() as session:
        signed = daily.sign_day(session, today, timezone=ZONE, keys=keys, now=tomorrow)
    # No seal was cut after the day ended, so signing cut one (empty: everything was sealed already).
    assert signed.statement.seal_no == 2
    assert signed.statement.records_sealed == first.record_count
    with db.read() as session:
        second = seals.load(session, 2)
        assert second is not None
        assert second.header.record_count == 0
        again = daily.sign_day(session, today, timezone=ZONE, keys=keys, now=tomorrow)
    assert again.statement_bytes == signed.statement_bytes
    assert daily.check_signature(again, keys.verification_keys()).kid == signed.kid


def test_due_days_run_from_the_first_seal_to_yesterday_and_are_signed_by_the_runner(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    with db.read() as session:
        assert daily.due_days(session, clock.now(), ZONE) == []
    pay(db, settings, 1)
    seal(db)
    later = clock.now() + timedelta(days=3)
    today = daily.local_day(clock.now(), ZONE)
    with db.read() as session:
        assert daily.due_days(session, later, ZONE) == [today + timedelta(days=n) for n in range(3)]
    env = {
        "ETIMBRE_AUDIT_KEYRING_FILE": str(tmp_path / "audit-keyring.json"),
        "ETIMBRE_AUDIT_KEY_PASSPHRASE": PASSPHRASE,
    }
    configured = load_settings(environ=env)
    assert runner.audit_keys(configured, env) is None  # the keyring holds no audit key yet
    audit_keys(tmp_path)
    keys = runner.audit_keys(configured, env)
    assert keys is not None
    assert runner.audit_keys(configured, {}) is None  # no passphrase: nothing signs
    assert [d.statement.day for d in runner.sign_due(db, configured, keys, later)] == [
        (today + timedelta(days=n)).isoformat() for n in range(3)
    ]
    assert runner.sign_due(db, configured, keys, later) == []
    with db.read() as session:
        report = verify(session, keys=keys.verification_keys())
    assert report.ok, report.findings
    assert len(report.daily_seals) == 3


def test_a_rotated_audit_key_signs_from_then_on_and_older_days_still_verify(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pay(db, settings, 1)
    seal(db)
    keys = audit_keys(tmp_path)
    today = daily.local_day(clock.now(), ZONE)
    with db.write() as session:
        old = daily.sign_day(session, today - timedelta(days=1), timezone=ZONE, keys=keys, now=clock.now())
    keys.keyring.rotate(
        KeyPurpose.AUDIT,
        passphrase=PASSPHRASE,
        now=clock.now() - timedelta(hours=1),
        kdf=KdfParams(memory_kib=8 * 1024, iterations=1, lanes=1),
    )
    with db.write() as session:
        new = daily.sign_day(session, today, timezone=ZONE, keys=keys, now=clock.now() + timedelta(days=1))
    assert new.kid != old.kid
    with db.read() as session:
        assert verify(session, keys=keys.verification_keys()).ok


def test_seals_are_append_only(db: Database, settings: Settings) -> None:
    pay(db, settings, 1)
    seal(db)
    for statement in (
        "UPDATE audit_seals SET made_at = made_at + 1",
        "DELETE FROM audit_seals",
        "UPDATE audit_seal_kinds SET record_count = 0",
        "DELETE FROM audit_seal_kinds",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
            session.execute(text(statement))


def test_the_service_seals_on_its_own(db: Database, tmp_path: Path) -> None:
    configured = load_settings(
        environ={
            "ETIMBRE_AUDIT_SEAL_INTERVAL_SECONDS": "1",
            "ETIMBRE_AUDIT_KEYRING_FILE": str(tmp_path / "none.json"),
            "ETIMBRE_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0",
        }
    )
    pay(db, configured, 2)
    with TestClient(create_app(configured, db, background=True)):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with db.read() as session:
                if seals.latest(session) is not None:
                    break
            time.sleep(0.2)
    with db.read() as session:
        newest = seals.latest(session)
        assert newest is not None
        assert newest.header.record_count == 6
