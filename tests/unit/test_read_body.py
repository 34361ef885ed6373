"""read_body on the ASGI path: a request that declares no body is answered without waiting."""

from __future__ import annotations

import asyncio

import pytest

from searchtrail.gateway.http import BodyTimeout, read_body


def _receiver(messages: list[dict]):  # type: ignore[no-untyped-def]
    calls = []

    async def receive() -> dict:
        calls.append(1)
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that never sends: only the idle timeout ends it
        raise AssertionError("unreachable")

    return receive, calls


@pytest.mark.parametrize("headers", [[], [(b"content-length", b"0")]])
def test_no_declared_body_is_not_waited_for(headers) -> None:  # type: ignore[no-untyped-def]
    receive, calls = _receiver([])
    assert asyncio.run(read_body(receive, headers, 100, idle_seconds=0.01)) == b""
    assert calls == []


def test_a_declared_body_is_read_and_a_silent_one_times_out() -> None:
    receive, calls = _receiver([{"type": "http.request", "body": b"ab", "more_body": True},
                                {"type": "http.request", "body": b"c"}])
    assert asyncio.run(read_body(receive, [(b"content-length", b"3")], 100)) == b"abc"
    assert len(calls) == 2
    receive, _ = _receiver([])
    with pytest.raises(BodyTimeout):
        asyncio.run(read_body(receive, [(b"transfer-encoding", b"chunked")], 100,
                              idle_seconds=0.01))
