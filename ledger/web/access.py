"""Who is signed in on the staff pages: the session cookie, the guard every staff page declares, CSRF.

- ``StaffSessionMiddleware`` (on the ``/web`` router) reads the session cookie and puts the signed-in
  member in ``scope["user"]`` (an API key never signs anyone in to a page) and the session in
  ``scope["auth"]``.
- ``staff_only(*roles)`` refuses anonymous visitors (a page asks them to sign in: a redirect to the
  sign-in page, which brings them back), other roles (403), and every unsafe request (POST...) whose form
  does not carry the session's CSRF token in ``csrf_token`` (403). Every staff form therefore has
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from anyio import to_thread
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, UploadFile
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from litestar.types import ASGIApp, Receive, Scope, Send

from ledger.db.engine import Database
from ledger.services.apikeys import Role
from ledger.services.staff import ActiveSession, StaffMember, active_session, csrf_matches
from ledger.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "ActiveSession",
    "Guard",
    "Role",
    "SignInRequiredError",
    "StaffGuard",
    "StaffMember",
    "StaffSessionMiddleware",
    "csrf_token",
    "current_session",
    "current_staff",
    "staff_only",
]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
SESSION_COOKIE = "etimbre_staff"
COOKIE_PATH = "/web"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_PATH = "/web/sign-in"


class SignInRequiredError(NotAuthorizedException):
    """Nobody is signed in: pages send the visitor to the sign-in page (see ``to_sign_in``)."""


def current_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffMember | None:
    """The staff member signed in on this request, or None."""
    user = connection.scope.get("user")
    return user if isinstance(user, StaffMember) else None


def current_session(connection: ASGIConnection[Any, Any, Any, Any]) -> ActiveSession | None:
    auth = connection.scope.get("auth")
    return auth if isinstance(auth, ActiveSession) else None


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The token the signed-in session's forms carry ("" when nobody is signed in)."""
    active = current_session(connection)
    return active.csrf_token if active is not None else ""


def secure_cookies(request: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Secure when the page is served over TLS (directly, or as the configured public address says)."""
    settings: Settings = request.app.state.settings
    return request.url.scheme == "https" or settings.service.server.public_url.startswith("https://")


def session_cookie(request: ASGIConnection[Any, Any, Any, Any], value: str, max_age: int) -> Cookie:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over TLS."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


class StaffSessionMiddleware:
    """Look up the session cookie once per page request; nobody is signed in without a live session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            token = _cookie(scope, SESSION_COOKIE)
            active = await _look_up(scope, token) if token else None
            scope["user"] = active.member if active is not None else None
            scope["auth"] = active
        await self.app(scope, receive, send)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name, _, cookie_value = part.strip().partition("=")
            if cookie_name == name and cookie_value:
                return cookie_value
    return None


async def _look_up(scope: Scope, token: str) -> ActiveSession | None:
    database: Database = scope["app"].state.database

    def read() -> ActiveSession | None:
        with database.read() as session:
            return active_session(session, token)

    return await to_thread.run_sync(read)


class StaffGuard:
    """The guard a staff page declares: signed in, with one of ``roles``, and CSRF-checked forms.

    A class (not a closure) so that tests can find every staff page of the app and the roles it admits."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles
        self._allowed = " or ".join(role.value for role in roles)

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        staff = current_staff(connection)
        active = current_session(connection)
        if staff is None or active is None:
            raise SignInRequiredError("sign in first")
        if staff.role not in self.roles:
            raise PermissionDeniedException(
                f"this page is for the {self._allowed} role; you are {staff.role.value}"
            )
        if isinstance(connection, Request) and connection.method not in SAFE_METHODS:
            await check_csrf(connection, active)


def staff_only(*roles: Role) -> StaffGuard:
    """The guard a staff page declares (``guards = [staff_only(Role.CASHIER)]``)."""
    return StaffGuard(roles)


async def check_csrf(request: Request[Any, Any, Any], active: ActiveSession) -> None:
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not isinstance(presented, str) or not csrf_matches(active, presented):
        for value in form.values():  # an upload refused here is never read: let its spool go now
            if isinstance(value, UploadFile):
                await value.close()
        raise PermissionDeniedException("the form's security token is missing or stale: reload the page")


def to_sign_in(request: Request[Any, Any, Any], _: SignInRequiredError) -> Response[Any]:
    """Pages send anonymous visitors to sign in, then back where they were going (a GET)."""
    back = request.url.path if request.method == "GET" else ""
    target = back if back.startswith("/web/") and not back.startswith(SIGN_IN_PATH) else ""
    location = SIGN_IN_PATH + (f"?{urlencode({'next': target})}" if target else "")
    return Redirect(location, status_code=303, headers={"Cache-Control": "no-store"})
