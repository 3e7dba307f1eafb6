"""Sign-in and the cashier's counter through the pages, on both engines: verdicts, consuming once, a
terminal payment and its receipt, in French and Arabic."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.db.models_stamps import Stamp
from ledger.settings import Settings
from tests.web.staff_fixtures import (
    CASHIER,
    OTHER_CASHIER,
    PASSWORD,
    Person,
    csrf_of,
    sign_in,
    staff,
    web,
    web_settings,
)

__all__ = ["staff", "web", "web_settings"]

MANGLE = str.maketrans("1234567890AQZW:", "&é\"'(-è_çàQAWZ;")


def _pay(web: TestClient[Litestar], csrf: str, reference: str = "T-0001") -> str:
    """A terminal payment through the form; returns the receipt page's HTML."""
    form = web.get("/web/counter/payment")
    assert form.status_code == 200
    assert "Passeport" in form.text
    paid = web.post(
        "/web/counter/payment",
        data={
            "csrf_token": csrf,
            "fee_codes": ["PASSPORT", "CNIE"],
            "amount": "63,00",
            "terminal_reference": reference,
            "approval_code": "A1B2C3",
            "case_reference": "",
        },
        follow_redirects=False,
    )
    assert paid.status_code == 303, paid.text
    receipt = web.get(paid.headers["location"])
    assert receipt.status_code == 200
    return receipt.text


def _stamp_texts(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(Stamp.text).order_by(Stamp.line_no)))


