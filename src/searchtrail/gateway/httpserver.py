"""The HTTP protocol: uvicorn's httptools protocol, plus signed AWS calls and the read-only S3
API's GET and HEAD served directly (gateway/direct.py), the negotiated TLS version and cipher,
a client timeout, and each response's head and body sent in one write.

CloudTrail's tlsDetails needs the TLS details and uvicorn does not expose the ssl object to
apps. uvicorn writes a response's head and body separately: two send() calls, each holding
the GIL.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, Protocol
from urllib.parse import unquote

import httptools
import orjson
import uvicorn

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from searchtrail.gateway.direct import CallHandler, DirectCall, encode_response
from searchtrail.gateway.http import MAX_HEADER_BYTES, RawRequest

SCOPE_KEY = "searchtrail.tls"
CLIENT_TIMEOUT_SECONDS = 30.0  # uvicorn has no header timeout: a slow client would stay forever
# How long a TLS client may take to answer our close_notify before its connection is dropped;
# checked again while a response is still being sent.
TLS_CLOSE_WAIT_SECONDS = 0.5
# At shutdown, how long an idle keep-alive connection stays open so that a request already in
# its socket buffer is read (and answered, then the connection closed) rather than dropped.
SHUTDOWN_READ_GRACE_SECONDS = 0.01
# At shutdown, loop turns before the listening socket closes (see GracefulServer).
ACCEPT_TURNS_BEFORE_CLOSE = 2
# A request's line and headers, counted as they arrive: the parser buffers them whole (and
# slower the longer they grow) before the handler's 431 for more than MAX_HEADER_BYTES could be
# answered. Well above that (the handler still answers what passes it, and counts it in
# /metrics), and one socket read may pass it before the connection is refused.
MAX_HEAD_BYTES = 16 * MAX_HEADER_BYTES
_HEAD_END = b"\r\n\r\n"
_FINAL_HEAD = b"HTTP/1.1 "
_INTERIM_HEAD = b"HTTP/1.1 1"  # 100 Continue: the client waits for it, never hold it back


def scope_tls(scope: dict) -> dict[str, str] | None:
    """An ASGI request's TLS version and cipher (the protocol puts them in the scope's
    extensions); None when it came over plain HTTP."""
    if scope.get("scheme") != "https":
        return None
    return dict((scope.get("extensions") or {}).get(SCOPE_KEY) or {})


class PrefixedHandler(CallHandler, Protocol):
    """A handler that serves the paths under its prefix (the read-only S3 API)."""

    def serves(self, path: str) -> bool: ...


class OneWriteTransport:
    """Holds a response head back until the next write (its body), then sends both at once.

    Anything held is flushed before close/abort and, at the latest, on the loop's next turn.
    ``on_close`` runs after every close, whoever asks for it. Every other attribute is the real
    transport's.
    """

    def __init__(self, transport: asyncio.Transport,
                 on_close: Callable[[], None] | None = None) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._on_close = on_close

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(_FINAL_HEAD) and not data.startswith(_INTERIM_HEAD):
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)
            return
        self._transport.write(data)

    def write_whole(self, data: bytes) -> None:
        """A whole response (head and body): written at once; dropped once the connection is
        closing (a pipelined call answered after its client left)."""
        if self._held is not None:
            data, self._held = self._held + data, None
        if not self._transport.is_closing():
            self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()
        if self._on_close is not None:
            self._on_close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that its shutdown first gives the loop turns to accept the
    connections the kernel has already queued on the listening socket: closing it resets them,
    requests and all, and with a socket per worker (SO_REUSEPORT) no other worker takes them.
    ``after_shutdown`` runs once it has shut down (uvicorn then ends the process by the
    signal that stopped it, so code after ``run`` would not)."""

    def __init__(self, config: uvicorn.Config,
                 after_shutdown: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._after_shutdown = after_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for _ in range(ACCEPT_TURNS_BEFORE_CLOSE):
            await asyncio.sleep(0)  # the loop's poll accepts what is queued; then they close
        await super().shutdown(sockets=sockets)
        if self._after_shutdown is not None:
            self._after_shutdown()


class SearchtrailHttpProtocol(HttpToolsProtocol):
    # From connect (or a keep-alive request's first byte) until the request is complete.
    client_timeout: float = CLIENT_TIMEOUT_SECONDS
    # Serves `POST /` directly when set; otherwise every request goes to the ASGI app.
    aws_calls: CallHandler | None = None
    # Read-only S3 APIs whose GET and HEAD requests are served directly (each names its prefix).
    s3_apis: tuple[PrefixedHandler, ...] = ()
    _request_deadline: asyncio.TimerHandle | None = None
    _tls_close_wait: asyncio.TimerHandle | None = None
    _tls: dict[str, str] | None = None
    _stopping = False  # the server is shutting down: every request is the connection's last
    _reading_body = False  # a request's head was parsed, its body is still arriving
    _head_bytes = 0  # of the request head still arriving
    # The 400 for bytes the parser refused, owed once the requests before them are answered.
    _refusal: bytes | None = None

    @classmethod
    def configured(cls, *, client_timeout: float = CLIENT_TIMEOUT_SECONDS,
                   aws_calls: CallHandler | None = None,
                   s3_apis: tuple[PrefixedHandler, ...] = ()) -> type["SearchtrailHttpProtocol"]:
        return type(cls.__name__, (cls,), {"client_timeout": client_timeout,
                                           "aws_calls": aws_calls, "s3_apis": tuple(s3_apis)})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = OneWriteTransport(  # type: ignore[assignment]
            transport, on_close=self._bound_tls_close if self.scheme == "https" else None)
        self._arm_request_deadline()  # a client that connects and sends nothing

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:  # after bytes the parser refused, nothing more is read
            return
        if not self._reading_body:
            end = data.find(_HEAD_END)  # the bytes after it are a body or the next request's
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, "RequestHeaderFieldsTooLargeException",
                             f"The request line and headers take more than {MAX_HEAD_BYTES} "
                             "bytes; the request was not processed.")
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """Bytes the HTTP parser refused (bad framing, smuggling): an AWS-shaped 400, then the
        connection closes. The complete requests before them are answered first: each may
        have run and been recorded, and its client must learn how it ended."""
        self._refuse(400, "SerializationException", f"The HTTP request is malformed: {msg}")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` for bytes that are no request to serve, after the requests before
        them, then close the connection."""
        body = orjson.dumps({"__type": code, "message": message})
        self._refusal = encode_response(
            status, self.server_state.default_headers,
            [(b"content-type", b"application/x-amz-json-1.1"),
             (b"x-amzn-errortype", code.encode())], body, close=True)
        self._disarm_request_deadline()
        waiting = self.cycle is not None and not self.cycle.response_complete
        if self._reading_body and waiting:  # the refused bytes are this request's: never run
            queued = self.pipeline and self.pipeline[0][0] is self.cycle
            if queued:
                self.pipeline.popleft()
            waiting = bool(queued)  # queued only behind a request still running
        if not waiting:
            self._send_refusal()

    def on_response_complete(self) -> None:
        last = not self.pipeline
        super().on_response_complete()
        if last and self._refusal is not None:
            self._send_refusal()

    def _send_refusal(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(self._refusal)  # type: ignore[arg-type]
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._request_deadline is None:  # the next request on a kept-alive connection
            self._arm_request_deadline()
        if self.scheme != "https":
            return
        if self._tls is None:
            self._tls = self._negotiated_tls()
        if self._tls:
            self.scope["extensions"] = {**self.scope.get("extensions", {}),
                                        SCOPE_KEY: dict(self._tls)}

    def _negotiated_tls(self) -> dict[str, str]:
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return {}
        cipher = ssl_object.cipher()  # (OpenSSL name, protocol version, secret bits)
        details = {"tlsVersion": ssl_object.version() or ""}
        if cipher:
            details["cipherSuite"] = cipher[0]
        return details

    def shutdown(self) -> None:
        """Graceful shutdown. uvicorn closes an idle connection at once, dropping a request
        whose bytes already wait, unread, in its socket buffer (the client then sees the
        connection closed without an answer); the loop gets a turn to read it first."""
        self._stopping = True  # a request read from now on closes the connection after it
        if self._idle():
            self.loop.call_later(SHUTDOWN_READ_GRACE_SECONDS, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self._idle() and not self.transport.is_closing():
            self.transport.close()

    def _idle(self) -> bool:
        # Pipelined requests wait only behind an unfinished one, so no pipeline check.
        return self.cycle is None or self.cycle.response_complete

    def on_headers_complete(self) -> None:
        self._reading_body = True
        self._head_bytes = 0
        direct = self._direct_request()
        if direct is None:
            super().on_headers_complete()
            if self._stopping and self.cycle is not None:
                self.cycle.keep_alive = False
            return
        handler, method, raw_path, query = direct
        http_version = self.parser.get_http_version()
        request = RawRequest(method=method, raw_path=raw_path, query_string=query,
                             headers=self.headers,
                             peer=self.client[0] if self.client else "",
                             tls=dict(self._tls) if self._tls else None)
        previous = self.cycle
        self.cycle = DirectCall(  # type: ignore[assignment]
            handler, request,
            keep_alive=(http_version != "1.0" and self.parser.should_keep_alive()
                        and not self._stopping),
            write=self.transport.write_whole, close=self.transport.close,  # type: ignore[attr-defined]
            default_headers=self.server_state.default_headers,
            on_response=self.on_response_complete)
        if previous is None or previous.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:  # pipelined behind an unfinished request, as uvicorn queues them
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def _direct_request(self) -> tuple[CallHandler, str, str, str] | None:
        """(handler, method, raw path, query) of a request served without the ASGI app:
        signed AWS calls (`POST /`) and the S3 APIs' GET and HEAD. None for everything else,
        and for `Expect: 100-continue`, an upgrade or a URL the parser refuses: uvicorn's
        cycle handles those."""
        if self.expect_100_continue or self.parser.should_upgrade():
            return None
        method = self.parser.get_method()
        if method == b"POST":
            return (self.aws_calls, "POST", "/", "") if (self.aws_calls is not None
                                                         and self.url == b"/") else None
        if not self.s3_apis or method not in (b"GET", b"HEAD"):
            return None
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserError:
            return None
        raw_path = url.path.decode("latin-1")
        path = unquote(raw_path) if "%" in raw_path else raw_path  # as uvicorn's scope["path"]
        for api in self.s3_apis:
            if api.serves(path):
                return api, method.decode("ascii"), raw_path, (url.query or b"").decode("latin-1")
        return None

    def on_body(self, body: bytes) -> None:
        if isinstance(self.cycle, DirectCall):
            if not self.cycle.response_complete:
                self.cycle.body_received(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._disarm_request_deadline()
        if isinstance(self.cycle, DirectCall):
            self.cycle.body_complete()
            return
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_request_deadline()
        if self._tls_close_wait is not None:
            self._tls_close_wait.cancel()
            self._tls_close_wait = None
        super().connection_lost(exc)

    def _bound_tls_close(self) -> None:
        """After any close of a TLS connection (shutdown, keep-alive or client timeout, an
        answer that ends the connection). Closing waits for the client's close_notify, which
        an idle pooled client (boto3's, the AWS CLI's) or a silent one never sends: asyncio
        would keep the connection ~30 s, and a stopping server's exit would wait out its whole
        graceful timeout. Once our side has nothing left to send, an unanswered connection is
        dropped instead."""
        if self._tls_close_wait is None:
            self._tls_close_wait = self.loop.call_later(TLS_CLOSE_WAIT_SECONDS,
                                                        self._drop_unanswered_tls_close)

    def _drop_unanswered_tls_close(self) -> None:
        self._tls_close_wait = None
        if (self.transport.is_closing() and not self.flow.write_paused
                and not self.transport.get_write_buffer_size()):
            self.transport.abort()
        else:  # a response still running or being sent: it finishes first
            self._bound_tls_close()

    def _arm_request_deadline(self) -> None:
        self._request_deadline = self.loop.call_later(self.client_timeout, self._too_slow)

    def _disarm_request_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _too_slow(self) -> None:
        self._request_deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # an app still waiting for the body sees http.disconnect
