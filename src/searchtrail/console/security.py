"""Pure ASGI middleware for the console: security headers on every response, and unsafe
requests (POST, ...) sent from another site, or with a body over MAX_BODY_BYTES, refused
before any route runs."""

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
# The largest form a console page sends (a policy document: IAM's and aoss's are at most
# ~20 KB) with ample room; sign-in and the other forms are far smaller. A body is read whole
# (it is parsed whole anyway), and an unauthenticated one must not cost the server its memory.
MAX_BODY_BYTES = 1024 * 1024
# All the bodies read at once, together: a thousand connections posting a mebibyte each, before
# any session is checked, took the server up by ~800 MB. Past it, a post is told to retry.
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
PAGE_CACHING = (b"cache-control", b"no-store")  # pages hold account data
ASSET_CACHING = (b"cache-control", b"public, max-age=3600")
REFUSED = (b"<!doctype html><title>Request refused</title><h1>Request refused</h1>"
           b"<p>This request came from another site. The console only accepts forms sent "
           b"from its own pages.</p>")
TOO_LARGE = (b"<!doctype html><title>Request too large</title><h1>Request too large</h1>"
             b"<p>The console accepts forms of at most 1 MiB.</p>")
BUSY = (b"<!doctype html><title>Busy</title><h1>Busy</h1><p>The console is reading many forms "
        b"at once. Send yours again in a moment.</p>")


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
        self._buffered = 0  # bytes of the bodies being read or served now

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["method"] in SAFE_METHODS:
            await self._serve(scope, receive, send)
            return
        if cross_site(scope):
            await _refuse(send, 403, REFUSED)
            return
        held = [0]  # this request's share of the bytes buffered, given back as it ends
        try:
            try:
                body = await self._body_within(scope, receive, held)
            except _Busy:
                await _refuse(send, 503, BUSY, close=True)
                return
            if body is None:
                await _refuse(send, 413, TOO_LARGE, close=True)  # the rest stays unread
                return
            await self._serve(scope, _replay(body, receive), send)
        finally:
            self._buffered -= held[0]

    async def _serve(self, scope: dict, receive: Callable, send: Callable) -> None:
        caching = ASSET_CACHING if scope["path"].startswith(self._static_prefix) else PAGE_CACHING

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in (*SECURITY_HEADERS, caching)
                         if key not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, with_headers)

    async def _body_within(self, scope: dict, receive: Callable,
                           held: list[int]) -> bytes | None:
        """The request's whole body, or None once it is known to pass MAX_BODY_BYTES (by its
        Content-Length, before reading any, or as it arrives). Its bytes count among those
        buffered (and in ``held``) as they come; _Busy past MAX_BUFFERED_BYTES."""
        declared = _header(scope.get("headers") or [], b"content-length")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: the route sees what came
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            if self._buffered + len(chunk) > MAX_BUFFERED_BYTES:
                raise _Busy
            self._buffered += len(chunk)
            held[0] += len(chunk)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


async def _refuse(send: Callable, status: int, page: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8"),
               (b"content-length", str(len(page)).encode()), *SECURITY_HEADERS, PAGE_CACHING]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": page})


class _Busy(Exception):
    """The bodies read at once would pass MAX_BUFFERED_BYTES."""


def _replay(body: bytes, receive: Callable) -> Callable:
    """A ``receive`` that gives ``body`` at once, then whatever the connection says next."""
    given = False

    async def replay() -> dict[str, Any]:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
