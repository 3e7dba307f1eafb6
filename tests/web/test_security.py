"""Every staff page, found by walking the app's routes (not a hand-kept list), refuses anonymous visitors
and the other roles, and every form refuses a missing or wrong CSRF token; lockout works through the form.
On both engines."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from ledger.services.apikeys import Role
from ledger.settings import Settings
from ledger.web.access import StaffGuard
from tests.web.staff_fixtures import (
    ADMIN,
    AUDITOR,
    CASHIER,
    PASSWORD,
    csrf_of,
    sign_in,
    staff,
    web,
    web_settings,
)

__all__ = ["staff", "web", "web_settings"]

PEOPLE = {Role.CASHIER: CASHIER, Role.AUDITOR: AUDITOR, Role.ADMIN: ADMIN}
SAMPLES = {"uuid": str(uuid.uuid4()), "int": "1", "str": "x", "path": "x", "date": "2026-01-01"}
PARAMETER = re.compile(r"{(\w+):(\w+)}")


@dataclass(frozen=True)
class StaffPage:
    method: str
    path: str  # with sample values for its parameters
    roles: tuple[Role, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def staff_pages(app: Litestar) -> list[StaffPage]:
    """Every (method, path) of the app whose handler is guarded by staff_only, with the roles it admits."""
    found: list[StaffPage] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = PARAMETER.sub(lambda m: SAMPLES[m.group(2)], route.path)
        for handler in route.route_handlers:
            guards = [g for g in handler.resolve_guards() if isinstance(g, StaffGuard)]
            if not guards:
                continue
            roles = tuple(role for role in Role if all(role in g.roles for g in guards))
            found.extend(
                StaffPage(method, path, roles)
                for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"})
            )
    return found


@pytest.fixture
def pages(web: TestClient[Litestar]) -> list[StaffPage]:
    found = staff_pages(web.app)
    paths = {page.path for page in found}
    # The walk finds the pages it must (a guard dropped from a page would make it vanish from here).
    assert {"/web/counter", "/web/counter/consume", "/web/counter/payment", "/web/sign-out"} <= paths
    return found


def _ask(client: TestClient[Litestar], page: StaffPage, csrf: str | None) -> int:
    data = {"csrf_token": csrf} if csrf is not None else {}
    if page.method == "GET":
        return client.get(page.path, follow_redirects=False).status_code
    return client.request(page.method, page.path, data=data, follow_redirects=False).status_code


def test_anonymous_visitors_are_sent_to_sign_in(web: TestClient[Litestar], pages: list[StaffPage]) -> None:
    for page in pages:
        answer = web.request(page.method, page.path, follow_redirects=False)
        assert answer.status_code == 303, str(page)
        assert answer.headers["location"].startswith("/web/sign-in"), str(page)


def test_an_api_key_is_no_sign_in(web: TestClient[Litestar], pages: list[StaffPage], keys) -> None:  # type: ignore[no-untyped-def]
    for page in pages:
        answer = web.request(page.method, page.path, headers=keys.admin, follow_redirects=False)
        assert answer.status_code == 303, str(page)


@pytest.mark.parametrize("role", list(Role))
def test_other_roles_are_refused(web: TestClient[Litestar], pages: list[StaffPage], role: Role) -> None:
    csrf = sign_in(web, PEOPLE[role])
    for page in pages:
        if role in page.roles:
            continue
        assert _ask(web, page, csrf) == 403, f"{page} let a {role.value} in"


@pytest.mark.parametrize("role", list(Role))
def test_forms_without_a_valid_csrf_token_are_refused(
    web: TestClient[Litestar], pages: list[StaffPage], role: Role
) -> None:
    csrf = sign_in(web, PEOPLE[role])
    forms = [page for page in pages if page.method != "GET" and role in page.roles]
    assert forms, f"no form for {role.value}"
    for page in forms:
        for token in (None, "", csrf[:-2] + "xx"):
            answer = web.request(
                page.method,
                page.path,
                data={} if token is None else {"csrf_token": token},
                follow_redirects=False,
            )
            assert answer.status_code == 403, f"{page} accepted the token {token!r}"
            assert "security token" in answer.text
    # The token of another session (here: the same person's earlier one) is no better than none.
    web.cookies.clear()
    fresh = sign_in(web, PEOPLE[role])
    assert fresh != csrf
    answer = web.request(forms[0].method, forms[0].path, data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 403


def test_the_sign_in_form_locks_after_repeated_failures(
    web: TestClient[Litestar], web_settings: Settings
) -> None:
    limit = web_settings.service.staff.max_failed_attempts
    for attempt in range(limit):
        form = web.get("/web/sign-in")
        answer = web.post(
            "/web/sign-in",
            data={"username": "amina", "password": f"wrong {attempt}", "csrf_token": csrf_of(form.text)},
        )
        assert answer.status_code == 401
    assert "bloqué pendant 15 minutes" in answer.text
    form = web.get("/web/sign-in")
    locked = web.post(
        "/web/sign-in", data={"username": "amina", "password": PASSWORD, "csrf_token": csrf_of(form.text)}
    )
    assert locked.status_code == 401  # the right password too, while the lock holds
    assert "bloqué" in locked.text
    assert web.get("/web/counter", follow_redirects=False).status_code == 303
    sign_in(web, AUDITOR)  # another account is not affected


def test_the_next_page_after_sign_in_is_one_of_ours(web: TestClient[Litestar]) -> None:
    for target, landing in (
        ("/web/counter/payment", "/web/counter/payment"),
        ("https://evil.example/", "/web/counter"),
        ("//evil.example/web/", "/web/counter"),
        ("/web/..\\evil", "/web/counter"),
    ):
        form = web.get("/web/sign-in", params={"next": target})
        answer = web.post(
            "/web/sign-in",
            data={
                "username": "amina",
                "password": PASSWORD,
                "csrf_token": csrf_of(form.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert answer.headers["location"] == landing, target
        web.cookies.clear()


def test_one_address_cannot_try_sign_ins_without_end(web: TestClient[Litestar]) -> None:
    from ledger.web.signin import SIGN_INS_PER_MINUTE

    for attempt in range(SIGN_INS_PER_MINUTE):
        tried = web.post(
            "/web/sign-in", data={"username": f"user{attempt}", "password": "x", "csrf_token": "x"}
        )
        assert tried.status_code == 403
    throttled = web.post("/web/sign-in", data={"username": "amina", "password": PASSWORD, "csrf_token": "x"})
    assert throttled.status_code == 429
    assert "Trop de demandes" in throttled.text
    assert web.get("/web/sign-in").status_code == 200  # the form itself is not throttled
