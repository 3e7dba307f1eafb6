"""The canonical encoding: the database's own encoding (binary COPY on PostgreSQL) and the one computed from
row values agree byte for byte on awkward values, and bad values are refused with a clear message."""

from __future__ import annotations

import uuid

import pytest

from ledger.db.engine import Database
from ledger.domain.chart import Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money
from ledger.services.audit import merkle
from ledger.services.audit.encoding import EncodingError, FieldType, decode_fields, decode_integer, encode
from ledger.services.audit.kinds import ENTRY, POSTING
from ledger.services.audit.proofs import readable
from ledger.services.audit.records import read_range, read_where
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.audit.conftest import seal

AWKWARD = ["", "Ω", "\\", "tab\there", "new\nline\r", "\x01\x1f", "دفع", "🙂" * 3, "x" * 5000, "'; DROP"]


def test_the_database_and_the_row_values_encode_records_identically(db: Database, settings: Settings) -> None:
    clearing = settings.chart.account(Role.CLEARING, currency="KWD", provider="sandbox")
    outstanding = settings.chart.account(Role.STAMPS_OUTSTANDING, currency="KWD", consulate="KW-KWI")
    ids = []
    with db.write() as session:
        for number, text in enumerate(AWKWARD):
            amount = Money(10**12 + number, "KWD")
            draft = EntryDraft(
                kind=EntryKind.PAYMENT_CAPTURED,
                lines=(debit(clearing, amount, "PASSPORT"), credit(outstanding, amount, "PASSPORT")),
                consulate="KW-KWI",
                references=References(payment=text[:64]),
                memo={"note": text, "n": str(number)},
            )
            ids.append(post_entry(session, draft, actor=text[:64]).entry_id)
    header = seal(db)
    assert header is not None
    with db.read() as session:
        for kind in (ENTRY, POSTING):
            covered = header.kind(kind.name)
            assert covered is not None
            ranged = read_range(session, kind, covered.first_position, covered.end_position)
            where = read_where(session, kind, "1 = 1", {})
            assert ranged == where
            assert len(ranged) == (len(AWKWARD) if kind is ENTRY else 2 * len(AWKWARD))
        found = read_where(session, ENTRY, "t.id = :id", {"id": ids[3]})[0]
    fields = readable(ENTRY, found)
    assert (fields["id"], fields["payment_ref"], fields["actor"]) == (str(ids[3]), "tab\there", "tab\there")
    assert '"tab\\there"' in fields["memo"]  # the JSON text as stored, not re-serialised
    assert fields["reverses_id"] is None


def test_encoding_is_typed_and_refuses_what_does_not_fit() -> None:
    record = encode(
        [
            ("a", FieldType.TEXT),
            (-(2**63), FieldType.INTEGER),
            (2**63 - 1, FieldType.INTEGER),
            (b"", FieldType.BYTES),
        ]
    )
    fields, end = decode_fields(record)
    assert end == len(record)
    assert [decode_integer(fields[1]), decode_integer(fields[2]), fields[3]] == [-(2**63), 2**63 - 1, b""]
    with pytest.raises(EncodingError, match="an integer field got str"):
        encode([("12", FieldType.INTEGER)])
    with pytest.raises(EncodingError, match="a UUID field got"):
        encode([(b"short", FieldType.UUID)])
    with pytest.raises(EncodingError, match="an integer field got bool"):
        encode([(True, FieldType.INTEGER)])
    with pytest.raises(EncodingError, match="overruns"):
        decode_fields(record[:6])
    with pytest.raises(EncodingError, match="truncated"):
        decode_fields(record[:3])
    assert merkle.leaf_hash(encode([(uuid.UUID(int=0), FieldType.UUID)])) != merkle.leaf_hash(
        encode([(bytes(16), FieldType.BYTES), (None, FieldType.TEXT)])
    )
