"""Who signs: the `Signer` protocol and the software signer over a key opened from its envelope."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from receipts import algorithms
from receipts.algorithms import Algorithm, PrivateKey, algorithm_of
from receipts.envelope import open_sealed
from receipts.keys import KeyRecord, SigningKeyError, key_id


@runtime_checkable
class Signer(Protocol):
    """Signs bytes with one key; the signature is in COSE form (raw r||s for ES256)."""

    @property
    def kid(self) -> bytes: ...

    @property
    def algorithm(self) -> Algorithm: ...

    def sign(self, data: bytes) -> bytes: ...


class SoftwareSigner:
    """A private key held in process memory (opened once from its envelope, then reused)."""

    __slots__ = ("_algorithm", "_key", "_kid")

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        self._algorithm = algorithm_of(private_key)
        self._kid = key_id(private_key.public_key())

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    def sign(self, data: bytes) -> bytes:
        return algorithms.sign(self._key, data)

    def __repr__(self) -> str:
        return f"SoftwareSigner(kid={self._kid.hex()}, algorithm={self._algorithm.label})"


def open_software_signer(record: KeyRecord, passphrase: str) -> SoftwareSigner:
    """Open the sealed private key of `record` (slow on purpose: Argon2id); keep the signer, not the call."""
    if record.sealed_private_key is None:
        raise SigningKeyError(
            f"key {record.kid.hex()} has no sealed private key here: it lives in an HSM (use Pkcs11Signer)"
        )
    return SoftwareSigner(open_sealed(record.sealed_private_key, passphrase, kid=record.kid))
