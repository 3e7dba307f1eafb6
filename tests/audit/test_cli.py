"""The auditor's command line on both engines: seal, verify, prove, key, export a day, hold it against the
database after the chain was rewritten."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from ledger.cli import main
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.audit import daily
from ledger.services.audit.seals import load
from ledger.settings import Settings, get_settings
from tests.audit.conftest import PASSPHRASE, RECEIPT_SECRET, behind_the_back, pay, stranger_pem

Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Iterator[Run]:
    get_settings.cache_clear()
    env = {
        "ETIMBRE_DATABASE_URL": database_url,
        "ETIMBRE_KEY_PASSPHRASE": PASSPHRASE,
        "ETIMBRE_RECEIPT_SECRET": RECEIPT_SECRET,
        "ETIMBRE_STAMPS_KEYS_DIR": str(tmp_path / "keys"),
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env)

    yield invoke
    get_settings.cache_clear()


def test_seal_verify_and_prove_from_the_command_line(
    run: Run, db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = pay(db, settings, 4)
    sealed = run("audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    assert "seal 1: 15 records" in sealed.output
    assert "nothing to seal" in run("audit", "seal").output
    status = json.loads(run("audit", "status", "--json").stdout)
    assert status["latest_seal"]["number"] == 1
    assert status["unsealed"] == {"entry": 0, "posting": 0, "resolution": 0, "stamp_event": 0}
    clean = run("audit", "verify")
    assert clean.exit_code == 0, clean.output
    assert "intact" in clean.output
    proof_file = tmp_path / "proof.json"
    proved = run("audit", "prove", str(ids[0]), "--out", str(proof_file))
    assert proved.exit_code == 0, proved.output
    assert json.loads(proof_file.read_text())["seal"]["number"] == 1
    assert run("audit", "prove", "00000000-0000-7000-8000-000000000000").exit_code == 1
    with behind_the_back(db) as connection:
        connection.execute(text("UPDATE postings SET amount = amount + 1 WHERE line_no = 1"))
    damaged = run("audit", "verify", "--json")
    assert damaged.exit_code == 1
    report = json.loads(damaged.stdout)
    assert not report["ok"]
    assert {f["problem"] for f in report["findings"]} == {"altered"}
    assert report["findings"][0]["kind"] == "posting"
    assert run("audit", "verify", "--from", "2", "--to", "2").exit_code == 0  # nothing in that range


def test_a_signed_day_exported_then_held_against_a_rewritten_chain(
    run: Run, db: Database, settings: Settings, tmp_path: Path
) -> None:
    pay(db, settings, 3)
    assert run("audit", "seal").exit_code == 0
    today = daily.local_day(clock.now(), settings.service.treasury.timezone)
    yesterday = today - timedelta(days=1)
    archive = tmp_path / f"{yesterday}.json"
    no_key = run("audit", "export-day", "--day", yesterday.isoformat(), "--out", str(archive))
    assert no_key.exit_code == 1
    assert "keys create --purpose audit" in no_key.output
    assert run("audit", "public-key").exit_code == 1
    created = run("keys", "create", "--purpose", "audit")
    assert created.exit_code == 0, created.output
    public_key = tmp_path / "audit.pem"
    assert run("audit", "public-key", "--out", str(public_key)).exit_code == 0
    assert public_key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    not_over = run("audit", "export-day", "--day", today.isoformat())
    assert not_over.exit_code == 1
    assert "is not over yet" in not_over.output
    exported = run("audit", "export-day", "--day", yesterday.isoformat(), "--out", str(archive))
    assert exported.exit_code == 0, exported.output
    again = run("audit", "export-day", "--day", yesterday.isoformat())
    assert again.stdout.encode() == archive.read_bytes()  # signed once, exported as often as wanted
    clean = run("audit", "verify", "--daily", str(archive), "--public-key", str(public_key))
    assert clean.exit_code == 0, clean.output
    assert yesterday.isoformat() in clean.output
    # Someone rewrites the chain consistently (every hash recomputed) and drops the stored daily seal:
    # only the archived copy can tell.
    with db.read() as session:
        stored = load(session, 1)
    assert stored is not None
    rewritten = replace(stored.header, made_at=stored.header.made_at + 1)
    with behind_the_back(db) as connection:
        connection.execute(
            text("UPDATE audit_seals SET made_at = :made, seal_hash = :hash WHERE seal_no = 1"),
            {"made": rewritten.made_at, "hash": rewritten.hash()},
        )
        connection.execute(text("DELETE FROM audit_daily_seals"))
    caught = run("audit", "verify", "--daily", str(archive), "--public-key", str(public_key), "--json")
    assert caught.exit_code == 1
    findings = json.loads(caught.stdout)["findings"]
    assert [(f["problem"], f["seal"]) for f in findings] == [("daily_mismatch", 1)]
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(stranger_pem())
    forged = run("audit", "verify", "--daily", str(archive), "--public-key", str(stranger), "--json")
    assert [f["problem"] for f in json.loads(forged.stdout)["findings"]] == ["daily_invalid"]
