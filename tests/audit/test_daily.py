"""Signed daily seals on both engines: which days are due, once per day, an empty seal when nothing moved,
keys rotated, and the service sealing and signing on its own."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.audit import daily, runner, seals
from ledger.services.audit.keys import database_audit_keys
from ledger.services.audit.verify import verify
from ledger.services.signing_keys import KeySecrets, StampKeys, create_key
from ledger.settings import Settings, load_settings
from receipts.envelope import KdfParams
from receipts.keyring import NoSigningKeyError
from receipts.keys import KeyPurpose
from tests.audit.conftest import PASSPHRASE, RECEIPT_SECRET, audit_keys, pay, seal

ZONE = "Africa/Casablanca"


def test_a_day_is_signed_once_it_is_over_and_only_once(db: Database, settings: Settings) -> None:
    pay(db, settings, 2)
    first = seal(db)
    assert first is not None
    keys = audit_keys(db, settings)
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
        assert daily.check_signature(again, keys.verification_keys(session)).kid == signed.kid
    assert again.statement_bytes == signed.statement_bytes


def test_due_days_run_from_the_first_seal_to_yesterday_and_are_signed_by_the_runner(
    db: Database, settings: Settings
) -> None:
    with db.read() as session:
        assert daily.due_days(session, clock.now(), ZONE) == []
    pay(db, settings, 1)
    seal(db)
    later = clock.now() + timedelta(days=3)
    today = daily.local_day(clock.now(), ZONE)
    with db.read() as session:
        assert daily.due_days(session, later, ZONE) == [today + timedelta(days=n) for n in range(3)]
    keyless = database_audit_keys(StampKeys(settings, KeySecrets(PASSPHRASE, RECEIPT_SECRET.encode())))
    with pytest.raises(NoSigningKeyError, match="no active audit key"):
        runner.sign_due(db, settings, keyless, later)
    keys = audit_keys(db, settings)
    assert [d.statement.day for d in runner.sign_due(db, settings, keys, later)] == [
        (today + timedelta(days=n)).isoformat() for n in range(3)
    ]
    assert runner.sign_due(db, settings, keys, later) == []
    with db.read() as session:
        report = verify(session, keys=keys.verification_keys(session))
    assert report.ok, report.findings
    assert len(report.daily_seals) == 3


def test_a_rotated_audit_key_signs_from_then_on_and_older_days_still_verify(
    db: Database, settings: Settings
) -> None:
    pay(db, settings, 1)
    seal(db)
    keys = audit_keys(db, settings)
    today = daily.local_day(clock.now(), ZONE)
    with db.write() as session:
        old = daily.sign_day(session, today - timedelta(days=1), timezone=ZONE, keys=keys, now=clock.now())
    with db.write() as session:
        create_key(
            session,
            KeyPurpose.AUDIT,
            passphrase=PASSPHRASE,
            now=clock.now() - timedelta(hours=1),
            kdf=KdfParams(memory_kib=8 * 1024, iterations=1, lanes=1),
            rotate=True,
        )
    with db.write() as session:
        new = daily.sign_day(session, today, timezone=ZONE, keys=keys, now=clock.now() + timedelta(days=1))
    assert new.kid != old.kid
    with db.read() as session:
        assert verify(session, keys=keys.verification_keys(session)).ok


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


def test_the_service_seals_and_signs_the_day_on_its_own(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = load_settings(
        environ={
            "ETIMBRE_AUDIT_SEAL_INTERVAL_SECONDS": "1",
            "ETIMBRE_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0",
        }
    )
    pay(db, configured, 2)
    audit_keys(db, settings)
    monkeypatch.setenv(configured.service.stamps.passphrase_env, PASSPHRASE)
    monkeypatch.setenv(configured.service.stamps.receipt_secret_env, RECEIPT_SECRET)
    tomorrow = clock.now() + timedelta(days=1, hours=1)
    today = daily.local_day(clock.now(), ZONE)
    monkeypatch.setattr(clock, "now", lambda: tomorrow)  # the business day is over for the service
    with TestClient(create_app(configured, db, background=True)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with db.read() as session:
                if daily.stored(session, today) is not None:
                    break
            time.sleep(0.2)
    with db.read() as session:
        first = seals.load(session, 1)
        signed = daily.stored(session, today)
    assert first is not None
    assert first.header.record_count == 6
    assert signed is not None
    assert signed.statement.records_sealed == 6
