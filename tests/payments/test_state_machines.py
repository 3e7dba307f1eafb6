"""The payment and attempt state machines: forward only in the code, and the database agrees edge by edge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.db.engine import Database
from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import (
    PAYMENT_PAID,
    AttemptStatus,
    PaymentStatus,
    TransitionError,
    can_move,
    can_move_attempt,
    move,
    reachable,
)

P = PaymentStatus
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
BEFORE_CAPTURE = {P.CREATED, P.PENDING, P.AUTHORIZED, P.UNKNOWN}


@given(st.lists(st.sampled_from(list(PaymentStatus)), max_size=40))
def test_a_walk_of_allowed_moves_never_goes_back(targets: list[PaymentStatus]) -> None:
    state = P.CREATED
    paid = left_created = False
    for target in targets:
        try:
            state = move(state, target)
        except TransitionError:
            assert not can_move(state, target)
            continue
        paid = paid or state in PAYMENT_PAID
        left_created = left_created or state is not P.CREATED
        assert not (left_created and state is P.CREATED)
        if paid:  # once money was taken, a payment never looks unpaid again
            assert state not in BEFORE_CAPTURE


def test_the_graph_reads_as_documented() -> None:
    assert P.CREATED not in (reachable(P.PENDING) | reachable(P.UNKNOWN))
    for closed in (P.FAILED, P.CANCELED, P.EXPIRED):
        # a closed payment only ever reopens through a person (parked)
        assert reachable(closed) - {closed} <= {P.PARKED} | reachable(P.PARKED)
        assert not can_move(closed, P.PENDING)
    for paid in PAYMENT_PAID:
        assert not (reachable(paid) & BEFORE_CAPTURE)
    assert reachable(P.REFUNDED) == {P.REFUNDED}
    assert reachable(P.CHARGED_BACK) == {P.CHARGED_BACK}


def _payment_row(state: str) -> dict[str, object]:
    # Every CHECK is an implication, so one row shape fits every state.
    return {
        "id": uuid.uuid4(),
        "reference": f"T{uuid.uuid4().hex[:20]}",
        "consulate": "FR-PAR",
        "fee_codes": "PASSPORT",
        "amount": 5000,
        "currency": "EUR",
        "priced_at": NOW,
        "channel": "online",
        "variant": "sandbox-online",
        "provider": "sandbox",
        "state": state,
        "captured_amount": 5000,
        "entry_id": uuid.uuid4(),
        "captured_at": NOW,
        "parked_reason": "test",
        "expires_at": NOW + timedelta(hours=1),
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_the_database_refuses_exactly_the_moves_the_code_refuses(db: Database) -> None:
    refused: set[tuple[str, str]] = set()
    with db.engine.connect() as connection:
        for source, target in product(PaymentStatus, repeat=2):
            row = _payment_row(source)
            with connection.begin():
                connection.execute(insert(Payment), row)
            try:
                with connection.begin():
                    connection.execute(
                        update(Payment).where(Payment.id == row["id"]).values(state=str(target))
                    )
            except (IntegrityError, DBAPIError):
                refused.add((source, target))
    expected = {(s, t) for s, t in product(PaymentStatus, repeat=2) if not can_move(s, t)}
    assert refused == expected


def test_the_database_refuses_backward_attempt_moves(db: Database) -> None:
    refused: set[tuple[str, str]] = set()
    with db.engine.connect() as connection:
        payment = _payment_row("pending")
        with connection.begin():
            connection.execute(insert(Payment), payment)
        for source, target in product(AttemptStatus, repeat=2):
            attempt = uuid.uuid4()
            final = source in (AttemptStatus.SUCCEEDED, AttemptStatus.DECLINED)
            with connection.begin():
                connection.execute(
                    insert(PaymentAttempt),
                    {
                        "id": attempt,
                        "payment_id": payment["id"],
                        "kind": "status",
                        "idempotency_key": f"k-{attempt}",
                        "state": str(source),
                        "unknown_cause": "timeout",
                        "resolved_at": NOW if final else None,
                        "created_at": NOW,
                        "updated_at": NOW,
                    },
                )
            final_target = target in (AttemptStatus.SUCCEEDED, AttemptStatus.DECLINED)
            try:
                with connection.begin():
                    connection.execute(
                        update(PaymentAttempt)
                        .where(PaymentAttempt.id == attempt)
                        .values(state=str(target), resolved_at=NOW if final_target else None)
                    )
            except (IntegrityError, DBAPIError):
                refused.add((source, target))
    expected = {(s, t) for s, t in product(AttemptStatus, repeat=2) if not can_move_attempt(s, t)}
    assert refused == expected


@pytest.mark.parametrize("column", ["amount", "currency", "consulate", "fee_codes", "variant", "reference"])
def test_what_was_priced_never_changes(db: Database, column: str) -> None:
    values = {
        "amount": 1,
        "currency": "USD",
        "consulate": "FR-LYO",
        "fee_codes": "VISA",
        "variant": "x",
        "reference": "other",
    }
    row = _payment_row("pending")
    with db.engine.begin() as connection:
        connection.execute(insert(Payment), row)
    with pytest.raises((IntegrityError, DBAPIError)), db.engine.begin() as connection:
        connection.execute(update(Payment).where(Payment.id == row["id"]).values({column: values[column]}))


def test_the_database_holds_a_terminal_to_one_sale_in_flight(db: Database) -> None:
    def sale(state: str) -> dict[str, object]:
        return {
            **_payment_row(state),
            "channel": "counter",
            "variant": "sandbox-counter",
            "terminal_id": "T-1",
        }

    with db.engine.begin() as connection:
        connection.execute(insert(Payment), sale("captured"))  # finished sales do not hold the terminal
        connection.execute(insert(Payment), sale("failed"))
        connection.execute(insert(Payment), sale("unknown"))
    for state in ("created", "pending", "authorized", "unknown"):
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            connection.execute(insert(Payment), sale(state))
    with db.engine.begin() as connection:  # another terminal is free
        connection.execute(insert(Payment), {**sale("pending"), "terminal_id": "T-2"})
