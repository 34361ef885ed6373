"""The outermost ASGI callable: signed AWS calls to the raw handler, the rest to Starlette."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any, Awaitable, Callable

import orjson
from botocore.model import ServiceModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from searchtrail.gateway.http import header
from searchtrail.gateway.metrics import Metrics
from searchtrail.gateway.s3api import ReadOnlyS3Api
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.query import query_error_response


MISDIRECTED = (b"This server listens on a loopback address only, and answers browsers under a "
               b"loopback name (localhost, 127.0.0.1, [::1]): another name here is a web page's "
               b"(DNS rebinding). To serve other names, start it with --host set to an address "
               b"they reach.")


def loopback_name(name: str) -> bool:
    """Whether a host name or address is this machine's loopback: an address of 127.0.0.0/8 or
    ::1, or localhost and its subdomains (which browsers resolve to loopback themselves, RFC
    6761)."""
    name = name.lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_host(value: str) -> bool:
    """Whether a Host header names this machine's loopback, any port."""
    if not value:  # no Host at all (HTTP/1.0): no browser's request
        return True
    if value.startswith("["):  # [::1] or [::1]:port
        return loopback_name(value[1:value.find("]")])
    return loopback_name(value.partition(":")[0])


class EdgeRouter:
    """POST / carries every signed AWS call; /_s3 is the local store's read-only S3 API;
    anything else is for browsers and operators. ``loopback_only``: browsers' requests must
    name a loopback host (a server listening on loopback only), else a web page that points its
    own name at 127.0.0.1 could read /metrics and drive the console's sign-in."""

    def __init__(self, aws: Callable, web: Callable, s3: ReadOnlyS3Api | None = None, *,
                 loopback_only: bool = False) -> None:
        self._aws = aws
        self._web = web
        self._s3 = s3
        self._loopback_only = loopback_only

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if scope["method"] == "POST" and path == "/":
                await self._aws(scope, receive, send)
                return
            if self._s3 is not None and self._s3.serves(path):
                await self._s3(scope, receive, send)
                return
            if self._loopback_only and not loopback_host(header(scope["headers"], b"host")):
                await send({"type": "http.response.start", "status": 421, "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(MISDIRECTED)).encode())]})
                await send({"type": "http.response.body", "body": MISDIRECTED})
                return
        await self._web(scope, receive, send)


CONSOLE_PREFIX = "/console"


def web_app(*, health: Callable[[], Awaitable[dict[str, Any]]], metrics: Metrics,
            lifespan: Any, query_service: ServiceModel,
            console: Callable | None = None) -> Starlette:
    """Health, metrics and, when given, the web console (an ASGI app) under /console.

    A path nothing serves answers in the caller's protocol: a form-encoded body (IAM, STS)
    gets ``query_service``'s XML error, which query clients can read, anything else JSON.
    """
    async def health_route(request: Request) -> Response:
        report = await health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def not_found(request: Request, exc: Exception) -> Response:
        message = (f"Nothing is served at {request.method} {request.url.path}. AWS calls are "
                   "POST / (check the endpoint URL); see /_searchtrail/health.")
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            status, headers, xml = query_error_response(
                query_service, ServiceError("InvalidAction", message, status=404),
                str(uuid.uuid4()))
            return Response(xml, status_code=status,
                            headers={name.decode(): value.decode() for name, value in headers})
        body = {"__type": "UnknownOperationException", "message": message}
        return Response(orjson.dumps(body), status_code=404,
                        media_type="application/x-amz-json-1.1")

    async def to_console(request: Request) -> Response:
        return RedirectResponse(CONSOLE_PREFIX + "/", status_code=303)

    routes: list[Any] = [Route("/_searchtrail/health", health_route),
                         Route("/metrics", metrics_route)]
    if console is not None:
        routes += [Route("/", to_console, methods=["GET", "HEAD"]),
                   Mount(CONSOLE_PREFIX, app=console)]
    return Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
