"""The auditor's and the admin's pages on both engines: balances and the journal, seals, a day reconciled
from an uploaded export with its exceptions resolved (a second auditor approving the large posting), and
staff accounts, API keys and signing keys managed by an admin."""

from __future__ import annotations

import re
import time

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from ledger.db.engine import Database
from ledger.db.models_stamps import SigningKey
from ledger.settings import Settings
from tests.reconciliation.helpers import capture, export, past_day
from tests.web.staff_fixtures import ADMIN, AUDITOR, SECOND_AUDITOR, sign_in, staff, web, web_settings

__all__ = ["staff", "web", "web_settings"]
Client = TestClient[Litestar]


def _switch_to(web: Client, person, csrf: str) -> str:  # type: ignore[no-untyped-def]
    web.post("/web/sign-out", data={"csrf_token": csrf})
    return sign_in(web, person)


def test_balances_journal_and_entry_detail(web: Client, db: Database, web_settings: Settings) -> None:
    day = past_day(web_settings)
    capture(db, web_settings, day, "ET-PAY-0001", 12500)
    sign_in(web, AUDITOR)
    balances = web.get("/web/audit")
    assert balances.status_code == 200
    assert "liabilities:stamps-outstanding:FR-PAR" in balances.text
    assert "125,00" in balances.text
    sliced = web.get("/web/audit", params={"consulate": "BE-BRU"})
    assert "stamps-outstanding:FR-PAR" not in sliced.text
    before = web.get(
        "/web/audit",
        params={"as_of": (day.replace(day=1) if day.day > 1 else day).isoformat(), "consulate": "FR-PAR"},
    )
    if day.day > 1:
        assert "125,00" not in before.text  # the day before the payment, nothing yet
    bad = web.get("/web/audit", params={"consulate": "paris; drop", "as_of": "yesterday"})
    assert bad.status_code == 400
    assert "n&#39;est pas valide" in bad.text
    journal = web.get("/web/audit/journal", params={"payment": "ET-PAY-0001"})
    assert journal.status_code == 200
    (entry_id,) = set(re.findall(r"/web/audit/journal/([0-9a-f-]{36})", journal.text))
    detail = web.get(f"/web/audit/journal/{entry_id}")
    assert detail.status_code == 200
    assert "payment_captured" in detail.text and "assets:clearing:transfer:EUR" in detail.text
    assert web.get("/web/audit/journal/00000000-0000-0000-0000-000000000000").status_code == 404
    seals = web.get("/web/audit/seals")
    assert seals.status_code == 200
    assert "Enregistrements en attente de scellé" in seals.text


# A run goes on in a background thread: on a loaded 2-core machine it may take a while to get going.
PATIENCE_S = 120.0


