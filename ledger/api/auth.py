"""Who is calling: API keys read from the Authorization header, and guards that check the role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anyio import to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ledger.db.engine import Database
from ledger.services.apikeys import Principal, Role, authenticate


def _presented(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("use 'Authorization: Bearer <API key>'")
        return token.strip()
    return connection.headers.get("x-api-key")


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Anonymous callers pass with no user (citizen endpoints are public); a bad key is refused at once."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        presented = _presented(connection)
        if presented is None:
            return AuthenticationResult(user=None, auth=None)
        database: Database = connection.app.state.database

        def look_up() -> Principal | None:
            with database.read() as session:
                return authenticate(session, presented)

        principal = await to_thread.run_sync(look_up)
        if principal is None:
            raise NotAuthorizedException("unknown or revoked API key")
        return AuthenticationResult(user=principal, auth=presented)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("this needs an API key: 'Authorization: Bearer <API key>'")
    return user


def requires(*roles: Role) -> Guard:
    """A guard that lets in only keys with one of these roles."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if principal.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            raise PermissionDeniedException(f"this needs the {allowed} role; this key is {principal.role}")

    return guard


def consulate_scope(principal: Principal, asked: str | None) -> str | None:
    """Cashiers see only their own consulate; others see what they ask for."""
    if principal.role is not Role.CASHIER:
        return asked
    if asked is not None and asked != principal.consulate:
        raise PermissionDeniedException(f"this cashier key serves {principal.consulate}, not {asked}")
    return principal.consulate
