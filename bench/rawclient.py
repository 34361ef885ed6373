"""An asyncio HTTP/1.1 client that replays pre-signed raw requests over keep-alive connections.

`closed_loop` sends a list as fast as `connections` connections allow (pre-creating, cleaning
up, and a fallback load generator when wrk is missing). `open_loop` sends at a fixed rate and
measures each latency from the request's *scheduled* send time, so a stalled server is charged
for the requests that queued behind the stall (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency of searchtrail
    uvloop = None

READ_TIMEOUT = 30.0


@dataclass
class Outcome:
    statuses: dict[int, int] = field(default_factory=dict)  # status (0: transport error) -> count
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    service_times: list[float] = field(default_factory=list)  # send -> answer, seconds
    pacer_lags: list[float] = field(default_factory=list)  # open loop: scheduled -> released
    not_sent: int = 0  # deadline reached before the request's turn
    wall: float = 0.0

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if status)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"])), keep_alive
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body), keep_alive
            body += chunk[:-2]
    return status, await reader.read(), False  # no length: the body ends with the connection


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def roundtrip(self, raw: bytes) -> tuple[int, bytes]:
        """(status, body); status 0 if the connection failed (it is reopened next time)."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(raw)
            status, body, keep_alive = await asyncio.wait_for(_read_response(self.reader),
                                                              READ_TIMEOUT)
            if not keep_alive:  # moto's werkzeug server closes after every answer
                self.close()
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            self.close()
            return 0, repr(exc).encode()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed_loop(host: str, port: int, requests: list[bytes], connections: int,
                       deadline: float) -> Outcome:
    outcome = Outcome()
    queue = iter(requests)

    async def worker() -> None:
        connection = _Connection(host, port)
        try:
            for raw in queue:
                if time.monotonic() > deadline:
                    outcome.not_sent += 1
                    continue
                started = time.perf_counter()
                status, _ = await connection.roundtrip(raw)
                elapsed = time.perf_counter() - started
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if status:
                    outcome.latencies.append(elapsed)
                    outcome.service_times.append(elapsed)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, connections))))
    outcome.wall = time.perf_counter() - started
    return outcome


async def _open_loop(host: str, port: int, requests: list[bytes], rate: float, connections: int,
                     deadline: float) -> Outcome:
    outcome = Outcome()
    queue: asyncio.Queue = asyncio.Queue()
    start = time.perf_counter() + 0.05

    async def pacer() -> None:
        # Releases every request whose scheduled time has come; the sleep only sets the pace.
        for i, raw in enumerate(requests):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            outcome.pacer_lags.append(time.perf_counter() - scheduled)  # the client's lateness
            queue.put_nowait((scheduled, raw))
        for _ in range(connections):
            queue.put_nowait(None)

    async def worker() -> None:
        connection = _Connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                scheduled, raw = item
                if time.monotonic() > deadline:
                    outcome.not_sent += 1
                    continue
                sent = time.perf_counter()
                status, _ = await connection.roundtrip(raw)
                done = time.perf_counter()
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if status:
                    outcome.latencies.append(done - scheduled)
                    outcome.service_times.append(done - sent)
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(pacer(), *(worker() for _ in range(connections)))
    outcome.wall = time.perf_counter() - began
    return outcome


def _run(coroutine):  # type: ignore[no-untyped-def]
    if uvloop is not None:
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def closed_loop(host: str, port: int, requests: list[bytes], connections: int = 16,
                max_seconds: float = 120.0) -> Outcome:
    return _run(_closed_loop(host, port, requests, connections, time.monotonic() + max_seconds))


def open_loop(host: str, port: int, requests: list[bytes], rate: float, connections: int = 64,
              max_seconds: float = 120.0) -> Outcome:
    return _run(_open_loop(host, port, requests, rate, connections,
                           time.monotonic() + max_seconds))
