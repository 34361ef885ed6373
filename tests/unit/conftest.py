"""Unit-test fixtures: a migrated SQLite database per test."""

from __future__ import annotations

import pytest

from searchtrail.store.sqlite.connection import migrate, open_connection


@pytest.fixture
def conn(tmp_path):  # type: ignore[no-untyped-def]
    connection = open_connection(tmp_path / "db.sqlite3")
    migrate(connection)
    yield connection
    connection.close()
