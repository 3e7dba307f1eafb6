"""The reconciliation API as treasury auditors use it: upload, run, read reports, resolve, approve."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.db.engine import Database
from ledger.services.apikeys import Role, create_key
from ledger.settings import Settings
from tests.api.conftest import Keys
from tests.reconciliation.helpers import capture, export, past_day

PROBLEM = "application/problem+json"
Client = TestClient[Litestar]


def _upload(client: Client, keys: Keys, data: bytes, profile: str = "treasury-default") -> Any:
    return client.post(
        f"/reconciliation/imports?profile={profile}&file_name=tgr.csv",
        content=data,
        headers={**keys.auditor, "Content-Type": "application/octet-stream"},
    )


def _second_auditor(db: Database) -> dict[str, str]:
    with db.write() as session:
        secret = create_key(session, Role.AUDITOR, label="second auditor").secret
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/reconciliation/imports"),
        ("GET", "/reconciliation/runs"),
        ("GET", "/reconciliation/exceptions"),
        ("POST", "/reconciliation/runs"),
        ("POST", "/reconciliation/exceptions/1/post"),
        ("POST", "/reconciliation/resolutions/1/approve"),
    ],
)
def test_only_auditors_reconcile(client: Client, keys: Keys, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 401
    for headers in (keys.cashier, keys.admin):
        response = client.request(method, path, json={"reason": "x"}, headers=headers)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM


def test_an_auditor_uploads_runs_reads_and_resolves(
    client: Client, keys: Keys, db: Database, settings: Settings
) -> None:
    day = past_day(settings)
    capture(db, settings, day, "ET-PAY-0001", 12500)
    capture(db, settings, day, "ET-PAY-0002", 6000)
    data = export(
        day, ("125.00", "EUR", "ET-PAY-0001"), ("60.00", "EUR", "ET-PAY-O002"), ("5000.00", "EUR", "")
    )

    uploaded = _upload(client, keys, data)
    assert uploaded.status_code == 201, uploaded.text
    imported = uploaded.json()
    assert (imported["status"], imported["lines"], imported["duplicate"]) == ("imported", 3, False)
    again = _upload(client, keys, data)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert "nothing added" in again.json()["message"]

    started = client.post(
        "/reconciliation/runs",
        json={"day": day.isoformat(), "imports": [imported["id"]]},
        headers={**keys.auditor, "Idempotency-Key": "run-1"},
    )
    assert started.status_code == 201, started.text
    run = started.json()
    assert run["exceptions"] == 3
    assert run["counts"]["exceptions"] == {"missing_in_export": 1, "missing_in_ledger": 2}
    replay = client.post(
        "/reconciliation/runs",
        json={"day": day.isoformat(), "imports": [imported["id"]]},
        headers={**keys.auditor, "Idempotency-Key": "run-1"},
    )
    assert replay.content == started.content
    assert client.get("/reconciliation/runs", headers=keys.auditor).json()[0]["id"] == run["id"]

    report = client.get(f"/reconciliation/runs/{run['id']}/report.json", headers=keys.auditor)
    assert report.headers["content-type"].startswith("application/json")
    assert report.json()["business_day"] == day.isoformat()
    table = client.get(f"/reconciliation/runs/{run['id']}/report.csv", headers=keys.auditor)
    assert table.headers["content-type"].startswith("text/csv")
    assert table.text.count("\r\n") == 1 + 1 + 3  # header, one match, three exceptions
    pdf = client.get(f"/reconciliation/runs/{run['id']}/report.pdf", headers=keys.auditor)
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/reconciliation/runs/999/report.pdf", headers=keys.auditor).status_code == 404

    page = client.get("/reconciliation/exceptions?limit=2", headers=keys.auditor).json()
    assert len(page["exceptions"]) == 2
    rest = client.get(f"/reconciliation/exceptions?after={page['next']}", headers=keys.auditor).json()
    every = page["exceptions"] + rest["exceptions"]
    assert {e["bucket"] for e in every} == {"3-7"}
    lines = {e["export_amount"]["amount"]: e for e in every if e["category"] == "missing_in_ledger"}
    (entry,) = (e for e in every if e["category"] == "missing_in_export")
    assert entry["ledger_amount"]["amount"] == "60.00"

    matched = client.post(
        f"/reconciliation/exceptions/{lines['60.00']['id']}/match",
        json={"reason": "typo in the reference", "exception": entry["id"]},
        headers=keys.auditor,
    )
    assert matched.status_code == 201, matched.text
    assert matched.json()["amount"]["minor"] == 0
    assert matched.json()["matched_entry"] == entry["entry"]
    resolved = client.get("/reconciliation/exceptions?status=resolved", headers=keys.auditor).json()
    assert {e["id"] for e in resolved["exceptions"]} == {lines["60.00"]["id"], entry["id"]}

    big = lines["5000.00"]["id"]
    waiting = client.post(
        f"/reconciliation/exceptions/{big}/post", json={"reason": "ministry transfer"}, headers=keys.auditor
    )
    assert waiting.status_code == 201
    assert waiting.json()["status"] == "pending_approval"
    resolution = waiting.json()["id"]
    own = client.post(
        f"/reconciliation/resolutions/{resolution}/approve", json={"reason": "ok"}, headers=keys.auditor
    )
    assert own.status_code == 409
    assert own.headers["content-type"] == PROBLEM
    assert "another auditor" in own.json()["detail"]
    approved = client.post(
        f"/reconciliation/resolutions/{resolution}/approve",
        json={"reason": "letter seen"},
        headers=_second_auditor(db),
    )
    assert approved.status_code == 201, approved.text
    assert len(approved.json()["entries"]) == 1
    detail = client.get(f"/reconciliation/exceptions/{big}", headers=keys.auditor).json()
    assert detail["status"] == "resolved"
    assert [r["action"] for r in detail["resolutions"]] == ["post", "approve"]
    assert detail["resolutions"][0]["actor"] != detail["resolutions"][1]["actor"]


def test_a_malformed_upload_is_a_problem_listing_every_error(
    client: Client, keys: Keys, settings: Settings
) -> None:
    day = past_day(settings)
    bad = export(day, ("12.345", "EUR", "R1"), ("1.00", "XXX", "R2"))
    response = _upload(client, keys, bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/import-rejected"
    assert [e["line"] for e in problem["errors"]] == [2, 3]
    assert problem["import_id"] >= 1
    unknown = _upload(client, keys, bad, profile="no-such-profile")
    assert unknown.status_code == 422
    assert "no import profile named" in unknown.json()["detail"]
    empty = _upload(client, keys, b"")
    assert empty.status_code == 400


def test_resolving_checks_what_it_is_given(client: Client, keys: Keys) -> None:
    missing = client.post("/reconciliation/exceptions/42/post", json={"reason": "x"}, headers=keys.auditor)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    invalid = client.post(
        "/reconciliation/exceptions/42/match", json={"reason": "x", "line": "a:b"}, headers=keys.auditor
    )
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["field"] == "line"
    refused = client.post(
        "/reconciliation/runs", json={"day": "2026-11-20", "imports": [7]}, headers=keys.auditor
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == "no import 7"
