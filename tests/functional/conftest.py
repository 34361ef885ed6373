"""Fixtures: one shared server per test session, and fresh ones for tests that kill them."""

from __future__ import annotations

import pytest

from tests.functional.server import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    process = ServerProcess(tmp_path_factory.mktemp("shared") / "data").start()
    yield process
    process.stop()


@pytest.fixture
def fresh_server(tmp_path):  # type: ignore[no-untyped-def]
    process = ServerProcess(tmp_path / "data")
    yield process
    process.stop()
