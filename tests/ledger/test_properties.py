"""Property test: random postings, reversals, idempotent retries and cuts keep the ledger's invariants,
on SQLite and on PostgreSQL. A Python model of the books must agree with the database after every step."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Generator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.db.types import to_micros
from ledger.domain.chart import Chart
from ledger.domain.entries import EntryDraft
from ledger.money import Money
from ledger.services import accounts, clock
from ledger.services.balances import balances
from ledger.services.checkpoints import cut, last_cut
from ledger.services.journal import AlreadyReversedError, IdempotencyConflictError, post_entry, reverse_entry
from ledger.settings import Settings
from tests.conftest import ENGINES, fresh_database_url
from tests.ledger.builders import captured, consumed

PLACES = [("FR-PAR", "EUR"), ("KW-KWI", "KWD"), ("JP-TYO", "JPY"), ("TN-TUN", "TND")]
amounts = st.integers(min_value=1, max_value=10**9)
places = st.sampled_from(PLACES)
fees = st.sampled_from(["PASSPORT", "CNIE", "VISA-SHORT"])
providers = st.sampled_from(["sandbox", "cmi", "stripe"])
ages = st.integers(min_value=0, max_value=3600 * 24)  # how long ago an entry is dated, in seconds


class Books(RuleBasedStateMachine):
    def __init__(self, database: Database, chart: Chart) -> None:
        super().__init__()
        self.db, self.chart = database, chart
        self.expected: dict[str, int] = defaultdict(int)  # account → debit minus credit
        self.entries: list[tuple[object, EntryDraft]] = []
        self.reversed: set[object] = set()
        self.keys: dict[str, EntryDraft] = {}
        self.start = clock.now()

    def _dated(self, age: int) -> datetime:
        closed = last_cut_of(self.db)
        moment = self.start - timedelta(seconds=age)
        return moment if closed is None or moment > closed else clock.now()

    def _apply(self, draft: EntryDraft, sign: int = 1) -> None:
        for line in draft.lines:
            self.expected[line.account.code] += sign * line.amount.minor

    @rule(amount=amounts, place=places, fee=fees, provider=providers, age=ages, key=st.booleans())
    def pay(self, amount: int, place: tuple[str, str], fee: str, provider: str, age: int, key: bool) -> None:
        consulate, currency = place
        draft = captured(
            self.chart,
            Money(amount, currency),
            consulate=consulate,
            fee=fee,
            provider=provider,
            effective_at=self._dated(age),
        )
        idempotency = secrets.token_hex(8) if key else None
        with self.db.write() as session:
            recorded = post_entry(session, draft, idempotency_key=idempotency)
        assert not recorded.replayed
        if idempotency:
            self.keys[idempotency] = draft
        self.entries.append((recorded.entry_id, draft))
        self._apply(draft)

    @rule(amount=amounts, place=places, fee=fees)
    def consume(self, amount: int, place: tuple[str, str], fee: str) -> None:
        draft = consumed(self.chart, Money(amount, place[1]), consulate=place[0], fee=fee)
        with self.db.write() as session:
            recorded = post_entry(session, draft)
        self.entries.append((recorded.entry_id, draft))
        self._apply(draft)

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data(), same=st.booleans())
    def retry(self, data: st.DataObject, same: bool) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)))
        draft = self.keys[key]
        if same:
            with self.db.write() as session:
                assert post_entry(session, draft, idempotency_key=key).replayed
        else:
            other = captured(self.chart, Money(7, "EUR"), payment="another-request")
            with pytest.raises(IdempotencyConflictError), self.db.write() as session:
                post_entry(session, other, idempotency_key=key)

    @precondition(lambda self: bool(self.entries))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        entry_id, draft = data.draw(st.sampled_from(self.entries))
        if entry_id in self.reversed:
            with pytest.raises(AlreadyReversedError), self.db.write() as session:
                reverse_entry(session, entry_id, reason="property test")  # type: ignore[arg-type]
            return
        with self.db.write() as session:
            reverse_entry(session, entry_id, reason="property test")  # type: ignore[arg-type]
        self.reversed.add(entry_id)
        self._apply(draft, sign=-1)

    @rule(fraction=st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
    def close_books(self, fraction: float) -> None:
        earliest = last_cut_of(self.db) or self.start - timedelta(days=1)
        through = earliest + (clock.now() - earliest) * fraction
        if through > earliest:
            with self.db.write() as session:
                cut(session, through)

    def teardown(self) -> None:
        self.db.dispose()

    @invariant()
    def every_entry_is_balanced_per_currency(self) -> None:
        with self.db.read() as session:
            unbalanced = session.execute(
                text("SELECT entry_id FROM postings GROUP BY entry_id, currency HAVING sum(amount) <> 0")
            ).all()
        assert unbalanced == []

    @invariant()
    def balances_equal_the_sum_of_postings_and_the_model(self) -> None:
        with self.db.read() as session:
            rows = {row.account: row.debit_minus_credit for row in balances(session)}
            raw: dict[str, int] = dict(
                session.execute(
                    text(
                        "SELECT a.code, sum(p.amount) FROM postings p JOIN accounts a ON a.id = p.account_id"
                        " GROUP BY a.code"
                    )
                ).all()
            )
        assert rows == {code: int(total) for code, total in raw.items()}
        assert rows == {code: total for code, total in self.expected.items() if code in rows or total}

    @invariant()
    def as_of_balances_match_a_plain_sum_at_any_instant(self) -> None:
        probes = [self.start - timedelta(hours=h) for h in (0, 1, 6, 23)]
        with self.db.read() as session:
            for probe in probes:
                rows = {row.account: row.debit_minus_credit for row in balances(session, as_of=probe)}
                raw: dict[str, int] = dict(
                    session.execute(
                        text(
                            "SELECT a.code, sum(p.amount) FROM postings p JOIN accounts a ON a.id = p.account_id"
                            " WHERE p.effective_at <= :t GROUP BY a.code"
                        ),
                        {"t": to_micros(probe)},
                    ).all()
                )
                assert rows == {code: int(total) for code, total in raw.items()}


def last_cut_of(database: Database) -> datetime | None:
    with database.read() as session:
        return last_cut(session)


@pytest.mark.parametrize("engine", ENGINES)
def test_ledger_invariants_hold_under_random_operations(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
) -> None:
    opened: list[Generator[str, None, None]] = []

    def machine() -> Books:
        folder = tmp_path / secrets.token_hex(4)
        folder.mkdir()
        generator = fresh_database_url(engine, request, folder)
        opened.append(generator)
        accounts.forget_cache()
        return Books(Database.from_url(next(generator), pool_size=2), settings.chart)

    try:
        run_state_machine_as_test(
            machine,  # type: ignore[arg-type]
            settings=hypothesis_settings(
                max_examples=20,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )
    finally:
        for generator in opened:
            generator.close()
