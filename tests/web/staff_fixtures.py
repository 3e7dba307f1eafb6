"""Staff for the page tests: one account per role (cheap Argon2id), a client per engine, and signing in
through the real sign-in form (its double-submit token included)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.services.apikeys import Role
from ledger.services.staff import create_staff
from ledger.settings import Settings

PASSWORD = "counter password 2026"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Person:
    username: str
    role: Role
    consulate: str = ""


CASHIER = Person("amina", Role.CASHIER, "FR-PAR")
OTHER_CASHIER = Person("brice", Role.CASHIER, "BE-BRU")
AUDITOR = Person("omar", Role.AUDITOR)
SECOND_AUDITOR = Person("salma", Role.AUDITOR)
ADMIN = Person("nadia", Role.ADMIN)
EVERYONE = (CASHIER, OTHER_CASHIER, AUDITOR, SECOND_AUDITOR, ADMIN)


def cheap(settings: Settings, **changes: object) -> Settings:
    staff = msgspec.structs.replace(
        settings.service.staff, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1
    )
    service = msgspec.structs.replace(settings.service, staff=staff, **changes)
    return dataclasses.replace(settings, service=service)


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return cheap(settings)


@pytest.fixture
def staff(db: Database, web_settings: Settings) -> tuple[Person, ...]:
    with db.write() as session:
        for person in EVERYONE:
            create_staff(
                session,
                web_settings.service.staff,
                username=person.username,
                role=person.role,
                password=PASSWORD,
                display_name=person.username.title(),
                consulate=person.consulate,
            )
    return EVERYONE


@pytest.fixture
def web(
    db: Database, web_settings: Settings, stamp_keys: dict[str, str], staff: tuple[Person, ...]
) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(web_settings, db, background=False)) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient[Litestar], person: Person, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the CSRF token of the session's pages."""
    form = client.get("/web/sign-in")
    answer = client.post(
        "/web/sign-in",
        data={"username": person.username, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    home = client.get(answer.headers["location"])
    assert home.status_code == 200, home.text
    return csrf_of(home.text)
