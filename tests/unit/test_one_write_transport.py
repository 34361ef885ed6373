"""A response's head and body leave in one write; interim heads and lone heads are not lost."""

from __future__ import annotations

import asyncio

from searchtrail.gateway.httpserver import OneWriteTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_head_and_body_go_out_together() -> None:
    async def scenario() -> list[bytes]:
        real = RecordingTransport()
        transport = OneWriteTransport(real)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        await asyncio.sleep(0)  # let the scheduled flush run: it must find nothing held
        return real.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


def test_interim_head_is_sent_at_once_and_a_lone_head_on_the_next_turn() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        real = RecordingTransport()
        transport = OneWriteTransport(real)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        before = list(real.writes)
        await asyncio.sleep(0)
        return before, real.writes

    before, after = asyncio.run(scenario())
    assert before == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert after == [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"]


def test_close_flushes_what_is_held_and_other_calls_pass_through() -> None:
    async def scenario() -> RecordingTransport:
        real = RecordingTransport()
        transport = OneWriteTransport(real)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.close()
        assert transport.get_extra_info("peername") == "info:peername"
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and real.closed
