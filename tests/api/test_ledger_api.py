"""The ledger API as auditors, administrators and cashiers use it, through the ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.api.conftest import Keys
from tests.ledger.builders import captured

PROBLEM = "application/problem+json"
Client = TestClient[Litestar]


def _seed(db: Database, settings: Settings) -> None:
    with db.write() as session:
        post_entry(
            session, captured(settings.chart, Money(5500, "EUR"), consulate="FR-PAR", payment="p-paris")
        )
        post_entry(
            session, captured(settings.chart, Money(5500, "EUR"), consulate="BE-BRU", payment="p-brussels")
        )


def _count(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(text("SELECT count(*) FROM entries")).scalar_one())


ADJUSTMENT: dict[str, Any] = {
    "reason": "bank charge booked twice",
    "consulate": "FR-PAR",
    "lines": [
        {"account": "assets:clearing:sandbox:EUR", "side": "debit", "amount": "1.50"},
        {"account": "liabilities:stamps-outstanding:FR-PAR", "side": "credit", "amount": "1.50"},
    ],
}

PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/ledger/accounts", None),
    ("GET", "/ledger/entries", None),
    ("GET", "/ledger/balances", None),
    ("GET", "/ledger/entries/01a2090d-2115-76cc-818c-377dd2a2868e", None),
    ("POST", "/ledger/adjustments", ADJUSTMENT),
    ("POST", "/ledger/entries/01a2090d-2115-76cc-818c-377dd2a2868e/reversal", {"reason": "x"}),
]


def test_health_and_readiness(client: Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready"
    assert ready["schema_revision"]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_no_key_is_401_and_a_bad_key_is_401(client: Client, method: str, path: str, body: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer etk_000000000000_nope"}, {"Authorization": "Basic eDp5"}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[4:])
def test_only_admins_write(
    client: Client, keys: Keys, db: Database, method: str, path: str, body: Any
) -> None:
    for headers in (keys.auditor, keys.cashier):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
    assert _count(db) == 0


def test_a_cashier_reads_only_their_own_consulate(
    client: Client, keys: Keys, db: Database, settings: Settings
) -> None:
    _seed(db, settings)
    own = client.get("/ledger/entries", headers=keys.cashier).json()["entries"]
    assert {e["consulate"] for e in own} == {"FR-PAR"}
    assert (
        client.get("/ledger/entries", params={"consulate": "BE-BRU"}, headers=keys.cashier).status_code == 403
    )
    assert (
        client.get("/ledger/balances", params={"consulate": "BE-BRU"}, headers=keys.cashier).status_code
        == 403
    )
    brussels = client.get("/ledger/entries", params={"consulate": "BE-BRU"}, headers=keys.auditor).json()[
        "entries"
    ]
    response = client.get(f"/ledger/entries/{brussels[0]['id']}", headers=keys.cashier)
    assert response.status_code == 403
    assert "BE-BRU" not in response.text
    balances = client.get("/ledger/balances", params={"account": "assets:"}, headers=keys.cashier).json()
    assert balances["balances"][0]["balance"] == {"amount": "55.00", "currency": "EUR", "minor": 5500}


def test_an_auditor_reads_entries_page_by_page_with_filters(
    client: Client, keys: Keys, db: Database, settings: Settings
) -> None:
    with db.write() as session:
        for number in range(7):
            post_entry(session, captured(settings.chart, Money(100 + number, "EUR"), payment=f"p{number}"))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"after": cursor} if cursor else {})}
        page = client.get("/ledger/entries", params=params, headers=keys.auditor).json()
        seen += [entry["payment"] for entry in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"p{n}" for n in range(7)]
    only = client.get("/ledger/entries", params={"payment": "p3"}, headers=keys.auditor).json()["entries"]
    assert [p["amount"]["amount"] for p in only[0]["postings"]] == ["1.03", "1.03"]
    assert [p["side"] for p in only[0]["postings"]] == ["debit", "credit"]
    bad = client.get("/ledger/entries", params={"after": "not-a-cursor"}, headers=keys.auditor)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "after"
    assert client.get("/ledger/entries", params={"kind": "nonsense"}, headers=keys.auditor).status_code == 400
    assert client.get("/ledger/entries", params={"limit": 501}, headers=keys.auditor).status_code == 400


def test_balances_as_of_and_split(client: Client, keys: Keys, db: Database, settings: Settings) -> None:
    _seed(db, settings)
    now = client.get("/ledger/balances", params={"account": "liabilities:"}, headers=keys.auditor).json()
    assert [(b["account"], b["balance"]["amount"]) for b in now["balances"]] == [
        ("liabilities:stamps-outstanding:BE-BRU", "55.00"),
        ("liabilities:stamps-outstanding:FR-PAR", "55.00"),
    ]
    before = client.get(
        "/ledger/balances", params={"as_of": "2026-01-01T00:00:00Z"}, headers=keys.auditor
    ).json()
    assert before["balances"] == []
    split = client.get(
        "/ledger/balances",
        params={"account": "assets:clearing:sandbox:EUR", "split": ["consulate"]},
        headers=keys.auditor,
    ).json()
    assert [(b["consulate"], b["balance"]["minor"]) for b in split["balances"]] == [
        ("BE-BRU", 5500),
        ("FR-PAR", 5500),
    ]
    naive = client.get("/ledger/balances", params={"as_of": "2026-01-01T00:00:00"}, headers=keys.auditor)
    assert naive.status_code == 400
    assert naive.json()["errors"][0]["field"] == "as_of"


def test_an_admin_posts_an_adjustment_and_a_retry_returns_the_same_bytes(
    client: Client, keys: Keys, db: Database, settings: Settings
) -> None:
    _seed(db, settings)
    headers = {**keys.admin, "Idempotency-Key": "adj-1"}
    first = client.post("/ledger/adjustments", json=ADJUSTMENT, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "adjustment"
    assert first.json()["reason"] == "bank charge booked twice"
    assert first.json()["actor"].startswith("apikey:")
    again = client.post("/ledger/adjustments", json=ADJUSTMENT, headers=headers)
    assert again.content == first.content
    other = client.post(
        "/ledger/adjustments", json={**ADJUSTMENT, "reason": "something else"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert _count(db) == 3


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"reason": ""}, 400, "reason"),
        ({"reason": None}, 400, "reason"),
        ({"lines": []}, 400, "lines"),
        (
            {"lines": [{"account": "assets:clearing:sandbox:EUR", "side": "debit", "amount": "1.50"}]},
            400,
            "lines",
        ),
        ({"unexpected": 1}, 400, "unexpected"),
        ({"consulate": "XX-NOP"}, 422, "consulate"),
        (
            {"lines": [{**ADJUSTMENT["lines"][0], "amount": "1.505"}, ADJUSTMENT["lines"][1]]},
            422,
            "lines[0].amount",
        ),
        (
            {"lines": [{**ADJUSTMENT["lines"][0], "amount": 1.5}, ADJUSTMENT["lines"][1]]},
            400,
            "lines[0].amount",
        ),
        ({"lines": [{**ADJUSTMENT["lines"][0], "side": "up"}, ADJUSTMENT["lines"][1]]}, 400, "lines[0].side"),
        (
            {"lines": [{**ADJUSTMENT["lines"][0], "account": "assets:nope"}, ADJUSTMENT["lines"][1]]},
            422,
            "lines[0].account",
        ),
        ({"lines": [ADJUSTMENT["lines"][0], {**ADJUSTMENT["lines"][1], "amount": "1.49"}]}, 422, None),
    ],
)
def test_bad_adjustments_are_refused_with_the_field_named_and_nothing_written(
    client: Client,
    keys: Keys,
    db: Database,
    settings: Settings,
    change: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    _seed(db, settings)
    body = {key: value for key, value in {**ADJUSTMENT, **change}.items() if value is not None}
    response = client.post("/ledger/adjustments", json=body, headers=keys.admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]], problem
    else:
        assert "not balanced" in problem["detail"]
    assert _count(db) == 2


def test_garbage_bodies_are_problems(client: Client, keys: Keys) -> None:
    for body in (b"{", b"[]", b"\xff\xfe", b"null"):
        response = client.post(
            "/ledger/adjustments", content=body, headers={**keys.admin, "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM


def test_an_admin_reverses_an_entry_once(
    client: Client, keys: Keys, db: Database, settings: Settings
) -> None:
    _seed(db, settings)
    entry = client.get("/ledger/entries", params={"payment": "p-paris"}, headers=keys.auditor).json()[
        "entries"
    ][0]
    path = f"/ledger/entries/{entry['id']}/reversal"
    assert client.post(path, json={"reason": ""}, headers=keys.admin).status_code == 400
    first = client.post(path, json={"reason": "refund at the counter"}, headers=keys.admin)
    assert first.status_code == 201
    assert first.json()["reverses"] == entry["id"]
    second = client.post(path, json={"reason": "again"}, headers=keys.admin)
    assert second.status_code == 409
    assert second.json()["type"] == "/problems/already-reversed"
    missing = client.post(
        "/ledger/entries/01a2090d-2115-76cc-818c-377dd2a2868e/reversal",
        json={"reason": "x"},
        headers=keys.admin,
    )
    assert missing.status_code == 404
    original = client.get(f"/ledger/entries/{entry['id']}", headers=keys.auditor).json()
    assert original["reversed_by"] == first.json()["id"]


def test_unknown_routes_and_methods_are_problems(client: Client) -> None:
    for response in (client.get("/nowhere"), client.delete("/health")):
        assert response.status_code in (404, 405)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == response.status_code


def test_the_openapi_schema_documents_every_error_as_a_problem(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    errors = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("operationId"), (path, method)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    errors += 1
                    assert list(response["content"]) == [PROBLEM], (path, method, status)
    assert errors > 10
    limit = next(p for p in schema["paths"]["/ledger/entries"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 500)
