"""How the stamp services' refusals become problem details (merged into the app's problem plugin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.plugins.problem_details import ProblemDetailsException

from ledger.api.problems import simple
from ledger.services.issuance import PaymentAlreadyRecordedError, PaymentError, PriceMismatchError
from ledger.services.receipt_files import ReceiptNotFoundError
from ledger.services.signing_keys import KeySetupError, ReceiptSecretChangedError
from ledger.services.stamps import (
    OtherConsulateError,
    RefundRefusedError,
    StampExpiredError,
    StampNotFoundError,
    StampUnusableError,
)
from receipts.claims import ClaimsError
from receipts.codec import StampTooLargeError
from receipts.keyring import NoSigningKeyError
from receipts.numbers import StampNumberError


def _payment(exc: PaymentError) -> ProblemDetailsException:
    if isinstance(exc, PriceMismatchError):
        status, slug, title = 422, "price-mismatch", "The amount is not the published price"
    elif isinstance(exc, PaymentAlreadyRecordedError):
        status, slug, title = 409, "payment-already-recorded", "This payment was already recorded"
    else:
        status, slug, title = 422, "payment-invalid", "The payment cannot be recorded"
    return ProblemDetailsException(
        detail=str(exc),
        status_code=status,
        type_=f"/problems/{slug}",
        title=title,
        extra={"errors": [{"field": exc.field, "message": exc.message, "source": "body"}]},
    )


def _unusable(exc: StampUnusableError) -> ProblemDetailsException:
    use = exc.use
    slug, title = {
        "consumed": ("stamp-already-used", "The stamp was already used"),
        "refunded": ("stamp-refunded", "The stamp was refunded"),
        "expired": ("stamp-expired", "The stamp expired unused"),
    }[use.kind]
    return ProblemDetailsException(
        detail=str(exc),
        status_code=409,
        type_=f"/problems/{slug}",
        title=title,
        extra={
            "number": exc.number.printed(),
            "status": use.kind,
            "used": {
                "kind": use.kind,
                "at": use.at.isoformat(),
                "consulate": use.consulate,
                "by": use.actor,
                "entry_id": str(use.entry_id) if use.entry_id else None,
            },
        },
    )


def _number(exc: StampNumberError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=f"number: {exc}",
        status_code=400,
        type_="/problems/validation",
        title="The request is not valid",
        extra={"errors": [{"field": "number", "message": str(exc), "source": "path"}]},
    )


def stamp_problems() -> dict[type[Exception], Callable[[Any], ProblemDetailsException]]:
    return {
        PaymentError: _payment,
        StampUnusableError: _unusable,
        StampNumberError: _number,
        StampNotFoundError: simple(404, "not-found", "Not found"),
        ReceiptNotFoundError: simple(404, "not-found", "Not found"),
        OtherConsulateError: simple(403, "other-consulate", "The stamp is for another consulate"),
        StampExpiredError: simple(409, "stamp-expired", "The stamp has expired"),
        RefundRefusedError: simple(409, "refund-refused", "The refund policy does not allow it"),
        ClaimsError: simple(422, "stamp-invalid", "The stamp cannot carry this"),
        StampTooLargeError: simple(422, "stamp-too-large", "The stamp would not fit its QR code"),
        NoSigningKeyError: simple(503, "no-signing-key", "No signing key can sign now"),
        KeySetupError: simple(503, "keys-not-ready", "The signing keys are not ready"),
        ReceiptSecretChangedError: simple(503, "receipt-secret-changed", "The receipt secret changed"),
    }
