"""Raw HTTP/1.1 over a loopback socket, for requests boto3 cannot make: mutated signatures,
broken framing, hostile headers. Requests are signed with botocore's own SigV4Auth; each
carries a `tid/<uuid>` User-Agent, so the store checker can join it to its record."""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.reliability.checkers import CheckResult, check_store, stored_records
from tests.reliability.history import Op
from tests.reliability.ledger import Ledger

AOSS_JSON = "application/x-amz-json-1.0"
AOSS_PREFIX = "OpenSearchServerless."
MAX_HEAD_BYTES = 256 * 1024  # bound on a response's status line and headers
_REJECTED = re.compile(r'^searchtrail_rejected_requests_total\{error_code="([^"]+)"\} (\S+)$', re.M)
_CALLS = re.compile(r"^searchtrail_calls_total\{[^}]*\} (\S+)$", re.M)


@dataclass(frozen=True)
class RawRequest:
    """One request as bytes will carry it: header lines in order, duplicates kept."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    tid: str = ""  # the correlation id in its User-Agent, if any

    @property
    def operation(self) -> str:
        return (self.header("X-Amz-Target") or "").rpartition(".")[2]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def with_header(self, name: str, value: str) -> "RawRequest":
        """``name`` set to ``value`` in place (appended when absent)."""
        if self.header(name) is None:
            return replace(self, headers=self.headers + ((name, value),))
        return replace(self, headers=tuple((k, value if k.lower() == name.lower() else v)
                                           for k, v in self.headers))

    def adding(self, name: str, value: str) -> "RawRequest":
        return replace(self, headers=self.headers + ((name, value),))

    def without(self, name: str) -> "RawRequest":
        return replace(self, headers=tuple((k, v) for k, v in self.headers
                                           if k.lower() != name.lower()))

    def with_body(self, body: bytes) -> "RawRequest":
        return replace(self, body=body).with_header("Content-Length", str(len(body)))

    def retagged(self) -> "RawRequest":
        """The same request under a fresh correlation id (SigV4 never signs the User-Agent)."""
        tid, agent = correlation_agent()
        return replace(self.with_header("User-Agent", agent), tid=tid)

    def encode(self) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in self.headers) + "\r\n"
        return head.encode("latin-1") + self.body


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float  # from the last byte sent to the whole response read

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def request_id(self) -> str | None:
        return self.header("x-amzn-RequestId")

    @property
    def error(self) -> tuple[int, str | None]:
        """(status, __type); __type is None when the body is not an AWS JSON error."""
        try:
            return self.status, json.loads(self.body).get("__type")
        except (ValueError, AttributeError):
            return self.status, None

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.body)


class RawConnection:
    """One client socket to 127.0.0.1:port. Every read is bounded by ``timeout``."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self._buffer = b""
        self._sent_at = time.monotonic()

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self._sent_at = time.monotonic()

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def response(self) -> RawResponse:
        """Read one response (Content-Length, chunked or up to EOF); TimeoutError if none comes."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ValueError("response head too large")
            if not self._fill():
                raise ConnectionError(f"closed before a response: {self._buffer[:200]!r}")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        response = RawResponse(int(status_line.split()[1]), headers, b"", 0.0)
        length = response.header("content-length")
        if length is not None:
            while len(self._buffer) < int(length):
                if not self._fill():
                    raise ConnectionError("connection closed inside the response body")
            response.body, self._buffer = self._buffer[:int(length)], self._buffer[int(length):]
        elif (response.header("transfer-encoding") or "").lower() == "chunked":
            response.body = self._chunked()
        else:
            while self._fill():
                pass
            response.body, self._buffer = self._buffer, b""
        response.seconds = time.monotonic() - self._sent_at
        return response

    def _chunked(self) -> bytes:
        body = b""
        for _ in range(100_000):  # bound: chunks of one response
            while b"\r\n" not in self._buffer:
                if not self._fill():
                    raise ConnectionError("connection closed inside a chunk size")
            size_line, self._buffer = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self._buffer) < size + 2:
                if not self._fill():
                    raise ConnectionError("connection closed inside a chunk")
            body, self._buffer = body + self._buffer[:size], self._buffer[size + 2:]
            if size == 0:
                return body
        raise ValueError("too many chunks")

    def closed_by_server(self, within: float = 5.0) -> bool:
        """True when the server closes the connection within ``within`` seconds (whatever it
        still sends before closing is read and dropped)."""
        deadline = time.monotonic() + within
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if self.sock.recv(65536) == b"":
                    return True
            return False
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(self.timeout)


def exchange(port: int, data: bytes | RawRequest, *, timeout: float = 10.0) -> RawResponse:
    """Send one request on a fresh connection and read its response."""
    with RawConnection(port, timeout=timeout) as connection:
        connection.send(data.encode() if isinstance(data, RawRequest) else data)
        return connection.response()


def correlation_agent() -> tuple[str, str]:
    """A User-Agent carrying a fresh `tid/<uuid>` (tests.reliability.history's convention)."""
    tid = str(uuid.uuid4())
    return tid, f"searchtrail-reliability rawhttp tid/{tid}"


def sign(port: int, key: tuple[str, ...], *, operation: str, body: bytes = b"{}",
         region: str = "us-east-1", service: str = "aoss", when: datetime | None = None,
         content_type: str = AOSS_JSON, target: str | None = None,
         extra: dict[str, str] | None = None) -> RawRequest:
    """A POST / signed by botocore (key is (id, secret) or (id, secret, token)) at ``when``;
    ``target`` overrides the X-Amz-Target ("" sends none), ``extra`` headers are signed too."""
    headers = {"Host": f"127.0.0.1:{port}", "X-Amz-Target": target or AOSS_PREFIX + operation}
    if target == "":
        del headers["X-Amz-Target"]
    if content_type:
        headers["Content-Type"] = content_type
    headers.update(extra or {})
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                         headers=headers)
    # botocore reads its clock inside add_auth: hand it the instant to sign at.
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when or datetime.now(timezone.utc)):
        SigV4Auth(Credentials(*key), service, region).add_auth(request)
    lines = [(name, value.decode("latin-1") if isinstance(value, bytes) else value)
             for name, value in request.headers.items()]
    tid, agent = correlation_agent()
    lines += [("Content-Length", str(len(body))), ("User-Agent", agent)]
    return RawRequest("POST", "/", tuple(lines), body, tid)


