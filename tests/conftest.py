"""Test fixtures: every database test runs on SQLite and on a real PostgreSQL server, each on a fresh,
fully migrated database (copied from a template migrated once per session) so that commits are real."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ledger.db import migrate
from ledger.db.engine import Database, make_engine
from ledger.services import accounts
from ledger.settings import Settings, load_settings

POSTGRES_URL = os.environ.get(
    "ETIMBRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ENGINES = ("sqlite", "postgresql")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(POSTGRES_URL)
    try:
        return psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
        )
    except psycopg.OperationalError as error:  # never a skip: CI must fail when PostgreSQL cannot run
        pytest.fail(f"PostgreSQL tests cannot run: {error} (set ETIMBRE_TEST_POSTGRES_URL)", pytrace=False)


def _postgres_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(environ={})


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"etimbre_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_postgres_url(name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database_url(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Generator[str, None, None]:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "etimbre.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"etimbre_t_{os.getpid()}_{secrets.token_hex(4)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}" STRATEGY FILE_COPY')
    try:
        yield _postgres_url(name)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each engine."""
    yield from fresh_database_url(request.param, request, tmp_path)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url, pool_size=20)
    yield database
    database.dispose()
    accounts.forget_cache()


@pytest.fixture
def pg_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """PostgreSQL only: for concurrency between connections, which SQLite serialises by design."""
    for url in fresh_database_url("postgresql", request, tmp_path):
        database = Database.from_url(url, pool_size=20)
        yield database
        database.dispose()
    accounts.forget_cache()
