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
from tests.audit.conftest import PASSPHRASE, audit_keys, behind_the_back, pay

Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Iterator[Run]:
    get_settings.cache_clear()
    env = {
        "ETIMBRE_DATABASE_URL": database_url,
        "ETIMBRE_AUDIT_KEYRING_FILE": str(tmp_path / "audit-keyring.json"),
        "ETIMBRE_AUDIT_KEY_PASSPHRASE": PASSPHRASE,
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
    assert status["unsealed"] == {"entry": 0, "posting": 0}
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
    created = run("audit", "key", "create")
    assert created.exit_code == 0, created.output
    assert "BEGIN PUBLIC KEY" in created.stdout
    public_key = tmp_path / "audit.pem"
    public_key.write_text(created.stdout[created.stdout.index("-----BEGIN") :])
    pay(db, settings, 3)
    assert run("audit", "seal").exit_code == 0
    today = daily.local_day(clock.now(), settings.service.treasury.timezone)
    not_over = run("audit", "export-day", "--day", today.isoformat())
    assert not_over.exit_code == 1
    assert "is not over yet" in not_over.output
    # The key just made signs from now on; yesterday is signed with an older key of another keyring.
    keys = audit_keys(tmp_path / "older")
    yesterday = today - timedelta(days=1)
    with db.write() as session:
        signed = daily.sign_day(
            session, yesterday, timezone=settings.service.treasury.timezone, keys=keys, now=clock.now()
        )
    archive = tmp_path / f"{yesterday}.json"
    exported = run("audit", "export-day", "--day", yesterday.isoformat(), "--out", str(archive))
    assert exported.exit_code == 0, exported.output
    assert daily.parse_document(archive.read_bytes()).statement == signed.statement
    older_key = tmp_path / "older.pem"
    older_key.write_text(keys.verification_keys()[0].to_pem())
    clean = run("audit", "verify", "--daily", str(archive), "--public-key", str(older_key))
    assert clean.exit_code == 0, clean.output
    assert yesterday.isoformat() in clean.output
    # Someone rewrites the whole chain consistently (every hash recomputed): only the archive can tell.
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
    caught = run("audit", "verify", "--daily", str(archive), "--public-key", str(older_key), "--json")
    assert caught.exit_code == 1
    findings = json.loads(caught.stdout)["findings"]
    assert [(f["problem"], f["seal"]) for f in findings] == [("daily_mismatch", 1)]
    forged = run("audit", "verify", "--daily", str(archive), "--public-key", str(public_key), "--json")
    assert [f["problem"] for f in json.loads(forged.stdout)["findings"]] == ["daily_invalid"]
