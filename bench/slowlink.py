"""A loopback TCP proxy that holds every chunk a client sends for a fixed delay: a server "far
away" (S3 in another building: 20–50 ms a request) for benchmarks on one machine.

Each chunk is forwarded ``delay`` seconds after it arrived, in order, so a request costs one
delay however many chunks it spans; answers come back at once. Runs on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import threading
import time
from typing import Iterator

CHUNK_BYTES = 256 * 1024


async def _forward_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        delay: float) -> None:
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await held.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()

    releasing = asyncio.ensure_future(release())
    try:
        while data := await reader.read(CHUNK_BYTES):
            held.put_nowait((loop.time() + delay, data))
    finally:
        held.put_nowait((0.0, b""))
        with contextlib.suppress(ConnectionError):
            await releasing
        with contextlib.suppress(OSError):
            writer.write_eof()


class SlowLink:
    """Listens on 127.0.0.1 (``endpoint``) and forwards to ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slowlink",
                                        daemon=True)
        self._server: asyncio.base_events.Server | None = None
        # asyncio holds tasks weakly: a connection whose client has gone while its upstream
        # half waits would be collected mid-await (and reported) without this reference
        self._connections: set[asyncio.Task] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_forward_late(client_reader, server_writer, self.delay),
                                 _forward_late(server_reader, client_writer, 0.0),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the link is closing: asyncio would report a cancelled connection as an error
        finally:
            server_writer.close()
            client_writer.close()

    def start(self) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop)
        self._server = started.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


@contextlib.contextmanager
def slow_link(upstream: tuple[str, int], delay: float) -> Iterator[SlowLink]:
    link = SlowLink(upstream, delay)
    link.start()
    try:
        yield link
    finally:
        link.stop()


def measured_delay(link: SlowLink, attempts: int = 5) -> float:
    """The median time a tiny HTTP request takes through ``link`` (seconds), to show the delay
    holds."""
    times = []
    for _ in range(attempts):
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=10)
        began = time.perf_counter()
        conn.request("HEAD", "/")
        conn.getresponse().read()
        times.append(time.perf_counter() - began)
        conn.close()
    return sorted(times)[len(times) // 2]
