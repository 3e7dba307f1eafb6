"""Signing keys as records: key ids, purposes, validity windows, status; and their public halves."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.hazmat.primitives import serialization

from receipts.algorithms import Algorithm, PrivateKey, PublicKey, algorithm_of

KID_LENGTH = 8


class KeyPurpose(StrEnum):
    """What a key may sign; a key of one purpose is never accepted for another."""

    STAMP = "stamp"
    TRUST_LIST = "trust-list"
    AUDIT = "audit"


class KeyStatus(StrEnum):
    """`active` keys verify (and the newest valid one signs); `retired` keys are refused outright."""

    ACTIVE = "active"
    RETIRED = "retired"


class SigningKeyError(ValueError):
    """A key or key record that cannot be used; the message says why."""


def public_key_der(key: PublicKey) -> bytes:
    """The SubjectPublicKeyInfo DER of a public key: what kids are computed from and what is stored."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: PublicKey | bytes) -> bytes:
    """The kid: the first 8 bytes of SHA-256 over the public key's SubjectPublicKeyInfo DER."""
    der = key if isinstance(key, bytes) else public_key_der(key)
    return hashlib.sha256(der).digest()[:KID_LENGTH]


def load_public_key(der: bytes) -> PublicKey:
    """Load a SubjectPublicKeyInfo DER and refuse any key type ET1 does not use."""
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise SigningKeyError(f"not a SubjectPublicKeyInfo DER public key: {exc}") from exc
    if not isinstance(key, PublicKey):
        raise SigningKeyError(f"{type(key).__name__} keys are not used here; use P-256 or Ed25519")
    algorithm_of(key)
    return key


def _utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise SigningKeyError(f"{name} must be a timezone-aware datetime, got {value!r}")
    # Whole seconds: key windows travel as NumericDate in trust lists and must compare equal afterwards.
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key of the keyring as stored: public half, validity window, status and the sealed private half.

    `sealed_private_key` is the Argon2id + AES-GCM envelope (receipts.envelope) of a software key, or None
    when the private key lives in an HSM token (found there by CKA_ID = kid).
    """

    kid: bytes
    purpose: KeyPurpose
    algorithm: Algorithm
    public_key: bytes  # SubjectPublicKeyInfo DER
    not_before: datetime
    not_after: datetime
    status: KeyStatus
    created_at: datetime
    sealed_private_key: bytes | None = None
    retired_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("not_before", "not_after", "created_at"):
            object.__setattr__(self, name, _utc(name, getattr(self, name)))
        if self.retired_at is not None:
            object.__setattr__(self, "retired_at", _utc("retired_at", self.retired_at))
        key = load_public_key(self.public_key)
        if key_id(self.public_key) != self.kid:
            raise SigningKeyError(f"kid {self.kid.hex()} is not the SHA-256 prefix of this public key")
        if algorithm_of(key) is not self.algorithm:
            raise SigningKeyError(
                f"key {self.kid.hex()} is a {algorithm_of(key).label} key, not {self.algorithm.label}"
            )
        if self.not_after <= self.not_before:
            raise SigningKeyError(f"key {self.kid.hex()}: not_after must be later than not_before")
        if (self.status is KeyStatus.RETIRED) != (self.retired_at is not None):
            raise SigningKeyError(
                f"key {self.kid.hex()}: retired_at is set exactly when the status is retired"
            )

    @classmethod
    def for_key(
        cls,
        key: PublicKey | PrivateKey,
        *,
        purpose: KeyPurpose,
        not_before: datetime,
        not_after: datetime,
        created_at: datetime,
        sealed_private_key: bytes | None = None,
    ) -> KeyRecord:
        public = key if isinstance(key, PublicKey) else key.public_key()
        der = public_key_der(public)
        return cls(
            kid=key_id(der),
            purpose=purpose,
            algorithm=algorithm_of(public),
            public_key=der,
            not_before=not_before,
            not_after=not_after,
            status=KeyStatus.ACTIVE,
            created_at=created_at,
            sealed_private_key=sealed_private_key,
        )

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether everything signed for [start, end] falls inside this key's validity window."""
        return self.not_before <= start and end <= self.not_after

    def retired(self, at: datetime) -> KeyRecord:
        return replace(self, status=KeyStatus.RETIRED, retired_at=at)

    def verification_key(self) -> VerificationKey:
        return VerificationKey(
            kid=self.kid,
            algorithm=self.algorithm,
            public_key=load_public_key(self.public_key),
            not_before=self.not_before,
            not_after=self.not_after,
            status=self.status,
        )


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """The public half of a key, loaded once, with what a verifier needs to judge a signature by it."""

    kid: bytes
    algorithm: Algorithm
    public_key: PublicKey
    not_before: datetime
    not_after: datetime
    status: KeyStatus = KeyStatus.ACTIVE

    def __post_init__(self) -> None:
        object.__setattr__(self, "not_before", _utc("not_before", self.not_before))
        object.__setattr__(self, "not_after", _utc("not_after", self.not_after))
        if algorithm_of(self.public_key) is not self.algorithm:
            raise SigningKeyError(f"key {self.kid.hex()} cannot be used with {self.algorithm.label}")
        if key_id(self.public_key) != self.kid:
            raise SigningKeyError(f"kid {self.kid.hex()} is not the SHA-256 prefix of this public key")

    @property
    def public_key_der(self) -> bytes:
        return public_key_der(self.public_key)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> VerificationKey:
        """A trust anchor from a PEM public key: kid and algorithm follow from the key, validity is open."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            loaded = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise SigningKeyError(f"not a PEM public key: {exc}") from exc
        key = load_public_key(
            loaded.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return cls(
            kid=key_id(key),
            algorithm=algorithm_of(key),
            public_key=key,
            not_before=datetime.min.replace(tzinfo=UTC),
            not_after=datetime.max.replace(tzinfo=UTC),
        )

    def to_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
