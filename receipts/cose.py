"""COSE_Sign1 (RFC 9052) over cbor2, with the strict deterministic CBOR that ET1 demands on input."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from receipts.algorithms import SIGNATURE_LENGTH, Algorithm
from receipts.keys import KID_LENGTH

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4
_MAX_DEPTH = 16


class CborError(ValueError):
    """Bytes that are not one strict, deterministically encoded CBOR item."""


class CoseError(ValueError):
    """Well-formed CBOR that is not the COSE_Sign1 structure ET1 expects."""


def dumps(value: Any) -> bytes:
    """Deterministic CBOR (RFC 8949 §4.2.1: shortest forms, definite lengths, sorted map keys)."""
    return bytes(cbor2.dumps(value, canonical=True))


def strict_loads(data: bytes) -> Any:
    """Decode exactly one CBOR item and refuse anything a second encoder could have written differently.

    Refused: trailing bytes, indefinite lengths, duplicate map keys, and any non-deterministic encoding
    (checked by re-encoding: one value has one accepted byte string, so nothing can be smuggled).
    """
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            stream, allow_indefinite=False, allow_duplicate_keys=False, max_depth=_MAX_DEPTH
        )
        value = decoder.decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise CborError(f"not well-formed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise CborError(f"{len(data) - stream.tell()} trailing byte(s) after the CBOR item")
    try:
        canonical = dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise CborError(f"CBOR item of an unsupported kind: {exc}") from exc
    if canonical != data:
        raise CborError("CBOR is not in deterministic encoding (shortest form, sorted keys)")
    return value


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The bytes that are signed: Sig_structure = ["Signature1", protected, external_aad, payload]."""
    return dumps(["Signature1", protected, external_aad, payload])


def protected_header(algorithm: Algorithm, kid: bytes, content_type: str | None = None) -> bytes:
    header: dict[int, Any] = {HEADER_ALG: int(algorithm), HEADER_KID: kid}
    if content_type is not None:
        header[HEADER_CONTENT_TYPE] = content_type
    return dumps(header)


def encode_sign1(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """COSE_Sign1 = tag 18 [protected bstr, unprotected {} , payload bstr, signature bstr]."""
    return dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


@dataclass(frozen=True, slots=True)
class Sign1:
    """A parsed COSE_Sign1 whose signature has NOT been checked yet: nothing in it is trusted."""

    protected: bytes
    alg: int
    kid: bytes
    content_type: str | None
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def parse_sign1(data: bytes, *, content_type: str | None = None) -> Sign1:
    """Parse the strict ET1 form of COSE_Sign1; raises CborError or CoseError naming the first problem.

    The protected header must be exactly {1: alg (int), 4: kid (8 bytes)} (plus {3: content type} when
    `content_type` is given); the unprotected header must be empty, so that nothing unsigned steers
    verification.
    """
    item = strict_loads(data)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise CoseError(f"not a COSE_Sign1: expected CBOR tag {COSE_SIGN1_TAG}")
    body = item.value
    if not isinstance(body, list | tuple) or len(body) != 4:  # cbor2 may hand back a tuple
        raise CoseError("COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload, signature = body
    if type(protected) is not bytes or type(payload) is not bytes or type(signature) is not bytes:
        raise CoseError("COSE_Sign1 protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping) or unprotected:
        raise CoseError("the unprotected header must be an empty map")
    if len(signature) != SIGNATURE_LENGTH:
        raise CoseError(f"the signature must be {SIGNATURE_LENGTH} bytes, got {len(signature)}")
    header = strict_loads(protected)
    if not isinstance(header, Mapping):
        raise CoseError("the protected header must be a map")
    expected_labels = {HEADER_ALG, HEADER_KID} | (
        {HEADER_CONTENT_TYPE} if content_type is not None else set()
    )
    if set(header) != expected_labels:
        labels = sorted(header, key=repr)
        raise CoseError(
            f"the protected header must hold exactly labels {sorted(expected_labels)}, got {labels}"
        )
    alg, kid = header[HEADER_ALG], header[HEADER_KID]
    if type(alg) is not int:
        raise CoseError(f"the alg header must be an integer, got {alg!r}")
    if type(kid) is not bytes or len(kid) != KID_LENGTH:
        raise CoseError(f"the kid header must be {KID_LENGTH} bytes")
    if content_type is not None and header[HEADER_CONTENT_TYPE] != content_type:
        raise CoseError(f"content type {header[HEADER_CONTENT_TYPE]!r} is not {content_type!r}")
    return Sign1(
        protected=protected,
        alg=alg,
        kid=kid,
        content_type=content_type,
        payload=payload,
        signature=signature,
    )