def _run_to_report(web: Client, csrf: str, day: str, import_id: str) -> str:
    started = web.post(
        "/web/audit/reconciliation/runs",
        data={"csrf_token": csrf, "day": day, "imports": [import_id]},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    job = started.headers["location"]
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        progress = web.get(job, follow_redirects=False)
        if progress.status_code == 303:
            report = web.get(progress.headers["location"])
            assert report.status_code == 200
            return report.text
        assert progress.status_code == 200
        assert '<meta http-equiv="refresh" content="1">' in progress.text
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_an_auditor_reconciles_a_day_and_a_second_auditor_approves(
    web: Client, db: Database, web_settings: Settings
) -> None:
    day = past_day(web_settings)
    capture(db, web_settings, day, "ET-PAY-0001", 12500)
    capture(db, web_settings, day, "ET-PAY-0002", 6000)
    data = export(
        day, ("125.00", "EUR", "ET-PAY-0001"), ("60.00", "EUR", "ET-PAY-O002"), ("5000.00", "EUR", "")
    )
    csrf = sign_in(web, AUDITOR)
    overview = web.get("/web/audit/reconciliation")
    assert "treasury-default@" in overview.text
    profile = re.search(r'value="(treasury-default@\d+)"', overview.text)
    assert profile is not None
    uploaded = web.post(
        "/web/audit/reconciliation/imports",
        data={"csrf_token": csrf, "profile": profile.group(1)},
        files={"file": ("tgr.csv", data, "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert "3 line(s) imported" in uploaded.text
    again = web.post(
        "/web/audit/reconciliation/imports",
        data={"csrf_token": csrf, "profile": profile.group(1)},
        files={"file": ("tgr.csv", data, "text/csv")},
    )
    assert again.status_code == 200 and "nothing added" in again.text
    no_token = web.post(
        "/web/audit/reconciliation/imports",
        data={"profile": "x"},
        files={"file": ("a.csv", b"x", "text/csv")},
    )
    assert no_token.status_code == 403
    import_id = re.search(r'name="imports" value="(\d+)"', uploaded.text)
    assert import_id is not None
    refused = web.post(
        "/web/audit/reconciliation/runs",
        data={"csrf_token": csrf, "day": "2999-01-01", "imports": [import_id.group(1)]},
    )
    assert refused.status_code == 422
    assert "aujourd&#39;hui peut être rapprochée" in refused.text
    missing = web.post(
        "/web/audit/reconciliation/runs",
        data={"csrf_token": csrf, "day": day.isoformat(), "imports": ["999999"]},
        follow_redirects=False,
    )
    assert missing.status_code == 303
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        progress = web.get(missing.headers["location"])
        if 'data-state="refused"' in progress.text:
            break
        time.sleep(0.05)
    assert "Rapprochement refusé" in progress.text and "no import 999999" in progress.text
    report = _run_to_report(web, csrf, day.isoformat(), import_id.group(1))
    assert 'data-exceptions="3"' in report
    assert "3 écart(s) à traiter" in report
    assert web.get(
        re.findall(r'href="(/web/audit/reconciliation/runs/\d+/report.pdf)"', report)[0]
    ).content.startswith(b"%PDF")

    queue = web.get("/web/audit/exceptions")
    rows = re.findall(r'data-exception="(\d+)" data-status="open"', queue.text)
    assert len(rows) == 3
    assert "3 j" in queue.text  # aging
    pages = {row: web.get(f"/web/audit/exceptions/{row}").text for row in rows}
    big = next(
        row
        for row, text in pages.items()
        if "5\u202f000,00" in text or "5 000,00" in text or "5000,00" in text
    )
    waiting = web.post(
        f"/web/audit/exceptions/{big}/post",
        data={"csrf_token": csrf, "reason": "ministry transfer"},
        follow_redirects=False,
    )
    assert waiting.status_code == 303
    detail = web.get(f"/web/audit/exceptions/{big}").text
    assert 'data-status="pending_approval"' in detail
    assert "Un autre auditeur doit décider." in detail
    resolution = re.search(r'data-resolution="(\d+)" data-status="pending_approval"', detail)
    assert resolution is not None
    own = web.post(
        f"/web/audit/exceptions/{big}/resolutions/{resolution.group(1)}/approve",
        data={"csrf_token": csrf, "reason": "ok"},
    )
    assert own.status_code == 409
    assert "another auditor" in own.text

    second = _switch_to(web, SECOND_AUDITOR, csrf)
    approve_form = web.get(f"/web/audit/exceptions/{big}").text
    assert f"/resolutions/{resolution.group(1)}/approve" in approve_form
    approved = web.post(
        f"/web/audit/exceptions/{big}/resolutions/{resolution.group(1)}/approve",
        data={"csrf_token": second, "reason": "letter seen"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert 'data-status="resolved"' in web.get(f"/web/audit/exceptions/{big}").text
    bad_match = web.post(
        f"/web/audit/exceptions/{rows[0]}/match", data={"csrf_token": second, "reason": "x", "line": "a:b"}
    )
    assert bad_match.status_code in (409, 422)


def test_an_admin_manages_staff_and_keys(web: Client, db: Database) -> None:
    csrf = sign_in(web, ADMIN)
    page = web.get("/web/admin")
    assert 'data-username="amina"' in page.text
    weak = web.post(
        "/web/admin/staff",
        data={
            "csrf_token": csrf,
            "username": "karim",
            "role": "cashier",
            "consulate": "FR-PAR",
            "password": "short",
        },
    )
    assert weak.status_code == 422
    assert "at least 12 characters" in weak.text
    created = web.post(
        "/web/admin/staff",
        data={
            "csrf_token": csrf,
            "username": "karim",
            "display_name": "Karim",
            "role": "cashier",
            "consulate": "ES-MAD",
            "password": "a new cashier password",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert 'data-username="karim"' in web.get("/web/admin").text
    assert (
        web.post(
            "/web/admin/staff/karim/disable", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        web.post("/web/admin/staff/nadia/disable", data={"csrf_token": csrf}).status_code == 409
    )  # not oneself
    role = web.post(
        "/web/admin/staff/karim/role",
        data={"csrf_token": csrf, "role": "auditor", "consulate": ""},
        follow_redirects=False,
    )
    assert role.status_code == 303
    assert (
        web.post(
            "/web/admin/staff/karim/role", data={"csrf_token": csrf, "role": "cashier", "consulate": ""}
        ).status_code
        == 422
    )

    issued = web.post(
        "/web/admin/api-keys", data={"csrf_token": csrf, "role": "auditor", "label": "treasury robot"}
    )
    assert issued.status_code == 201
    secret = re.search(r'class="secret">(etk_[^<]+)<', issued.text)
    assert secret is not None
    assert issued.headers["cache-control"] == "no-store"
    listed = web.get("/web/admin/api-keys")
    assert "treasury robot" in listed.text and secret.group(1) not in listed.text  # shown once
    key_id = re.search(r"/web/admin/api-keys/(\d+)/revoke", listed.text)
    assert key_id is not None
    assert (
        web.post(
            f"/web/admin/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        web.get("/ledger/accounts", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401
    )

    keys = web.get("/web/admin/signing-keys")
    assert keys.status_code == 200
    rotated = web.post(
        "/web/admin/signing-keys/rotate",
        data={"csrf_token": csrf, "purpose": "stamp"},
        follow_redirects=False,
    )
    assert rotated.status_code == 303, rotated.text
    with db.read() as session:
        stamp_keys = list(session.scalars(select(SigningKey).where(SigningKey.purpose == "stamp")))
    assert len(stamp_keys) == 2
    oldest = min(stamp_keys, key=lambda k: k.created_at)
    retired = web.post(
        f"/web/admin/signing-keys/{oldest.kid}/retire", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert retired.status_code == 303
    with db.read() as session:
        assert session.get(SigningKey, oldest.kid).status == "retired"  # type: ignore[union-attr]
    providers = web.get("/web/admin/providers")
    assert providers.status_code == 200
    assert "sandbox" in providers.text


def test_the_manual_queue_lists_parked_payments(web: Client, db: Database) -> None:
    import uuid
    from datetime import timedelta

    from sqlalchemy import insert

    from ledger.db.models_payments import Payment
    from ledger.services import clock

    now = clock.now()
    sign_in(web, ADMIN)
    assert "Aucun paiement en attente" in web.get("/web/admin/payments").text
    with db.write() as session:
        session.execute(
            insert(Payment),
            {
                "id": uuid.uuid4(),
                "reference": "ET-PARKED-0001",
                "consulate": "FR-PAR",
                "fee_codes": "PASSPORT",
                "amount": 5500,
                "currency": "EUR",
                "priced_at": now,
                "channel": "online",
                "variant": "sandbox-online",
                "provider": "sandbox",
                "state": "parked",
                "captured_amount": 5500,
                "entry_id": uuid.uuid4(),
                "captured_at": now,
                "parked_reason": "captured after the payment had expired: decide refund or stamps",
                "expires_at": now + timedelta(hours=1),
                "created_at": now,
                "updated_at": now,
            },
        )
    queue = web.get("/web/admin/payments")
    assert queue.status_code == 200
    assert "ET-PARKED-0001" in queue.text and "55,00" in queue.text
    assert "captured after the payment had expired" in queue.text


def test_an_auditor_verifies_the_seals_and_sees_a_row_changed_behind_the_back(
    web: Client, db: Database, web_settings: Settings
) -> None:
    from sqlalchemy import text

    from tests.audit.conftest import behind_the_back, seal

    capture(db, web_settings, past_day(web_settings), "ET-PAY-0001", 12500)
    seal(db, force=True)
    csrf = sign_in(web, AUDITOR)
    assert "Pas encore de vérification" in web.get("/web/audit/seals").text
    checked = web.post("/web/audit/seals/verify", data={"csrf_token": csrf})
    assert checked.status_code == 200  # after the redirect to the seal page
    assert 'data-check="ok"' in checked.text
    assert "Scellé n°" in checked.text and 'data-intact="true"' in checked.text
    with behind_the_back(db) as connection:
        connection.execute(text("UPDATE entries SET payment_ref = 'pay-forged'"))
    again = web.post("/web/audit/seals/verify", data={"csrf_token": csrf})
    assert 'data-check="findings"' in again.text
    assert "1 constat(s)" in again.text
