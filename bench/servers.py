"""Start, measure and stop the servers under test: searchtrail, moto (server mode) and ministack;
and, on request, searchtrail-postgres (searchtrail on a private PostgreSQL, bench/postgres.py).

Every server listens on a free 127.0.0.1 port, logs to a file in its work folder, and is stopped
by `running()` whatever happens. `Server.cpu_seconds()` and `rss_bytes()` read /proc for the
server's whole process tree.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from bench import REPO, peers
from bench.postgres import PostgresServer, start_postgres
from searchtrail.config import Settings

STARTUP_SECONDS = 60
PEER_KEY = ("testing", "testing")  # peers accept any signature; these are moto's usual test keys
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
WORKERS = os.cpu_count() or 1  # searchtrail-workers: one server process per core
WORKERS_KIND = "searchtrail-workers"
WORKERS_LABEL = f"searchtrail --workers {WORKERS}"  # how result tables name that kind


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def stop_process(process: subprocess.Popen | None, grace_seconds: float = 15) -> None:
    """SIGTERM (a server's clean shutdown), then SIGKILL if it has not exited in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_seconds)


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@dataclass
class Server:
    kind: str
    workdir: Path
    command: list[str]
    env: dict[str, str]
    health_path: str
    port: int = field(default_factory=free_port)
    version: str = ""
    process: subprocess.Popen | None = None
    postgres: PostgresServer | None = None  # searchtrail-postgres: its store's own server
    database_url: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_header(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def database(self) -> Path:
        """searchtrail's SQLite file."""
        return Settings(data_dir=self.data_dir).database_path

    def read_only_database(self, timeout: float = 30.0) -> sqlite3.Connection:
        """searchtrail's store opened read-only, for counting what it stored while it serves
        (``timeout``: how long a query waits out the server's locks)."""
        database_url = self.database_url or _configured_database_url(self.data_dir)
        if database_url:
            from searchtrail.store.postgres.connection import open_connection

            return open_connection(database_url, read_only=True)  # type: ignore
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=timeout)

    def credentials(self) -> tuple[str, str]:
        if not self.kind.startswith("searchtrail"):
            return PEER_KEY
        profile = configparser.ConfigParser()
        profile.read(self.data_dir / "credentials")
        return profile["default"]["aws_access_key_id"], profile["default"]["aws_secret_access_key"]

    def client(self, service: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
        """A boto3 client of this server, signed with ``credentials()``."""
        return endpoint_client(self.endpoint, service, self.credentials(), region)

    def start(self) -> "Server":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "searchtrail-postgres" and self.postgres is None:
            self.postgres = start_postgres()
            self.database_url = self.postgres.database()
            self.command = [*self.command, "--database-url", self.database_url]
        self._log = (self.workdir / f"{self.kind}.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env}, cwd=self.workdir)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}; "
                                   f"see {self.workdir / (self.kind + '.log')}")
            try:
                with urllib.request.urlopen(self.endpoint + self.health_path, timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)  # polling for the port, bounded by the deadline
        self.stop()
        raise RuntimeError(f"{self.kind} not ready within {STARTUP_SECONDS}s")

    def stop(self) -> None:
        stop_process(self.process)
        if getattr(self, "_log", None):
            self._log.close()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's process tree so far (all threads), and of its
        PostgreSQL server's processes (the store's work is the call's work too)."""
        total = 0
        postmaster = self.postgres.postmaster_pid() if self.postgres else None
        for pid in [*_descendants(self.pid), *(_descendants(postmaster) if postmaster else [])]:
            with contextlib.suppress(OSError):
                fields = _stat_fields(pid)
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLOCK_TICKS

    def rss_bytes(self) -> int:
        total = 0
        for pid in _descendants(self.pid):
            with contextlib.suppress(OSError):
                total += int(_stat_fields(pid)[21]) * PAGE_SIZE
        return total

    def describe(self) -> dict:
        return {"version": self.version, "endpoint": self.endpoint,
                "command": " ".join(Path(self.command[0]).name if i == 0 else part
                                    for i, part in enumerate(self.command)),
                "env": {k: v for k, v in self.env.items() if not k.startswith("AWS_SECRET")}}


def _configured_database_url(data_dir: Path) -> str | None:
    """The PostgreSQL store a data dir's searchtrail.toml names, if any."""
    from searchtrail.config import load_settings

    return load_settings({"data_dir": data_dir}, environ={}).database_url


def _searchtrail_version() -> str:
    import searchtrail

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD")
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no", "src") else ""
    return f"{searchtrail.__version__} ({revision}{dirty})" if revision else searchtrail.__version__


def endpoint_client(endpoint: str, service: str, key: tuple[str, str] = PEER_KEY,
                    region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    """A boto3 client of ``endpoint`` signed with ``key``: a server's, or a peer's through a
    link to it (bench/slowlink.py), with the keys peers accept by default."""
    import boto3  # only the benchmarks that drive a server through boto3 pay its import

    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint,
                                          aws_access_key_id=key[0], aws_secret_access_key=key[1])


def make(kind: str, workdir: Path, extra_args: tuple[str, ...] = (),
         env: dict[str, str] | None = None) -> Server:
    """A configured, not yet started, server of `kind` working in `workdir`."""
    workdir = workdir.resolve()  # the server runs inside it: a relative --data-dir would nest
    port = free_port()
    if kind in ("searchtrail", "searchtrail-postgres", WORKERS_KIND):
        data_dir = workdir / "data"
        command = [sys.executable, "-m", "searchtrail.cli", "serve", "--port", str(port),
                   "--data-dir", str(data_dir), *extra_args]
        if kind == WORKERS_KIND:
            command += ["--workers", str(WORKERS)]
        server = Server(kind, workdir, command, dict(env or {}), "/_searchtrail/health", port,
                        _searchtrail_version())
        return server
    peers.ensure()
    versions = peers.versions()
    if kind == "moto":
        command = [str(peers.executable("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
        base_env = {"AWS_ACCESS_KEY_ID": PEER_KEY[0], "AWS_SECRET_ACCESS_KEY": PEER_KEY[1],
                    "AWS_DEFAULT_REGION": "us-east-1"}
        return Server(kind, workdir, command, {**base_env, **(env or {})}, "/moto-api/", port,
                      versions["moto"])
    if kind == "ministack":
        # Recording on (the comparison is of recorded calls); no Docker-backed data plane,
        # no extra listeners; TMPDIR keeps its PID file in the work folder.
        base_env = {"GATEWAY_PORT": str(port), "BIND_HOST": "127.0.0.1",
                    "CLOUDTRAIL_RECORDING": "1", "OPENSEARCH_DATAPLANE": "0",
                    "IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0", "TMPDIR": str(workdir)}
        return Server(kind, workdir, [str(peers.executable("ministack"))],
                      {**base_env, **(env or {})}, "/_ministack/health", port,
                      versions["ministack"])
    raise ValueError(f"unknown server kind {kind!r}")


@contextlib.contextmanager
def running(kind: str, workdir: Path, extra_args: tuple[str, ...] = (),
            env: dict[str, str] | None = None) -> Iterator[Server]:
    with serving(make(kind, workdir, extra_args, env)) as server:
        yield server


@contextlib.contextmanager
def serving(server: Server) -> Iterator[Server]:
    """A server made earlier (``make``), started, and stopped afterwards."""
    try:
        yield server.start()
    finally:
        server.stop()
