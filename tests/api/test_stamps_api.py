"""The stamp API as cashiers, administrators and citizens use it: pay at the counter, verify, use, refund."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import text

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.apikeys import Role, create_key
from ledger.settings import Settings
from receipts.keys import VerificationKey
from receipts.numbers import StampNumber
from receipts.trust_list import load_trust_list
from receipts.verifier import stamp_texts_in_file
from tests.api.conftest import Keys

PROBLEM = "application/problem+json"
Client = TestClient[Litestar]
PRINTED = re.compile(r"\d{4} \d{4} \d{4} \d{4}-\d")
BASE = "http://127.0.0.1:8000"
PAYMENT: dict[str, Any] = {
    "fee_codes": ["PASSPORT", "CNIE"],
    "amount": "63.00",
    "terminal_reference": "TPE-0042-000117",
    "approval_code": "A1B2C3",
}


def _pay(client: Client, keys: Keys, key: str = "pay-1", **changes: Any) -> dict[str, Any]:
    response = client.post(
        "/counter/payments", json=PAYMENT | changes, headers={**keys.cashier, "Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _count(db: Database, table: str) -> int:
    with db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _local(url: str) -> str:
    assert url.startswith(BASE)
    return url[len(BASE) :]


@pytest.fixture
def stamped(client: Client, keys: Keys, stamp_keys: dict[str, str]) -> dict[str, Any]:
    return _pay(client, keys)


def test_a_counter_payment_issues_printed_numbers_qr_text_and_receipt_links(
    client: Client, keys: Keys, stamped: dict[str, Any], db: Database
) -> None:
    assert stamped["consulate"] == "FR-PAR"
    assert stamped["amount"] == {"amount": "63.00", "currency": "EUR", "minor": 6300}
    assert stamped["payment_ref"] == "terminal:FR-PAR:TPE-0042-000117"
    assert [s["fee_code"] for s in stamped["stamps"]] == ["PASSPORT", "CNIE"]
    for stamp in stamped["stamps"]:
        assert PRINTED.fullmatch(stamp["number"])
        assert StampNumber.parse(stamp["number"]).digits == stamp["digits"]
        assert stamp["qr_text"].startswith("ET1:")
        assert len(stamp["qr_text"]) <= 220
        pdf = client.get(_local(stamp["receipt"]["pdf"]))
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["cache-control"] == "no-store"
        assert pdf.content.startswith(b"%PDF-")
        png = client.get(_local(stamp["receipt"]["qr_png"]))
        assert (png.status_code, png.headers["content-type"]) == (200, "image/png")
        svg = client.get(_local(stamp["receipt"]["qr_svg"]))
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.startswith("<svg")
        status = client.get(_local(stamp["receipt"]["status"])).json()
        assert (status["number"], status["status"]) == (stamp["number"], "issued")
    with db.read() as session:
        entry = session.execute(text("SELECT kind, consulate, memo FROM entries")).one()
    assert entry.kind == "payment_captured"
    assert "A1B2C3" in str(entry.memo)


def test_a_receipt_pdf_fetched_over_http_renders_to_a_qr_code_that_verifies(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    stamp = stamped["stamps"][0]
    pdf = client.get(_local(stamp["receipt"]["pdf"])).content
    (decoded,) = stamp_texts_in_file(pdf)  # pdftoppm, then zxing-cpp
    assert decoded == stamp["qr_text"]
    answer = client.post("/stamps/verify", json={"stamp": decoded}, headers=keys.cashier).json()
    assert (answer["usable"], answer["stamp"]["number"]) == (True, stamp["number"])


def test_an_unknown_receipt_link_is_404_and_a_malformed_one_400(
    client: Client, stamped: dict[str, Any]
) -> None:
    assert client.get("/receipts/" + "A" * 32 + ".pdf").status_code == 404
    assert client.get("/receipts/short.pdf").status_code == 400
    assert client.get("/receipts/" + "A" * 32 + ".exe").status_code == 400


def test_a_retry_with_the_same_key_answers_the_same_bytes_and_issues_nothing_new(
    client: Client, keys: Keys, stamp_keys: dict[str, str], db: Database
) -> None:
    headers = {**keys.cashier, "Idempotency-Key": "pay-7"}
    first = client.post("/counter/payments", json=PAYMENT, headers=headers)
    again = client.post("/counter/payments", json=PAYMENT, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    other_body = client.post("/counter/payments", json=PAYMENT | {"approval_code": "ZZ9999"}, headers=headers)
    assert other_body.status_code == 422
    assert other_body.headers["content-type"] == PROBLEM
    same_slip = client.post(
        "/counter/payments", json=PAYMENT, headers={**keys.cashier, "Idempotency-Key": "pay-8"}
    )
    assert same_slip.status_code == 409  # one terminal slip is one payment, whatever the key
    assert same_slip.json()["type"] == "/problems/payment-already-recorded"
    assert (_count(db, "stamps"), _count(db, "entries")) == (2, 1)


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"fee_codes": []}, "fee_codes"),
    ({"fee_codes": ["passport"]}, "fee_codes"),
    ({"fee_codes": ["NOPE"]}, "fee"),
    ({"amount": "63,00"}, "amount"),
    ({"amount": "63.001"}, "amount"),
    ({"amount": "-63.00"}, "amount"),
    ({"amount": "50.00"}, "amount"),
    ({"approval_code": "A1 B2"}, "approval_code"),
    ({"terminal_reference": "x\u0000y"}, "terminal_reference"),
    ({"case_reference": "x" * 33}, "case_reference"),
    ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_BODIES)
def test_a_bad_body_is_a_problem_naming_the_field_and_writes_nothing(
    client: Client, keys: Keys, stamp_keys: dict[str, str], db: Database, changes: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/counter/payments", json=PAYMENT | changes, headers={**keys.cashier, "Idempotency-Key": "bad"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    named = [error["field"] for error in problem.get("errors", [])] or [problem["detail"]]
    assert any(field in name for name in named), problem
    assert (_count(db, "stamps"), _count(db, "entries"), _count(db, "request_keys")) == (0, 0, 0)


def test_a_counter_payment_needs_an_idempotency_key(
    client: Client, keys: Keys, stamp_keys: dict[str, str]
) -> None:
    response = client.post("/counter/payments", json=PAYMENT, headers=keys.cashier)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_without_keys_the_service_says_so(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", "x" * 20)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", "x" * 20)
    response = client.post(
        "/counter/payments", json=PAYMENT, headers={**keys.cashier, "Idempotency-Key": "k"}
    )
    assert response.status_code == 503
    assert "rotate the stamp key" in response.json()["detail"]
    assert client.get("/trust-list").status_code == 503


def test_the_cashier_verifies_then_uses_a_stamp_exactly_once(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    stamp = stamped["stamps"][0]
    answer = client.post(
        "/stamps/verify", json={"stamp": stamp["qr_text"] + "\r\n"}, headers=keys.cashier
    ).json()
    assert (answer["genuine"], answer["usable"], answer["reason"], answer["status"]) == (
        True,
        True,
        None,
        "issued",
    )
    assert answer["stamp"]["fee"]["code"] == "PASSPORT"
    assert answer["stamp"]["fee"]["ar"] == "جواز السفر البيومتري"

    used = client.post(f"/stamps/{stamp['number']}/consume", headers=keys.cashier)
    assert used.status_code == 200, used.text
    assert used.json()["by"].startswith("apikey:")
    again = client.post(f"/stamps/{stamp['digits']}/consume", headers=keys.cashier)
    assert again.status_code == 409
    problem = again.json()
    assert problem["type"] == "/problems/stamp-already-used"
    assert problem["used"]["consulate"] == "FR-PAR"
    assert problem["used"]["by"] == used.json()["by"]
    assert problem["used"]["at"].startswith(used.json()["at"][:19])
    after = client.post("/stamps/verify", json={"stamp": stamp["qr_text"]}, headers=keys.cashier).json()
    assert (after["usable"], after["reason"]) == (False, "already_used")
    assert after["used"]["by"] == used.json()["by"]
    status = client.get(_local(stamp["receipt"]["status"])).json()
    assert status["status"] == "consumed"


def test_the_ledger_moves_the_fee_to_revenue_when_used(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    stamp = stamped["stamps"][1]
    client.post(f"/stamps/{stamp['digits']}/consume", headers=keys.cashier)
    balances = client.get("/ledger/balances?account=revenue:", headers=keys.auditor).json()["balances"]
    assert [(b["account"], b["balance"]["amount"]) for b in balances] == [
        ("revenue:consular-fees:CNIE:EUR", "8.00")
    ]
    entries = client.get(f"/ledger/entries?stamp={stamp['digits']}", headers=keys.auditor).json()["entries"]
    assert [e["kind"] for e in entries] == ["stamp_consumed"]


def test_another_consulates_stamp_is_neither_shown_nor_used(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    stamp = stamped["stamps"][0]
    shown = client.get(f"/stamps/{stamp['digits']}", headers=keys.other_cashier)
    assert shown.status_code == 403
    assert "PASSPORT" not in shown.text
    assert "55.00" not in shown.text
    assert client.post(f"/stamps/{stamp['digits']}/consume", headers=keys.other_cashier).status_code == 403
    verified = client.post(
        "/stamps/verify", json={"stamp": stamp["qr_text"]}, headers=keys.other_cashier
    ).json()
    assert (verified["usable"], verified["reason"], verified["stamp"]) == (False, "wrong_consulate", None)
    assert client.get(f"/stamps/{stamp['digits']}", headers=keys.cashier).json()["status"] == "issued"


def test_a_stamp_is_found_by_its_typed_digits_with_its_history(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    stamp = stamped["stamps"][0]
    for typed in (stamp["number"], stamp["digits"], stamp["number"].replace(" ", "-")):
        found = client.get(f"/stamps/{typed}", headers=keys.cashier)
        assert found.status_code == 200, found.text
    body = found.json()
    assert "qr_text" not in body
    assert [e["kind"] for e in body["events"]] == ["issued"]
    for reader in (keys.auditor, keys.admin):
        assert client.get(f"/stamps/{stamp['digits']}", headers=reader).status_code == 200
    mistyped = stamp["digits"][:-1] + str((int(stamp["digits"][-1]) + 1) % 10)
    wrong = client.get(f"/stamps/{mistyped}", headers=keys.cashier)
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "number"
    assert "check digit" in wrong.json()["detail"]
    unknown = StampNumber.generate()
    assert client.get(f"/stamps/{unknown.digits}", headers=keys.cashier).status_code == 404
    assert client.post(f"/stamps/{unknown.digits}/consume", headers=keys.cashier).status_code == 404


def test_an_administrator_refunds_an_unused_stamp_and_it_joins_the_deny_list(
    client: Client, keys: Keys, stamped: dict[str, Any]
) -> None:
    refunded, used = stamped["stamps"]
    client.post(f"/stamps/{used['digits']}/consume", headers=keys.cashier)
    assert (
        client.post(
            f"/stamps/{refunded['digits']}/refund", json={"reason": "x"}, headers=keys.cashier
        ).status_code
        == 403
    )
    done = client.post(
        f"/stamps/{refunded['digits']}/refund",
        json={"reason": "appointment cancelled"},
        headers={**keys.admin, "Idempotency-Key": "refund-1"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["provider"] == "terminal"
    replay = client.post(
        f"/stamps/{refunded['digits']}/refund",
        json={"reason": "appointment cancelled"},
        headers={**keys.admin, "Idempotency-Key": "refund-1"},
    )
    assert replay.content == done.content
    too_late = client.post(f"/stamps/{used['digits']}/refund", json={"reason": "r"}, headers=keys.admin)
    assert too_late.status_code == 409
    assert too_late.json()["type"] == "/problems/stamp-already-used"
    assert (
        client.post(
            f"/stamps/{refunded['digits']}/refund", json={"reason": ""}, headers=keys.admin
        ).status_code
        == 400
    )
    verified = client.post("/stamps/verify", json={"stamp": refunded["qr_text"]}, headers=keys.cashier).json()
    assert (verified["usable"], verified["reason"]) == (False, "denied")
    listed = client.get("/trust-list.json").json()
    assert listed["deny"] == [refunded["number"]]
    balances = client.get("/ledger/balances?account=assets:clearing:", headers=keys.auditor).json()[
        "balances"
    ]
    assert [(b["account"], b["balance"]["amount"]) for b in balances] == [
        ("assets:clearing:terminal:EUR", "8.00")
    ]


def test_the_trust_list_is_signed_by_the_trust_list_key_and_verifies_offline(
    client: Client, stamped: dict[str, Any], stamp_keys: dict[str, str]
) -> None:
    document = client.get("/trust-list")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/cose")
    rendered = client.get("/trust-list.json").json()
    assert rendered["signed_by"] == stamp_keys["trust-list"]
    anchor = VerificationKey.from_pem(rendered["signed_by_public_key_pem"])
    trust = load_trust_list(document.content, [anchor], now=clock.now())
    assert set(trust.keys) == {bytes.fromhex(stamp_keys["stamp"])}
    assert trust.fees.by_code("PASSPORT") is not None
    assert trust.max_offline_age == timedelta(hours=168)


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[Role]]] = [
    ("POST", "/counter/payments", PAYMENT, {Role.CASHIER}),
    ("POST", "/stamps/verify", {"stamp": "ET1:X"}, {Role.CASHIER}),
    ("GET", "/stamps/48210933756102841", None, {Role.CASHIER, Role.AUDITOR, Role.ADMIN}),
    ("POST", "/stamps/48210933756102841/consume", None, {Role.CASHIER}),
    ("POST", "/stamps/48210933756102841/refund", {"reason": "r"}, {Role.ADMIN}),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_every_stamp_endpoint_checks_the_key_and_its_role(
    client: Client, keys: Keys, method: str, path: str, body: Any, allowed: set[Role]
) -> None:
    headers = {"Idempotency-Key": "roles"}
    for bad in ({}, {"Authorization": "Bearer etk_000000000000_nope"}):
        response = client.request(method, path, json=body, headers=headers | bad)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
    for role, key in ((Role.CASHIER, keys.cashier), (Role.AUDITOR, keys.auditor), (Role.ADMIN, keys.admin)):
        response = client.request(method, path, json=body, headers=headers | key)
        if role in allowed:
            assert response.status_code != 403, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.headers["content-type"] == PROBLEM


def test_citizen_endpoints_need_no_key(client: Client, stamped: dict[str, Any]) -> None:
    assert client.get("/trust-list").status_code == 200
    assert client.get("/trust-list.json").status_code == 200
    assert client.get(_local(stamped["stamps"][0]["receipt"]["pdf"])).status_code == 200


@pytest.mark.postgres_only
def test_sixteen_concurrent_counter_payments_with_one_key_make_one_payment(
    pg_db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.services.signing_keys import create_key as create_signing_key
    from receipts.envelope import KdfParams
    from receipts.keys import KeyPurpose
    from tests.api.conftest import PASSPHRASE, RECEIPT_SECRET

    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", RECEIPT_SECRET)
    with pg_db.write() as session:
        cashier = create_key(session, Role.CASHIER, consulate="FR-PAR", label="paris").secret
        for purpose in (KeyPurpose.STAMP, KeyPurpose.TRUST_LIST):
            create_signing_key(
                session,
                purpose,
                passphrase=PASSPHRASE,
                now=clock.now() - timedelta(minutes=1),
                kdf=KdfParams(memory_kib=8192, iterations=1, lanes=1),
            )
    headers = {"Authorization": f"Bearer {cashier}", "Idempotency-Key": "storm-1"}
    answers: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(16)
    with TestClient(create_app(settings, pg_db, background=False)) as client:

        def cashier_desk() -> None:
            barrier.wait()
            response = client.post("/counter/payments", json=PAYMENT, headers=headers)
            answers.append((response.status_code, response.content))

        threads = [threading.Thread(target=cashier_desk) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = [status for status, _ in answers]
    assert statuses.count(201) + statuses.count(409) == 16, statuses
    bodies = {body for status, body in answers if status == 201}
    assert len(bodies) == 1  # every answer that got through is the same payment, byte for byte
    assert (_count(pg_db, "entries"), _count(pg_db, "stamps")) == (1, 2)


def test_production_refuses_to_start_without_keys(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.services.signing_keys import KeySetupError
    from ledger.settings import load_settings

    monkeypatch.delenv("ETIMBRE_KEY_PASSPHRASE", raising=False)
    production = load_settings(
        environ={
            "ETIMBRE_ENVIRONMENT": "production",
            "ETIMBRE_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        }
    )
    with pytest.raises(ExceptionGroup) as refused, TestClient(create_app(production, db, background=False)):
        pass
    assert refused.group_contains(KeySetupError, match="no active stamp key")
