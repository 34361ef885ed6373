"""A real `searchtrail serve` process on a loopback port, for functional tests."""

from __future__ import annotations

import configparser
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from botocore.config import Config

from bench.servers import stop_process

from tests.clients import boto3_client

STARTUP_SECONDS = 30
# SEARCHTRAIL_TEST_STORE=postgresql: every server a test starts keeps its store in a fresh
# PostgreSQL database (a sweep of the suite over the second store; tests that read the SQLite
# file themselves cannot pass then).
SWEEP_VARIABLE = "SEARCHTRAIL_TEST_STORE"


def _unverified_tls():  # type: ignore[no-untyped-def]
    """Readiness polling only: the test's own self-signed certificate."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def open_store(data_dir: Path, database_url: str | None):  # type: ignore[no-untyped-def]
    """A read-only connection to a data dir's SQLite store, or to a PostgreSQL store."""
    if database_url:
        from searchtrail.store.postgres.connection import open_connection

        return open_connection(database_url, read_only=True)
    conn = sqlite3.connect(Path(data_dir) / "searchtrail.sqlite3")
    conn.execute("PRAGMA query_only = ON")
    return conn


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    scheme: str = "http"
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL store in the data dir's searchtrail.toml (so the CLI finds it too);
        None: SQLite in the data dir."""
        config = self.data_dir / "searchtrail.toml"
        if not config.is_file():
            return None
        return tomllib.loads(config.read_text()).get("database_url")

    def use_postgres(self, database_url: str) -> "ServerProcess":
        """Keep the store in PostgreSQL: written to the data dir's searchtrail.toml."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "searchtrail.toml").write_text(f'database_url = "{database_url}"\n')
        return self

    def store(self):  # type: ignore[no-untyped-def]
        """A read-only connection to the server's store (sqlite3's surface either way), to
        check what it holds; the caller closes it."""
        return open_store(self.data_dir, self.database_url)

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        """The server's /metrics text (Prometheus exposition)."""
        with urllib.request.urlopen(self.endpoint + "/metrics", timeout=10) as answer:
            return answer.read().decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of the sample in /metrics with exactly these labels (none: unlabelled);
        None while it is not there."""
        spelled = ",".join(f'{key}="{re.escape(value)}"' for key, value in labels.items())
        series = rf"{name}\{{{spelled}\}}" if labels else name
        found = re.search(rf"^{series} (\S+)$", self.metrics(), re.M)
        return float(found.group(1)) if found else None

    def start(self) -> "ServerProcess":
        if os.environ.get(SWEEP_VARIABLE) == "postgresql" and self.database_url is None:
            from tests.postgres import sweep_database

            self.use_postgres(sweep_database())
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "SEARCHTRAIL_COLLECTION_CREATE_SECONDS": "1",
               "SEARCHTRAIL_COLLECTION_DELETE_SECONDS": "1", **self.env}
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "searchtrail.cli", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_searchtrail/health", timeout=1,
                                            context=_unverified_tls()) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)  # polling interval while waiting for the port, bounded by the deadline
        raise RuntimeError(f"server not ready within {STARTUP_SECONDS}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        stop_process(self.process)
        if getattr(self, "_log", None):
            self._log.close()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)
        self._log.close()

    def credentials(self) -> tuple[str, str]:
        profile = configparser.ConfigParser()
        profile.read(self.data_dir / "credentials")
        return (profile["default"]["aws_access_key_id"],
                profile["default"]["aws_secret_access_key"])

    def client(self, service: str, region: str = "us-east-1", *, key: tuple[str, str] | None = None,
               validate: bool = True, retries: int = 0,
               verify: str | bool | None = None):  # type: ignore[no-untyped-def]
        access_key, secret = key or self.credentials()
        return boto3_client(
            service, region_name=region, endpoint_url=self.endpoint,
            aws_access_key_id=access_key, aws_secret_access_key=secret, verify=verify,
            config=Config(parameter_validation=validate,
                          retries={"total_max_attempts": retries + 1, "mode": "standard"}))
