"""The console's Starlette app: its pages' routes, static files, region switching, sign-in
redirects, and HTML error pages, behind the console's security middleware."""

from __future__ import annotations

from typing import Any, Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from searchtrail.console.security import ConsoleGuard
from searchtrail.console.templating import STATIC
from searchtrail.console.ui import PREFIX, REGION_COOKIE, Ui, is_secure, safe_next


def console_app(ui: Ui, pages: Iterable[Any]) -> Starlette:
    """``pages`` each offer ``routes()``; the app is mounted at /console."""

    async def home(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/events", status_code=303)

    async def switch_region(request: Request, viewer: Any, form: Any) -> Response:
        # A form post with the session's token: a link from elsewhere must not switch what
        # the viewer's history shows (an empty Region hides activity in the others).
        region = str(form.get("region") or "")
        target = safe_next(str(form.get("next") or ""))
        response = RedirectResponse(target, status_code=303)
        if region in ui.regions:
            response.set_cookie(REGION_COOKIE, region, httponly=True, samesite="strict",
                                secure=is_secure(request), path=PREFIX)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        titles = {404: "Page not found", 405: "Not allowed"}
        return ui.render(request, "error.html", {
            "title": titles.get(status, "Error"),
            "message": "There is no console page at this address." if status == 404 else
            "This page does not accept that kind of request."}, status=status)

    routes: list[Any] = [Route("/", home),
                         Route("/region", ui.action(switch_region), methods=["POST"]),
                         Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    for group in pages:
        routes += group.routes()
    return Starlette(routes=routes, middleware=[Middleware(ConsoleGuard, static_prefix=PREFIX + "/static/")],
                     exception_handlers={HTTPException: http_error})
