"""An independent ET1 verifier written from docs/stamp-format.md alone (cbor2, cryptography, base45 only)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
TRUST_LIST_TYPE = "application/vnd.etimbre.trust-list+cbor"


class Refused(Exception):  # noqa: N818 -- named after the documented outcome
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Key:
    alg: int
    public_key: Any
    nbf: int
    exp: int
    status: str


def canonical_item(data: bytes, code: str) -> Any:
    """Section 5: decode strictly, re-encode deterministically, compare byte for byte."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream, allow_indefinite=False, allow_duplicate_keys=False).decode()
        again = cbor2.dumps(item, canonical=True)
    except Exception as exc:
        raise Refused(code) from exc
    if stream.tell() != len(data) or again != data:
        raise Refused(code)
    return item


def kid_of(spki_der: bytes) -> bytes:
    return hashlib.sha256(spki_der).digest()[:8]


def signature_holds(alg: int, public_key: Any, signature: bytes, message: bytes) -> bool:
    try:
        if alg == -8:
            public_key.verify(signature, message)
        else:
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def open_sign1(data: bytes, labels: set[int], code_cbor: str, code_cose: str) -> tuple[Any, ...]:
    item = canonical_item(data, code_cbor)
    if not isinstance(item, cbor2.CBORTag) or item.tag != 18:
        raise Refused(code_cose)
    body = item.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise Refused(code_cose)
    protected, unprotected, payload, signature = body
    if not (type(protected) is bytes and type(payload) is bytes and type(signature) is bytes):
        raise Refused(code_cose)
    if not isinstance(unprotected, Mapping) or len(unprotected) != 0 or len(signature) != 64:
        raise Refused(code_cose)
    header = canonical_item(protected, code_cbor)
    if not isinstance(header, Mapping) or set(header) != labels:
        raise Refused(code_cose)
    if type(header[1]) is not int or type(header[4]) is not bytes or len(header[4]) != 8:
        raise Refused(code_cose)
    return header, protected, payload, signature


def to_be_signed(protected: bytes, payload: bytes) -> bytes:
    return bytes(cbor2.dumps(["Signature1", protected, b"", payload], canonical=True))


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 1 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def read_claims(payload: bytes) -> dict[str, Any]:
    claims = canonical_item(payload, "bad_claims")
    if not isinstance(claims, Mapping) or set(claims) != {1, 3, 4, 6, 7, -1}:
        raise Refused("bad_claims")
    fee = claims[-1]
    if not isinstance(fee, Mapping) or not {1, 2, 3, 4, 5} <= set(fee) <= {1, 2, 3, 4, 5, 6}:
        raise Refused("bad_claims")
    typed = [(claims[1], str), (claims[3], str), (claims[4], int), (claims[6], int), (claims[7], bytes)]
    typed += [(fee[1], int), (fee[2], int), (fee[3], int), (fee[4], int), (fee[5], int)]
    if any(type(value) is not kind for value, kind in typed) or len(claims[7]) != 8:
        raise Refused("bad_claims")
    number = int.from_bytes(claims[7], "big")
    digits = f"{number:017d}"
    if number >= 10**17 or not luhn_ok(digits) or fee[4] not in (1, 2) or claims[6] >= claims[4]:
        raise Refused("bad_claims")
    if fee[2] <= 0 or fee[5] < 1 or (6 in fee and type(fee[6]) is not str):
        raise Refused("bad_claims")
    return {
        "iss": claims[1],
        "aud": claims[3],
        "exp": claims[4],
        "iat": claims[6],
        "number": digits,
        "fee_number": fee[1],
        "amount": fee[2],
        "currency": fee[3],
        "channel": {1: "online", 2: "counter"}[fee[4]],
        "schedule_version": fee[5],
        "case_reference": fee.get(6),
    }


@dataclass(frozen=True)
class TrustList:
    keys: dict[bytes, Key]
    fees: dict[int, dict[str, Any]]  # fee number -> {"code", "fr", "ar", "en"}
    deny: set[int]
    iat: int
    max_age: int


def load_public(spki: bytes) -> Any:
    return serialization.load_der_public_key(spki)


def read_trust_list(
    document: bytes, anchors: dict[bytes, tuple[int, Any]], now: int, skew: int = 300
) -> TrustList:
    header, protected, payload, signature = open_sign1(document, {1, 3, 4}, "bad_format", "bad_format")
    if header[3] != TRUST_LIST_TYPE:
        raise Refused("bad_format")
    anchor = anchors.get(header[4])
    if anchor is None:
        raise Refused("unknown_signer")
    if header[1] != anchor[0]:
        raise Refused("alg_mismatch")
    if not signature_holds(anchor[0], anchor[1], signature, to_be_signed(protected, payload)):
        raise Refused("bad_signature")
    body = canonical_item(payload, "bad_format")
    keys = {}
    for entry in body["keys"]:
        keys[entry["kid"]] = Key(
            entry["alg"], load_public(entry["spki"]), entry["nbf"], entry["exp"], entry["status"]
        )
        if kid_of(entry["spki"]) != entry["kid"]:
            raise Refused("bad_format")
    if body["iat"] > now + skew:
        raise Refused("not_yet_valid")
    if now - body["iat"] > body["max_age"]:
        raise Refused("stale")
    return TrustList(
        keys=keys,
        fees={
            entry["n"]: {"code": code, "fr": entry["fr"], "ar": entry["ar"], "en": entry["en"]}
            for code, entry in body["fees"].items()
        },
        deny=set(body["deny"]),
        iat=body["iat"],
        max_age=body["max_age"],
    )


def verify(text: str, trust: TrustList, consulate: str | None, now: int, skew: int = 300) -> dict[str, Any]:
    """Section 9, step by step; returns the claims or raises Refused with the documented code."""
    text = text.rstrip("\r\n")
    if not text.startswith("ET1:"):
        raise Refused("bad_prefix")
    if len(text) > 220:
        raise Refused("too_long")
    body = text[4:]
    if any(c not in ALPHABET for c in body):
        raise Refused("bad_base45")
    try:
        data = bytes(base45.b45decode(body))
    except ValueError as exc:
        raise Refused("bad_base45") from exc
    header, protected, payload, signature = open_sign1(data, {1, 4}, "bad_cbor", "bad_cose")
    key = trust.keys.get(header[4])
    if key is None:
        raise Refused("unknown_kid")
    if key.status == "retired":
        raise Refused("retired_key")
    if header[1] != key.alg:
        raise Refused("alg_mismatch")
    if not signature_holds(key.alg, key.public_key, signature, to_be_signed(protected, payload)):
        raise Refused("bad_signature")
    claims = read_claims(payload)
    if claims["iat"] < key.nbf or claims["exp"] > key.exp:
        raise Refused("key_not_valid")
    if consulate is not None and claims["aud"] != consulate:
        raise Refused("wrong_consulate")
    if claims["iat"] > now + skew:
        raise Refused("not_yet_valid")
    if now - skew >= claims["exp"]:
        raise Refused("expired")
    if int(claims["number"]) in trust.deny:
        raise Refused("denied")
    if claims["fee_number"] not in trust.fees:
        raise Refused("unknown_fee")
    return claims | {"fee_code": trust.fees[claims["fee_number"]]["code"]}


def anchor_from_pem(pem: str) -> tuple[bytes, tuple[int, Any]]:
    key = serialization.load_pem_public_key(pem.encode())
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    alg = -8 if isinstance(key, ed25519.Ed25519PublicKey) else -7
    return kid_of(spki), (alg, key)
