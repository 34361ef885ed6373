"""The outermost ASGI callable: signed AWS calls to the raw handler, the rest to Starlette."""

from __future__ import annotations

from typing import Any, Callable

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from searchtrail.gateway.metrics import Metrics


class EdgeRouter:
    """POST / carries every signed AWS call; anything else is for browsers and operators."""

    def __init__(self, aws: Callable, web: Callable) -> None:
        self._aws = aws
        self._web = web

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            await self._aws(scope, receive, send)
        else:
            await self._web(scope, receive, send)


def web_app(*, health: Callable[[], dict[str, Any]], metrics: Metrics, lifespan: Any) -> Starlette:
    async def health_route(request: Request) -> Response:
        report = health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def not_found(request: Request, exc: Exception) -> Response:
        body = {"__type": "UnknownOperationException",
                "message": f"Nothing is served at {request.method} {request.url.path}. AWS calls "
                           "are POST / with an X-Amz-Target header; see /_searchtrail/health."}
        return Response(orjson.dumps(body), status_code=404,
                        media_type="application/x-amz-json-1.1")

    return Starlette(
        routes=[Route("/_searchtrail/health", health_route),
                Route("/metrics", metrics_route)],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
