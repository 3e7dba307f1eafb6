"""The canonical byte encoding of sealed records and seal headers (docs/audit-seals.md, "Encoding").

A record is `u16 field count`, then each field as `i32 length` + bytes (length -1: NULL, no bytes). It is
the tuple layout of PostgreSQL's binary COPY, so the database can hand out records already encoded.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from enum import StrEnum

_COUNT = struct.Struct(">h")
_LENGTH = struct.Struct(">i")
_INT64 = struct.Struct(">q")
NULL_LENGTH = -1
MAX_FIELDS = 0x7FFF


class FieldType(StrEnum):
    """How a value becomes a field's bytes."""

    TEXT = "text"  # UTF-8
    INTEGER = "integer"  # 8 bytes, big-endian two's complement
    UUID = "uuid"  # the 16 bytes of the UUID
    JSON = "json"  # the JSON text as stored, UTF-8
    BYTES = "bytes"  # as they are


class EncodingError(ValueError):
    """A value that cannot be encoded as its field type, or bytes that are not a well-formed record."""


Value = str | int | bytes | uuid.UUID | None


def field_bytes(value: Value, kind: FieldType) -> bytes | None:
    """The bytes of one field (None for NULL), from a value as the database returns it."""
    if value is None:
        return None
    if kind is FieldType.INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EncodingError(f"an integer field got {type(value).__name__}")
        return _INT64.pack(value)
    if kind is FieldType.UUID:
        raw = value.bytes if isinstance(value, uuid.UUID) else value
        if not isinstance(raw, bytes) or len(raw) != 16:
            raise EncodingError(f"a UUID field got {value!r}")
        return raw
    if kind is FieldType.BYTES:
        if not isinstance(value, bytes):
            raise EncodingError(f"a bytes field got {type(value).__name__}")
        return value
    if not isinstance(value, str):
        raise EncodingError(f"a {kind} field got {type(value).__name__}")
    return value.encode("utf-8")


def encode_fields(fields: Sequence[bytes | None]) -> bytes:
    """A record from its fields' bytes."""
    if len(fields) > MAX_FIELDS:
        raise EncodingError(f"a record has at most {MAX_FIELDS} fields, got {len(fields)}")
    parts = [_COUNT.pack(len(fields))]
    for field in fields:
        if field is None:
            parts.append(_LENGTH.pack(NULL_LENGTH))
        else:
            parts.append(_LENGTH.pack(len(field)))
            parts.append(field)
    return b"".join(parts)


def encode(values: Iterable[tuple[Value, FieldType]]) -> bytes:
    return encode_fields([field_bytes(value, kind) for value, kind in values])


def decode_fields(record: bytes, offset: int = 0) -> tuple[list[bytes | None], int]:
    """The fields of the record starting at `offset`, and the offset just after it."""
    try:
        (count,) = _COUNT.unpack_from(record, offset)
        offset += _COUNT.size
        if count < 0:
            raise EncodingError(f"negative field count at byte {offset - _COUNT.size}")
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = _LENGTH.unpack_from(record, offset)
            offset += _LENGTH.size
            if length == NULL_LENGTH:
                fields.append(None)
                continue
            if length < 0 or offset + length > len(record):
                raise EncodingError(f"field length {length} at byte {offset - _LENGTH.size} overruns")
            fields.append(bytes(record[offset : offset + length]))
            offset += length
    except struct.error:
        raise EncodingError(f"record truncated at byte {offset}") from None
    return fields, offset


def decode_integer(field: bytes | None) -> int | None:
    if field is None:
        return None
    if len(field) != _INT64.size:
        raise EncodingError(f"an integer field has {len(field)} bytes, not 8")
    value: int = _INT64.unpack(field)[0]
    return value
