"""Fixtures shared by every kind of test: the PostgreSQL server (started on first use)."""

from __future__ import annotations

import pytest

from tests.postgres import PostgresServer, start_postgres


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:  # type: ignore[misc]
    server = start_postgres()
    yield server
    server.stop()
