"""The public pages: home, the published fee schedule, paying for stamps, receipts and the status check."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from ledger.web.pages import page


class HomeController(Controller):
    path = "/"

    @get("/", name="web-home", sync_to_thread=False)
    def home(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "home.html")

    @get("/{rest:path}", name="web-not-found", sync_to_thread=False)
    def not_found(self, rest: Annotated[str, PathParameter()]) -> Template:
        """Any other address under /web answers the HTML 404 page, not the API's problem+json."""
        raise NotFoundException(f"no page {rest}")


@get("/", name="web-root", include_in_schema=False, sync_to_thread=False, status_code=302)
def root() -> Redirect:
    """People who open the service's address land on the citizen pages."""
    return Redirect("/web/")


CITIZEN_ROUTES: list[Any] = [HomeController]
