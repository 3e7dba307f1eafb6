"""The two COSE signature algorithms of ET1 (ES256, EdDSA): key generation, signing and verification."""

from __future__ import annotations

from enum import IntEnum
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

SIGNATURE_LENGTH = 64  # ES256 r||s (2 x 32 bytes) and Ed25519 both
_P256_BYTES = 32


class Algorithm(IntEnum):
    """COSE algorithm identifiers (RFC 9053): the value is what goes in the protected header."""

    ES256 = -7
    EDDSA = -8

    @property
    def label(self) -> str:
        return "ES256" if self is Algorithm.ES256 else "EdDSA"

    @classmethod
    def from_label(cls, label: str) -> Algorithm:
        for algorithm in cls:
            if algorithm.label.lower() == label.lower():
                return algorithm
        raise ValueError(f"unknown signature algorithm {label!r}; use ES256 or EdDSA")


class KeyAlgorithmError(ValueError):
    """A key that is not one ET1 can use (only P-256 for ES256 and Ed25519 for EdDSA)."""


def generate_private_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm is Algorithm.ES256:
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def algorithm_of(key: PublicKey | PrivateKey) -> Algorithm:
    """The one algorithm a key may be used with: the key pins it, never the stamp."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyAlgorithmError(f"EC keys must be on P-256 for ES256, got {key.curve.name}")
        return Algorithm.ES256
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return Algorithm.EDDSA
    raise KeyAlgorithmError(f"{type(key).__name__} keys are not used for stamps; use P-256 or Ed25519")


def sign(key: PrivateKey, data: bytes) -> bytes:
    """A COSE signature: raw r||s (64 bytes) for ES256 as RFC 9053 requires, not DER; 64 bytes for EdDSA."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def ecdsa_from_der(der: bytes) -> bytes:
    """Convert a DER ECDSA-Sig-Value (as OpenSSL and some HSMs return it) to COSE r||s."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def is_valid_signature(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Check a COSE signature with the algorithm the key pins; never raises for a bad signature."""
    if len(signature) != SIGNATURE_LENGTH:
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
