"""Graceful shutdown of kept-alive connections in the HTTP protocol (gateway/httpserver.py),
in process over real loopback sockets: a request already waiting in an idle connection's
socket buffer when the server stops is answered, then the connection closes."""

from __future__ import annotations

import asyncio
import socket
import time

import uvicorn
import uvloop
from uvicorn.server import ServerState

from searchtrail.gateway.httpserver import GracefulServer, SearchtrailHttpProtocol

REQUEST = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ANSWER_SECONDS = 5.0  # bounds every read: a hang fails the test instead of stalling it


async def ping(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The application behind the protocol: answers every request with 200 "pong"."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"pong"})


async def _serving() -> tuple[asyncio.AbstractServer, ServerState, int]:
    config = uvicorn.Config(ping, http=SearchtrailHttpProtocol, lifespan="off",
                            log_level="warning")
    config.load()
    state = ServerState()
    server = await asyncio.get_running_loop().create_server(
        lambda: SearchtrailHttpProtocol(config=config, server_state=state, app_state={}),
        "127.0.0.1", 0)
    return server, state, server.sockets[0].getsockname()[1]


async def _kept_alive_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has had one request answered and stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_SECONDS)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
    assert await asyncio.wait_for(reader.readexactly(4), ANSWER_SECONDS) == b"pong"
    return reader, writer


async def _shutdown_with(waiting: bytes, busy_seconds: float = 0.0) -> bytes:
    """Stop a kept-alive connection right after ``waiting`` reached the server's socket buffer,
    before the loop has had a turn to read it (as when a busy server stops), the loop then
    kept busy for ``busy_seconds``; what the client then receives until the connection
    closes."""
    server, state, port = await _serving()
    try:
        reader, writer = await _kept_alive_connection(port)
        [connection] = state.connections
        writer.write(waiting)
        connection.shutdown()
        time.sleep(busy_seconds)  # holds the loop: other calls' work, as under load
        rest = await asyncio.wait_for(reader.read(), ANSWER_SECONDS)  # until the close
        writer.close()
        return rest
    finally:
        server.close()


def test_a_request_waiting_unread_at_shutdown_is_answered_then_the_connection_closes() -> None:
    rest = asyncio.run(_shutdown_with(REQUEST))
    assert rest.startswith(b"HTTP/1.1 200"), rest
    assert b"connection: close" in rest.lower() and rest.endswith(b"pong")


def test_a_request_waiting_unread_is_answered_however_long_the_loop_was_busy() -> None:
    """On uvloop, the server's loop: a loop kept busy past the shutdown's read grace still
    reads the waiting request before the grace's timer closes the connection."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        rest = runner.run(_shutdown_with(REQUEST, busy_seconds=0.1))
    assert rest.startswith(b"HTTP/1.1 200"), rest
    assert b"connection: close" in rest.lower() and rest.endswith(b"pong")


def test_an_idle_connection_is_closed_at_shutdown() -> None:
    assert asyncio.run(_shutdown_with(b"")) == b""


def _read_until_closed(client: socket.socket) -> bytes:
    received = b""
    while chunk := client.recv(65536):  # the socket's timeout bounds each read
        received += chunk
    return received


async def _shutdown_with_a_queued_connection(server_class: type) -> bytes:
    """A connection the kernel has accepted for the listening socket but the loop has not
    yet taken (its request sent), when the server shuts down; what that client receives."""
    config = uvicorn.Config(ping, http=SearchtrailHttpProtocol, lifespan="off",
                            log_level="warning")
    config.load()
    server = server_class(config)
    server.lifespan = config.lifespan_class(config)
    listener = socket.create_server(("127.0.0.1", 0))
    await server.startup(sockets=[listener])
    # No await between here and the shutdown: the loop gets no turn to accept it.
    client = socket.create_connection(listener.getsockname(), timeout=ANSWER_SECONDS)
    try:
        client.sendall(REQUEST)
        reading = asyncio.ensure_future(asyncio.to_thread(_read_until_closed, client))
        await server.shutdown(sockets=[listener])
        try:
            return await asyncio.wait_for(reading, ANSWER_SECONDS)
        except ConnectionResetError:
            return b"(reset)"
    finally:
        client.close()


def test_a_connection_still_queued_on_the_listener_at_shutdown_is_answered() -> None:
    """On uvloop, the server's loop, which accepts within its poll."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        rest = runner.run(_shutdown_with_a_queued_connection(GracefulServer))
    assert rest.startswith(b"HTTP/1.1 200"), rest
    assert b"connection: close" in rest.lower() and rest.endswith(b"pong")
