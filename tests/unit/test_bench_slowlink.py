"""bench.slowlink: the proxy that puts a loopback server "far away" passes every byte both ways
and holds each request for its delay."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import threading
import time
from typing import Iterator

import pytest

from bench.slowlink import measured_delay, slow_link

DELAY = 0.02


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers a PUT with the SHA-256 of its body; HEAD with nothing."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_every_byte_arrives_and_each_request_waits_its_delay(upstream) -> None:  # type: ignore[no-untyped-def]
    body = bytes(range(256)) * 4096  # 1 MiB: many chunks through the link
    with slow_link(upstream, DELAY) as link:
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=10)
        for _ in range(3):  # one keep-alive connection, request after request
            began = time.perf_counter()
            conn.request("PUT", "/object", body=body)
            answer = conn.getresponse().read()
            assert time.perf_counter() - began >= DELAY
            assert answer == hashlib.sha256(body).hexdigest().encode()
        conn.close()
        assert measured_delay(link) >= DELAY
