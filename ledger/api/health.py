"""Liveness and readiness, for the load balancer and the operator."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State

from ledger.api import problems
from ledger.api.problems import ApiProblem
from ledger.api.schemas import Health
from ledger.db import migrate
from ledger.db.engine import Database


class HealthController(Controller):
    tags = ["service"]

    @get("/health", operation_id="health", summary="The process is alive", sync_to_thread=False)
    def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        operation_id="ready",
        summary="The database answers and its schema is current",
        responses=problems.responses(503),
        sync_to_thread=True,
    )
    def ready(self, state: State) -> Health:
        database: Database = state.database
        try:
            database.ping()
            revision = migrate.current_revision(database.engine)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", said plainly
            raise ApiProblem(
                503, "not-ready", "Not ready", detail=f"database unreachable: {type(error).__name__}"
            ) from None
        if revision != migrate.head_revision():
            raise ApiProblem(
                503,
                "not-ready",
                "Not ready",
                detail=f"database schema is at {revision}, expected {migrate.head_revision()}; "
                "run `etimbre db upgrade`",
            )
        return Health(status="ready", database=database.dialect, schema_revision=revision)
