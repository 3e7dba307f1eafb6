"""The one app factory: everything the service is, assembled from settings and a database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import date, timedelta

import structlog
from anyio import to_thread
from litestar import Litestar
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ledger import web
from ledger.api import problems
from ledger.api.audit import AuditController
from ledger.api.auth import ApiKeyMiddleware
from ledger.api.health import HealthController
from ledger.api.ledger import LedgerAdminController, LedgerController
from ledger.api.payments import ROUTES as PAYMENT_ROUTES
from ledger.api.reconciliation import ReconciliationController
from ledger.api.refunds import ROUTES as REFUND_ROUTES
from ledger.api.stamps import ROUTES as STAMP_ROUTES
from ledger.db.engine import Database
from ledger.services import checkpoints, clock
from ledger.services.audit import runner as audit_runner
from ledger.services.audit.keys import database_audit_keys
from ledger.services.payments import resolver as payment_resolver
from ledger.services.payments.context import Payments, load_providers, provider_environment
from ledger.services.signing_keys import KeySetupError, StampKeys, require_production_keys
from ledger.settings import Settings, get_settings
from providers.config import ProvidersConfig
from providers.errors import ProviderConfigError
from providers.registry import ProviderRegistry
from receipts.keyring import NoSigningKeyError

log = structlog.get_logger("etimbre")
VERSION = "0.1.0"


def access_log(app: ASGIApp) -> ASGIApp:
    """One structured line per request, with a request id the client also sees."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await app(scope, receive, sending)
        except Exception as error:
            # Raised before a response started (e.g. by authentication): the exception handler answers.
            status = getattr(error, "status_code", 500)
            raise
        finally:
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                request_id=request_id,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    return middleware


async def _close_books(state: State) -> None:
    """Cut balance checkpoints on an interval, for instants older than the back-dating window."""
    settings: Settings = state.settings
    database: Database = state.database
    interval = timedelta(seconds=settings.service.ledger.checkpoint_interval_seconds)
    lateness = timedelta(hours=settings.service.ledger.close_after_hours)

    def close_due() -> int:
        with database.write() as session:
            due = checkpoints.due_cuts(session, clock.now(), lateness=lateness, interval=interval)
            for through in due:
                checkpoints.cut(session, through)
            return len(due)

    while True:
        try:
            closed = await to_thread.run_sync(close_due)
            if closed:
                log.info("books closed", cuts=closed)
        except Exception:  # keep the service up; the next round tries again
            log.exception("closing the books failed")
        await asyncio.sleep(interval.total_seconds())


async def _seal_journal(state: State) -> None:
    """Seal committed records on a short interval, and sign each business day once it is over."""
    settings: Settings = state.settings
    database: Database = state.database
    audit = settings.service.audit
    keys = database_audit_keys(state.stamp_keys)
    warned_on: date | None = None

    def seal_and_sign() -> int:
        audit_runner.seal_pending(database, max_records=audit.max_records_per_seal)
        if not audit.sign_daily:
            return 0
        return len(audit_runner.sign_due(database, settings, keys, clock.now()))

    while True:
        try:
            signed = await to_thread.run_sync(seal_and_sign)
            if signed:
                log.info("business days signed", days=signed)
        except (NoSigningKeyError, KeySetupError) as error:
            if warned_on != clock.now().date():  # once a day is enough
                warned_on = clock.now().date()
                log.warning(
                    "daily seals are not signed",
                    reason=str(error),
                    hint="etimbre keys create --purpose audit",
                )
        except Exception:  # keep the service up; the next round tries again
            log.exception("sealing the journal failed")
        await asyncio.sleep(audit.seal_interval_seconds)


async def _resolve_payments(state: State) -> None:
    """Settle unknown and stale provider attempts and expire abandoned payments, on an interval."""
    settings: Settings = state.settings
    while True:
        payments: Payments | None = state.get("payments")
        try:
            if payments is not None:
                report = await payment_resolver.run_once(payments)
                if report.resolved or report.queued or report.expired:
                    log.info(
                        "payments resolved",
                        resolved=report.resolved,
                        queued=report.queued,
                        expired=report.expired,
                    )
        except Exception:  # keep the service up; the next round tries again
            log.exception("resolving payments failed")
        await asyncio.sleep(settings.service.payments.resolver_interval_seconds)


def _open_payments(
    state: State, providers: ProvidersConfig | None, provider_env: Mapping[str, str] | None
) -> ProviderRegistry | None:
    """The provider registry of this process (its HTTP clients belong to the serving event loop)."""
    settings: Settings = state.settings
    try:
        config = providers or load_providers(settings)
    except ProviderConfigError as error:  # the rest of the service still runs; payments answer 503
        log.warning("payments are not available", reason=str(error))
        state.payments_problem = str(error)
        return None
    registry = ProviderRegistry(config, env=provider_env or provider_environment(settings))
    state.payments = Payments(
        database=state.database, settings=settings, registry=registry, keys=state.stamp_keys
    )
    return registry


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    background: bool = True,
    providers: ProvidersConfig | None = None,
    provider_env: Mapping[str, str] | None = None,
) -> Litestar:
    settings = settings or get_settings()
    database = database or Database.from_url(
        settings.database_url, pool_size=settings.service.database.pool_size
    )

    def check_production_keys() -> None:
        with database.read() as session:
            require_production_keys(session, settings, now=clock.now())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.production:  # refuse to start without keys rather than fail at the first payment
            await to_thread.run_sync(check_production_keys)
        tasks: list[asyncio.Task[None]] = []
        registry = _open_payments(app.state, providers, provider_env)
        if background and settings.service.payments.resolver_interval_seconds:
            tasks.append(asyncio.create_task(_resolve_payments(app.state)))
        if background and settings.service.ledger.checkpoint_interval_seconds:
            tasks.append(asyncio.create_task(_close_books(app.state)))
        if background and settings.service.audit.seal_interval_seconds:
            tasks.append(asyncio.create_task(_seal_journal(app.state)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if registry is not None:
                await registry.aclose()

    return Litestar(
        route_handlers=[
            HealthController,
            LedgerController,
            LedgerAdminController,
            AuditController,
            *STAMP_ROUTES,
            ReconciliationController,
            *PAYMENT_ROUTES,
            *REFUND_ROUTES,
            *web.routes(),
        ],
        template_config=web.template_config(),
        state=State({"settings": settings, "database": database, "stamp_keys": StampKeys(settings)}),
        middleware=[access_log, DefineMiddleware(ApiKeyMiddleware)],
        plugins=[problems.plugin()],
        exception_handlers=dict(problems.UNEXPECTED),  # type: ignore[arg-type]
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="eTimbre ledger",
            version=VERSION,
            description="Payment and e-stamp ledger for consular fees. Every error is an RFC 9457 problem.",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="etimbre API key")
                }
            ),
            security=[{"apiKey": []}, {}],
        ),
        logging_config=None,  # structlog is configured by the process (see ledger.logs)
        debug=False,
    )
