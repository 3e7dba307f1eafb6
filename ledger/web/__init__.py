"""Server-rendered HTML pages for citizens and staff, in French (default) and Arabic, next to the JSON API.

Conventions (read these before adding a page):

- Where things live. Every page is a Litestar handler under the ``/web`` router built by :func:`routes`
  (mounted by ``ledger.api.app.create_app``, excluded from the OpenAPI schema). One module per user area:
  ``citizen.py`` and ``checkout.py`` (public pages), ``signin.py``, ``cashier.py``, ``auditor.py``,
  ``reconcile.py``, ``admin.py`` (staff); each lists its controllers in ``_controllers()`` below.
  Templates are Jinja2 files in ``templates/`` (``templates/<area>/<page>.html``) that extend
  ``base.html`` and fill its blocks ``title`` and ``content`` (and ``head`` for page-only CSS/JS).
  Static files (CSS, the little JavaScript there is) are in ``static/`` and served at ``/web/static``;
  nothing is ever loaded from another origin (consulate networks may have no internet).
- Handlers stay thin, like the API controllers: parse the form or query, call ONE service function
  (``ledger.services...``, ``reconciliation...``) inside ``state.database.read()``/``write()``, and
  answer ``pages.page(request, "area/name.html", ...)``. They never call the HTTP API. A service error the
  user can fix is caught in the handler and shown on the same page as a message (``pages.Message``) next
  to the form, with status 400/404/409/422; anything unexpected becomes the HTML error page (see
  ``pages.EXCEPTION_HANDLERS``, installed on the router: web pages never answer problem+json).
- Text. Every word a person reads comes from the catalogs ``i18n/fr.toml`` and ``i18n/ar.toml``, plus
  an area's own ``i18n/<area>.fr.toml``/``<area>.ar.toml`` (same keys in both; a test checks it): in
  templates ``t("section.key", name=value)``; in Python ``pages.translator(request)``. Names of
  consulates and fees come from ``config/`` through ``label(consulate.name)`` / ``label(fee.label)``.
  Amounts go through ``money(m)`` and instants through ``when(dt, tz)`` / ``day(d)`` (Babel, with the
  catalog's locale: fr_FR and ar_MA, like the PDF receipt).
- Language. ``?lang=fr|ar`` on any page switches and is remembered in the ``etimbre_lang`` cookie; the
  base layout sets ``<html lang dir>`` and shows the switch on every page (``switches``).
- Signed-in staff. ``ledger.web.access``: ``current_staff(request)`` is who is signed in (or None) and
  ``staff_only(*roles)`` the guard a staff controller declares (``guards = [staff_only(Role.CASHIER)]``):
  it sends anonymous visitors to the sign-in page, refuses other roles, and checks the session's CSRF
  token (``csrf_token`` field) on every unsafe request. Public pages need neither.
- Forms are accessible: every input has a ``<label for>``, errors are tied with ``aria-describedby`` and
  announced in the ``role="alert"`` message area; focus is visible (``static/site.css``).
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from ledger.web import pages
from ledger.web.access import StaffSessionMiddleware

PREFIX = "/web"


def _controllers() -> list[Any]:
    from ledger.web.admin import ADMIN_ROUTES
    from ledger.web.auditor import AUDITOR_ROUTES
    from ledger.web.cashier import CASHIER_ROUTES
    from ledger.web.checkout import CheckoutController
    from ledger.web.citizen import CITIZEN_ROUTES
    from ledger.web.reconcile import RECONCILIATION_ROUTES
    from ledger.web.signin import SIGN_IN_ROUTES

    staff = [*SIGN_IN_ROUTES, *CASHIER_ROUTES, *AUDITOR_ROUTES, *RECONCILIATION_ROUTES, *ADMIN_ROUTES]
    return [CheckoutController, *CITIZEN_ROUTES, *staff]


def routes() -> list[Any]:
    """The pages router, its static files and ``/`` (to the citizen home), for the app factory."""
    from ledger.web.citizen import root

    return [
        root,
        Router(
            path=PREFIX,
            route_handlers=_controllers(),
            include_in_schema=False,
            exception_handlers=pages.EXCEPTION_HANDLERS,
            middleware=[StaffSessionMiddleware],  # who is signed in, from the session cookie
        ),
        create_static_files_router(
            path=f"{PREFIX}/static",
            directories=[pages.STATIC_DIR],
            name="web-static",
            include_in_schema=False,
        ),
    ]


def template_config() -> TemplateConfig[Any]:
    """Jinja2 templates from ``ledger/web/templates``, autoescaped, strict about undefined names."""
    return TemplateConfig(instance=pages.template_engine())
