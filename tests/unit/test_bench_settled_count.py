"""bench.capacity.EventRows.settled_count: the fixed-count check's "before" waits out the calls
of an earlier run that are still being committed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from bench import servers
from bench.capacity import EventRows

LATE_COMMITS = 12
COMMIT_GAP_SECONDS = 0.04  # one slow fsync between two late commits


def _server(tmp_path: Path) -> servers.Server:
    server = servers.Server(kind="searchtrail", workdir=tmp_path, command=[], env={},
                            health_path="/_searchtrail/health")
    server.data_dir.mkdir(parents=True)
    with sqlite3.connect(server.database) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO events DEFAULT VALUES")
    return server


def _commit_late(database: Path, started: threading.Event) -> None:
    """Stands in for the server recording, one commit at a time, calls whose clients left."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        for index in range(LATE_COMMITS):
            db.execute("INSERT INTO events DEFAULT VALUES")
            if index == 0:
                started.set()
            time.sleep(COMMIT_GAP_SECONDS)  # the next commit's fsync, not a wait on anything
    finally:
        db.close()


def test_the_count_before_a_fixed_count_run_includes_every_late_commit(tmp_path: Path) -> None:
    server = _server(tmp_path)
    started = threading.Event()
    writer = threading.Thread(target=_commit_late, args=(server.database, started))
    writer.start()
    rows = EventRows(server)
    try:
        assert started.wait(10)
        early = rows.count()
        settled = rows.settled_count()
    finally:
        writer.join(timeout=30)
        rows.close()
    assert early < 1 + LATE_COMMITS, "the late commits were all in before the count began"
    assert settled == 1 + LATE_COMMITS
