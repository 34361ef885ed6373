"""The PostgreSQL server tests use (bench/postgres.py's private one, or
SEARCHTRAIL_TEST_POSTGRES_URL's): missing, it fails the test in CI and skips it elsewhere."""

from __future__ import annotations

from bench.postgres import PostgresMissing, PostgresServer
from bench.postgres import start_postgres as start_private
from tests.needs import unavailable

__all__ = ["PostgresServer", "start_postgres", "sweep_database"]


def start_postgres() -> PostgresServer:
    try:
        return start_private()
    except PostgresMissing as missing:
        unavailable(str(missing))


_SWEEP: list[PostgresServer] = []  # the sweep's one server (SEARCHTRAIL_TEST_STORE)


def sweep_database() -> str:
    """A new database on the sweep's server, started on first use and stopped at exit."""
    if not _SWEEP:
        import atexit

        _SWEEP.append(start_postgres())
        atexit.register(_SWEEP[0].stop)
    return _SWEEP[0].database()
