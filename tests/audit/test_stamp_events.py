"""Stamp events are sealed like the journal: a used stamp quietly marked unused again is named."""

from __future__ import annotations

from sqlalchemy import text

from ledger.db.engine import Database
from ledger.services.audit import verify
from ledger.services.audit.findings import Problem
from ledger.services.signing_keys import StampKeys
from ledger.services.stamps import consume_stamp
from ledger.settings import Settings
from tests.audit.conftest import behind_the_back, seal
from tests.stamps.conftest import SECRETS, StampDesk, make_keys


def test_a_consumption_erased_behind_the_services_back_is_named(db: Database, settings: Settings) -> None:
    stamp_key, trust_key = make_keys(db)
    desk = StampDesk(db, settings, StampKeys(settings, SECRETS), stamp_key, trust_key)
    issued = desk.pay("PASSPORT", "CNIE")
    number = issued.stamps[0].number
    with db.write() as session:
        consume_stamp(session, settings, number, consulate="FR-PAR", actor="cashier 1")
    assert seal(db) is not None
    with db.read() as session:
        report = verify.verify(session)
        assert report.ok, report.findings
        assert session.execute(text("SELECT count(*) FROM stamp_events")).scalar_one() == 3
    with behind_the_back(db) as connection:
        connection.execute(
            text("DELETE FROM stamp_events WHERE number = :n AND kind = 'consumed'"), {"n": number.digits}
        )
        connection.execute(
            text("UPDATE stamps SET status = 'issued', status_changed_at = NULL WHERE number = :n"),
            {"n": number.digits},
        )
    with db.read() as session:
        report = verify.verify(session)
    assert {(f.problem, f.kind) for f in report.findings} == {(Problem.REMOVED, "stamp_event")}
