"""Errors raised by the provider layer; each message says what is wrong and where."""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error the provider layer raises on purpose."""


class ProviderConfigError(ProviderError):
    """The providers file, a variant, or the environment is not usable (the message names the key)."""


class ProviderNotInstalledError(ProviderConfigError):
    """A variant names a provider that no installed distribution offers."""


class WebhookRejectedError(ProviderError):
    """A delivery failed verification: missing or bad signature, stale or future timestamp."""


class WebhookPayloadError(ProviderError):
    """A verified delivery whose content cannot be read as events."""


class IdempotencyConflictError(ProviderError):
    """An idempotency key was reused with other parameters; the provider refused."""


class ProviderUnavailableError(ProviderError):
    """A read-only query (`fetch_status`, `settlement_lines`) could not get an answer; try again later."""


class UnsupportedOperationError(ProviderError):
    """The provider or variant cannot do this (see `capabilities()`)."""
