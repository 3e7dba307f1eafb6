"""Fuzz the reconciliation operations with an auditor's key: no input may produce a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.settings import Settings
from tests.api.conftest import Keys

pytestmark = pytest.mark.slow


def test_no_generated_reconciliation_request_causes_a_server_error(
    db: Database, settings: Settings, keys: Keys
) -> None:
    app = create_app(settings, db, background=False)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations = [
        result.ok()  # type: ignore[union-attr]
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/reconciliation")  # type: ignore[union-attr]
    ]
    assert len(operations) >= 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.headers.update(keys.auditor)
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json")
            case.validate_response(response, checks=[not_a_server_error])

        check()
