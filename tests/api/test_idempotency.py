"""Idempotency-Key on the API: sixteen concurrent requests with one key make one entry and get one answer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.api.idempotency import run_once
from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.ledger.builders import captured


class Answer(msgspec.Struct):
    entry: str


def test_sixteen_concurrent_requests_with_one_key_make_one_entry(pg_db: Database, settings: Settings) -> None:
    with pg_db.write() as session:
        post_entry(session, captured(settings.chart, Money(1, "EUR"), payment="warm-up"))
    barrier = threading.Barrier(16)

    def request(_: int) -> bytes:
        def work(session: Session) -> Answer:
            entry = post_entry(session, captured(settings.chart, Money(5500, "EUR"), payment="once"))
            return Answer(entry=str(entry.entry_id))

        barrier.wait()
        response = run_once(
            pg_db, scope="test", key="same-key", request=("POST /x", b"{}"), status=201, work=work
        )
        return bytes(response.content)

    with ThreadPoolExecutor(16) as pool:
        answers = set(pool.map(request, range(16)))
    assert len(answers) == 1
    with pg_db.read() as session:
        assert session.execute(text("SELECT count(*) FROM entries WHERE payment_ref = 'once'")).scalar() == 1


def test_a_failed_request_leaves_the_key_free(db: Database, settings: Settings) -> None:
    def failing(session: Session) -> Answer:
        post_entry(session, captured(settings.chart, Money(5500, "EUR"), payment="failed"))
        raise RuntimeError("the provider said no")

    with pytest.raises(RuntimeError):
        run_once(db, scope="test", key="k", request=("POST /x", b"{}"), status=201, work=failing)
    response = run_once(
        db,
        scope="test",
        key="k",
        request=("POST /x", b"{}"),
        status=201,
        work=lambda session: Answer(entry="ok"),
    )
    assert response.content == b'{"entry":"ok"}'
    with db.read() as session:
        assert (
            session.execute(text("SELECT count(*) FROM entries WHERE payment_ref = 'failed'")).scalar() == 0
        )
