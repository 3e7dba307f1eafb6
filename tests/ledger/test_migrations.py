"""Migrations run up, down and up again on both engines, and leave the schema the code expects."""

from __future__ import annotations

from sqlalchemy import inspect

from ledger.db import migrate
from ledger.db.engine import Database
from ledger.db.models import Base


def test_migrations_go_up_down_and_up_again(db: Database) -> None:
    assert migrate.is_current(db.engine)
    migrate.downgrade(db.engine, "base")
    assert migrate.current_revision(db.engine) is None
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(db.engine)
    assert migrate.is_current(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
