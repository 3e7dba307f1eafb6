"""Signing keys in the database: the keyring's KeyStore, key life cycle, and the secrets that open them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from ledger.db.models_stamps import SigningKey
from ledger.settings import Settings
from receipts.algorithms import Algorithm
from receipts.envelope import KdfParams
from receipts.keyring import DEFAULT_KEY_VALIDITY, Keyring
from receipts.keys import KeyPurpose, KeyRecord, KeyStatus, SigningKeyError
from receipts.numbers import StampNumber
from receipts.signers import Signer, open_software_signer

KEYS: Table = SigningKey.__table__  # type: ignore[assignment]
DEVELOPMENT_LABEL = "DEVELOPMENT KEY - not for production"
DEVELOPMENT_SECRETS = "development-secrets.json"
_RECEIPT_LABEL = b"etimbre receipt link v1\x00"
MIN_RECEIPT_SECRET = 16
log = structlog.get_logger("etimbre.keys")


class KeySetupError(Exception):
    """The keys or their secrets are not ready (missing passphrase, no key for a purpose); says what to do."""


class ReceiptSecretChangedError(Exception):
    """A stored receipt link no longer matches the receipt secret: the secret was changed after issue."""


# The KeyStore -------------------------------------------------------------------------------------------


def _record(row: SigningKey) -> KeyRecord:
    return KeyRecord(
        kid=bytes.fromhex(row.kid),
        purpose=KeyPurpose(row.purpose),
        algorithm=Algorithm(row.algorithm),
        public_key=bytes(row.public_key),
        not_before=row.not_before,
        not_after=row.not_after,
        status=KeyStatus(row.status),
        created_at=row.created_at,
        sealed_private_key=None if row.sealed_private_key is None else bytes(row.sealed_private_key),
        retired_at=row.retired_at,
    )


class DatabaseKeyStore:
    """receipts.keyring.KeyStore over the `signing_keys` table, in the caller's transaction."""

    def __init__(self, session: Session, *, label: str = "") -> None:
        self.session = session
        self.label = label  # given to the keys this store adds (e.g. the development marker)

    def add(self, record: KeyRecord) -> None:
        if self.session.get(SigningKey, record.kid.hex()) is not None:
            raise SigningKeyError(f"key {record.kid.hex()} is already in the keyring")
        self.session.add(
            SigningKey(
                kid=record.kid.hex(),
                purpose=record.purpose.value,
                algorithm=int(record.algorithm),
                public_key=record.public_key,
                not_before=record.not_before,
                not_after=record.not_after,
                status=record.status.value,
                created_at=record.created_at,
                retired_at=record.retired_at,
                sealed_private_key=record.sealed_private_key,
                label=self.label[:100],
            )
        )
        self.session.flush()

    def get(self, kid: bytes) -> KeyRecord | None:
        row = self.session.scalar(select(SigningKey).where(SigningKey.kid == kid.hex()))
        return None if row is None else _record(row)

    def all(self, purpose: KeyPurpose | None = None) -> Sequence[KeyRecord]:
        query = select(SigningKey)
        if purpose is not None:
            query = query.where(SigningKey.purpose == purpose.value)
        return [_record(row) for row in self.session.scalars(query)]

    def replace(self, record: KeyRecord) -> None:
        # Only retirement ever changes a key; the database refuses any other change.
        changed = self.session.execute(
            update(KEYS)
            .where(KEYS.c.kid == record.kid.hex())
            .values(status=record.status.value, retired_at=record.retired_at)
        )
        if not getattr(changed, "rowcount", 0):
            raise SigningKeyError(f"key {record.kid.hex()} is not in the keyring")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    record: KeyRecord
    label: str
    hsm: bool


def list_keys(session: Session, purpose: KeyPurpose | None = None) -> list[KeyInfo]:
    """Every key, newest first, with its label and where its private half lives."""
    query = select(SigningKey)
    if purpose is not None:
        query = query.where(SigningKey.purpose == purpose.value)
    rows = list(session.scalars(query))
    infos = [KeyInfo(_record(row), row.label, row.sealed_private_key is None) for row in rows]
    return sorted(infos, key=lambda i: (i.record.not_before, i.record.created_at), reverse=True)


