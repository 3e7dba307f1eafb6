"""The PKCS#11 (HSM) signer: private keys that never leave the token, found there by CKA_ID = kid."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from receipts.algorithms import SIGNATURE_LENGTH, Algorithm, PublicKey, ecdsa_from_der
from receipts.keys import SigningKeyError, key_id

_CURVE = {Algorithm.ES256: "secp256r1", Algorithm.EDDSA: "1.3.101.112"}  # id-Ed25519 (RFC 8410)
_KEY_TYPE = {Algorithm.ES256: KeyType.EC, Algorithm.EDDSA: KeyType.EC_EDWARDS}
_KEYGEN = {Algorithm.ES256: Mechanism.EC_KEY_PAIR_GEN, Algorithm.EDDSA: Mechanism.EC_EDWARDS_KEY_PAIR_GEN}
_ED25519_POINT_DER_PREFIX = b"\x04\x20"  # CKA_EC_POINT is a DER OCTET STRING of the 32-byte key


@dataclass(frozen=True, slots=True)
class Pkcs11Token:
    """Where the HSM keys are: the vendor's PKCS#11 module, the token label and the user PIN (from env)."""

    module_path: str
    token_label: str
    user_pin: str = field(repr=False)


def _open_session(token: Pkcs11Token, *, rw: bool) -> Any:
    library = pkcs11.lib(token.module_path)
    try:
        found = library.get_token(token_label=token.token_label)
    except pkcs11.exceptions.NoSuchToken:
        raise SigningKeyError(
            f"no PKCS#11 token labelled {token.token_label!r} in {token.module_path}"
        ) from None
    return found.open(user_pin=token.user_pin, rw=rw)


def _public_key_of(public: Any, algorithm: Algorithm) -> PublicKey:
    if algorithm is Algorithm.ES256:
        key = load_der_public_key(encode_ec_public_key(public))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SigningKeyError("the token returned a public key that is not EC")
        return key
    point = bytes(public[Attribute.EC_POINT])
    if point.startswith(_ED25519_POINT_DER_PREFIX) and len(point) == 34:
        point = point[2:]
    return ed25519.Ed25519PublicKey.from_public_bytes(point)


def generate_hsm_key(token: Pkcs11Token, algorithm: Algorithm, *, label: str) -> PublicKey:
    """Generate a key pair inside the token (private half sensitive, not extractable); CKA_ID = its kid.

    Returns the public key, from which the caller makes a KeyRecord with no sealed private key.
    """
    with _open_session(token, rw=True) as session:
        parameters = session.create_domain_parameters(
            _KEY_TYPE[algorithm],
            {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVE[algorithm])},
            local=True,
        )
        provisional_id = os.urandom(16)
        public, private = parameters.generate_keypair(
            store=True,
            label=label,
            id=provisional_id,
            mechanism=_KEYGEN[algorithm],
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
        public_key = _public_key_of(public, algorithm)
        # The kid comes from the public key, which only exists once the token made it: re-label both halves.
        kid = key_id(public_key)
        public[Attribute.ID] = kid
        private[Attribute.ID] = kid
        return public_key


class Pkcs11Signer:
    """Signs with a private key held by a PKCS#11 token; one session, serialised (sessions are not shared)."""

    def __init__(self, token: Pkcs11Token, *, kid: bytes, algorithm: Algorithm) -> None:
        self._kid = kid
        self._algorithm = algorithm
        self._lock = threading.Lock()
        self._session = _open_session(token, rw=False)
        try:
            self._key = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=kid)
        except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned) as exc:
            self._session.close()
            raise SigningKeyError(
                f"token {token.token_label!r} has no single private key with CKA_ID {kid.hex()}"
            ) from exc
        if self._key.key_type is not _KEY_TYPE[algorithm]:
            self._session.close()
            raise SigningKeyError(f"the token's key {kid.hex()} is not a {algorithm.label} key")

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    def sign(self, data: bytes) -> bytes:
        with self._lock:
            if self._algorithm is Algorithm.ES256:
                # Plain CKM_ECDSA over our SHA-256 digest: more tokens offer it than CKM_ECDSA_SHA256.
                signature = bytes(self._key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA))
            else:
                signature = bytes(self._key.sign(data, mechanism=Mechanism.EDDSA))
        if len(signature) != SIGNATURE_LENGTH:
            # A few tokens answer DER for ECDSA; PKCS#11 says r||s, COSE needs r||s.
            signature = ecdsa_from_der(signature)
        return signature

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Signer(kid={self._kid.hex()}, algorithm={self._algorithm.label})"
