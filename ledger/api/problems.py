"""Every error is an RFC 9457 problem (application/problem+json), and the OpenAPI schema says so."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from sqlalchemy.exc import DBAPIError

from ledger.domain.entries import EntryError
from ledger.domain.fees import FeeError
from ledger.money import MoneyError
from ledger.services.accounts import AccountMismatchError
from ledger.services.audit.proofs import NotSealedYetError, SealDamagedError
from ledger.services.checkpoints import PeriodError
from ledger.services.idempotency import RequestInProgressError, RequestKeyReusedError
from ledger.services.journal import AlreadyReversedError, EntryNotFoundError, IdempotencyConflictError
from reconciliation.imports import ImportNotFoundError
from reconciliation.resolutions import (
    ExceptionNotFoundError,
    ResolutionConflictError,
    ResolutionInvalidError,
    ResolutionNotFoundError,
)
from reconciliation.runs import RunNotFoundError, RunRefusedError

MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("etimbre.api")


class FieldProblem(msgspec.Struct, kw_only=True):
    field: str
    message: str
    source: str | None = None


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details, with the fields at fault when the request was not valid."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    errors: list[FieldProblem] | None = None


class ApiProblem(ProblemDetailsException):
    """Raise from a handler: `ApiProblem(409, "already-used", "Stamp already used", detail=...)`."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        *,
        detail: str = "",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            detail=detail or title,
            status_code=status,
            type_=f"/problems/{slug}",
            title=title,
            extra=extra,
            headers=headers,
        )


def _http(exc: HTTPException) -> ProblemDetailsException:
    status = HTTPStatus(exc.status_code)
    slug = status.phrase.lower().replace(" ", "-")
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="etimbre"')
    detail = exc.detail if exc.detail and exc.detail != status.phrase else status.description
    return ProblemDetailsException(
        detail=detail,
        status_code=exc.status_code,
        type_=f"/problems/{slug}",
        title=status.phrase,
        headers=headers or None,
    )


