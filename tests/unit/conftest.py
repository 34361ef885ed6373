"""Unit-test fixtures: a migrated SQLite database per test."""

from __future__ import annotations

import pytest

from searchtrail.store.sqlite.connection import migrate, open_connection


@pytest.fixture
def db(tmp_path):  # type: ignore[no-untyped-def]
    """The database file's path (for code that opens its own connections)."""
    return tmp_path / "db.sqlite3"


@pytest.fixture
def conn(db):  # type: ignore[no-untyped-def]
    connection = open_connection(db)
    migrate(connection)
    yield connection
    connection.close()