def create_key(
    session: Session,
    purpose: KeyPurpose,
    *,
    passphrase: str,
    now: datetime,
    algorithm: Algorithm | None = None,
    validity: timedelta = DEFAULT_KEY_VALIDITY,
    kdf: KdfParams | None = None,
    label: str = "",
    rotate: bool = False,
) -> KeyRecord:
    """A new software key (private half sealed under the passphrase). ES256 unless told; `rotate` keeps
    the algorithm of the key it succeeds."""
    keyring = Keyring(DatabaseKeyStore(session, label=label))
    if rotate:
        return keyring.rotate(
            purpose,
            passphrase=passphrase,
            now=now,
            algorithm=algorithm,
            validity=validity,
            kdf=kdf,
        )
    return keyring.create(
        purpose,
        passphrase=passphrase,
        now=now,
        algorithm=algorithm or Algorithm.ES256,
        validity=validity,
        kdf=kdf,
    )


def retire_key(session: Session, kid: str, *, now: datetime) -> KeyRecord:
    """Retire a key: it signs no more, and everything it signed is refused from now on."""
    try:
        raw = bytes.fromhex(kid)
    except ValueError:
        raise SigningKeyError(f"{kid!r} is not a key id (16 hexadecimal digits)") from None
    return Keyring(DatabaseKeyStore(session)).retire(raw, now=now)


def active_key(session: Session, purpose: KeyPurpose, *, now: datetime, until: datetime) -> KeyRecord | None:
    try:
        return Keyring(DatabaseKeyStore(session)).signing_key(purpose, now=now, valid_until=until)
    except SigningKeyError:
        return None


# Secrets ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySecrets:
    """The key passphrase and the receipt-link secret. From the environment; in development a generated
    file stands in for whatever the environment does not give."""

    passphrase: str = field(repr=False)
    receipt_secret: bytes = field(repr=False)
    development: bool = False


def _development_secrets(directory: Path) -> dict[str, str]:
    path = directory / DEVELOPMENT_SECRETS
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and all(isinstance(v, str) for v in loaded.values()):
            return {str(k): str(v) for k, v in loaded.items()}
        raise KeySetupError(f"{path} is not a development secrets file; delete it to make a new one")
    directory.mkdir(parents=True, exist_ok=True)
    made = {"passphrase": secrets.token_urlsafe(24), "receipt_secret": secrets.token_urlsafe(32)}
    # Created readable by the owner only; a development convenience, never used in production.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(made, handle)
    log.warning("DEVELOPMENT SECRETS created", path=str(path))
    return made


def load_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> KeySecrets:
    """The secrets from the environment (variables named in [stamps]); production refuses to guess."""
    environ = os.environ if environ is None else environ
    stamps = settings.service.stamps
    passphrase = environ.get(stamps.passphrase_env, "")
    receipt_secret = environ.get(stamps.receipt_secret_env, "")
    development = False
    if not passphrase or not receipt_secret:
        if settings.production:
            missing = [
                name
                for name, value in (
                    (stamps.passphrase_env, passphrase),
                    (stamps.receipt_secret_env, receipt_secret),
                )
                if not value
            ]
            raise KeySetupError(f"production needs {' and '.join(missing)} in the environment")
        stored = _development_secrets(settings.keys_dir)
        passphrase = passphrase or stored["passphrase"]
        receipt_secret = receipt_secret or stored["receipt_secret"]
        development = True
    if len(receipt_secret) < MIN_RECEIPT_SECRET:
        raise KeySetupError(f"{stamps.receipt_secret_env} must be at least {MIN_RECEIPT_SECRET} characters")
    return KeySecrets(passphrase, receipt_secret.encode(), development)


