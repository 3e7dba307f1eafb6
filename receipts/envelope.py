"""Private keys at rest: a versioned Argon2id + AES-256-GCM envelope, bound to the key's kid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from receipts.algorithms import PrivateKey, algorithm_of
from receipts.keys import key_id

VERSION = 1
_KDF = "argon2id"
_AEAD = "A256GCM"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_KEY_BYTES = 32
_AAD_LABEL = b"etimbre key envelope v1\x00"
# Bounds on what an envelope may ask for when opened: an altered row must not make us allocate 64 GiB.
MIN_MEMORY_KIB = 8 * 1024
MAX_MEMORY_KIB = 1024 * 1024
MAX_ITERATIONS = 16
MAX_LANES = 16


class EnvelopeError(ValueError):
    """A sealed key that cannot be opened (or sealed); the message says which check failed."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost. The default is RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes)."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    def __post_init__(self) -> None:
        if not MIN_MEMORY_KIB <= self.memory_kib <= MAX_MEMORY_KIB:
            raise EnvelopeError(
                f"Argon2id memory must be between {MIN_MEMORY_KIB} and {MAX_MEMORY_KIB} KiB, "
                f"got {self.memory_kib}"
            )
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise EnvelopeError(f"Argon2id iterations must be 1..{MAX_ITERATIONS}, got {self.iterations}")
        if not 1 <= self.lanes <= MAX_LANES:
            raise EnvelopeError(f"Argon2id lanes must be 1..{MAX_LANES}, got {self.lanes}")


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise EnvelopeError("the key passphrase is empty; set it in the environment")
    return passphrase.encode()


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    kdf = Argon2id(
        salt=salt,
        length=_KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(_passphrase_bytes(passphrase))


def _aad(kid: bytes) -> bytes:
    # Binding the kid means an envelope copied onto another key's row does not open.
    return _AAD_LABEL + kid


def seal(private_key: PrivateKey, passphrase: str, *, params: KdfParams | None = None) -> bytes:
    """Encrypt a private key (PKCS#8 DER inside) under a passphrase; returns the envelope bytes."""
    params = params or KdfParams()
    salt = os.urandom(_SALT_BYTES)
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kid = key_id(private_key.public_key())
    ciphertext = AESGCM(_derive(passphrase, salt, params)).encrypt(nonce, plaintext, _aad(kid))
    envelope = {
        "v": VERSION,
        "kdf": _KDF,
        "m": params.memory_kib,
        "t": params.iterations,
        "p": params.lanes,
        "salt": salt,
        "aead": _AEAD,
        "nonce": nonce,
        "ct": ciphertext,
    }
    return bytes(cbor2.dumps(envelope, canonical=True))


def _field(envelope: dict[Any, Any], name: str, kind: type, size: int | None = None) -> Any:
    value = envelope.get(name)
    well_formed = type(value) is kind and (size is None or (isinstance(value, bytes) and len(value) == size))
    if not well_formed:
        raise EnvelopeError(f"key envelope field {name!r} is missing or malformed")
    return value


def open_sealed(envelope_bytes: bytes, passphrase: str, *, kid: bytes) -> PrivateKey:
    """Decrypt an envelope for the key `kid`; refuses a wrong passphrase, any alteration, another kid."""
    try:
        envelope = cbor2.loads(envelope_bytes, allow_indefinite=False, allow_duplicate_keys=False)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise EnvelopeError(f"key envelope of {kid.hex()} is not valid CBOR: {exc}") from exc
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"key envelope of {kid.hex()} is not a CBOR map")
    version = envelope.get("v")
    if version != VERSION:
        raise EnvelopeError(f"key envelope version {version!r} is not supported (this build reads {VERSION})")
    if envelope.get("kdf") != _KDF or envelope.get("aead") != _AEAD:
        raise EnvelopeError(f"key envelope of {kid.hex()} names an unsupported KDF or cipher")
    params = KdfParams(
        memory_kib=_field(envelope, "m", int),
        iterations=_field(envelope, "t", int),
        lanes=_field(envelope, "p", int),
    )
    salt = _field(envelope, "salt", bytes, _SALT_BYTES)
    nonce = _field(envelope, "nonce", bytes, _NONCE_BYTES)
    ciphertext = _field(envelope, "ct", bytes)
    try:
        plaintext = AESGCM(_derive(passphrase, salt, params)).decrypt(nonce, ciphertext, _aad(kid))
    except InvalidTag:
        raise EnvelopeError(
            f"cannot open the private key of {kid.hex()}: wrong passphrase, or the sealed key was altered "
            "or belongs to another key id"
        ) from None
    private_key = serialization.load_der_private_key(plaintext, password=None)
    if not isinstance(private_key, PrivateKey):
        raise EnvelopeError(f"key envelope of {kid.hex()} holds a {type(private_key).__name__}")
    algorithm_of(private_key)
    if key_id(private_key.public_key()) != kid:
        raise EnvelopeError(f"the private key sealed for {kid.hex()} does not match that key id")
    return private_key