_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`")
_MISSING = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")
_NAMED = re.compile(r"Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")


def _validation(exc: ValidationException) -> ProblemDetailsException:
    errors: list[dict[str, Any]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message", ""))
        field = str(item.get("key") or "")
        match = _AT.search(message)
        if match:
            field = match["path"] if field in ("", "data") else field
            message = message[: match.start()] + message[match.end() :]
        named = _NAMED.search(message)
        if named and item.get("source") == "body":
            parent = field if field not in ("", "data") else ""
            field = f"{parent}.{named['name']}" if parent else named["name"]
        errors.append({"field": field or "body", "message": message, "source": item.get("source")})
    missing = _MISSING.search(str(exc.detail))
    if not errors and missing:  # a required header or query parameter: name it like any other field
        errors.append({"field": missing["name"], "message": "is required", "source": missing["source"]})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)
    return ProblemDetailsException(
        detail=detail,
        status_code=400,
        type_="/problems/validation",
        title="The request is not valid",
        extra={"errors": errors},
    )


def simple(status: int, slug: str, title: str) -> Callable[[Exception], ProblemDetailsException]:
    """A refusal that needs nothing but its message: the converter for one exception type."""

    def convert(exc: Exception) -> ProblemDetailsException:
        return ProblemDetailsException(
            detail=str(exc), status_code=status, type_=f"/problems/{slug}", title=title
        )

    return convert


def _resolution_invalid(exc: ResolutionInvalidError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc),
        status_code=422,
        type_="/problems/field-invalid",
        title="A value cannot be used",
        extra={"errors": [{"field": exc.field, "message": exc.message, "source": "body"}]},
    )


def _in_progress(exc: RequestInProgressError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc),
        status_code=409,
        type_="/problems/request-in-progress",
        title="Request in progress",
        headers={"Retry-After": "1"},
    )


def _not_sealed_yet(exc: NotSealedYetError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=str(exc),
        status_code=409,
        type_="/problems/not-sealed-yet",
        title="Not sealed yet",
        headers={"Retry-After": "5"},
    )


def _database(exc: DBAPIError) -> ProblemDetailsException:
    message = str(exc.orig) if exc.orig is not None else str(exc)
    if "etimbre:" in message:  # refused by one of the ledger's own guards in the database
        detail = message[message.index("etimbre:") + len("etimbre:") :].split("\n")[0].strip()
        return ProblemDetailsException(
            detail=detail,
            status_code=409,
            type_="/problems/refused-by-ledger",
            title="The ledger refused this",
        )
    log.error("database error", error=message.split("\n")[0])
    return ProblemDetailsException(
        detail="The database could not complete the request; nothing was written.",
        status_code=503,
        type_="/problems/database-unavailable",
        title="Database unavailable",
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", path=request.url.path, error_type=type(exc).__name__)
    problem = ProblemDetailsException(
        detail="Something went wrong on our side; nothing was written. The error has been logged.",
        status_code=500,
        type_="/problems/internal-error",
        title="Internal error",
    )
    return problem.to_response(request)


def plugin() -> ProblemDetailsPlugin:
    mapping: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
        HTTPException: _http,
        ValidationException: _validation,
        EntryError: simple(422, "entry-invalid", "The entry breaks a ledger rule"),
        MoneyError: simple(422, "amount-invalid", "The amount is not valid"),
        FeeError: simple(422, "fee-unknown", "The fee cannot be priced"),
        AccountMismatchError: simple(409, "account-mismatch", "The account does not match the chart"),
        IdempotencyConflictError: simple(
            422, "idempotency-key-reused", "The idempotency key was used for another request"
        ),
        RequestKeyReusedError: simple(
            422, "idempotency-key-reused", "The idempotency key was used for another request"
        ),
        RequestInProgressError: _in_progress,
        AlreadyReversedError: simple(409, "already-reversed", "The entry was already reversed"),
        PeriodError: simple(409, "period-closed", "The books are closed for that period"),
        EntryNotFoundError: simple(404, "not-found", "Not found"),
        NotSealedYetError: _not_sealed_yet,
        SealDamagedError: simple(409, "seal-damaged", "The sealed records were altered"),
        ImportNotFoundError: simple(404, "not-found", "Not found"),
        RunNotFoundError: simple(404, "not-found", "Not found"),
        ExceptionNotFoundError: simple(404, "not-found", "Not found"),
        ResolutionNotFoundError: simple(404, "not-found", "Not found"),
        RunRefusedError: simple(422, "run-refused", "The run cannot start with these inputs"),
        ResolutionConflictError: simple(409, "resolution-conflict", "Not possible in the exception's state"),
        ResolutionInvalidError: _resolution_invalid,
        DBAPIError: _database,
    }
    from ledger.api.stamps_problems import stamp_problems  # its own module: the stamp area's refusals

    mapping.update(stamp_problems())
    from ledger.api.payments_problems import payment_problems  # the payment area's refusals

    mapping.update(payment_problems())
    from ledger.api.refunds_problems import refund_problems  # refunds, voids

    mapping.update(refund_problems())
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=mapping))


UNEXPECTED = {Exception: _unexpected}

_DESCRIPTIONS = {
    400: "The request is not valid: `errors` names each field at fault",
    401: "No API key, or an unknown or revoked one",
    403: "The key's role may not do this (or a cashier asked for another consulate)",
    404: "Not found",
    409: "Conflicts with the ledger's state (already reversed, closed period, refused by the ledger,"
    " not sealed yet, an exception already resolved, an approval by the auditor who made the posting)",
    413: "The uploaded file is larger than the service accepts; import it with the CLI",
    422: "Well-formed but not acceptable (unbalanced entry, bad amount, idempotency key reused)",
    429: "Too many requests",
    500: "Something went wrong on our side; nothing was written",
    503: "Not ready, or the database is unavailable",
}


def created(model: type[Any], description: str) -> dict[int, ResponseSpec]:
    """The 201 body of a handler that answers through a stored (idempotent) response, documented."""
    return {201: ResponseSpec(data_container=model, description=description, generate_examples=False)}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses a handler can give, documented as problem details (400 and 500 always)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=MEDIA_TYPE,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in sorted({400, 500, *statuses})
    }
