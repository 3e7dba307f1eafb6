"""Staff sign-in and sign-out pages: a session cookie after an Argon2id check, lockout after failures.

The sign-in form is protected from cross-site posting by a double-submit token (a random cookie only this
page's path receives, repeated in the form); once signed in, forms carry the session's own CSRF token."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import Body
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.services import staff as staff_service
from ledger.services.apikeys import Role
from ledger.settings import Settings
from ledger.web.access import (
    SESSION_COOKIE,
    SIGN_IN_PATH,
    current_staff,
    secure_cookies,
    session_cookie,
    staff_only,
)
from ledger.web.pages import Message, page, translator

SIGN_IN_COOKIE = "etimbre_sign_in"
# Lockout protects each account; this keeps one address from trying many accounts (or locking them all).
SIGN_INS_PER_MINUTE = 30
_sign_in_attempts = RateLimitConfig(rate_limit=("minute", SIGN_INS_PER_MINUTE), store="web_sign_in")
HOME_OF = {Role.CASHIER: "/web/counter", Role.AUDITOR: "/web/audit", Role.ADMIN: "/web/admin"}
NO_STORE = {"Cache-Control": "no-store"}


@dataclass
class SignInForm:
    username: str = ""
    password: str = ""
    csrf_token: str = ""
    next: str = ""


def _safe_next(target: str, role: Role) -> str:
    """Back where they were going, but only to one of our own pages (never another site)."""
    ok = target.startswith("/web/") and "//" not in target and "\\" not in target and len(target) < 300
    return target if ok and not target.startswith(SIGN_IN_PATH) else HOME_OF[role]


def _form_page(
    request: Request[Any, Any, Any],
    *,
    username: str = "",
    target: str = "",
    messages: list[Message] | None = None,
    status_code: int = 200,
) -> Template:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "staff/sign_in.html",
        status_code=status_code,
        messages=messages,
        username=username,
        next=target,
        sign_in_token=token,
    )
    response.cookies.append(
        Cookie(
            key=SIGN_IN_COOKIE,
            value=token,
            path=SIGN_IN_PATH,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
            max_age=3600,
        )
    )
    return response


class SignInController(Controller):
    path = "/"

    @get("/sign-in", name="web-sign-in", sync_to_thread=False)
    def form(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        target = request.query_params.get("next", "")
        staff = current_staff(request)
        if staff is not None:
            return Redirect(_safe_next(target, staff.role), status_code=303, headers=NO_STORE)
        messages = []
        if request.query_params.get("signed_out"):
            messages.append(Message("info", translator(request)("sign_in.signed_out")))
        return _form_page(request, target=target, messages=messages)

    @post(
        "/sign-in",
        name="web-sign-in-post",
        middleware=[_sign_in_attempts.middleware],
        sync_to_thread=True,
        status_code=303,
    )
    def sign_in(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        t = translator(request)
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected.encode(), data.csrf_token.encode()):
            raise PermissionDeniedException(
                "the sign-in form's security token is missing or stale: reload it"
            )
        settings: Settings = state.settings
        database: Database = state.database
        username = data.username.strip().lower()
        if not username or not data.password:
            message = Message("error", t("sign_in.missing"))
            return _form_page(
                request, username=username, target=data.next, messages=[message], status_code=400
            )
        outcome = staff_service.sign_in(database, settings.service.staff, username, data.password)
        if isinstance(outcome, staff_service.SignInRefused):
            if outcome.locked_until is not None:
                text = t("sign_in.locked", minutes=settings.service.staff.lockout_minutes)
            else:
                text = t("sign_in.refused")
            return _form_page(
                request,
                username=username,
                target=data.next,
                messages=[Message("error", text)],
                status_code=401,
            )
        max_age = settings.service.staff.session_hours * 3600
        return Redirect(
            _safe_next(data.next, outcome.member.role),
            status_code=303,
            headers=NO_STORE,
            cookies=[
                session_cookie(request, outcome.token, max_age),
                Cookie(key=SIGN_IN_COOKIE, value="", path=SIGN_IN_PATH, max_age=0, expires=0),
            ],
        )

    @post(
        "/sign-out",
        name="web-sign-out",
        guards=[staff_only(Role.CASHIER, Role.AUDITOR, Role.ADMIN)],
        sync_to_thread=True,
        status_code=303,
    )
    def sign_out(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        database: Database = state.database
        token = request.cookies.get(SESSION_COOKIE, "")
        with database.write() as session:
            staff_service.sign_out(session, token)
        return Redirect(
            f"{SIGN_IN_PATH}?signed_out=1",
            status_code=303,
            headers=NO_STORE,
            cookies=[session_cookie(request, "", 0)],
        )


SIGN_IN_ROUTES: list[Any] = [SignInController]
