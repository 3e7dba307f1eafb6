"""docs/audit-seals.md stays true: its examples are what the encoder and the tree produce, byte for byte."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from ledger.services.audit import merkle
from ledger.services.audit.encoding import FieldType, decode_fields, encode
from ledger.services.audit.kinds import REGISTRY

DOC = (Path(__file__).resolve().parents[2] / "docs" / "audit-seals.md").read_text(encoding="utf-8")


def _hex_block(after: str) -> bytes:
    block = DOC[DOC.index(after) :].split("```")[1]
    return bytes.fromhex("".join(block.split()))


def test_the_example_posting_encodes_to_the_documented_bytes_and_leaf() -> None:
    record = encode(
        [
            ("posting", FieldType.TEXT),
            (uuid.UUID("0190c6e2-7a4c-7b3e-9f00-1234567890ab"), FieldType.UUID),
            (1, FieldType.INTEGER),
            ("assets:clearing:cmi:EUR", FieldType.TEXT),
            ("EUR", FieldType.TEXT),
            (-5500, FieldType.INTEGER),
            (1764000000000000, FieldType.INTEGER),
            ("FR-PAR", FieldType.TEXT),
            ("", FieldType.TEXT),
        ]
    )
    assert record == _hex_block("encodes to these 117 bytes")
    assert len(record) == 117
    assert merkle.leaf_hash(record).hex() in DOC
    assert "`0002 00000001 78 ffffffff`" in DOC
    assert encode([("x", FieldType.TEXT), (None, FieldType.UUID)]).hex() == "0002000000017" + "8ffffffff"
    assert decode_fields(record)[0][0] == b"posting"


def test_the_tree_vectors_are_those_of_the_implementation() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(3)]
    for found in leaves:
        assert f"{found.hex()[:8]}…{found.hex()[-4:]}" in DOC
    assert merkle.root(leaves).hex() in DOC
    assert merkle.inclusion_path(leaves, 2)[0].hex() in DOC
    assert merkle.EMPTY_ROOT.hex().startswith("e3b0c442") and "e3b0c442…b855" in DOC


def test_the_documented_fields_are_the_registered_kinds_in_order() -> None:
    assert [kind.name for kind in REGISTRY] == ["entry", "posting", "resolution", "stamp_event"]
    for kind in REGISTRY:
        section = DOC[DOC.index(f"**`{kind.name}`** (table `{kind.table}`") :].split("\n\n")[1]
        rows = re.findall(r"^\| (\d+) \| `?([^`|]+?)`? \| (\w+) \|", section, re.MULTILINE)
        assert rows[0][1:] == ("(kind name)", "text")
        assert [(name, kind_type) for _, name, kind_type in rows[1:]] == [
            (field.name, field.type.value) for field in kind.fields
        ]
