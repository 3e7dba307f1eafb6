"""How the refund services' refusals become problem details (merged into the app's problem plugin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.plugins.problem_details import ProblemDetailsException

from ledger.services.refunds import (
    PaymentNotFoundError,
    RefundConflictError,
    RefundError,
    RefundExceedsCapturedError,
    RefundNotFoundError,
)


def _refund(exc: RefundError) -> ProblemDetailsException:
    if isinstance(exc, RefundExceedsCapturedError):
        status, slug, title = 422, "refund-exceeds-captured", "More than what is left to refund"
    elif isinstance(exc, RefundConflictError) and exc.field == "Idempotency-Key":
        status, slug, title = (
            422,
            "idempotency-key-reused",
            "The idempotency key was used for another request",
        )
    elif isinstance(exc, RefundConflictError):
        status, slug, title = 409, "refund-conflict", "The payment cannot be refunded or voided now"
    else:
        status, slug, title = 422, "field-invalid", "A value cannot be used"
    return ProblemDetailsException(
        detail=str(exc),
        status_code=status,
        type_=f"/problems/{slug}",
        title=title,
        extra={"errors": [{"field": exc.field, "message": exc.message, "source": "body"}]},
    )


def _not_found(exc: Exception) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc), status_code=404, type_="/problems/not-found", title="Not found"
    )


def refund_problems() -> dict[type[Exception], Callable[[Any], ProblemDetailsException]]:
    return {RefundError: _refund, PaymentNotFoundError: _not_found, RefundNotFoundError: _not_found}
