"""Resource exhaustion (plan §3.3): the event store's filesystem fills up (F1), slow clients (F4)."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess
from tests.functional.trails import wait_for
from tests.needs import unavailable
from tests.reliability.failclosed import FAIL_CLOSED, MixedLoad, stop_and_judge
from tests.reliability.history import History, Op

pytestmark = pytest.mark.reliability

FILESYSTEM_SIZE = "16m"
RECOVERY_SECONDS = 10
F1 = MixedLoad("f1")
KEPT_POLICIES = [f"f1-keep-{k}" for k in range(10)]  # deleted (and 503'd) while the disk is full


# -- F1: the event store's filesystem fills up ---------------------------------------------

@pytest.fixture
def small_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 16 MiB tmpfs of the test's own (mounting needs root), used as the server's data dir;
    the server's log stays outside it."""
    mount = tmp_path / "data"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_SIZE}", "tmpfs",
                               str(mount)], capture_output=True, text=True, timeout=30)
        problem = done.stderr.strip() if done.returncode else None
    except FileNotFoundError as exc:
        problem = str(exc)
    if problem:
        unavailable(f"F1 needs a small tmpfs and could not mount one: {problem}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


@pytest.fixture
def server_on_small_disk(small_filesystem: Path):  # type: ignore[no-untyped-def]
    server = ServerProcess(small_filesystem, env={"SEARCHTRAIL_CAPACITY_CHECK_SECONDS": "0.2"},
                           args=["--delivery-interval", "1", "--digest-interval", "2"])
    try:
        yield server
    finally:
        server.stop()


def fill(mount: Path, *, leave_ratio: float = 0.0) -> Path:
    """Grow a filler file until only ``leave_ratio`` of the filesystem is free (0: ENOSPC)."""
    filler = mount / "filler"
    stats = os.statvfs(mount)
    keep = int(stats.f_blocks * stats.f_frsize * leave_ratio)
    with filler.open("ab") as handle:
        for chunk in (1 << 20, 1 << 12, 1 << 9):  # each loop ends within the filesystem's size
            while _available(mount) - chunk >= keep:
                try:
                    handle.write(b"\0" * chunk)
                    handle.flush()
                except OSError:  # ENOSPC: the next, smaller chunk may still fit
                    break
    return filler


def _available(mount: Path) -> int:
    stats = os.statvfs(mount)
    return stats.f_bavail * stats.f_frsize


def _get(server: ServerProcess, path: str) -> bytes:
    with urllib.request.urlopen(server.endpoint + path, timeout=5) as response:
        return response.read()


def _log_lines(server: ServerProcess) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_f1_disk_full_fails_closed_warns_early_and_recovers_without_restart(
        server_on_small_disk: ServerProcess, small_filesystem: Path, profile, ledger) -> None:
    server = server_on_small_disk.start()
    calls_while_full = profile.pick(ci=200, full=1000)
    episodes = profile.pick(ci=1, full=3)
    history = History()
    aoss = history.wrap(server.client("opensearchserverless", validate=False))
    setup = F1.start(server, history, kept=KEPT_POLICIES)
    assert server.metric("searchtrail_store_capacity_warning") == 0

    # AU-5(1): a warning well before the store is full.
    filler = fill(small_filesystem, leave_ratio=0.2)
    wait_for(lambda: server.metric("searchtrail_store_capacity_warning") == 1, seconds=10,
             what="the capacity warning metric")
    used = server.metric("searchtrail_store_capacity_used_ratio")
    assert 0.75 <= used < 0.95
    assert json.loads(_get(server, "/_searchtrail/health"))["capacity"]["warning"] is True
    warnings = [line for line in _log_lines(server) if line.get("level") == "warning"
                and line.get("logger") == "searchtrail.store.capacity"]
    assert len(warnings) == 1 and warnings[0]["used_ratio"] >= 0.75
    assert all(op.succeeded for op in (F1.call(history, aoss, "0", i) for i in range(8))), \
        "calls must still succeed at the warning level"

    during_full: list[Op] = []
    recover_seconds: list[float] = []
    for episode in range(1, episodes + 1):
        fill(small_filesystem)  # no space at all
        assert _available(small_filesystem) < 4096
        during_full += [F1.call(history, aoss, str(episode), i, delete_from=KEPT_POLICIES)
                        for i in range(calls_while_full)]
        assert server.process.poll() is None, "the server must stay up while its disk is full"

        filler.unlink()
        freed = time.monotonic()
        wait_for(lambda: history.call(aoss, "list_collections").succeeded,
                 seconds=RECOVERY_SECONDS, step=0.2, what="calls served again after freeing space")
        recover_seconds.append(time.monotonic() - freed)
        after = [F1.call(history, aoss, str(episode + 100), i) for i in range(8)]
        assert all(op.succeeded for op in after), [op for op in after if not op.succeeded]
        if episode < episodes:
            filler = fill(small_filesystem, leave_ratio=0.2)

    assert server.process.poll() is None
    verdict = stop_and_judge(server, history, F1, setup)
    failed_closed = sum((op.error_code, op.status) in FAIL_CLOSED for op in during_full)
    verdict.record(ledger, "F1", faults_injected=episodes, calls_made=len(history.ops))
    ledger.note("F1", calls_while_full=len(during_full), failed_closed=failed_closed,
                seconds_to_recover=round(max(recover_seconds), 2),
                warning_used_ratio=round(used, 3))
    assert failed_closed == len(during_full), \
        Counter((op.operation, op.status, op.error_code) for op in during_full)
    verdict.assert_holds()
    assert max(recover_seconds) <= RECOVERY_SECONDS


# -- F4: slow clients (slowloris) ----------------------------------------------------------

SLOW_CLOSE_SECONDS = 60  # the plan's bound for a connection that trickles or idles
CI_CLIENT_TIMEOUT_SECONDS = 5  # ci runs are short: the server is told to give up sooner
P99_SECONDS = 1.0
# What each kind of slow client sends up front; then one more byte per interval.
SLOW_OPENINGS = {
    "idle": b"",  # connects and sends nothing
    "headers": b"",  # the request line and headers, one byte at a time
    "body": (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: OpenSearchServerless."
             b"ListCollections\r\nContent-Type: application/x-amz-json-1.0\r\n"
             b"Content-Length: 4096\r\n\r\n"),  # then the body, one byte at a time
}
HEADER_TRICKLE = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096


@dataclass
class SlowConnection:
    kind: str
    sock: socket.socket
    opened: float
    sent: int = 0
    closed_after: float | None = None  # seconds from opening until the server closed it
    answer: bytes = b""

    def next_byte(self) -> bytes:
        if self.kind == "headers":
            return HEADER_TRICKLE[self.sent:self.sent + 1]
        return b"" if self.kind == "idle" else b" "


@dataclass
class SlowlorisRun:
    connections: list[SlowConnection]
    latencies: list[float]
    normal_failures: list[tuple[int | None, str]]  # (HTTP status or None, what went wrong)
    seconds: float


def _open_slow(port: int, kind: str) -> SlowConnection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    connection = SlowConnection(kind, sock, time.monotonic())
    if SLOW_OPENINGS[kind]:
        sock.sendall(SLOW_OPENINGS[kind])  # small: fits the socket buffer at once
    return connection


def _closed(connection: SlowConnection, now: float) -> None:
    connection.closed_after = now - connection.opened
    connection.sock.close()


def _trickle(connections: list[SlowConnection], *, interval: float, seconds: float) -> None:
    """Send one byte per connection per ``interval`` and note when the server hangs up."""
    selector = selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection.sock, selectors.EVENT_READ, connection)
    started = time.monotonic()
    next_round = started + interval
    try:
        while time.monotonic() - started < seconds and selector.get_map():
            timeout = max(0.0, min(next_round, started + seconds) - time.monotonic())
            for key, _ in selector.select(timeout):
                connection = key.data
                try:
                    data = connection.sock.recv(4096)
                except (ConnectionResetError, BlockingIOError) as exc:
                    data = b"" if isinstance(exc, ConnectionResetError) else None
                if data:
                    connection.answer += data[:512]
                elif data == b"":
                    selector.unregister(connection.sock)
                    _closed(connection, time.monotonic())
            if time.monotonic() >= next_round:
                next_round += interval
                for key in list(selector.get_map().values()):
                    connection = key.data
                    byte = connection.next_byte()
                    if not byte:
                        continue
                    try:
                        connection.sock.send(byte)
                        connection.sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        selector.unregister(connection.sock)
                        _closed(connection, time.monotonic())
    finally:
        selector.close()


