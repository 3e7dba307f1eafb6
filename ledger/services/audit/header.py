"""Seal headers: what a seal says about its records, encoded canonically and hashed into the chain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger.services.audit.encoding import (
    EncodingError,
    FieldType,
    decode_fields,
    decode_integer,
    encode,
)

FORMAT = 1
TAG = "etimbre-seal"
SEAL_PREFIX = b"\x02"  # leaves are hashed after 0x00 and tree nodes after 0x01 (RFC 9162)
GENESIS = bytes(32)  # the "previous hash" of seal 1
_FIXED_FIELDS = 9
_KIND_FIELDS = 5


@dataclass(frozen=True, slots=True)
class KindRange:
    """The records of one kind a seal covers: positions [first, end), how many, and their digest."""

    kind: str
    first_position: int
    end_position: int
    record_count: int
    content_digest: bytes  # SHA-256 over the records, concatenated in seal order


@dataclass(frozen=True, slots=True)
class SealHeader:
    seal_no: int
    made_at: int  # microseconds since 1970, UTC (database clock)
    complete_through: int  # every transaction still open when the seal was cut started at or after this
    previous_hash: bytes
    merkle_root: bytes  # RFC 9162 tree over the leaves of every kind, kinds in name order
    record_count: int
    kinds: tuple[KindRange, ...]
    format: int = FORMAT

    def encode(self) -> bytes:
        values: list[tuple[str | int | bytes, FieldType]] = [
            (TAG, FieldType.TEXT),
            (self.format, FieldType.INTEGER),
            (self.seal_no, FieldType.INTEGER),
            (self.made_at, FieldType.INTEGER),
            (self.complete_through, FieldType.INTEGER),
            (self.previous_hash, FieldType.BYTES),
            (self.merkle_root, FieldType.BYTES),
            (self.record_count, FieldType.INTEGER),
            (len(self.kinds), FieldType.INTEGER),
        ]
        for kind in self.kinds:
            values += [
                (kind.kind, FieldType.TEXT),
                (kind.first_position, FieldType.INTEGER),
                (kind.end_position, FieldType.INTEGER),
                (kind.record_count, FieldType.INTEGER),
                (kind.content_digest, FieldType.BYTES),
            ]
        return encode(values)

    def hash(self) -> bytes:
        return hashlib.sha256(SEAL_PREFIX + self.encode()).digest()

    def kind(self, name: str) -> KindRange | None:
        for kind in self.kinds:
            if kind.kind == name:
                return kind
        return None


def _integer(field: bytes | None, what: str) -> int:
    value = decode_integer(field)
    if value is None:
        raise EncodingError(f"seal header: {what} is missing")
    return value


def _bytes32(field: bytes | None, what: str) -> bytes:
    if field is None or len(field) != 32:
        raise EncodingError(f"seal header: {what} must be 32 bytes")
    return field


def decode_header(data: bytes) -> SealHeader:
    """A header from its canonical bytes (what third parties receive in a proof)."""
    fields, end = decode_fields(data)
    if end != len(data):
        raise EncodingError("seal header: trailing bytes")
    if len(fields) < _FIXED_FIELDS or fields[0] != TAG.encode():
        raise EncodingError("seal header: not an etimbre-seal header")
    count = _integer(fields[8], "kind count")
    if len(fields) != _FIXED_FIELDS + _KIND_FIELDS * count:
        raise EncodingError("seal header: field count does not match the kind count")
    kinds = []
    for index in range(count):
        base = _FIXED_FIELDS + _KIND_FIELDS * index
        name = fields[base]
        if name is None:
            raise EncodingError("seal header: a kind has no name")
        kinds.append(
            KindRange(
                kind=name.decode(),
                first_position=_integer(fields[base + 1], "first position"),
                end_position=_integer(fields[base + 2], "end position"),
                record_count=_integer(fields[base + 3], "record count"),
                content_digest=_bytes32(fields[base + 4], "content digest"),
            )
        )
    return SealHeader(
        format=_integer(fields[1], "format"),
        seal_no=_integer(fields[2], "seal number"),
        made_at=_integer(fields[3], "made_at"),
        complete_through=_integer(fields[4], "complete_through"),
        previous_hash=_bytes32(fields[5], "previous hash"),
        merkle_root=_bytes32(fields[6], "merkle root"),
        record_count=_integer(fields[7], "record count"),
        kinds=tuple(kinds),
    )
