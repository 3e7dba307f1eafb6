from ledger.db.engine import Database
from ledger.services.audit import verify
from ledger.settings import Settings
from tests.audit.conftest import pay, seal


def test_smoke(db: Database, settings: Settings) -> None:
    pay(db, settings, 5)
    first = seal(db)
    assert first is not None
    assert first.record_count == 6 + 12
    assert seal(db) is None
    pay(db, settings, 3, start=5)
    second = seal(db)
    assert second is not None and second.seal_no == 2
    with db.read() as session:
        report = verify.verify(session)
    assert report.ok, report.findings
    assert report.records == first.record_count + second.record_count
