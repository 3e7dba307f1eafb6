"""Fee numbers and schedule versions in config, [stamps] settings, keys over the database and their secrets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.signing_keys import (
    DEVELOPMENT_LABEL,
    DatabaseKeyStore,
    KeySecrets,
    KeySetupError,
    StampKeys,
    create_key,
    ensure_development_keys,
    list_keys,
    load_secrets,
    receipt_token,
    require_production_keys,
    retire_key,
)
from ledger.settings import DEFAULT_CONFIG_DIR, ConfigError, Settings, load_settings
from receipts import signers
from receipts.algorithms import Algorithm
from receipts.keys import KeyPurpose, KeyStatus
from receipts.numbers import StampNumber
from tests.stamps.conftest import FAST_KDF, SECRETS


def _config_with(tmp_path: Path, old: str, new: str) -> Path:
    directory = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, directory)
    fees = directory / "fees.toml"
    text = fees.read_text(encoding="utf-8")
    assert old in text
    fees.write_text(text.replace(old, new, 1), encoding="utf-8")
    return directory


def test_every_fee_has_a_number_and_versions_are_numbered(settings: Settings) -> None:
    numbers = {code: fee.number for code, fee in settings.fees.latest_fees().items()}
    assert numbers["PASSPORT"] == 1
    assert len(set(numbers.values())) == len(numbers)
    assert [v.number for v in settings.fees.versions] == [1, 2]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'code = "CNIE"\n  number = 2',
            'code = "CNIE"\n  number = 1',
            "number 1 is already given to fee PASSPORT",
        ),
        ('code = "LEGALIZATION"\n  number = 5', 'code = "LEGALIZATION"\n  number = 7', None),
        (
            'code = "PASSPORT-MINOR"\n  number = 3',
            'code = "PASSPORT-MINOR"\n  number = 0',
            "Expected `int` >= 1",
        ),
        (
            'code = "PASSPORT-MINOR"\n  number = 3\n',
            'code = "PASSPORT-MINOR"\n',
            "missing required field `number`",
        ),
    ],
)
def test_fee_numbers_are_validated(tmp_path: Path, old: str, new: str, problem: str | None) -> None:
    directory = _config_with(tmp_path, old, new)
    if problem is None:
        assert load_settings(directory, environ={}).fees.latest_fees()["LEGALIZATION"].number == 7
        return
    with pytest.raises(ConfigError, match=problem) as refused:
        load_settings(directory, environ={})
    assert "fees.toml" in str(refused.value)
    assert refused.value.key.startswith("version.") and "number" in str(refused.value)


def test_a_fee_keeps_its_number_in_every_version(tmp_path: Path) -> None:
    # PASSPORT is number 1 in 2025.1; giving it 9 in 2026.1 is refused, naming the place.
    text = (DEFAULT_CONFIG_DIR / "fees.toml").read_text(encoding="utf-8")
    second = text.index('version = "2026.1"')
    directory = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, directory)
    (directory / "fees.toml").write_text(
        text[:second] + text[second:].replace("number = 1\n", "number = 9\n", 1), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="PASSPORT has number 1 in an earlier version, not 9") as refused:
        load_settings(directory, environ={})
    assert refused.value.key == "version.1.fee.0.number"


def test_stamp_settings_come_from_config_and_environment() -> None:
    settings = load_settings(environ={"ETIMBRE_STAMPS_VALIDITY_DAYS": "180", "ETIMBRE_STAMPS_ISSUER": "MA"})
    assert settings.service.stamps.validity_days == 180
    with pytest.raises(ConfigError, match="refund"):
        load_settings(environ={"ETIMBRE_STAMPS_REFUND_WINDOW_DAYS": "400"})
    with pytest.raises(ConfigError, match="ETIMBRE_STAMPS_ISSUER"):
        load_settings(environ={"ETIMBRE_STAMPS_ISSUER": "Morocco"})


def test_keys_live_in_the_database_and_only_retirement_changes_them(db: Database) -> None:
    now = clock.now()
    with db.write() as session:
        stamp = create_key(session, KeyPurpose.STAMP, passphrase="p" * 12, now=now, kdf=FAST_KDF)
        rotated = create_key(
            session, KeyPurpose.STAMP, passphrase="p" * 12, now=now, kdf=FAST_KDF, rotate=True, label="2027"
        )
        eddsa = create_key(
            session, KeyPurpose.AUDIT, passphrase="p" * 12, now=now, kdf=FAST_KDF, algorithm=Algorithm.EDDSA
        )
    with db.read() as session:
        assert DatabaseKeyStore(session).get(stamp.kid) == stamp
        infos = list_keys(session, KeyPurpose.STAMP)
    assert {i.record.kid for i in infos} == {stamp.kid, rotated.kid}
    assert rotated.algorithm is Algorithm.ES256
    assert eddsa.algorithm is Algorithm.EDDSA
    with db.write() as session:
        retired = retire_key(session, stamp.kid.hex(), now=now)
    assert retired.status is KeyStatus.RETIRED
    with db.read() as session:
        stored = DatabaseKeyStore(session).get(stamp.kid)
    assert stored is not None
    assert stored.status is KeyStatus.RETIRED
    assert stored.sealed_private_key == stamp.sealed_private_key


def test_each_key_is_opened_once_per_process(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.write() as session:
        create_key(session, KeyPurpose.STAMP, passphrase=SECRETS.passphrase, now=clock.now(), kdf=FAST_KDF)
    opened: list[bytes] = []
    real = signers.open_software_signer

    def counting(record, passphrase):  # type: ignore[no-untyped-def]
        opened.append(record.kid)
        return real(record, passphrase)

    monkeypatch.setattr("ledger.services.signing_keys.open_software_signer", counting)
    keys = StampKeys(settings, SECRETS)
    now = clock.now()
    with db.read() as session:
        first = keys.stamp_signer(session, now=now, valid_until=now)
        second = keys.stamp_signer(session, now=now, valid_until=now)
    assert first is second
    assert len(opened) == 1


def test_development_keys_are_made_once_and_marked(db: Database, settings: Settings) -> None:
    with db.write() as session:
        made = ensure_development_keys(session, settings, SECRETS, now=clock.now(), kdf=FAST_KDF)
    with db.write() as session:
        again = ensure_development_keys(session, settings, SECRETS, now=clock.now(), kdf=FAST_KDF)
    assert [r.purpose for r in made] == [KeyPurpose.STAMP, KeyPurpose.TRUST_LIST]
    assert again == []
    with db.read() as session:
        assert {i.label for i in list_keys(session)} == {DEVELOPMENT_LABEL}


def test_production_refuses_development_keys_and_starts_only_with_keys_and_secrets(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = load_settings(
        environ={"ETIMBRE_ENVIRONMENT": "production", "ETIMBRE_DATABASE_URL": "sqlite:////tmp/unused.db"}
    )
    with pytest.raises(KeySetupError, match="never made in production"), db.write() as session:
        ensure_development_keys(session, production, SECRETS, now=clock.now())
    monkeypatch.delenv("ETIMBRE_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("ETIMBRE_RECEIPT_SECRET", raising=False)
    with pytest.raises(KeySetupError) as refused, db.read() as session:
        require_production_keys(session, production, now=clock.now())
    assert "no active stamp key" in str(refused.value)
    assert "no active trust-list key" in str(refused.value)
    assert "ETIMBRE_KEY_PASSPHRASE and ETIMBRE_RECEIPT_SECRET" in str(refused.value)
    with db.write() as session:
        for purpose in (KeyPurpose.STAMP, KeyPurpose.TRUST_LIST):
            create_key(session, purpose, passphrase=SECRETS.passphrase, now=clock.now(), kdf=FAST_KDF)
    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", SECRETS.passphrase)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", SECRETS.receipt_secret.decode())
    with db.read() as session:
        require_production_keys(session, production, now=clock.now())


def test_development_secrets_are_generated_once_in_the_keys_directory(tmp_path: Path) -> None:
    settings = load_settings(environ={"ETIMBRE_STAMPS_KEYS_DIR": str(tmp_path / "keys")})
    first = load_secrets(settings, environ={})
    second = load_secrets(settings, environ={})
    assert first == second
    assert first.development
    assert (tmp_path / "keys" / "development-secrets.json").stat().st_mode & 0o777 == 0o600
    given = load_secrets(
        settings, environ={"ETIMBRE_KEY_PASSPHRASE": "from env", "ETIMBRE_RECEIPT_SECRET": "x" * 20}
    )
    assert (given.passphrase, given.development) == ("from env", False)
    with pytest.raises(KeySetupError, match="at least 16"):
        load_secrets(settings, environ={"ETIMBRE_KEY_PASSPHRASE": "p", "ETIMBRE_RECEIPT_SECRET": "short"})


def test_receipt_links_are_secret_derivations_of_the_number() -> None:
    number = StampNumber.parse("4821 0933 7561 0284-1")
    token = receipt_token(b"k" * 32, number)
    assert token == receipt_token(b"k" * 32, number)
    assert token != receipt_token(b"j" * 32, number)
    assert number.digits not in token
    assert KeySecrets("a", b"b").__repr__().count("b'") == 0  # secrets stay out of logs
