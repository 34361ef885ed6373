"""A fault-injecting HTTP reverse proxy on 127.0.0.1 in front of an S3 server (moto): PUTs get
503 SlowDown, resets, stalls or "applied, response dropped" from a seeded sequence, all counted.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "expect"}
SLOW_DOWN = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             "<Message>Please reduce your request rate.</Message>"
             "<RequestId>{request_id}</RequestId></Error>")
UPSTREAM_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class FaultPlan:
    """Shares of PUTs that get each fault (the rest pass); ``stall_seconds`` per stall."""

    slow_down: float = 0.0
    reset: float = 0.0
    stall: float = 0.0
    drop_response: float = 0.0
    stall_seconds: float = 5.0

    def __post_init__(self) -> None:
        shares = (self.slow_down, self.reset, self.stall, self.drop_response)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(f"fault shares must be >= 0 and sum to <= 1: {shares}")

    def choose(self, draw: float) -> str:
        for name in ("slow_down", "reset", "stall", "drop_response"):
            share = getattr(self, name)
            if draw < share:
                return name
            draw -= share
        return "passed"


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up on a stalled answer: expected, nothing to report


class FaultProxy:
    """``with FaultProxy(upstream, plan, seed=1) as proxy: ... proxy.endpoint, proxy.counts``."""

    def __init__(self, upstream: str, plan: FaultPlan, *, seed: int) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()  # request path -> faults it got
        self._refusal: tuple[str, int] | None = None
        self._refused: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy",
                                        kwargs={"poll_interval": 0.1})

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(n for name, n in self.counts.items() if name not in ("passed", "not_a_put"))

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends stalls at once
        self._server.shutdown()
        with self._lock:
            for conn in self._connections:  # wake handlers idling on keep-alive reads
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def refuse_first(self, marker: str, times: int) -> None:
        """From now on, answer 503 SlowDown to the first ``times`` PUTs of every path containing
        ``marker``; later PUTs of that path follow the plan."""
        with self._lock:
            self._refusal = (marker, times)

    def _draw(self, method: str, path: str) -> str:
        with self._lock:
            fault = self.plan.choose(self._random.random()) if method == "PUT" else "not_a_put"
            if method == "PUT" and self._refusal and self._refusal[0] in path \
                    and self._refused[path] < self._refusal[1]:
                self._refused[path] += 1
                fault = "slow_down"
            self.counts[fault] += 1
            if fault not in ("passed", "not_a_put"):
                self.faulted[path] += 1
            return fault

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = UPSTREAM_TIMEOUT_SECONDS  # an idle keep-alive connection ends in time

            def setup(self) -> None:
                super().setup()
                proxy._track(self.connection, True)

            def finish(self) -> None:
                proxy._track(self.connection, False)
                try:
                    super().finish()
                except OSError:  # the connection was reset on purpose
                    pass

            def log_message(self, *_: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._draw(self.command, self.path)
                if fault == "slow_down":
                    return self._answer(503, SLOW_DOWN.format(request_id=uuid.uuid4().hex).encode(),
                                        {"Content-Type": "application/xml"})
                if fault == "reset":
                    return self._abort(reset=True)
                if fault == "stall" and proxy._stopping.wait(proxy.plan.stall_seconds):
                    return self._abort(reset=True)
                status, headers, answer = self._forward(body)
                if fault == "drop_response":
                    return self._abort(reset=False)
                self._answer(status, answer, headers)

            def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
                upstream = http.client.HTTPConnection(*proxy.upstream,
                                                      timeout=UPSTREAM_TIMEOUT_SECONDS)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                    kept = {k: v for k, v in response.getheaders()
                            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
                    return response.status, kept, answer
                finally:
                    upstream.close()

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response_only(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _abort(self, *, reset: bool) -> None:
                self.close_connection = True
                if reset:  # RST instead of FIN: linger on, zero timeout
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                self.connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        return Handler
