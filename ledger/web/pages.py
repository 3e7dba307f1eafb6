"""Rendering a page: the template engine, the context every page gets, messages and HTML error pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from ledger.web.access import SignInRequiredError, csrf_token, current_staff, to_sign_in
from ledger.web.i18n import DEFAULT, LANGUAGES, Language, Translator, language_of

log = structlog.get_logger("etimbre.web")
HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
LANG_COOKIE = "etimbre_lang"
_YEAR = 365 * 24 * 3600
# Pages are personal (receipts) or change by the second (stamp status): never cached by the browser.
NO_STORE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# Everything comes from this origin: no CDN, no inline script.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


@dataclass(frozen=True, slots=True)
class Message:
    """A line in the page's message area: ``text`` is already translated."""

    level: Literal["info", "success", "error"]
    text: str


def template_engine() -> JinjaTemplateEngine:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt variable is an error, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return JinjaTemplateEngine.from_environment(environment)


def language(request: Request[Any, Any, Any]) -> tuple[Language, bool]:
    """The page's language (``?lang=``, else the cookie, else French) and whether the query chose it."""
    asked = language_of(request.query_params.get("lang"))
    if asked is not None:
        return asked, True
    return language_of(request.cookies.get(LANG_COOKIE)) or DEFAULT, False


def translator(request: Request[Any, Any, Any]) -> Translator:
    return Translator(language(request)[0])


def _url_with(request: Request[Any, Any, Any], **changes: str) -> str:
    query = {key: value for key, value in request.query_params.items() if key not in changes}
    query.update(changes)
    return f"{request.url.path}?{urlencode(query)}"


def context(request: Request[Any, Any, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """What every template can use, then the page's own values."""
    t = translator(request)
    others = [other for other in LANGUAGES if other != t.language]
    return {
        "t": t,
        "lang": t.language,
        "dir": t.direction,
        "label": t.label,
        "money": t.money,
        "when": t.when,
        "day": t.day,
        "switches": [
            {"lang": other, "name": Translator(other)("meta.name"), "url": _url_with(request, lang=other)}
            for other in others
        ],
        "path": request.url.path,
        "staff": current_staff(request),
        "csrf_token": csrf_token(request),  # every staff form sends it back (ledger.web.access)
        "messages": [],
        **values,
    }


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    messages: list[Message] | None = None,
    **values: Any,
) -> Template:
    """A rendered page; remembers the language when the query chose it."""
    chosen, from_query = language(request)
    cookies = (
        [Cookie(key=LANG_COOKIE, value=chosen, max_age=_YEAR, path="/", samesite="lax", httponly=True)]
        if from_query
        else []
    )
    return Template(
        template_name=template,
        context=context(request, {**values, "messages": messages or []}),
        status_code=status_code,
        cookies=cookies,
        headers={**NO_STORE, "Content-Security-Policy": CSP},
        media_type=MediaType.HTML,
    )


def _error_page(request: Request[Any, Any, Any], status: int, detail: str | None) -> Response[Any]:
    engine: JinjaTemplateEngine = request.app.template_engine  # type: ignore[assignment]
    values = context(request, {"status": status, "detail": detail})
    html = engine.get_template("error.html").render(values)
    headers = {**NO_STORE, "Content-Security-Policy": CSP}
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    # Client errors keep their own wording (e.g. a missing form field); the page says what to do.
    detail = exc.detail if exc.status_code < 500 else None
    response = _error_page(request, exc.status_code, detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("page failed", path=request.url.path, error_type=type(exc).__name__)
    return _error_page(request, 500, None)


# ValidationException is listed too: the API's problem+json plugin names it, and the closest type wins.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequiredError: to_sign_in,  # staff pages: anonymous visitors are sent to sign in
    HTTPException: _http_error,
    ValidationException: _http_error,
    Exception: _unexpected,
}
