"""Cutting seals: every committed record, once, in a chain of Merkle-rooted batches; and reading them back.

A seal covers, for each record kind, the rows whose position (the writing transaction on PostgreSQL, the
rowid on SQLite) lies in [first, end), where `first` is where the previous seal of that kind ended. On
PostgreSQL `end` is the oldest transaction of this database still running when the seal is cut (from
the snapshot's running list): every row below it is final, so nothing can commit into a range once it is
sealed, and a late transaction lands in a later seal. Payments take no lock for it; only two sealers
exclude each other. On SQLite the sealer is a writer, and writers take turns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ledger.db.models_audit import AuditSeal, AuditSealKind
from ledger.db.types import to_micros
from ledger.services.audit import merkle
from ledger.services.audit.encoding import decode_fields
from ledger.services.audit.header import GENESIS, KindRange, SealHeader
from ledger.services.audit.kinds import REGISTRY, RecordKind, registry
from ledger.services.audit.records import bind, dialect_of, member_key, position, read_range

SEALER_LOCK = 0x45544D53  # "ETMS": one sealer at a time (PostgreSQL advisory lock)
DEFAULT_MAX_RECORDS = 100_000
_NOW = {
    "postgresql": "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
    "sqlite": "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
}
_LEAF = 32


@dataclass(frozen=True, slots=True)
class Member:
    """A record as a seal lists it: its leaf hash and its key (the key fields, encoded as a record)."""

    leaf: bytes
    key: bytes


@dataclass(frozen=True, slots=True)
class StoredSeal:
    """A seal as the database holds it: its header (rebuilt from its columns) and the hash stored with it."""

    header: SealHeader
    stored_hash: bytes


def encode_members(members: Sequence[Member]) -> bytes:
    return b"".join(member.leaf + member.key for member in members)


def decode_members(blob: bytes) -> list[Member]:
    members: list[Member] = []
    offset = 0
    while offset < len(blob):
        leaf = blob[offset : offset + _LEAF]
        _, end = decode_fields(blob, offset + _LEAF)
        members.append(Member(leaf, blob[offset + _LEAF : end]))
        offset = end
    return members


def db_now(session: Session) -> int:
    value: int = session.execute(text(_NOW[dialect_of(session)])).scalar_one()
    return value


def _oldest_open_transaction(session: Session) -> int | None:
    """When the oldest other transaction on this database started (PostgreSQL), read before the horizon:
    a row that is not final yet was written by one of these, or by a later one."""
    value: int | None = session.execute(
        text(
            "SELECT (extract(epoch FROM min(xact_start)) * 1000000)::bigint FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ).scalar_one()
    return value


def _horizon_postgresql(session: Session) -> int:
    """The oldest transaction of this database still running (or the next one to start): every row below
    it is final. Transactions of other databases on the server are left out, so they never hold it back."""
    snapshot = session.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
    _, xmax, running = snapshot.split(":")
    in_progress = [int(xid) for xid in running.split(",") if xid]
    if not in_progress:
        return int(xmax)
    # Read after the snapshot, with a fresh view of the backends: a transaction of the snapshot that is
    # gone from it has finished, so what it committed is visible to the statements that follow.
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    ours = set(
        session.execute(
            text(
                "SELECT backend_xid::text::bigint FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_xid IS NOT NULL"
                " UNION SELECT transaction::text::bigint FROM pg_prepared_xacts"
                " WHERE database = current_database()"
            )
        ).scalars()
    )
    mine = [xid for xid in in_progress if xid & 0xFFFFFFFF in ours]
    return min([int(xmax), *mine]) if mine else int(xmax)


def _horizon_sqlite(session: Session, kind: RecordKind) -> int:
    # The sealer holds the write lock, so no writer is in flight and rowids only grow.
    found: int | None = session.execute(text(f"SELECT max(rowid) FROM {kind.table}")).scalar_one()
    return (found or 0) + 1


def _capped_end(session: Session, kind: RecordKind, first: int, end: int, max_records: int) -> int:
    """An end no further than `max_records` rows past `first`; one transaction is never split."""
    at = position(dialect_of(session))
    where = f"FROM {kind.table} t WHERE {at} >= :first AND {at} < :end"
    params = {"first": first, "end": end, "cap": max_records}
    beyond = session.execute(
        text(f"SELECT {at} {where} ORDER BY {at} LIMIT 1 OFFSET :cap"), params
    ).scalar_one_or_none()
    if beyond is None:
        return end
    lowest = session.execute(text(f"SELECT min({at}) {where}"), params).scalar_one()
    if beyond > lowest:
        return int(beyond)
    # The first transaction alone holds more than the cap: take it whole, and nothing after it.
    following = session.execute(
        text(f"SELECT min({at}) {where} AND {at} > :lowest"), {**params, "lowest": lowest}
    )
    found = following.scalar_one()
    return end if found is None else int(found)


def _earliest_unsealed(session: Session, kinds: Sequence[RecordKind], ends: dict[str, int]) -> int | None:
    """The earliest recording time among visible rows left for a later seal."""
    at = position(dialect_of(session))
    earliest: int | None = None
    for kind in kinds:
        if kind.recorded_at is None:
            continue
        found = session.execute(
            text(f"SELECT min({kind.recorded_at}) FROM {kind.table} t WHERE {at} >= :end"),
            {"end": ends[kind.name]},
        ).scalar_one()
        if found is not None and (earliest is None or found < earliest):
            earliest = int(found)
    return earliest


def latest(session: Session) -> StoredSeal | None:
    number = session.scalar(select(AuditSeal.seal_no).order_by(AuditSeal.seal_no.desc()).limit(1))
    return None if number is None else load(session, number)


def seal_at(session: Session, moment: datetime, *, after: bool) -> int | None:
    """The first seal cut at or after `moment` (after=True), or the last one cut at or before it."""
    micros = to_micros(moment)
    if after:
        query = select(func.min(AuditSeal.seal_no)).where(AuditSeal.made_at >= micros)
    else:
        query = select(func.max(AuditSeal.seal_no)).where(AuditSeal.made_at <= micros)
    found: int | None = session.scalar(query)
    return found


def load(session: Session, seal_no: int) -> StoredSeal | None:
    found = load_range(session, seal_no, seal_no)
    return found[0] if found else None


def load_range(session: Session, first: int, last: int) -> list[StoredSeal]:
    """Seals first..last as stored (headers rebuilt from their columns; members not loaded)."""
    rows = session.scalars(
        select(AuditSeal).where(AuditSeal.seal_no.between(first, last)).order_by(AuditSeal.seal_no)
    ).all()
    kinds: dict[int, list[KindRange]] = {}
    for row in session.execute(
        select(
            AuditSealKind.seal_no,
            AuditSealKind.kind,
            AuditSealKind.first_position,
            AuditSealKind.end_position,
            AuditSealKind.record_count,
            AuditSealKind.content_digest,
        )
        .where(AuditSealKind.seal_no.between(first, last))
        .order_by(AuditSealKind.seal_no, AuditSealKind.kind)
    ):
        kinds.setdefault(row.seal_no, []).append(
            KindRange(
                row.kind, row.first_position, row.end_position, row.record_count, bytes(row.content_digest)
            )
        )
    return [
        StoredSeal(
            header=SealHeader(
                format=seal.format,
                seal_no=seal.seal_no,
                made_at=seal.made_at,
                complete_through=seal.complete_through,
                previous_hash=bytes(seal.previous_hash),
                merkle_root=bytes(seal.merkle_root),
                record_count=seal.record_count,
                kinds=tuple(sorted(kinds.get(seal.seal_no, []), key=lambda k: k.kind.encode())),
            ),
            stored_hash=bytes(seal.seal_hash),
        )
        for seal in rows
    ]


def members(session: Session, seal_no: int) -> dict[str, list[Member]]:
    """The member lists of a seal, per kind, in leaf order."""
    return {
        kind: decode_members(bytes(blob))
        for kind, blob in session.execute(
            select(AuditSealKind.kind, AuditSealKind.members).where(AuditSealKind.seal_no == seal_no)
        )
    }


def unsealed_counts(
    session: Session, seal: StoredSeal | None, kinds: Sequence[RecordKind] = REGISTRY
) -> dict[str, int]:
    """Records of each kind not sealed yet (past the ranges of `seal`, the latest one)."""
    at = position(dialect_of(session))
    counts: dict[str, int] = {}
    for kind in kinds:
        covered = seal.header.kind(kind.name) if seal else None
        end = covered.end_position if covered else 0
        counts[kind.name] = int(
            session.execute(
                text(f"SELECT count(*) FROM {kind.table} t WHERE {at} >= :end"), {"end": end}
            ).scalar_one()
        )
    return counts


def seal_of(session: Session, kind: RecordKind, where: str, params: Mapping[str, object]) -> int | None:
    """The seal whose range holds the row of `kind` selected by `where` (on alias `t`), if sealed."""
    at = position(dialect_of(session))
    found: int | None = session.execute(
        text(
            f"SELECT s.seal_no FROM {kind.table} t JOIN audit_seal_kinds s ON s.kind = :kind"
            f" AND {at} >= s.first_position AND {at} < s.end_position WHERE {where}"
        ),
        bind(session, {"kind": kind.name, **params}),
    ).scalar_one_or_none()
    return found


def cut_seal(
    session: Session,
    *,
    kinds: Sequence[RecordKind] = REGISTRY,
    max_records: int = DEFAULT_MAX_RECORDS,
    force: bool = False,
) -> SealHeader | None:
    """Seal every final record not sealed yet (at most about `max_records` per kind) as the next link of
    the chain. Returns None when there is nothing to seal, unless `force` (then an empty seal is cut)."""
    kinds = registry(kinds)
    dialect = dialect_of(session)
    oldest_open: int | None = None
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": SEALER_LOCK})
        oldest_open = _oldest_open_transaction(session)  # must be read before the horizon
    horizon = _horizon_postgresql(session) if dialect == "postgresql" else None
    previous = latest(session)
    made_at = db_now(session)
    ranges: dict[str, tuple[int, int]] = {}
    capped = False
    for kind in kinds:
        before = previous.header.kind(kind.name) if previous else None
        first = before.end_position if before else 0
        end = max(first, horizon if horizon is not None else _horizon_sqlite(session, kind))
        ranges[kind.name] = (first, _capped_end(session, kind, first, end, max_records))
        capped = capped or ranges[kind.name][1] < end
    if horizon is not None and ranges:
        # PostgreSQL positions are transactions, shared by every kind: one end for all keeps an entry and
        # its postings (one transaction) in the same seal when a big backlog is split.
        common = min(end for _, end in ranges.values())
        ranges = {name: (first, max(first, common)) for name, (first, _) in ranges.items()}
    records = {kind.name: read_range(session, kind, *ranges[kind.name]) for kind in kinds}
    total = sum(len(found) for found in records.values())
    if total == 0 and not force:
        return None
    candidates = [made_at]
    if oldest_open is not None:
        candidates.append(oldest_open)
    if capped and previous is not None:
        # Catching up a backlog: what is left was left by the previous seal too, or committed since, so
        # the previous bound still holds, and the backlog is not scanned again for every seal.
        candidates.append(previous.header.complete_through)
    else:  # the rows left over are the few of transactions that committed above the horizon
        earliest = _earliest_unsealed(session, kinds, {name: end for name, (_, end) in ranges.items()})
        if earliest is not None:
            candidates.append(earliest)
    leaves: list[bytes] = []
    kind_ranges: list[KindRange] = []
    member_lists: dict[str, list[Member]] = {}
    for kind in kinds:
        found = records[kind.name]
        kind_leaves = [merkle.leaf_hash(record) for record in found]
        leaves.extend(kind_leaves)
        member_lists[kind.name] = [
            Member(leaf, member_key(kind, record)) for leaf, record in zip(kind_leaves, found, strict=True)
        ]
        first, end = ranges[kind.name]
        digest = hashlib.sha256(b"".join(found)).digest()
        kind_ranges.append(KindRange(kind.name, first, end, len(found), digest))
    header = SealHeader(
        seal_no=previous.header.seal_no + 1 if previous else 1,
        made_at=made_at,
        complete_through=min(candidates),
        previous_hash=previous.stored_hash if previous else GENESIS,
        merkle_root=merkle.root(leaves),
        record_count=total,
        kinds=tuple(kind_ranges),
    )
    session.add(
        AuditSeal(
            seal_no=header.seal_no,
            format=header.format,
            made_at=header.made_at,
            complete_through=header.complete_through,
            record_count=header.record_count,
            merkle_root=header.merkle_root,
            previous_hash=header.previous_hash,
            seal_hash=header.hash(),
        )
    )
    session.flush()
    session.add_all(
        AuditSealKind(
            seal_no=header.seal_no,
            kind=kind.kind,
            first_position=kind.first_position,
            end_position=kind.end_position,
            record_count=kind.record_count,
            content_digest=kind.content_digest,
            members=encode_members(member_lists[kind.kind]),
        )
        for kind in header.kinds
    )
    session.flush()
    return header
