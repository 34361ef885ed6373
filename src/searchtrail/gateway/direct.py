"""Requests served straight from the HTTP protocol: no ASGI scope, message dicts or
per-message events, and the response written in one piece.

`POST /` (signed AWS calls) is nearly every request the server gets; GET and HEAD under
`/_s3` (the read-only S3 API) are the bulk of the rest. The ASGI path stays for everything
else (and for `POST /?query` or `Expect: 100-continue`, which SDKs do not send to JSON APIs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from searchtrail.gateway.http import (BODY_IDLE_SECONDS, BodyCollector, BodyTimeout, BodyTooLarge,
                                      RawRequest)
from searchtrail.protocol.errors import ServiceError

log = logging.getLogger("searchtrail.gateway")

# status, headers, body; a HEAD answer adds the content-length a GET would have
Response = tuple[int, list, bytes] | tuple[int, list, bytes, int | None]


class CallHandler(Protocol):
    def body_collector(self, headers: list) -> BodyCollector: ...

    def respond(self, request: RawRequest, refusal: Exception | None = None
                ) -> Awaitable[Response]: ...


def encode_response(status: int, default_headers: list[tuple[bytes, bytes]],
                    headers: list[tuple[bytes, bytes]], body: bytes, *, close: bool,
                    content_length: int | None = None) -> bytes:
    """A whole HTTP/1.1 response: status line, the server's default headers, ``headers``,
    content-length (the body's, unless given: a HEAD answer's has no body) (and
    ``connection: close`` when ``close``), then the body."""
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += (name, b": ", value, b"\r\n")
    for name, value in headers:
        head += (name, b": ", value, b"\r\n")
    length = len(body) if content_length is None else content_length
    head += (b"content-length: ", b"%d" % length, b"\r\n")
    if close:
        head.append(b"connection: close\r\n")
    head += (b"\r\n", body)
    return b"".join(head)


class DirectCall:
    """One directly served request on a connection. It stands where uvicorn's
    request/response cycle would (the protocol reads ``response_complete``, ``keep_alive``,
    ``disconnected`` and ``message_event`` and runs ``run_asgi``), and answers through
    ``handler.respond``."""

    __slots__ = ("_handler", "_request", "_write", "_close", "_default_headers", "_collector",
                 "_refusal", "_body_arrived", "on_response", "response_complete", "keep_alive",
                 "disconnected", "more_body")

    def __init__(self, handler: CallHandler, request: RawRequest, *, keep_alive: bool,
                 write: Callable[[bytes], None], close: Callable[[], None],
                 default_headers: list[tuple[bytes, bytes]],
                 on_response: Callable[[], None]) -> None:
        self._handler = handler
        self._request = request
        self._write = write
        self._close = close
        self._default_headers = default_headers
        self._collector: BodyCollector | None = None
        self._refusal: Exception | None = None
        self._body_arrived: asyncio.Event | None = None  # made only when the body lags behind
        self.on_response = on_response
        self.response_complete = False
        self.keep_alive = keep_alive
        self.disconnected = False
        self.more_body = True
        try:
            self._collector = handler.body_collector(request.headers)
        except (BodyTooLarge, ServiceError) as refused:
            self._refuse(refused)

    @property
    def message_event(self) -> "DirectCall":
        return self  # the protocol calls message_event.set() on a disconnect

    def set(self) -> None:
        if self._body_arrived is not None:
            self._body_arrived.set()

    # --- fed by the protocol's parser callbacks --------------------------------------------

    def body_received(self, chunk: bytes) -> None:
        if self._collector is None:
            return  # refused already: the rest of the body is read and dropped
        try:
            self._collector.add(chunk)
        except BodyTooLarge as refused:
            self._refuse(refused)
        self.set()

    def body_complete(self) -> None:
        self.more_body = False
        self.set()

    def _refuse(self, refusal: Exception) -> None:
        self._collector = None
        self._refusal = refusal
        self.more_body = False

    # --- run as the connection's current request --------------------------------------------

    async def run_asgi(self, app: Any = None) -> None:
        """Wait for the body if it is still arriving, then answer (``app`` is unused: uvicorn's
        pipelining passes it)."""
        try:
            if self.more_body and not self.disconnected:
                await self._wait_for_body()
            if self.disconnected:
                return
            if self._refusal is None and self._collector is not None:
                try:
                    self._request.body = self._collector.body()
                except BodyTooLarge as refused:
                    self._refusal = refused
            response = await self._handler.respond(self._request, self._refusal)
        except Exception:
            log.exception("direct call failed")
            response = (500, [(b"content-type", b"text/plain; charset=utf-8")],
                        b"Internal Server Error")
            self.keep_alive = False
        finally:
            self._collector = None
        self._send(*response)

    async def _wait_for_body(self) -> None:
        self._body_arrived = asyncio.Event()
        while self.more_body and not self.disconnected:
            self._body_arrived.clear()
            try:
                async with asyncio.timeout(BODY_IDLE_SECONDS):
                    await self._body_arrived.wait()
            except TimeoutError:
                self._refuse(BodyTimeout(BODY_IDLE_SECONDS))
                self.keep_alive = False  # where this request ends is unknown now

    def _send(self, status: int, headers: list, body: bytes,
              content_length: int | None = None) -> None:
        if self.disconnected:
            return
        self._write(encode_response(status, self._default_headers, headers, body,
                                    close=not self.keep_alive, content_length=content_length))
        self.response_complete = True
        if not self.keep_alive:
            self._close()
        on_response, self.on_response = self.on_response, _nothing
        on_response()


def _nothing() -> None:
    pass
