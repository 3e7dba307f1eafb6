"""An independent checker of audit inclusion proofs, written from docs/audit-seals.md alone (hashlib and
cryptography only; nothing of the service)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class Refused(Exception):  # noqa: N818 -- named after the outcome
    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step = step


# §3 Encoding ------------------------------------------------------------------------------------------------


def fields_of(data: bytes) -> list[bytes | None]:
    if len(data) < 2:
        raise Refused("encoding", "too short")
    (count,) = struct.unpack(">h", data[:2])
    offset = 2
    out: list[bytes | None] = []
    for _ in range(max(count, 0)):
        if offset + 4 > len(data):
            raise Refused("encoding", "truncated")
        (length,) = struct.unpack(">i", data[offset : offset + 4])
        offset += 4
        if length == -1:
            out.append(None)
            continue
        if length < 0 or offset + length > len(data):
            raise Refused("encoding", "bad length")
        out.append(data[offset : offset + length])
        offset += length
    if count < 0 or offset != len(data):
        raise Refused("encoding", "trailing or missing bytes")
    return out


def integer(field: bytes | None) -> int:
    if field is None or len(field) != 8:
        raise Refused("encoding", "not an integer field")
    value: int = struct.unpack(">q", field)[0]
    return value


ENTRY = ["id", "kind", "consulate", "effective_at", "recorded_at", "posting_count", "payment_ref",
         "stamp_ref", "settlement_ref", "import_line_ref", "memo", "reason", "actor", "reverses_id"]  # fmt: skip
POSTING = ["entry_id", "line_no", "account", "currency", "amount", "effective_at", "consulate", "fee_code"]
INTEGERS = {"effective_at", "recorded_at", "posting_count", "line_no", "amount"}
UUIDS = {"id", "entry_id", "reverses_id"}


def read_record(data: bytes) -> tuple[str, dict[str, Any]]:
    """§2: the kind and the named fields of a record."""
    fields = fields_of(data)
    if not fields or fields[0] is None:
        raise Refused("record", "no kind name")
    kind = fields[0].decode()
    names = {"entry": ENTRY, "posting": POSTING}.get(kind)
    if names is None or len(fields) != len(names) + 1:
        raise Refused("record", f"unknown kind {kind!r} or wrong field count")
    values: dict[str, Any] = {}
    for name, raw in zip(names, fields[1:], strict=True):
        if raw is None:
            values[name] = None
        elif name in INTEGERS:
            values[name] = integer(raw)
        elif name in UUIDS:
            if len(raw) != 16:
                raise Refused("record", f"{name} is not 16 bytes")
            values[name] = "-".join(
                (raw[:4].hex(), raw[4:6].hex(), raw[6:8].hex(), raw[8:10].hex(), raw[10:].hex())
            )
        else:
            values[name] = raw.decode("utf-8")
    return kind, values


# §4 Trees ---------------------------------------------------------------------------------------------------


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def root_from(leaf_hash: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    if index >= size or index < 0:
        raise Refused("path", "index outside the tree")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise Refused("path", "too long")
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while fn != 0 and fn % 2 == 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("path", "too short")
    return r


# §5 Seal headers, §8 statements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    number: int
    merkle_root: bytes
    record_count: int
    seal_hash: bytes


def read_header(data: bytes) -> Header:
    fields = fields_of(data)
    if len(fields) < 9 or fields[0] != b"etimbre-seal" or integer(fields[1]) != 1:
        raise Refused("header", "not a format-1 seal header")
    kinds = integer(fields[8])
    if len(fields) != 9 + 5 * kinds:
        raise Refused("header", "kind count does not match")
    root = fields[6]
    if root is None or len(root) != 32:
        raise Refused("header", "no Merkle root")
    return Header(integer(fields[2]), root, integer(fields[7]), hashlib.sha256(b"\x02" + data).digest())


@dataclass(frozen=True)
class DailyStatement:
    day: str
    seal_number: int
    seal_hash: bytes
    history_root: bytes


def read_statement(data: bytes) -> DailyStatement:
    fields = fields_of(data)
    if len(fields) != 12 or fields[0] != b"etimbre-daily-seal" or integer(fields[1]) != 1:
        raise Refused("daily", "not a format-1 daily statement")
    day, seal_hash, history = fields[2], fields[6], fields[9]
    if day is None or seal_hash is None or history is None:
        raise Refused("daily", "missing field")
    return DailyStatement(day.decode(), integer(fields[5]), seal_hash, history)


def check_daily(document: dict[str, Any], trusted_pem: bytes) -> DailyStatement:
    """§8: the statement's signature with a trusted key, then its content."""
    key = serialization.load_pem_public_key(trusted_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = document["signature"]
    if hashlib.sha256(der).digest()[:8].hex() != signature["kid"]:
        raise Refused("daily", "signed by another key")
    statement = base64.b64decode(document["statement"])
    value = base64.b64decode(signature["value"])
    try:
        if signature["algorithm"] == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(value) != 64:
                raise Refused("daily", "bad signature length")
            r, s = int.from_bytes(value[:32], "big"), int.from_bytes(value[32:], "big")
            key.verify(encode_dss_signature(r, s), statement, ec.ECDSA(hashes.SHA256()))
        elif signature["algorithm"] == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(value, statement)
        else:
            raise Refused("daily", "algorithm does not match the key")
    except InvalidSignature:
        raise Refused("daily", "signature does not verify") from None
    return read_statement(statement)


# §9 The whole proof -----------------------------------------------------------------------------------------


def check_proof(
    proof_json: str, *, trusted_pem: bytes | None = None, seal_hash: str | None = None
) -> list[dict[str, Any]]:
    """The records a proof proves, or Refused. Trust comes from `seal_hash` (published) or, through the
    proof's history and daily seal, from `trusted_pem`."""
    proof = json.loads(proof_json)
    if proof.get("format") != "etimbre-inclusion-proof/1":
        raise Refused("proof", "unknown format")
    header = read_header(base64.b64decode(proof["seal"]["header"]))
    proven = []
    for item in proof["records"]:
        data = base64.b64decode(item["record"])
        kind, values = read_record(data)
        path = [bytes.fromhex(node) for node in item["path"]]
        if root_from(leaf(data), item["leaf_index"], header.record_count, path) != header.merkle_root:
            raise Refused("path", f"{kind} does not lead to the seal's Merkle root")
        proven.append({"record": kind, **values})
    if seal_hash is not None:
        if header.seal_hash.hex() != seal_hash:
            raise Refused("seal", "not the published seal")
        return proven
    history = proof.get("history")
    if history is None or trusted_pem is None:
        raise Refused("seal", "nothing to trust the seal by")
    statement = check_daily(history["daily_seal"], trusted_pem)
    if history["leaf_index"] != header.number - 1 or history["size"] != statement.seal_number:
        raise Refused("history", "wrong place in the history")
    path = [bytes.fromhex(node) for node in history["path"]]
    if (
        root_from(leaf(header.seal_hash), history["leaf_index"], history["size"], path)
        != statement.history_root
    ):
        raise Refused("history", "the seal is not in the signed history")
    return proven