def _normal_client(server: ServerProcess, stop: threading.Event, latencies: list[float],
                   failures: list[tuple[int | None, str]], limit: int) -> None:
    aoss = server.client("opensearchserverless")
    for _ in range(limit):
        if stop.is_set():
            return
        started = time.monotonic()
        try:
            aoss.list_collections()
        except ClientError as exc:
            failures.append((exc.response["ResponseMetadata"].get("HTTPStatusCode"), str(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure of a normal client counts
            failures.append((None, f"{type(exc).__name__}: {exc}"))
        latencies.append(time.monotonic() - started)


@pytest.fixture(scope="module")
def slowloris(tmp_path_factory, profile):  # type: ignore[no-untyped-def]
    """One slowloris episode against a fresh server while normal clients keep calling."""
    count = profile.pick(ci=100, full=200)
    interval = profile.pick(ci=2.0, full=10.0)
    seconds = profile.pick(ci=20.0, full=SLOW_CLOSE_SECONDS + 15.0)
    timeout = profile.pick(ci={"SEARCHTRAIL_CLIENT_TIMEOUT_SECONDS": str(CI_CLIENT_TIMEOUT_SECONDS)},
                           full={})
    server = ServerProcess(tmp_path_factory.mktemp("f4") / "data", env=timeout)
    kinds = ["headers", "headers", "idle", "body"]
    connections: list[SlowConnection] = []
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    try:
        server.start()
        connections = [_open_slow(server.port, kinds[i % len(kinds)]) for i in range(count)]
        clients = [threading.Thread(target=_normal_client,
                                    args=(server, stop, latencies, failures, 10_000))
                   for _ in range(2)]
        started = time.monotonic()
        for client in clients:
            client.start()
        try:
            _trickle(connections, interval=interval, seconds=seconds)
            stop.wait(max(0.0, seconds - (time.monotonic() - started)))  # all closed early
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=30)
        yield SlowlorisRun(connections, latencies, failures, time.monotonic() - started)
    finally:
        stop.set()
        for connection in connections:
            connection.sock.close()
        server.stop()


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def test_f4_normal_clients_keep_a_fast_p99_beside_slow_ones(slowloris: SlowlorisRun,
                                                            ledger) -> None:
    closed = [c for c in slowloris.connections if c.closed_after is not None]
    by_kind = Counter(c.kind for c in slowloris.connections)
    closed_by_kind = Counter(c.kind for c in closed)
    p99 = _p99(slowloris.latencies)
    ledger.add("F4", faults_injected=len(slowloris.connections),
               calls_made=len(slowloris.latencies),
               unexpected_5xx=sum((status or 0) >= 500 for status, _ in slowloris.normal_failures))
    ledger.note("F4", p99_ms=round(1000 * p99), normal_calls=len(slowloris.latencies),
                normal_failures=len(slowloris.normal_failures),
                seconds=round(slowloris.seconds, 1),
                slow_connections=dict(by_kind), closed_by_server=dict(closed_by_kind),
                answered_by_server=dict(Counter(c.kind for c in slowloris.connections
                                                if c.answer)),
                longest_open_seconds=round(max((c.closed_after or slowloris.seconds)
                                               for c in slowloris.connections), 1))
    assert slowloris.latencies and not slowloris.normal_failures, slowloris.normal_failures[:5]
    assert p99 < P99_SECONDS


def test_f4_slow_connections_are_closed_within_a_minute(slowloris: SlowlorisRun,
                                                        profile) -> None:
    """Within 60 s (full); ci sets the server's client timeout to 5 s and allows 10."""
    bound = profile.pick(ci=CI_CLIENT_TIMEOUT_SECONDS + 5, full=SLOW_CLOSE_SECONDS)
    still_open = Counter(c.kind for c in slowloris.connections
                         if c.closed_after is None or c.closed_after > bound)
    assert not still_open, f"open after {bound}s: {dict(still_open)}"