def test_sign_in_refuses_wrong_passwords_and_forms_from_elsewhere(web: TestClient[Litestar]) -> None:
    form = web.get("/web/sign-in")
    assert form.status_code == 200
    assert 'autocomplete="current-password"' in form.text
    token = csrf_of(form.text)
    wrong = web.post("/web/sign-in", data={"username": "amina", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in wrong.text
    forged = web.post(
        "/web/sign-in",
        data={"username": "amina", "password": PASSWORD, "csrf_token": "made-up"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "etimbre_staff" not in forged.headers.get("set-cookie", "")
    arabic = web.get("/web/sign-in", params={"lang": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "دخول الموظفين" in arabic.text


def test_the_session_cookie_is_httponly_strict_and_secure_over_tls(
    db: Database, web_settings: Settings, stamp_keys: dict[str, str], staff: tuple[Person, ...]
) -> None:
    app = create_app(web_settings, db, background=False)
    for base_url, secure in (("http://testserver.local", False), ("https://testserver.local", True)):
        with TestClient(app, base_url=base_url) as client:
            form = client.get("/web/sign-in")
            answer = client.post(
                "/web/sign-in",
                data={"username": "amina", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
                follow_redirects=False,
            )
            assert answer.status_code == 303
            assert answer.headers["location"] == "/web/counter"
            cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("etimbre_staff="))
            flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
            assert {"httponly", "path", "samesite", "max-age"} <= flags
            assert "samesite=strict" in cookie.lower()
            assert "path=/web" in cookie.lower()
            assert ("secure" in flags) is secure


def test_a_cashier_scans_consumes_once_and_sees_already_used(web: TestClient[Litestar], db: Database) -> None:
    csrf = sign_in(web, CASHIER)
    counter = web.get("/web/counter")
    assert 'id="scan"' in counter.text and "autofocus" in counter.text
    receipt = _pay(web, csrf)
    assert "2 timbre(s) émis, total 63,00" in receipt
    assert receipt.count(".pdf") == 2
    passport, _ = _stamp_texts(db)
    genuine = web.post("/web/counter", data={"csrf_token": csrf, "scan": passport + "\r\n"})
    assert genuine.status_code == 200
    assert 'data-verdict="genuine"' in genuine.text
    assert "Authentique et non utilisé" in genuine.text
    assert "55,00" in genuine.text and "Passeport" in genuine.text
    used = web.post("/web/counter/consume", data={"csrf_token": csrf, "scan": passport})
    assert used.status_code == 200
    assert "Timbre utilisé" in used.text
    again = web.post("/web/counter/consume", data={"csrf_token": csrf, "scan": passport})
    assert again.status_code == 409
    scanned = web.post("/web/counter", data={"csrf_token": csrf, "scan": passport}, params={"lang": "ar"})
    assert scanned.status_code == 409
    assert 'data-verdict="used"' in scanned.text
    assert "مستعمل من قبل" in scanned.text
    assert "staff:" in scanned.text and ":amina" in scanned.text  # by whom
    assert "FR-PAR" in scanned.text  # where


def test_a_mangled_scan_is_unreadable_and_changes_nothing(web: TestClient[Litestar], db: Database) -> None:
    csrf = sign_in(web, CASHIER)
    _pay(web, csrf)
    passport, _ = _stamp_texts(db)
    mangled = passport.translate(MANGLE)
    for path in ("/web/counter", "/web/counter/consume"):
        answer = web.post(path, data={"csrf_token": csrf, "scan": mangled})
        assert answer.status_code == 422
        assert 'data-verdict="unreadable"' in answer.text
        assert "Illisible : scannez à nouveau" in answer.text
        assert "AZERTY" in answer.text
    assert (
        'data-verdict="genuine"' in web.post("/web/counter", data={"csrf_token": csrf, "scan": passport}).text
    )


def test_a_cashier_cannot_see_or_use_another_consulates_stamp(
    web: TestClient[Litestar], db: Database
) -> None:
    csrf = sign_in(web, CASHIER)
    _pay(web, csrf)
    passport, _ = _stamp_texts(db)
    with db.read() as session:
        entry_id = session.scalar(select(Stamp.entry_id).where(Stamp.text == passport))
    assert web.get(f"/web/counter/payment/{entry_id}").status_code == 200
    web.post("/web/sign-out", data={"csrf_token": csrf})
    other_csrf = sign_in(web, OTHER_CASHIER)
    receipt = web.get(f"/web/counter/payment/{entry_id}")
    assert receipt.status_code == 404  # Paris's receipts are not Brussels's to print
    assert ".pdf" not in receipt.text
    with db.read() as session:
        digits = session.scalar(select(Stamp.number).where(Stamp.text == passport))
    assert digits is not None
    for scanned in (passport, digits):
        seen = web.post("/web/counter", data={"csrf_token": other_csrf, "scan": scanned})
        assert seen.status_code == 403
        assert 'data-verdict="wrong_consulate"' in seen.text
        assert "55,00" not in seen.text and "Passeport" not in seen.text
        used = web.post("/web/counter/consume", data={"csrf_token": other_csrf, "scan": scanned})
        assert used.status_code == 403
    with db.read() as session:
        assert session.scalar(select(Stamp.status).where(Stamp.text == passport)) == "issued"


def test_a_payment_form_with_bad_input_names_the_field(web: TestClient[Litestar], db: Database) -> None:
    csrf = sign_in(web, CASHIER)
    base = {
        "csrf_token": csrf,
        "fee_codes": ["PASSPORT"],
        "amount": "55",
        "approval_code": "A1",
        "terminal_reference": "T-9",
    }
    for changes, text in (
        ({"fee_codes": []}, "Choisissez au moins une prestation."),
        ({"amount": "55.001"}, "pas valide pour la devise du consulat"),
        ({"amount": "50.00"}, "55,00"),
        ({"approval_code": "!"}, "2 à 12 lettres ou chiffres"),
        ({"terminal_reference": "T 9 ; drop"}, "La référence de la transaction"),
    ):
        answer = web.post("/web/counter/payment", data={**base, **changes})
        assert answer.status_code == 422, (changes, answer.text)
        assert text in answer.text
        assert 'aria-invalid="true"' in answer.text
    assert _stamp_texts(db) == []


def test_sign_out_ends_the_session(web: TestClient[Litestar]) -> None:
    csrf = sign_in(web, CASHIER)
    out = web.post("/web/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/web/sign-in?signed_out=1"
    back = web.get("/web/counter", follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == "/web/sign-in?next=%2Fweb%2Fcounter"
