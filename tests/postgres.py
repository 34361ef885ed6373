"""A private PostgreSQL server for tests: initdb into a temporary folder, started on a loopback
port, one fresh database per test, stopped (and removed) at the end of the session.

Set SEARCHTRAIL_TEST_POSTGRES_URL to a server of your own (its user must be allowed to create
databases) to use that instead. As root, the server runs as the `postgres` user that Debian's
`postgresql` package creates (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.functional.server import free_port
from tests.needs import unavailable

STARTUP_SECONDS = 60
INSTALL_HINT = "apt-get install -y postgresql (tests start their own server from its binaries)"


def _binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A running server: ``database()`` makes a new, empty database and returns its URL."""

    admin_url: str
    process_dir: Path | None = None  # our own cluster's data folder, None for an external one
    bin_dir: Path | None = None
    run_as: str | None = None

    def database(self) -> str:
        import psycopg

        name = "st_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def _ctl(self, *args: str) -> None:
        assert self.bin_dir is not None and self.process_dir is not None
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.process_dir), "-w", *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=STARTUP_SECONDS)

    def crash(self) -> None:
        """Stop the server as a crash would (no checkpoint): `pg_ctl stop -m immediate`."""
        self._ctl("stop", "-m", "immediate")

    def restart(self) -> None:
        self._ctl("start", "-l", str(self.process_dir / "server.log"))

    def stop(self) -> None:
        if self.process_dir is None:
            return
        try:
            self._ctl("stop", "-m", "fast")
        finally:
            shutil.rmtree(self.process_dir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer:
    external = os.environ.get("SEARCHTRAIL_TEST_POSTGRES_URL")
    if external:
        return PostgresServer(admin_url=external)
    bin_dir = _binaries()
    if bin_dir is None:
        unavailable(f"PostgreSQL is not installed: {INSTALL_HINT}")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable(f"running as root without a postgres user: {INSTALL_HINT}")
        run_as = "postgres"
    # Outside pytest's tmp folders: as root those are private to root, and the server runs as
    # postgres.
    top = Path(tempfile.mkdtemp(prefix="searchtrail-pg-"))
    data = top / "data"
    port = free_port()
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
                            process_dir=data, bin_dir=bin_dir, run_as=run_as)
    server.restart()
    wait_accepting(server.admin_url)
    return server


_SWEEP: list[PostgresServer] = []  # the sweep's one server (SEARCHTRAIL_TEST_STORE)


def sweep_database() -> str:
    """A new database on the sweep's server, started on first use and stopped at exit."""
    if not _SWEEP:
        import atexit

        _SWEEP.append(start_postgres())
        atexit.register(_SWEEP[0].stop)
    return _SWEEP[0].database()


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