def receipt_token(secret: bytes, number: StampNumber) -> str:
    """The secret of a stamp's receipt link: HMAC of its number, so it can be given again, never stored."""
    mac = hmac.new(secret, _RECEIPT_LABEL + number.digits.encode(), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(mac).decode()  # 32 characters of [A-Za-z0-9_-]


def token_hash(token: str) -> str:
    """What the database keeps of a receipt link: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


# The signer source --------------------------------------------------------------------------------------


class StampKeys:
    """Signers for stamps and trust lists, and receipt links. Opening a sealed key is slow on purpose
    (Argon2id), so each key is opened once per process and its signer kept, by kid."""

    def __init__(self, settings: Settings, secrets_: KeySecrets | None = None) -> None:
        self.settings = settings
        self._secrets = secrets_
        self._signers: dict[bytes, Signer] = {}
        self._lock = threading.Lock()

    @property
    def secrets(self) -> KeySecrets:
        if self._secrets is None:
            with self._lock:
                if self._secrets is None:
                    self._secrets = load_secrets(self.settings)
        return self._secrets

    def signer_for(self, record: KeyRecord) -> Signer:
        signer = self._signers.get(record.kid)
        if signer is not None:
            return signer
        with self._lock:
            signer = self._signers.get(record.kid)
            if signer is None:
                signer = self._open(record)
                self._signers[record.kid] = signer
        return signer

    def _open(self, record: KeyRecord) -> Signer:
        if record.sealed_private_key is not None:
            if self._secrets is None:
                self._secrets = load_secrets(self.settings)
            return open_software_signer(record, self._secrets.passphrase)
        stamps = self.settings.service.stamps
        if not stamps.pkcs11_module or not stamps.pkcs11_token:
            raise KeySetupError(
                f"key {record.kid.hex()} lives in an HSM: set [stamps] pkcs11_module and pkcs11_token"
            )
        from receipts.hsm import Pkcs11Signer, Pkcs11Token

        token = Pkcs11Token(
            stamps.pkcs11_module, stamps.pkcs11_token, os.environ.get(stamps.pkcs11_pin_env, "")
        )
        return Pkcs11Signer(token, kid=record.kid, algorithm=record.algorithm)

    def stamp_signer(self, session: Session, *, now: datetime, valid_until: datetime) -> Signer:
        """The newest active stamp key whose window covers the stamp's whole life."""
        record = Keyring(DatabaseKeyStore(session)).signing_key(
            KeyPurpose.STAMP, now=now, valid_until=valid_until
        )
        return self.signer_for(record)

    def trust_list_signer(self, session: Session, *, now: datetime) -> Signer:
        record = Keyring(DatabaseKeyStore(session)).signing_key(KeyPurpose.TRUST_LIST, now=now)
        return self.signer_for(record)

    def receipt_token(self, number: StampNumber) -> str:
        return receipt_token(self.secrets.receipt_secret, number)


# Start-up -----------------------------------------------------------------------------------------------


def ensure_development_keys(
    session: Session, settings: Settings, secrets_: KeySecrets, *, now: datetime, kdf: KdfParams | None = None
) -> list[KeyRecord]:
    """On the embedded default's first run: a stamp key and a trust-list key, marked as development keys.

    Never in production. Returns the keys it made (none when keys already exist)."""
    if settings.production:
        raise KeySetupError("development keys are never made in production: run `etimbre keys create`")
    made = []
    for purpose in (KeyPurpose.STAMP, KeyPurpose.TRUST_LIST):
        if Keyring(DatabaseKeyStore(session)).list(purpose):
            continue
        record = create_key(
            session, purpose, passphrase=secrets_.passphrase, now=now, kdf=kdf, label=DEVELOPMENT_LABEL
        )
        made.append(record)
        log.warning(
            "DEVELOPMENT KEY CREATED: not for production; stamps it signs are test stamps",
            purpose=purpose.value,
            kid=record.kid.hex(),
        )
    return made


def readiness_problems(session: Session, settings: Settings, *, now: datetime) -> list[str]:
    """What keeps the service from issuing stamps and trust lists now (empty when it can)."""
    validity = timedelta(days=settings.service.stamps.validity_days)
    problems = []
    if active_key(session, KeyPurpose.STAMP, now=now, until=now + validity) is None:
        problems.append(
            f"no active stamp key valid for the next {validity.days} days: "
            "run `etimbre keys rotate --purpose stamp`"
        )
    if active_key(session, KeyPurpose.TRUST_LIST, now=now, until=now) is None:
        problems.append("no active trust-list key: run `etimbre keys create --purpose trust-list`")
    return problems


def require_production_keys(session: Session, settings: Settings, *, now: datetime) -> None:
    """Production refuses to start without its keys and the secrets that open them."""
    problems = readiness_problems(session, settings, now=now)
    try:
        load_secrets(settings)
    except KeySetupError as error:
        problems.append(str(error))
    if problems:
        raise KeySetupError("cannot start in production: " + "; ".join(problems))


def create_hsm_key(
    session: Session,
    settings: Settings,
    purpose: KeyPurpose,
    *,
    now: datetime,
    algorithm: Algorithm = Algorithm.ES256,
    validity: timedelta = DEFAULT_KEY_VALIDITY,
    label: str = "",
) -> KeyRecord:
    """A key made inside the configured PKCS#11 token (never extractable), recorded with no private half."""
    from receipts.hsm import Pkcs11Token, generate_hsm_key

    stamps = settings.service.stamps
    if not stamps.pkcs11_module or not stamps.pkcs11_token:
        raise KeySetupError("set [stamps] pkcs11_module and pkcs11_token to create keys in an HSM")
    token = Pkcs11Token(stamps.pkcs11_module, stamps.pkcs11_token, os.environ.get(stamps.pkcs11_pin_env, ""))
    public_key = generate_hsm_key(token, algorithm, label=label or f"etimbre {purpose.value}")
    return Keyring(DatabaseKeyStore(session, label=label)).register_hsm_key(
        public_key, purpose, now=now, validity=validity
    )
