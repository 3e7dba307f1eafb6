"""The operator's commands: keys, trust-list export, offline verification of text, images and PDFs, expiry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import cli
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.receipt_files import find_receipt, receipt_pdf, receipt_qr_png
from ledger.services.signing_keys import list_keys
from ledger.settings import Settings, load_settings
from receipts.keys import KeyPurpose
from tests.stamps.conftest import SECRETS, StampDesk

Run = Callable[..., str]


@pytest.fixture
def run(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """`run(*args)` runs `etimbre` on the test database, with the test secrets in the environment."""
    url = db.engine.url.render_as_string(hide_password=False)
    settings = load_settings(
        environ={"ETIMBRE_DATABASE_URL": url, "ETIMBRE_STAMPS_KEYS_DIR": str(tmp_path / "keys")}
    )
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli.Context, "database", property(lambda _: db))  # the test's, disposed by it
    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", SECRETS.passphrase)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", SECRETS.receipt_secret.decode())
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, code: int = 0, stdin: str | None = None) -> str:
        result = CliRunner().invoke(cli.main, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_keys_are_created_rotated_listed_and_retired(run: Run, db: Database) -> None:
    run("keys", "create", "--purpose", "stamp", "--algorithm", "EdDSA", "--validity-days", "400")
    run("keys", "create", "--purpose", "trust-list")
    run("keys", "rotate", "--purpose", "stamp")
    listed = json.loads(run("keys", "list", "--json"))
    stamps = [k for k in listed if k["purpose"] == "stamp"]
    assert [k["algorithm"] for k in stamps] == ["EdDSA", "EdDSA"]  # rotation keeps the algorithm
    assert all(k["storage"] == "sealed" and k["status"] == "active" for k in listed)
    run("keys", "retire", stamps[0]["kid"], "--yes")
    assert {k["kid"]: k["status"] for k in json.loads(run("keys", "list", "--json"))}[
        stamps[0]["kid"]
    ] == "retired"
    assert "Aborted" in run("keys", "retire", stamps[1]["kid"], code=1, stdin="n\n")
    assert "not a key id" in run("keys", "retire", "xyz", "--yes", code=1)


def test_development_keys_are_made_once_on_the_first_run(
    run: Run, db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ledger.cli import Context
    from ledger.cli.stamps import prepare_keys

    monkeypatch.delenv("ETIMBRE_KEY_PASSPHRASE")
    monkeypatch.delenv("ETIMBRE_RECEIPT_SECRET")
    prepare_keys(Context())
    prepare_keys(Context())
    with db.read() as session:
        made = list_keys(session)
    assert sorted(i.record.purpose.value for i in made) == ["stamp", "trust-list"]
    assert all("DEVELOPMENT" in i.label for i in made)
    assert (tmp_path / "keys" / "development-secrets.json").exists()


def _issue(db: Database, run: Run, tmp_path: Path) -> tuple[StampDesk, str, str]:
    run("keys", "create", "--purpose", "stamp")
    run("keys", "create", "--purpose", "trust-list")
    settings: Settings = cli.get_settings()  # type: ignore[attr-defined]
    from ledger.services.signing_keys import StampKeys

    desk = StampDesk(db, settings, StampKeys(settings, SECRETS), None, None)  # type: ignore[arg-type]
    stamp = desk.pay("PASSPORT").stamps[0]
    with db.read() as session:
        found = find_receipt(session, stamp.receipt_token)
    (tmp_path / "receipt.pdf").write_bytes(receipt_pdf(settings, found, stamp.receipt_token))
    (tmp_path / "qr.png").write_bytes(receipt_qr_png(found))
    return desk, stamp.text, stamp.number.printed()


def test_a_stamp_verifies_offline_from_text_image_and_pdf(run: Run, db: Database, tmp_path: Path) -> None:
    _, text, printed = _issue(db, run, tmp_path)
    exported = run("trust-list", "export", "--out", "tl.cose", "--json", "tl.json")
    assert "usable offline until" in exported
    assert (tmp_path / "trust-anchors.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert json.loads((tmp_path / "tl.json").read_text())["fees"]["PASSPORT"]["number"] == 1
    assert "GENUINE" in run("verify", text, "--trust-list", "tl.cose")
    assert printed in run("verify", "qr.png", "--trust-list", "tl.cose", "--consulate", "FR-PAR")
    decisions = [
        json.loads(line)
        for line in run("verify", "receipt.pdf", "--trust-list", "tl.cose", "--json").splitlines()
    ]
    assert [(d["genuine"], d["stamp"]["number"]) for d in decisions] == [(True, printed)]
    assert "GENUINE" in run(
        "verify", "-", "--trust-list", "tl.cose", "--anchor", "trust-anchors.pem", stdin=text + "\n"
    )
    elsewhere = run("verify", text, "--trust-list", "tl.cose", "--consulate", "BE-BRU", code=1)
    assert "wrong_consulate" in elsewhere
    assert "bad_prefix" in run("verify", "HC1:NOTASTAMP", "--trust-list", "tl.cose", code=1)
    (tmp_path / "notes.txt").write_text("hello")
    assert "unreadable_file" in run("verify", "notes.txt", "--trust-list", "tl.cose", code=1)


def test_a_stale_or_foreign_trust_list_is_refused(
    run: Run, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, text, _ = _issue(db, run, tmp_path)
    run("trust-list", "export", "--out", "tl.cose")
    real = clock.now()
    monkeypatch.setattr(clock, "now", lambda: real + timedelta(days=8))
    refused = run("verify", text, "--trust-list", "tl.cose", code=2)
    assert "stale" in refused
    monkeypatch.setattr(clock, "now", lambda: real)
    run("keys", "create", "--purpose", "audit")
    other = json.loads(run("keys", "list", "--json", "--purpose", "audit"))[0]
    assert other["purpose"] == "audit"
    (tmp_path / "stranger.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAKay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=\n-----END PUBLIC KEY-----\n"
    )
    assert "unknown_signer" in run(
        "verify", text, "--trust-list", "tl.cose", "--anchor", "stranger.pem", code=2
    )


def test_stamps_expire_as_of_an_instant(run: Run, db: Database, tmp_path: Path) -> None:
    _issue(db, run, tmp_path)
    assert "0 stamps expired" in run("stamps", "expire", "--as-of", clock.now().isoformat())
    assert "in the past" in run(
        "stamps", "expire", "--as-of", (clock.now() + timedelta(days=1)).isoformat(), code=2
    )
    assert "time zone" in run("stamps", "expire", "--as-of", "2026-01-01T00:00:00", code=2)


def test_trust_list_export_without_keys_says_what_to_do(run: Run) -> None:
    assert "rotate the trust-list key" in run("trust-list", "export", code=1)
    assert KeyPurpose.TRUST_LIST.value == "trust-list"
