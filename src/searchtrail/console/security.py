"""Pure ASGI middleware for the console: security headers on every response, and unsafe
requests (POST, ...) sent from another site refused before any route runs."""

from __future__ import annotations

from typing import Any, Callable

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
     b"object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
PAGE_CACHING = (b"cache-control", b"no-store")  # pages hold account data
ASSET_CACHING = (b"cache-control", b"public, max-age=3600")
REFUSED = (b"<!doctype html><title>Request refused</title><h1>Request refused</h1>"
           b"<p>This request came from another site. The console only accepts forms sent "
           b"from its own pages.</p>")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def cross_site(scope: dict) -> bool:
    """True when the browser says the request came from another origin (Origin, then
    Sec-Fetch-Site, then Referer); requests naming no origin at all are left to the CSRF
    token."""
    headers = scope.get("headers") or []
    own = f"{scope.get('scheme', 'http')}://{_header(headers, b'host')}"
    origin = _header(headers, b"origin")
    if origin:
        return origin != own
    site = _header(headers, b"sec-fetch-site")
    if site:
        return site not in ("same-origin", "none")
    referer = _header(headers, b"referer")
    if referer:
        return not (referer == own or referer.startswith(own + "/"))
    return False


class ConsoleGuard:
    def __init__(self, app: Callable, static_prefix: str = "/console/static/") -> None:
        self._app = app
        self._static_prefix = static_prefix

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and cross_site(scope):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                    (b"content-length", str(len(REFUSED)).encode()),
                                    *SECURITY_HEADERS, PAGE_CACHING]})
            await send({"type": "http.response.body", "body": REFUSED})
            return

        caching = ASSET_CACHING if scope["path"].startswith(self._static_prefix) else PAGE_CACHING

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in (*SECURITY_HEADERS, caching)
                         if key not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, with_headers)
