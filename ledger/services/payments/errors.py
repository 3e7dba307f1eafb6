"""Why a payment cannot be started or looked at, in words a citizen or a cashier can act on."""

from __future__ import annotations


class PaymentRefusedError(ValueError):
    """The request cannot become a payment (unknown consulate or fee, no provider takes it); `field`
    names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PaymentNotFoundError(LookupError):
    """No payment with this id (or not one the caller may see)."""


class TerminalBusyError(Exception):
    """The terminal already has a sale in flight (pending or unknown): no new sale starts on it."""


class UnknownVariantError(LookupError):
    """No provider variant of that name is configured and enabled."""
