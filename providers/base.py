"""The provider interface: one async, typed contract behind which every payment provider sits.

Adapters subclass `Provider` and implement the `_create_payment`, `_capture`, ... hooks. The public
methods wrap them so that every provider keeps the same promises:

- every mutating call takes an idempotency key and is checked against the variant before any I/O;
- a timeout, a broken connection, a 5xx or an unreadable answer after dispatch is an UNKNOWN outcome,
  never a failure: `fetch_status` resolves it, also by our own reference;
- providers without idempotency keys of their own get an in-process replay/conflict check;
- nothing here touches a database, and no card data ever passes through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import ClassVar, TypeVar

import httpx
import structlog

from providers.config import Secrets, VariantConfig
from providers.errors import ProviderError, ProviderUnavailableError, UnsupportedOperationError
from providers.idempotency import IdempotencyMemory
from providers.model import (
    Capabilities,
    CaptureMode,
    CaptureRequest,
    Mode,
    PaymentRequest,
    ProviderEvent,
    ProviderResult,
    RefundRequest,
    SettlementLine,
    StatusReport,
    UnknownCause,
    VerifiedWebhook,
    VoidRequest,
    WebhookAck,
    WebhookDecision,
    check_idempotency_key,
    check_reference,
)
from providers.transport import ProviderResponseError, describe, unknown_cause

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
R = TypeVar("R")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderContext:
    """What a provider instance is built from: its variant, its secrets, an HTTP client and a clock."""

    variant: VariantConfig
    secrets: Secrets
    http: httpx.AsyncClient  # base_url and timeouts of the variant already set
    clock: Clock = utc_now


class Provider(ABC):
    """A payment provider configured as one variant. Build it through `providers.registry`."""

    name: ClassVar[str]  # the entry-point name in `etimbre.providers`
    modes: ClassVar[frozenset[Mode]]
    required_secrets: ClassVar[Mapping[str, str]] = {}  # secret key -> what it is (for messages)
    optional_secrets: ClassVar[Mapping[str, str]] = {}

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self.variant = context.variant
        self._memory = IdempotencyMemory()

    # -- what the service calls ------------------------------------------------------------------------

    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    async def create_payment(self, request: PaymentRequest, *, idempotency_key: str) -> ProviderResult:
        """Start a payment: the next action for an online payment, or the sale's result on a terminal."""
        self._check_amount_served(request.amount.currency)
        if self.variant.mode is Mode.ONLINE and not request.return_url:
            raise ValueError(f"variant {self.variant.name} is online: the request needs a return_url")
        if self.variant.mode is Mode.TERMINAL and not request.terminal_id:
            raise ValueError(f"variant {self.variant.name} drives terminals: the request needs a terminal_id")
        if request.capture is CaptureMode.MANUAL and not self.capabilities().manual_capture:
            raise UnsupportedOperationError(f"{self.name} cannot authorize without capturing")
        return await self._guarded(
            idempotency_key, request, lambda: self._create_payment(request, idempotency_key)
        )

    async def capture(self, request: CaptureRequest, *, idempotency_key: str) -> ProviderResult:
        self._check_amount_served(request.amount.currency)
        if not self.capabilities().manual_capture:
            raise UnsupportedOperationError(f"{self.name} captures by itself; there is nothing to capture")
        return await self._guarded(idempotency_key, request, lambda: self._capture(request, idempotency_key))

    async def void(self, request: VoidRequest, *, idempotency_key: str) -> ProviderResult:
        if not self.capabilities().void:
            raise UnsupportedOperationError(f"{self.name} cannot void an authorization")
        return await self._guarded(idempotency_key, request, lambda: self._void(request, idempotency_key))

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> ProviderResult:
        self._check_amount_served(request.amount.currency)
        caps = self.capabilities()
        if request.previously_refunded.minor and not caps.multiple_refunds:
            raise UnsupportedOperationError(f"{self.name} refunds a payment at most once")
        return await self._guarded(idempotency_key, request, lambda: self._refund(request, idempotency_key))

    async def fetch_status(self, reference: str, *, provider_reference: str | None = None) -> StatusReport:
        """The payment as the provider sees it, found by the provider's id or else by our reference.

        Raises ProviderUnavailableError when no answer could be had; the caller retries with backoff.
        """
        check_reference(reference)
        return await self._read(lambda: self._fetch_status(reference, provider_reference))

    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, now: datetime) -> VerifiedWebhook:
        """Check a delivery on its raw bytes; raise WebhookRejectedError saying which check failed."""

    @abstractmethod
    def parse_webhook(self, webhook: VerifiedWebhook) -> tuple[ProviderEvent, ...]:
        """Normalized events of a verified delivery (none for kinds we do not use)."""

    @abstractmethod
    def webhook_ack(self, decision: WebhookDecision) -> WebhookAck:
        """The exact response the provider expects for a delivery we decided about."""

    async def settlement_lines(self, day: date) -> list[SettlementLine]:
        """What the provider settled for `day`: gross, fee and net per payment or refund."""
        if not self.capabilities().settlement_lines:
            raise UnsupportedOperationError(
                f"{self.name} offers no settlement data; import its report instead"
            )
        return await self._read(lambda: self._settlement_lines(day))

    async def aclose(self) -> None:
        await self.context.http.aclose()

    # -- what adapters implement -----------------------------------------------------------------------

    @abstractmethod
    async def _create_payment(self, request: PaymentRequest, idempotency_key: str) -> ProviderResult: ...

    # Hooks an adapter may leave out when its capabilities say so; the arguments are for overrides.
    async def _capture(self, request: CaptureRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        raise UnsupportedOperationError(f"{self.name} does not implement capture")

    async def _void(self, request: VoidRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        raise UnsupportedOperationError(f"{self.name} does not implement void")

    async def _refund(self, request: RefundRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        raise UnsupportedOperationError(f"{self.name} does not implement refunds")

    @abstractmethod
    async def _fetch_status(self, reference: str, provider_reference: str | None) -> StatusReport: ...

    async def _settlement_lines(self, day: date) -> list[SettlementLine]:  # noqa: ARG002
        raise UnsupportedOperationError(f"{self.name} does not implement settlement lines")

    # -- the promises --------------------------------------------------------------------------------------

    def _check_amount_served(self, currency: str) -> None:
        if currency not in self.variant.currencies:
            served = ", ".join(sorted(self.variant.currencies))
            raise UnsupportedOperationError(
                f"variant {self.variant.name} does not take {currency} (it takes {served})"
            )

    async def _guarded(
        self, idempotency_key: str, request: object, call: Callable[[], Awaitable[ProviderResult]]
    ) -> ProviderResult:
        check_idempotency_key(idempotency_key)
        if self.capabilities().native_idempotency:
            return await self._dispatch(call)
        return await self._memory.run(idempotency_key, request, lambda: self._dispatch(call))

    async def _dispatch(self, call: Callable[[], Awaitable[ProviderResult]]) -> ProviderResult:
        try:
            return await call()
        except ProviderError:
            raise  # deliberate refusals (idempotency conflict, unsupported): the request was not executed
        except httpx.TransportError as exc:
            return ProviderResult.unknown(unknown_cause(exc), describe(exc))
        except ProviderResponseError as exc:
            return ProviderResult.unknown(UnknownCause.BAD_RESPONSE, str(exc))
        except Exception as exc:
            log.exception("provider_call_failed", provider=self.name, variant=self.variant.name)
            return ProviderResult.unknown(UnknownCause.INTERNAL, describe(exc))

    async def _read(self, call: Callable[[], Awaitable[R]]) -> R:
        try:
            return await call()
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(f"{self.variant.name}: no answer ({describe(exc)})") from exc
        except ProviderResponseError as exc:
            raise ProviderUnavailableError(f"{self.variant.name}: {exc}") from exc
