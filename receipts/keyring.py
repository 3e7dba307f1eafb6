"""The keyring: create, rotate, retire and list keys, and pick the key that signs now, over a KeyStore."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from receipts.algorithms import Algorithm, PublicKey, generate_private_key
from receipts.envelope import KdfParams, seal
from receipts.keys import KeyPurpose, KeyRecord, KeyStatus, SigningKeyError

# A stamp lives 12 months; a stamp key signs for about a year, then verifies what it signed for a year more.
DEFAULT_KEY_VALIDITY = timedelta(days=2 * 366)


class NoSigningKeyError(SigningKeyError):
    """No active key of a purpose can sign now for as long as asked; rotate (or create) one."""


class KeyStore(Protocol):
    """Where key records live: in memory for tests and tools, a database table in the service."""

    def add(self, record: KeyRecord) -> None:
        """Store a new record; a kid already present is an error."""
        ...

    def get(self, kid: bytes) -> KeyRecord | None: ...

    def all(self, purpose: KeyPurpose | None = None) -> Sequence[KeyRecord]: ...

    def replace(self, record: KeyRecord) -> None:
        """Overwrite the record with the same kid (status changes only)."""
        ...


class InMemoryKeyStore:
    """A KeyStore in a dict: for tests, benchmarks and one-off tools."""

    def __init__(self, records: Sequence[KeyRecord] = ()) -> None:
        self._records: dict[bytes, KeyRecord] = {}
        for record in records:
            self.add(record)

    def add(self, record: KeyRecord) -> None:
        if record.kid in self._records:
            raise SigningKeyError(f"key {record.kid.hex()} is already in the keyring")
        self._records[record.kid] = record

    def get(self, kid: bytes) -> KeyRecord | None:
        return self._records.get(kid)

    def all(self, purpose: KeyPurpose | None = None) -> Sequence[KeyRecord]:
        return [r for r in self._records.values() if purpose is None or r.purpose is purpose]

    def replace(self, record: KeyRecord) -> None:
        if record.kid not in self._records:
            raise SigningKeyError(f"key {record.kid.hex()} is not in the keyring")
        self._records[record.kid] = record


class Keyring:
    """Key life cycle over a KeyStore. Times are passed in (`now`) so that every rule can be tested."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def create(
        self,
        purpose: KeyPurpose,
        *,
        passphrase: str,
        now: datetime,
        algorithm: Algorithm = Algorithm.ES256,
        validity: timedelta = DEFAULT_KEY_VALIDITY,
        kdf: KdfParams | None = None,
    ) -> KeyRecord:
        """A new software key, valid from `now` for `validity`, its private half sealed under `passphrase`."""
        private_key = generate_private_key(algorithm)
        record = KeyRecord.for_key(
            private_key,
            purpose=purpose,
            not_before=now,
            not_after=now + validity,
            created_at=now,
            sealed_private_key=seal(private_key, passphrase, params=kdf),
        )
        self.store.add(record)
        return record

    def register_hsm_key(
        self,
        public_key: PublicKey,
        purpose: KeyPurpose,
        *,
        now: datetime,
        validity: timedelta = DEFAULT_KEY_VALIDITY,
    ) -> KeyRecord:
        """Record a key generated in an HSM (receipts.hsm.generate_hsm_key): no sealed private half."""
        record = KeyRecord.for_key(
            public_key, purpose=purpose, not_before=now, not_after=now + validity, created_at=now
        )
        self.store.add(record)
        return record

    def rotate(
        self,
        purpose: KeyPurpose,
        *,
        passphrase: str,
        now: datetime,
        algorithm: Algorithm | None = None,
        validity: timedelta = DEFAULT_KEY_VALIDITY,
        kdf: KdfParams | None = None,
    ) -> KeyRecord:
        """A new active key that signs from now on; the previous keys stay active, so what they signed
        keeps verifying until their own not_after. Retire a key only to refuse what it signed."""
        current = self._newest_active(purpose, now)
        if algorithm is None:
            algorithm = current.algorithm if current is not None else Algorithm.ES256
        return self.create(
            purpose, passphrase=passphrase, now=now, algorithm=algorithm, validity=validity, kdf=kdf
        )

    def retire(self, kid: bytes, *, now: datetime) -> KeyRecord:
        """Take a key out of service: it no longer signs and everything it signed is refused."""
        record = self.store.get(kid)
        if record is None:
            raise SigningKeyError(f"no key {kid.hex()} in the keyring")
        if record.status is KeyStatus.RETIRED:
            return record
        retired = record.retired(now)
        self.store.replace(retired)
        return retired

    def list(self, purpose: KeyPurpose | None = None) -> builtins.list[KeyRecord]:
        """Every key, newest first."""
        return sorted(self.store.all(purpose), key=lambda r: (r.not_before, r.created_at), reverse=True)

    def verification_keys(self, purpose: KeyPurpose = KeyPurpose.STAMP) -> builtins.list[KeyRecord]:
        """The keys a verifier must know: all of the purpose, retired ones included (to name them)."""
        return self.list(purpose)

    def _newest_active(self, purpose: KeyPurpose, now: datetime) -> KeyRecord | None:
        candidates = [r for r in self.list(purpose) if r.status is KeyStatus.ACTIVE and r.not_before <= now]
        return candidates[0] if candidates else None

    def signing_key(
        self, purpose: KeyPurpose, *, now: datetime, valid_until: datetime | None = None
    ) -> KeyRecord:
        """The newest active key of `purpose` whose window covers [now, valid_until] (default: now).

        Pass the stamp's expiry as `valid_until`: a stamp must never outlive the key that signed it.
        """
        until = now if valid_until is None else valid_until
        for record in self.list(purpose):
            if record.status is KeyStatus.ACTIVE and record.covers(now, until):
                return record
        raise NoSigningKeyError(
            f"no active {purpose.value} key is valid from {now.isoformat()} to {until.isoformat()}; "
            f"rotate the {purpose.value} key"
        )
