"""The audit key that signs daily seals: found through the receipts keyring (purpose `audit`) in any KeyStore.

Until the keyring lives in the database, `FileKeyStore` keeps it in a JSON file (private halves sealed
with Argon2id + AES-GCM, as for stamp keys). The sealing code only sees `AuditKeys`.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from receipts.algorithms import Algorithm
from receipts.keyring import Keyring, KeyStore
from receipts.keys import KeyPurpose, KeyRecord, KeyStatus, SigningKeyError, VerificationKey
from receipts.signers import Signer, open_software_signer

PASSPHRASE_VARIABLE = "ETIMBRE_AUDIT_KEY_PASSPHRASE"  # noqa: S105 -- the variable's name, not a secret
_FORMAT = "etimbre-keyring/1"


class AuditKeys(Protocol):
    """Where the audit key comes from: the signer for now, and every audit key to check signatures with."""

    def signer(self, now: datetime) -> Signer: ...

    def verification_keys(self) -> Sequence[VerificationKey]: ...


class KeyringAuditKeys:
    """AuditKeys over a receipts keyring; the private key is opened once (Argon2id is slow on purpose)."""

    def __init__(self, store: KeyStore, passphrase: str) -> None:
        self.keyring = Keyring(store)
        self._passphrase = passphrase
        self._opened: dict[bytes, Signer] = {}

    def signer(self, now: datetime) -> Signer:
        record = self.keyring.signing_key(KeyPurpose.AUDIT, now=now)
        if record.kid not in self._opened:
            self._opened[record.kid] = open_software_signer(record, self._passphrase)
        return self._opened[record.kid]

    def verification_keys(self) -> list[VerificationKey]:
        return [record.verification_key() for record in self.keyring.verification_keys(KeyPurpose.AUDIT)]


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _record_to_json(record: KeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid.hex(),
        "purpose": record.purpose.value,
        "algorithm": record.algorithm.label,
        "public_key": base64.b64encode(record.public_key).decode(),
        "not_before": _instant(record.not_before),
        "not_after": _instant(record.not_after),
        "status": record.status.value,
        "created_at": _instant(record.created_at),
        "retired_at": _instant(record.retired_at),
        "sealed_private_key": (
            None
            if record.sealed_private_key is None
            else base64.b64encode(record.sealed_private_key).decode()
        ),
    }


def _record_from_json(item: dict[str, Any], where: str) -> KeyRecord:
    try:
        return KeyRecord(
            kid=bytes.fromhex(item["kid"]),
            purpose=KeyPurpose(item["purpose"]),
            algorithm=Algorithm.from_label(item["algorithm"]),
            public_key=base64.b64decode(item["public_key"], validate=True),
            not_before=datetime.fromisoformat(item["not_before"]),
            not_after=datetime.fromisoformat(item["not_after"]),
            status=KeyStatus(item["status"]),
            created_at=datetime.fromisoformat(item["created_at"]),
            retired_at=None if item.get("retired_at") is None else datetime.fromisoformat(item["retired_at"]),
            sealed_private_key=(
                None
                if item.get("sealed_private_key") is None
                else base64.b64decode(item["sealed_private_key"], validate=True)
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SigningKeyError(f"{where}: not a key record ({error})") from None


class FileKeyStore:
    """A receipts KeyStore in one JSON file, rewritten atomically and readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[bytes, KeyRecord]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SigningKeyError(f"{self.path}: cannot read the keyring ({error})") from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise SigningKeyError(f"{self.path}: not an etimbre keyring file")
        records = [
            _record_from_json(item, f"{self.path}: keys[{index}]")
            for index, item in enumerate(document.get("keys", []))
        ]
        return {record.kid: record for record in records}

    def _save(self, records: dict[bytes, KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"format": _FORMAT, "keys": [_record_to_json(r) for r in records.values()]}
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keyring-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(document, file, indent=2)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def add(self, record: KeyRecord) -> None:
        records = self._load()
        if record.kid in records:
            raise SigningKeyError(f"key {record.kid.hex()} is already in the keyring")
        records[record.kid] = record
        self._save(records)

    def get(self, kid: bytes) -> KeyRecord | None:
        return self._load().get(kid)

    def all(self, purpose: KeyPurpose | None = None) -> list[KeyRecord]:
        return [r for r in self._load().values() if purpose is None or r.purpose is purpose]

    def replace(self, record: KeyRecord) -> None:
        records = self._load()
        if record.kid not in records:
            raise SigningKeyError(f"key {record.kid.hex()} is not in the keyring")
        records[record.kid] = record
        self._save(records)
