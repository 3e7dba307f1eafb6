"""HTTP plumbing shared by provider adapters: reading answers and naming why an outcome is unknown."""

from __future__ import annotations

from typing import TypeVar

import httpx
import msgspec

from providers.model import UnknownCause

T = TypeVar("T")


class ProviderResponseError(Exception):
    """The provider answered something we cannot read; the call's outcome is unknown."""


def unknown_cause(exc: httpx.TransportError) -> UnknownCause:
    """Classify a transport failure; only a failure to connect proves the request was never sent."""
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol
    ):
        return UnknownCause.NOT_SENT
    if isinstance(exc, httpx.TimeoutException):
        return UnknownCause.TIMEOUT
    return UnknownCause.CONNECTION_LOST


def describe(exc: BaseException) -> str:
    """A short description for logs and outcomes: the exception type and its message, no payloads."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode_json(response: httpx.Response, type_: type[T]) -> T:
    """Decode a JSON answer into a typed struct, or raise ProviderResponseError saying what was wrong."""
    try:
        return msgspec.json.decode(response.content, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProviderResponseError(
            f"{response.request.method} {response.request.url.path} answered HTTP {response.status_code} "
            f"with a body that is not the expected {type_.__name__}: {exc}"
        ) from exc
