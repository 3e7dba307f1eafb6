"""How the payment services' refusals become problem details (merged into the app's problem plugin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.plugins.problem_details import ProblemDetailsException

from ledger.api.problems import simple
from ledger.services.payments.errors import (
    PaymentNotFoundError,
    PaymentRefusedError,
    TerminalBusyError,
    UnknownVariantError,
)


def _refused(exc: PaymentRefusedError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc),
        status_code=422,
        type_="/problems/payment-refused",
        title="This payment cannot be started",
        extra={"errors": [{"field": exc.field, "message": exc.message, "source": "body"}]},
    )


def _busy(exc: TerminalBusyError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc),
        status_code=409,
        type_="/problems/terminal-busy",
        title="The terminal has a sale whose outcome is not known",
        headers={"Retry-After": "10"},
    )


def payment_problems() -> dict[type[Exception], Callable[[Any], ProblemDetailsException]]:
    return {
        PaymentRefusedError: _refused,
        TerminalBusyError: _busy,
        PaymentNotFoundError: simple(404, "not-found", "Not found"),
        UnknownVariantError: simple(404, "not-found", "Not found"),
    }
