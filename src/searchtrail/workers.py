"""Several server processes on one port (`serve --workers N`, a listening socket each): a
supervisor forks them, passes a stop on to each once, and stops them all as soon as one ends.

Each worker has its own event loop and GIL, so the HTTP edge, SigV4 and the records of
different connections run on different cores; their writes still take turns on the store.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Callable

log = logging.getLogger("searchtrail.workers")

# prometheus_client keeps each process's values in files under this folder when the variable
# is set before it is imported (it chooses how to store values at import).
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# prctl(PR_SET_PDEATHSIG): the kernel signals a worker whose supervisor died (even by SIGKILL)
_PR_SET_PDEATHSIG = 1


def supervise(socks: list[socket.socket],
              run_worker: Callable[[int, socket.socket], None]) -> int:
    """Fork a worker per socket of ``socks`` (`listening_sockets`), worker i running
    ``run_worker(i, socks[i])``; return the supervisor's exit status once every worker has
    ended: 0 after a requested stop in which each worker exited cleanly, 1 when one ended by
    itself or failed."""
    children: dict[int, int] = {}  # pid -> worker index
    supervisor = os.getpid()
    for index, sock in enumerate(socks):
        pid = os.fork()
        if pid == 0:
            for other in socks:  # a worker holds its own socket only: when it ends, the
                if other is not sock:  # kernel spreads new connections over the others
                    other.close()
            os._exit(_worker(index, supervisor, functools.partial(run_worker, index, sock)))
        children[pid] = index
    for sock in socks:  # the workers hold them; the supervisor accepts nothing
        sock.close()

    stopping = False

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            for pid in children:
                _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    status = 0
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        if code != 0 or not stopping:
            status = 1
            how = f"exit status {code}" if code >= 0 else f"signal {-code}"
            print(f"searchtrail: worker {index} (pid {pid}) ended with {how}"
                  + ("" if stopping else "; stopping the other workers"),
                  file=sys.stderr, flush=True)
        stop_all()
    return status


def _worker(index: int, supervisor: int, run_worker: Callable[[], None]) -> int:
    """A forked worker's life; its exit status."""
    # Its own process group: a terminal's Ctrl-C reaches the supervisor alone, which passes
    # one SIGTERM on (a second signal would make uvicorn skip its graceful shutdown).
    os.setpgid(0, 0)
    _exit_with_parent()
    if os.getppid() != supervisor:  # it died before the line above
        return 1
    # uvicorn raises the stop signal again once it has shut down gracefully: a clean exit
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        run_worker()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _exit_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: a worker outlives a killed supervisor
        pass


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening TCP sockets on (host, port), one per worker; ``port`` 0 takes a
    free port for them all. Raises OSError (the port is taken) before any worker starts.

    Several share the port with SO_REUSEPORT, and the kernel hashes each new connection to
    one of them: every worker gets an even share of the connections. On one shared socket,
    whichever worker woke first took each one, and a worker holding ~3/4 of them sat at 90%
    of a core while the other idled at 40% (bench/README.md, "Worker processes")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if count == 1:
        return [socket.create_server((host, port), family=family, backlog=2048)]
    # A socket without SO_REUSEPORT first: it cannot bind a port that anything holds, even
    # another SO_REUSEPORT group (an earlier `serve --workers` on the same port), which ours
    # would otherwise join and split its connections with.
    with socket.create_server((host, port), family=family) as probe:
        port = probe.getsockname()[1]
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.create_server((host, port), family=family, backlog=2048,
                                              reuse_port=True))
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def share_metrics(folder: Path) -> None:
    """Have every worker keep its metrics' values in files under ``folder`` (emptied of an
    earlier run's), for /metrics to sum; before prometheus_client is imported."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("share_metrics must run before prometheus_client is imported")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_VARIABLE] = str(folder)


def replace_shared_file(path: Path, data: bytes) -> None:
    """Create or replace a small file the other worker processes read: atomically (a reader
    sees the old file or the new one, and each replacement is a new inode) but not durably
    (it matters only while they run). Raises OSError."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class FileSignal:
    """A signal between the worker processes of one server: raising it replaces ``path`` (a
    new inode each time, so never missed), and each process ``stat``s the file to see whether
    another one did."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen = self._version()

    def raised_elsewhere(self) -> bool:
        version = self._version()
        if version == self._seen:
            return False
        self._seen = version
        return True

    def raise_signal(self) -> bool:
        try:
            replace_shared_file(self._path, b"")
        except OSError as exc:
            log.warning("cannot replace the signal file %s: %s", self._path, exc)
            return False
        self._seen = self._version()
        return True

    @property
    def working(self) -> bool:
        return True  # a file that cannot be replaced is logged when it is raised

    def close(self) -> None:
        pass

    def _version(self) -> tuple[int, int] | None:
        """Which replacement of the file is there now (None before the first)."""
        try:
            found = os.stat(self._path)
        except FileNotFoundError:
            return None
        return found.st_ino, found.st_mtime_ns
