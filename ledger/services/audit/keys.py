"""The audit key that signs daily seals: the newest active key of purpose `audit` in the service's keyring."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from ledger.services.signing_keys import DatabaseKeyStore, StampKeys
from receipts.keyring import Keyring, KeyStore, NoSigningKeyError
from receipts.keys import KeyPurpose, KeyRecord, VerificationKey
from receipts.signers import Signer


class AuditKeys(Protocol):
    """Where daily seals get their signer, and the audit keys their signatures are checked with."""

    def signer(self, session: Session, now: datetime) -> Signer: ...

    def verification_keys(self, session: Session) -> Sequence[VerificationKey]: ...


class KeyringAuditKeys:
    """AuditKeys over a receipts keyring: `store` gives the session's KeyStore, `open` a record's signer
    (a software key sealed with the key passphrase, or a key in the HSM)."""

    def __init__(
        self,
        open_signer: Callable[[KeyRecord], Signer],
        store: Callable[[Session], KeyStore] = DatabaseKeyStore,
    ) -> None:
        self._open = open_signer
        self._store = store

    def signer(self, session: Session, now: datetime) -> Signer:
        return self._open(Keyring(self._store(session)).signing_key(KeyPurpose.AUDIT, now=now))

    def verification_keys(self, session: Session) -> list[VerificationKey]:
        keyring = Keyring(self._store(session))
        return [record.verification_key() for record in keyring.verification_keys(KeyPurpose.AUDIT)]


def database_audit_keys(keys: StampKeys) -> KeyringAuditKeys:
    """The audit keys of the `signing_keys` table, opened like stamp keys (each once per process)."""
    return KeyringAuditKeys(keys.signer_for)


def has_audit_key(session: Session, now: datetime) -> bool:
    try:
        Keyring(DatabaseKeyStore(session)).signing_key(KeyPurpose.AUDIT, now=now)
    except NoSigningKeyError:
        return False
    return True
