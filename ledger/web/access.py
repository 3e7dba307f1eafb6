"""Who is signed in on the staff pages: the hook staff sign-in fills (sessions, roles, consulate).

Until staff sign-in exists, nobody is signed in: ``current_staff`` returns None and ``staff_only``
refuses every request (401), so a staff page can be written and mounted before sign-in is there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from ledger.services.apikeys import Role

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A signed-in member of staff, as the pages see them."""

    username: str
    role: Role
    consulate: str | None  # cashiers are bound to one consulate

    @property
    def actor(self) -> str:
        """How the ledger records what they did (entries' and stamp events' actor)."""
        return f"staff:{self.username}"


def current_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffMember | None:
    """The staff member signed in on this request, or None (placeholder: staff sign-in replaces it)."""
    user = connection.scope.get("user")
    return user if isinstance(user, StaffMember) else None


def staff_only(*roles: Role) -> Guard:
    """The guard a staff page declares: signed in, with one of these roles."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        staff = current_staff(connection)
        if staff is None:
            raise NotAuthorizedException("sign in first")
        if staff.role not in roles:
            raise PermissionDeniedException(f"this page is for {' or '.join(r.value for r in roles)}")

    return guard
