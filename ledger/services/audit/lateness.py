"""Records slipped in with a past date: older than every transaction open when the seal before was cut."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.services.audit.findings import Finding, Problem, Report, key_text
from ledger.services.audit.kinds import RecordKind
from ledger.services.audit.records import dialect_of, position
from ledger.services.audit.seals import StoredSeal, unsealed_counts


def backdated_sealed(
    session: Session, kind: RecordKind, seals: tuple[int, int], tolerance_us: int, report: Report
) -> None:
    """Records in seals `seals` (first, last) recorded before every transaction open when the seal before
    theirs was cut."""
    assert kind.recorded_at is not None
    first, last = seals
    dialect = dialect_of(session)
    at = position(dialect)
    keys = ", ".join(f.sql for f in kind.key)
    covered = f"{at} >= s.first_position AND {at} < s.end_position"
    late = f"{kind.recorded_at} < p.complete_through - :tolerance"
    source = (
        f"CROSS JOIN LATERAL (SELECT t.* FROM {kind.table} t WHERE {covered} AND {late}) t"
        if dialect == "postgresql"
        else f"JOIN {kind.table} t ON {covered} AND {late}"
    )
    rows = session.execute(
        text(
            f"SELECT s.seal_no, {kind.recorded_at} AS recorded_at, p.complete_through, {keys} "
            f"FROM audit_seal_kinds s JOIN audit_seals p ON p.seal_no = s.seal_no - 1 {source} "
            f"WHERE s.kind = :kind AND s.seal_no BETWEEN :first AND :last ORDER BY s.seal_no"
        ),
        {"kind": kind.name, "first": first, "last": last, "tolerance": tolerance_us},
    ).all()
    for row in rows:
        key = key_text(kind, row[3:])
        report.findings.append(
            Finding(
                Problem.BACKDATED,
                row.seal_no,
                f"{kind.name} {key} was sealed in seal {row.seal_no} but recorded "
                f"{(row.complete_through - row.recorded_at) / 1e6:.0f} s before the oldest transaction open "
                f"when seal {row.seal_no - 1} was cut: it was slipped in behind the service's back",
                kind.name,
                key,
            )
        )


def unsealed(
    session: Session, kinds: Sequence[RecordKind], last: StoredSeal | None, tolerance_us: int, report: Report
) -> None:
    at = position(dialect_of(session))
    for kind in kinds:
        covered = last.header.kind(kind.name) if last else None
        end = covered.end_position if covered else 0
        report.unsealed[kind.name] = unsealed_counts(session, last, [kind])[kind.name]
        if kind.recorded_at is None or last is None:
            continue
        keys = ", ".join(f.sql for f in kind.key)
        for row in session.execute(
            text(
                f"SELECT {kind.recorded_at}, {keys} FROM {kind.table} t"
                f" WHERE {at} >= :end AND {kind.recorded_at} < :limit"
            ),
            {"end": end, "limit": last.header.complete_through - tolerance_us},
        ):
            key = key_text(kind, row[1:])
            report.findings.append(
                Finding(
                    Problem.BACKDATED,
                    None,
                    f"{kind.name} {key} is not sealed yet but was recorded "
                    f"{(last.header.complete_through - row[0]) / 1e6:.0f} s before the oldest transaction "
                    f"open when the last seal ({last.header.seal_no}) was cut: it was slipped in behind "
                    "the service's back",
                    kind.name,
                    key,
                )
            )
