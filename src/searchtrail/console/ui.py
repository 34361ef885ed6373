"""What every console page shares: the signed-in viewer, the guards for pages and form posts
(session, CSRF token), rendering with the layout's context, and running an operation."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from searchtrail.auth.principals import Principal
from searchtrail.console.sessions import ConsoleSession, SessionStore
from searchtrail.gateway.aws import ConsoleCalls

PREFIX = "/console"
SESSION_COOKIE = "searchtrail-console"
REGION_COOKIE = "searchtrail-region"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The userAgent of calls the console makes for its user, as AWS records console actions.
CONSOLE_USER_AGENT = "console.amazonaws.com"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person on this request, and the region the pages act in."""

    session: ConsoleSession
    principal: Principal
    region: str


@dataclass(frozen=True)
class Outcome:
    """One operation's answer, for a page to show."""

    result: dict[str, Any] | None
    error_code: str = ""
    error_message: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.error_code

    @property
    def denied(self) -> bool:
        return self.error_code in ("AccessDeniedException", "AccessDenied")


Page = Callable[[Request, Viewer], Awaitable[Response]]
Action = Callable[[Request, Viewer, FormData], Awaitable[Response]]


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return PREFIX + "/events"


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


class Ui:
    def __init__(self, *, templates: Jinja2Templates, calls: ConsoleCalls, sessions: SessionStore,
                 regions: tuple[str, ...], default_region: str, user_agent: str) -> None:
        self._templates = templates
        self._calls = calls
        self._sessions = sessions
        self.regions = regions
        self._default_region = default_region
        self._user_agent = user_agent

    # -- who is asking ---------------------------------------------------------------------
    async def viewer(self, request: Request) -> Viewer | None:
        if "viewer" in request.scope.get("state", {}):
            return request.state.viewer
        found = await run_in_threadpool(self._sessions.resolve,
                                        request.cookies.get(SESSION_COOKIE, ""))
        viewer = None
        if found is not None:
            viewer = Viewer(found[0], found[1], self.region_of(request))
        request.state.viewer = viewer
        return viewer

    def region_of(self, request: Request) -> str:
        chosen = request.cookies.get(REGION_COOKIE, "")
        return chosen if chosen in self.regions else self._default_region

    # -- guards ----------------------------------------------------------------------------
    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page for signed-in viewers; others are sent to sign in and brought back."""
        async def endpoint(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self.to_sign_in(request)
            return await handler(request, viewer)

        return endpoint

    def action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """A form post: needs a live session and that session's CSRF token (a form field, or
        the header htmx sends); anything else is refused before the handler runs."""
        async def endpoint(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self.to_sign_in(request)
            form = await request.form()
            sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
            if not sent or not hmac.compare_digest(sent.encode(), viewer.session.csrf.encode()):
                return self.refused(request, "The form was missing its security token, or it "
                                    "was out of date. Reload the page and try again.")
            return await handler(request, viewer, form)

        return endpoint

    def to_sign_in(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = f"{PREFIX}/signin?next={quote(safe_next(target), safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)

    # -- notices ---------------------------------------------------------------------------
    # What an action did travels to the page it redirects to in the query string, signed
    # with the session's secret: a link from elsewhere cannot show its words as the
    # console's own ("your session expired, call ...").
    @staticmethod
    def notice_query(viewer: Viewer, text: str) -> str:
        return "notice=" + quote(text) + "&ns=" + _notice_mac(viewer, text)

    @staticmethod
    def notice(request: Request, viewer: Viewer, limit: int = 300) -> str:
        text = request.query_params.get("notice", "")
        signed = hmac.compare_digest(request.query_params.get("ns", ""),
                                     _notice_mac(viewer, text))
        return text[:limit] if text and signed else ""

    def refused(self, request: Request, message: str) -> Response:
        return self.render(request, "error.html", {"title": "Request refused",
                                                   "message": message}, status=403)

    # -- output ----------------------------------------------------------------------------
    def render(self, request: Request, name: str, context: dict[str, Any], *,
               status: int = 200, headers: dict[str, str] | None = None) -> Response:
        viewer = request.scope.get("state", {}).get("viewer")
        base = {"viewer": viewer, "regions": self.regions,
                "region": viewer.region if viewer else self.region_of(request),
                "csrf_token": viewer.session.csrf if viewer else "",
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                "prefix": PREFIX}
        return self._templates.TemplateResponse(request, name, {**base, **context},
                                                status_code=status, headers=headers)

    # -- acting ----------------------------------------------------------------------------
    async def call(self, request: Request, viewer: Viewer, operation: str,
                   params: dict[str, Any] | None = None,
                   service: str = "opensearchserverless") -> Outcome:
        """Run an operation as the viewer, through the API's unit of work (authorized and
        recorded as a call made from the console)."""
        ctx = await self._calls.invoke(viewer.principal, service, operation, params or {},
                                       region=viewer.region, scope=request.scope,
                                       user_agent=self._user_agent)
        if ctx.error is not None:
            return Outcome(None, ctx.error_code or ctx.error.code, ctx.error.message,
                           ctx.request_id)
        # The output as the wire carries it (JSON types, epoch seconds), as a client sees it.
        return Outcome(dict(ctx.output_wire or {}), "", "", ctx.request_id)


def _notice_mac(viewer: Viewer, text: str) -> str:
    return hmac.new(viewer.session.csrf.encode(), text.encode(), "sha256").hexdigest()[:32]
