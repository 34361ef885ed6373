"""A private PostgreSQL server (initdb into a temporary folder, a free loopback port) for the
benchmarks and the tests: one fresh database per caller, its CPU readable, stopped and removed
at the end. As root it runs as the `postgres` user Debian's `postgresql` package creates
(PostgreSQL refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STARTUP_SECONDS = 60
INSTALL_HINT = "apt-get install -y postgresql (its binaries start a private server)"


class PostgresMissing(Exception):
    """PostgreSQL's binaries (or, as root, its postgres user) are not installed."""


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: ``database()`` makes a new, empty database and returns its URL."""

    admin_url: str
    data_dir: Path | None = None  # our own cluster's folder; None for a server given by URL
    bin_dir: Path | None = None
    run_as: str | None = None

    def database(self) -> str:
        import psycopg

        name = "st_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def _ctl(self, *args: str) -> None:
        assert self.bin_dir is not None and self.data_dir is not None
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=STARTUP_SECONDS)

    def crash(self) -> None:
        """Stop the server as a crash would (no checkpoint): `pg_ctl stop -m immediate`."""
        self._ctl("stop", "-m", "immediate")

    def restart(self) -> None:
        self._ctl("start", "-l", str(self.data_dir / "server.log"))

    def stop(self) -> None:
        if self.data_dir is None:
            return
        try:
            # the cluster is removed next, so its shutdown checkpoint would be wasted: one fsync
            # per dirty file, over 60 s with a slow disk (10 ms a fsync) after a test session
            self._ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP), as a hung host or a dropped network path
        looks to clients: connections stay open and nothing answers. ``thaw`` resumes them."""
        for pid in self._processes():  # the main one first: it forks no backend meanwhile
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in reversed(self._processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _processes(self) -> list[int]:
        """The main process, then its children (the backends and helpers)."""
        main = self.postmaster_pid()
        if main is None:
            return []
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int(Path(stat).read_text().rsplit(")", 1)[1].split()[1])
                if parent == main:
                    children.append(int(stat.split("/")[2]))
        return [main, *children]

    def postmaster_pid(self) -> int | None:
        """The server's main process (our own cluster only): its backends are its children."""
        if self.data_dir is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return None


def start_postgres() -> PostgresServer:
    """SEARCHTRAIL_TEST_POSTGRES_URL's server if set (its user must be allowed to create
    databases), else a private one; raises PostgresMissing saying how to get it."""
    external = os.environ.get("SEARCHTRAIL_TEST_POSTGRES_URL")
    if external:
        return PostgresServer(admin_url=external)
    bin_dir = binaries()
    if bin_dir is None:
        raise PostgresMissing(f"PostgreSQL is not installed: {INSTALL_HINT}")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresMissing(f"running as root without a postgres user: {INSTALL_HINT}")
        run_as = "postgres"
    # Outside pytest's tmp folders: as root those are private to root, and the server runs as
    # postgres.
    top = Path(tempfile.mkdtemp(prefix="searchtrail-pg-"))
    data = top / "data"
    port = _free_port()
    if run_as:
        shutil.chown(top, run_as)
    prefix = ["runuser", "-u", run_as, "--"] if run_as else []
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "searchtrail",
                    "--auth=trust", "--encoding=UTF8", "--locale=C"],
                   check=True, capture_output=True, timeout=STARTUP_SECONDS)
    # In its configuration file, so a restart after a crash listens where it did.
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                   "unix_socket_directories = ''\nmax_connections = 200\n")
    server = PostgresServer(admin_url=f"postgresql://searchtrail@127.0.0.1:{port}/postgres",
                            data_dir=data, bin_dir=bin_dir, run_as=run_as)
    server.restart()
    wait_accepting(server.admin_url)
    return server


def wait_accepting(url: str, seconds: float = STARTUP_SECONDS) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling interval while the server starts, bounded by the deadline
