"""Raw ASGI request helpers shared by the AWS JSON handler and the read-only S3 API."""

from __future__ import annotations

import asyncio
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


async def read_body(receive: Receive, headers: list, limit: int, *, drain_factor: int = 1,
                    idle_seconds: float = BODY_IDLE_SECONDS) -> bytes:
    """Check the headers' limits, then read the body up to ``limit`` bytes; BodyTooLarge beyond
    it, BodyTimeout (408) when no part of it arrives for ``idle_seconds``.

    With ``drain_factor`` > 1 an oversized body up to that multiple is read to its end first,
    so the client is listening when the error arrives; bigger ones are refused at once.
    """
    check_headers(headers)
    declared = header(headers, b"content-length")
    if declared.isdigit() and int(declared) > limit * drain_factor:
        raise BodyTooLarge()
    # A declared length over the limit is refused after draining: keep none of it meanwhile.
    keep = limit if not declared.isdigit() or int(declared) <= limit else -1
    chunks, size = [], 0
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                message = await receive()
        except TimeoutError:
            raise BodyTimeout(idle_seconds) from None
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit * drain_factor:
            raise BodyTooLarge()
        if size <= keep:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    if size > limit:
        raise BodyTooLarge()
    return b"".join(chunks)
