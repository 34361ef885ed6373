"""Raw request helpers shared by the AWS JSON handler (ASGI and direct) and the read-only S3 API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

from searchtrail.protocol.errors import ServiceError

Receive = Callable[[], Awaitable[dict]]

# The HTTP parser bounds neither; an SDK request has about ten header lines and under 4 KiB.
MAX_HEADER_FIELDS = 100
MAX_HEADER_BYTES = 16 * 1024  # names and values together
# A body that stops arriving gets a 408 after this long without a byte (the HTTP protocol's
# client timeout, 30 s for the whole request, then closes the connection).
BODY_IDLE_SECONDS = 10.0


class BodyTooLarge(Exception):
    """The request body is over the handler's limit."""


class HeadersTooLarge(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("RequestHeaderFieldsTooLargeException", message, status=431)


class BodyTimeout(ServiceError):
    def __init__(self, seconds: float) -> None:
        super().__init__("RequestTimeoutException", "The request body did not arrive within "
                         f"{seconds:g} seconds; the request was not processed.", status=408)


@dataclass(slots=True)
class RawRequest:
    """What the AWS call handler needs of an HTTP request, whichever way it arrived."""

    method: str
    raw_path: str  # without the query string
    query_string: str
    headers: list[tuple[bytes, bytes]]  # names lower-cased
    peer: str  # the socket peer's address
    tls: dict[str, str] | None  # tlsVersion / cipherSuite when served over TLS
    body: bytes = b""


def scope_peer(scope: dict) -> str:
    """The socket peer's address from an ASGI scope ('' when the server gives none)."""
    return (scope.get("client") or ("",))[0] or ""


def client_address(peer: str, headers: list, trusted_proxies: frozenset[str]) -> str:
    """The caller's address: the socket peer, or, when the peer is one of the trusted proxies,
    the nearest X-Forwarded-For hop that is not one."""
    if peer not in trusted_proxies:
        return peer
    forwarded = header(headers, b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return peer


def header(headers: list, name: bytes) -> str:
    """The first value of a header (names arrive lower-cased from the ASGI server), or ''."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def check_headers(headers: list) -> None:
    """HeadersTooLarge (431) when the request has too many header lines or too many bytes."""
    if len(headers) > MAX_HEADER_FIELDS:
        raise HeadersTooLarge(f"The request has {len(headers)} header fields; at most "
                              f"{MAX_HEADER_FIELDS} are accepted.")
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(f"The request headers take {size} bytes; at most "
                              f"{MAX_HEADER_BYTES} are accepted.")


class BodyCollector:
    """A request body as it arrives, within the handler's limits (shared by the ASGI path and
    the direct one). The header limits are checked on creation.

    Up to ``limit`` bytes are kept; BodyTooLarge beyond it. With ``drain_factor`` > 1 an
    oversized body up to that multiple is read to its end first, so the client is listening
    when the error arrives; bigger ones (declared or sent) are refused at once.
    """

    __slots__ = ("_limit", "_ceiling", "_keep", "_chunks", "size")

    def __init__(self, headers: list, limit: int, drain_factor: int = 1) -> None:
        check_headers(headers)
        declared = header(headers, b"content-length")
        self._limit = limit
        self._ceiling = limit * drain_factor
        if declared.isdigit() and int(declared) > self._ceiling:
            raise BodyTooLarge()
        # A declared length over the limit is refused after draining: keep none of it meanwhile.
        self._keep = limit if not declared.isdigit() or int(declared) <= limit else -1
        self._chunks: list[bytes] = []
        self.size = 0

    @staticmethod
    def expected(headers: list) -> bool:
        """Whether the request has a body: a non-zero Content-Length or a Transfer-Encoding."""
        declared = header(headers, b"content-length")
        return bool(header(headers, b"transfer-encoding")) or (declared not in ("", "0"))

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._ceiling:
            raise BodyTooLarge()
        if self.size <= self._keep:
            self._chunks.append(chunk)

    def body(self) -> bytes:
        """The whole body, once it has all arrived."""
        if self.size > self._limit:
            raise BodyTooLarge()
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(receive: Receive, headers: list, limit: int, *, drain_factor: int = 1,
                    idle_seconds: float = BODY_IDLE_SECONDS) -> bytes:
    """Check the headers' limits, then read the body (BodyCollector's limits); BodyTimeout
    (408) when no part of it arrives for ``idle_seconds``."""
    collector = BodyCollector(headers, limit, drain_factor)
    if not collector.expected(headers):
        return b""  # no length and no chunked coding: HTTP/1.1 says there is no body to wait for
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                message = await receive()
        except TimeoutError:
            raise BodyTimeout(idle_seconds) from None
        if message["type"] == "http.disconnect":
            break
        collector.add(message.get("body", b""))
        if not message.get("more_body"):
            break
    return collector.body()
