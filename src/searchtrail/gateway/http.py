"""Raw ASGI request helpers shared by the AWS JSON handler and the read-only S3 API."""

from __future__ import annotations

from typing import Awaitable, Callable

Receive = Callable[[], Awaitable[dict]]


class BodyTooLarge(Exception):
    """The request body is over the handler's limit."""


def header(headers: list, name: bytes) -> str:
    """The first value of a header (names arrive lower-cased from the ASGI server), or ''."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


async def read_body(receive: Receive, headers: list, limit: int, *, drain_factor: int = 1) -> bytes:
    """Read the body up to ``limit`` bytes; BodyTooLarge beyond it.

    With ``drain_factor`` > 1 an oversized body up to that multiple is read to its end first,
    so the client is listening when the error arrives; bigger ones are refused at once.
    """
    declared = header(headers, b"content-length")
    if declared.isdigit() and int(declared) > limit * drain_factor:
        raise BodyTooLarge()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit * drain_factor:
            raise BodyTooLarge()
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    if size > limit:
        raise BodyTooLarge()
    return b"".join(chunks)