@dataclass
class Counters:
    """The server's own tallies from /metrics: refusals by code, and recorded calls."""

    rejected: dict[str, float] = field(default_factory=dict)
    calls: float = 0.0

    def rejected_since(self, earlier: "Counters", code: str) -> float:
        return self.rejected.get(code, 0.0) - earlier.rejected.get(code, 0.0)


def counters(port: int) -> Counters:
    response = exchange(port, RawRequest("GET", "/metrics", (("Host", f"127.0.0.1:{port}"),)))
    text = response.body.decode()
    return Counters({code: float(value) for code, value in _REJECTED.findall(text)},
                    sum(float(value) for value in _CALLS.findall(text)))


class RawClient:
    """Sends raw requests to one server and keeps an Op (tests.reliability.history) per
    request that carries a tid, for the store checker (tests.reliability.checkers)."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        self.ops: list[Op] = []
        self._tids: set[str] = set()
        self._seq = itertools.count()

    @property
    def port(self) -> int:
        return self.server.port

    def sign(self, operation: str, body: bytes = b"{}", *, key: tuple[str, ...] | None = None,
             **options) -> RawRequest:  # type: ignore[no-untyped-def]
        return sign(self.port, key or self.server.credentials(), operation=operation,
                    body=body, **options)

    def send(self, request: RawRequest | bytes, *, timeout: float = 10.0) -> RawResponse:
        """One request on a fresh connection, under a tid of its own. Bytes are sent without
        an Op: a record of their tid, if any, would count as a phantom."""
        tracked = isinstance(request, RawRequest) and bool(request.tid)
        if tracked:
            if request.tid in self._tids:  # a resend or a variant: one tid per request sent
                request = request.retagged()
            self._tids.add(request.tid)
        started = time.time()
        response = exchange(self.port, request, timeout=timeout)
        if tracked:
            status, code = response.error
            self.ops.append(Op(tid=request.tid, service="opensearchserverless",
                               operation=request.operation, params={}, subject=None,
                               start=started, seq=next(self._seq), end=time.time(),
                               outcome="ok", status=status, error_code=code,
                               request_id=response.request_id))
        return response

    def refused(self, request: RawRequest, code: str, *, status: int = 403,
                message: str | None = None) -> RawResponse:
        """Send ``request``; assert the error, that the server counted it as refused, and that
        no call ran (searchtrail_calls_total unchanged)."""
        before = counters(self.port)
        response = self.send(request)
        after = counters(self.port)
        assert response.error == (status, code), response.body[:300]
        if message is not None:
            assert message in response.json()["message"], response.json()["message"]
        assert after.rejected_since(before, code) == 1
        assert after.calls == before.calls
        return response

    def check_store(self) -> CheckResult:
        """The store checker over every call this client made to its server so far."""
        return check_store(self.ops, stored_records(self.server))

    def book(self, ledger: Ledger, scenario: str, responses: list[RawResponse], *,
             bad: int) -> None:
        """Run the store checker, add the scenario's counts to the ledger, assert its pass
        criterion: no 5xx, and the checker's."""
        result = self.check_store()
        fives = [r for r in responses if r.status >= 500]
        ledger.add(scenario, calls_made=len(responses), bad_inputs=bad,
                   unexpected_5xx=len(fives), records_checked=len(responses), lost=result.lost,
                   duplicated=result.duplicated, phantom=result.phantom)
        assert not fives, [r.body[:200] for r in fives]
        assert result.ok, str(result)
