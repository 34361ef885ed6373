"""The group-commit writer and the event store on a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from importlib import resources as package_files
from pathlib import Path

import pytest

from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.connection import (BUSY_TIMEOUT_MS, durability_settings, migrate,
                                                 open_connection)
from searchtrail.store.sqlite.events import EventRow, query_events
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter, _Helper

MIGRATIONS = package_files.files("searchtrail.store.sqlite").joinpath("migrations")


@pytest.fixture
def database(tmp_path):  # type: ignore[no-untyped-def]
    conn = open_connection(tmp_path / "db.sqlite3")
    migrate(conn)
    yield tmp_path / "db.sqlite3", conn
    conn.close()


def row(n: int, time: int = 1000, region: str = "us-east-1") -> EventRow:
    return EventRow("111122223333", region, time, f'{{"n":{n}}}',
                    (("EventName", "E" + str(n % 2)),))


def test_connection_is_durable(database) -> None:
    _, conn = database
    assert durability_settings(conn) == {"journal_mode": "wal", "synchronous": 2}
    newest = max(int(entry.name.split("_", 1)[0]) for entry in MIGRATIONS.iterdir()
                 if entry.name.endswith(".sql"))
    assert migrate(conn) == newest  # idempotent: already at the newest migration


def test_a_deleted_document_leaves_no_copy_in_the_file_whatever_the_builds_default(
        tmp_path, monkeypatch) -> None:
    """Debian's SQLite overwrites deleted content by default and upstream's does not: the
    store asks for it, so a deleted access key's secret is not left in the file's free space."""
    connect = sqlite3.connect

    def build_that_keeps_deleted_content(*args, **kwargs):  # type: ignore[no-untyped-def]
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", build_that_keeps_deleted_content)
    path = tmp_path / "db.sqlite3"
    conn = open_connection(path)
    migrate(conn)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY0123"
    resources = SqliteResources(conn, "111122223333", "us-east-1")
    resources.put("iam.access-key", "AKIAEXAMPLE", {"SecretAccessKey": secret})
    resources.put("iam.access-key", "AKIAKEPT", {"SecretAccessKey": "kept"})  # page stays used
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert secret.encode() in path.read_bytes()  # the check below can see it
    assert resources.delete("iam.access-key", "AKIAEXAMPLE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert secret.encode() not in path.read_bytes()
    assert not Path(f"{path}-wal").exists() or secret.encode() not in Path(
        f"{path}-wal").read_bytes()


def test_concurrent_units_share_commits_and_each_sees_its_own_result(database) -> None:
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()

    def unit(n: int):  # type: ignore[no-untyped-def]
        def work(c: sqlite3.Connection):  # type: ignore[no-untyped-def]
            SqliteResources(c, "111122223333", "us-east-1").put("thing", str(n), {"n": n})
            return n * 10, [row(n)]
        return work

    async def many() -> list[int]:
        return await asyncio.gather(*(writer.run(unit(n)) for n in range(200)))

    try:
        results = asyncio.run(many())
    finally:
        writer.stop()
    assert results == [n * 10 for n in range(200)]
    assert writer.stats.units == 200
    assert writer.stats.commits < 200  # batches formed
    reader = open_connection(path)
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 200
    assert reader.execute("SELECT count(*) FROM resources").fetchone()[0] == 200
    assert reader.execute("SELECT count(*) FROM event_lookup").fetchone()[0] == 200


def _fails_after_writing(c):  # type: ignore[no-untyped-def]
    SqliteResources(c, "a", "r").put("k", "bad", {})
    raise ValueError("boom")


def _undoes_its_own_write(c):  # type: ignore[no-untyped-def]
    with pytest.raises(sqlite3.OperationalError, match="no such savepoint"):
        c.execute("RELEASE unit")  # the writer opened none around this unit
    c.execute("SAVEPOINT mine")
    SqliteResources(c, "a", "r").put("k", "undone", {})
    c.execute("ROLLBACK TO mine")
    c.execute("RELEASE mine")
    raise ValueError("failed, its write undone")


_undoes_its_own_write.undoes_itself = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("failing", [_fails_after_writing, _undoes_its_own_write],
                         ids=["in-the-writers-savepoint", "undoes-itself"])
def test_a_failing_unit_rolls_back_alone(database, failing) -> None:  # type: ignore[no-untyped-def]
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()

    def good(c):  # type: ignore[no-untyped-def]
        SqliteResources(c, "a", "r").put("k", "good", {})
        return "ok", [row(1)]

    async def both():  # type: ignore[no-untyped-def]
        return await asyncio.gather(writer.run(good), writer.run(failing),
                                    return_exceptions=True)

    try:
        ok, failed = asyncio.run(both())
    finally:
        writer.stop()
    assert ok == "ok" and isinstance(failed, ValueError)
    keys = [r[0] for r in open_connection(path).execute("SELECT key FROM resources")]
    assert keys == ["good"]


def test_a_commit_failure_fails_every_waiter_and_keeps_nothing_on_either_path(
        database) -> None:
    """Rows that cannot be stored fail a thread's unit and a whole batch on the loop alike;
    nothing of theirs is kept, and the writer carries on afterwards."""
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN "
                 "SELECT RAISE(FAIL, 'disk says no'); END")
    keys = itertools.count()

    def unit(c):  # type: ignore[no-untyped-def]
        SqliteResources(c, "a", "r").put("k", str(next(keys)), {})
        return "ok", [row(1)]

    async def many():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(writer.run(unit) for _ in range(20)),
                                    return_exceptions=True)

    try:
        with pytest.raises(StoreUnavailable):
            writer.run_blocking(unit)
        assert writer.stats.failed_commits == 1
        outcomes = asyncio.run(many())
        conn.execute("DROP TRIGGER refuse")
        assert asyncio.run(writer.run(unit)) == "ok"
    finally:
        writer.stop()
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    reader = open_connection(path)
    assert reader.execute("SELECT count(*) FROM resources").fetchone()[0] == 1
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_events_are_append_only(database) -> None:
    _, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()
    writer.run_blocking(lambda c: (None, [row(1)]))
    writer.stop()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET record = '{}'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events")


def test_query_is_newest_first_with_cursor_and_attribute(database) -> None:
    _, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()
    writer.run_blocking(lambda c: (None, [row(n, time=1000 + n) for n in range(10)]
                                   + [row(99, time=1005, region="eu-west-1")]))
    writer.stop()
    common = dict(account="111122223333", region="us-east-1", start=1002, end=1008)
    first = query_events(conn, **common, attribute=None, before=None, limit=3)
    assert [e.event_time for e in first] == [1008, 1007, 1006]
    second = query_events(conn, **common, attribute=None,
                          before=(first[-1].event_time, first[-1].seq), limit=10)
    assert [e.event_time for e in second] == [1005, 1004, 1003, 1002]
    odd = query_events(conn, **common, attribute=("EventName", "E1"), before=None, limit=10)
    assert [e.record for e in odd] == ['{"n":7}', '{"n":5}', '{"n":3}']


def test_loop_batches_and_a_threads_units_take_turns(database) -> None:
    """The delivery worker's units (run_blocking on its own thread) and the loop's batches
    share the transaction: every unit of both commits, none is lost or doubled."""
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()
    thread_results: list[int] = []

    def put(n: int):  # type: ignore[no-untyped-def]
        def work(c: sqlite3.Connection):  # type: ignore[no-untyped-def]
            SqliteResources(c, "111122223333", "us-east-1").put("thing", str(n), {"n": n})
            return n, [row(n)]
        return work

    def worker() -> None:
        for n in range(1000, 1100):
            thread_results.append(writer.run_blocking(put(n)))

    async def both() -> list[int]:
        thread = threading.Thread(target=worker)
        thread.start()
        results = []
        for wave in range(10):
            results += await asyncio.gather(*(writer.run(put(wave * 20 + n)) for n in range(20)))
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive()
        return results

    try:
        results = asyncio.run(both())
    finally:
        writer.stop()
    assert results == list(range(200)) and thread_results == list(range(1000, 1100))
    reader = open_connection(path)
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 300
    assert reader.execute("SELECT count(*) FROM resources").fetchone()[0] == 300


def test_begin_waits_off_the_loop_and_a_busy_store_fails_only_that_batch(database) -> None:
    """Another process holding the write lock makes BEGIN wait out the busy timeout: on the
    helper thread, so the loop keeps serving; the batch then fails whole, the next succeeds."""
    path, conn = database
    conn.execute("PRAGMA busy_timeout = 300")
    other = open_connection(path)
    writer = GroupCommitWriter(conn)
    writer.start()

    def unit(c):  # type: ignore[no-untyped-def]
        SqliteResources(c, "a", "r").put("k", "x", {})
        return "ok", [row(1)]

    async def blocked_then_free():  # type: ignore[no-untyped-def]
        ticks = 0
        other.execute("BEGIN IMMEDIATE")
        call = asyncio.ensure_future(writer.run(unit))
        while not call.done() and ticks < 1_000_000:
            ticks += 1
            await asyncio.sleep(0)
        failed = call.exception()
        other.execute("ROLLBACK")
        return ticks, failed, await writer.run(unit)

    try:
        ticks, failed, later = asyncio.run(blocked_then_free())
    finally:
        writer.stop()
        other.close()
    assert isinstance(failed, StoreUnavailable) and later == "ok"
    assert ticks > 100  # the loop ran on while BEGIN waited
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 300  # the loop's try restored it
    assert writer.stats.failed_commits == 1
    assert open_connection(path).execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_a_lone_call_begins_on_the_loop_and_a_held_turn_sends_begin_to_the_helper(
        database) -> None:
    """With nothing holding or waiting for the transaction, BEGIN runs on the loop (no thread
    hop); while the delivery worker's unit holds its turn, the loop's BEGIN waits on the
    helper thread instead, and the loop keeps serving."""
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()
    begun_on: list[int] = []
    committed_on: list[str] = []

    def traced(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            begun_on.append(threading.get_ident())
        elif sql == "COMMIT":
            committed_on.append(threading.current_thread().name)
    conn.set_trace_callback(traced)
    worker_inside, worker_may_finish = threading.Event(), threading.Event()

    def held(c):  # type: ignore[no-untyped-def]
        worker_inside.set()
        assert worker_may_finish.wait(30)
        return "worker", [row(1)]

    async def scenario():  # type: ignore[no-untyped-def]
        loop_thread = threading.get_ident()
        assert await writer.run(lambda c: ("lone", [row(0)])) == "lone"
        worker = asyncio.ensure_future(asyncio.to_thread(writer.run_blocking, held))
        assert await asyncio.to_thread(worker_inside.wait, 30)
        call = asyncio.ensure_future(writer.run(lambda c: ("after", [row(2)])))
        ticks = 0
        while not call.done() and ticks < 1000:
            ticks += 1
            await asyncio.sleep(0)
        assert not call.done()  # it waits for the worker's turn, off the loop
        worker_may_finish.set()
        return loop_thread, await worker, await call

    try:
        loop_thread, worker_result, after = asyncio.run(scenario())
    finally:
        worker_may_finish.set()
        writer.stop()
    assert (worker_result, after) == ("worker", "after")
    assert begun_on[0] == loop_thread  # the lone call
    assert committed_on[0].startswith("searchtrail-commit")  # its COMMIT: the writer's helper
    assert begun_on[2] != loop_thread  # after the worker's BEGIN (its own thread): the helper
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS  # restored
    assert open_connection(path).execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_the_helper_hands_each_outcome_to_its_loop_and_outlives_a_closed_loop() -> None:
    helper = _Helper()
    answered: list[tuple[str, object, object]] = []

    def failing() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async def submit_both() -> None:
        loop = asyncio.get_running_loop()
        both = [loop.create_future(), loop.create_future()]
        for job, done in zip((lambda: threading.current_thread().name, failing), both):
            helper.submit(loop, job, lambda failure, result, done=done: (
                answered.append((threading.current_thread().name, failure, result)),
                done.set_result(None)))
        await asyncio.wait_for(asyncio.gather(*both), 5)

    try:
        asyncio.run(submit_both())
        closed = asyncio.new_event_loop()
        closed.close()
        helper.submit(closed, lambda: "nobody waits", lambda failure, result: None)
        asyncio.run(submit_both())  # the closed loop's job did not end the thread
    finally:
        helper.stop()
    assert not helper._thread.is_alive()
    assert len(answered) == 4
    for on_thread, failure, result in answered[::2]:  # each outcome arrives on the loop
        assert (on_thread, failure, result) == ("MainThread", None, "searchtrail-commit")
    for _, failure, result in answered[1::2]:
        assert isinstance(failure, sqlite3.OperationalError) and result is None


def test_run_blocking_on_the_loop_is_refused_and_drain_answers_every_accepted_unit(
        database) -> None:
    path, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()

    async def scenario():  # type: ignore[no-untyped-def]
        await writer.run(lambda c: (None, [row(0)]))  # binds the writer to this loop
        with pytest.raises(RuntimeError, match="await run"):
            writer.run_blocking(lambda c: (None, [row(1)]))
        calls = [asyncio.ensure_future(writer.run(lambda c, n=n: (n, [row(n)])))
                 for n in range(2, 50)]
        await asyncio.sleep(0)  # the calls are accepted
        await writer.drain()
        assert all(call.done() for call in calls)
        with pytest.raises(StoreUnavailable, match="shutting down"):
            await writer.run(lambda c: (None, [row(99)]))
        return [call.result() for call in calls]

    try:
        assert asyncio.run(scenario()) == list(range(2, 50))
    finally:
        writer.stop()
    assert open_connection(path).execute("SELECT count(*) FROM events").fetchone()[0] == 49


def test_units_take_event_seqs_in_order_and_a_rolled_back_batch_hands_them_out_again(
        database) -> None:
    _, conn = database
    writer = GroupCommitWriter(conn)
    writer.start()

    def unit(n: int, fail_commit: bool = False):  # type: ignore[no-untyped-def]
        def work(c: sqlite3.Connection):  # type: ignore[no-untyped-def]
            seq = writer.next_seq()
            if fail_commit:  # a read that wrote, then failed: only the whole batch undoes it
                SqliteResources(c, "111122223333", "us-east-1").put("thing", "x", {})
                raise ValueError("failed after writing")
            return seq, [EventRow("111122223333", "us-east-1", 1000, f'{{"n":{n}}}', seq=seq),
                         row(100 + n)]  # a row without a seq of its own: after every given one
        work.read_only = fail_commit  # type: ignore[attr-defined]
        return work

    async def batch(units) -> list:  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(writer.run(u) for u in units), return_exceptions=True)

    try:
        first = asyncio.run(batch([unit(n) for n in range(3)]))
        assert first == [1, 2, 3]
        assert [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")] == [1, 2, 3,
                                                                                    4, 5, 6]
        failed = asyncio.run(batch([unit(7), unit(8, fail_commit=True)]))
        assert all(isinstance(outcome, StoreUnavailable) for outcome in failed)
        assert writer.run_blocking(unit(9)) == 7  # 7 was handed out in the failed batch
    finally:
        writer.stop()
    assert conn.execute("SELECT max(seq), count(*) FROM events").fetchone() == (8, 8)


def _waiting_for_a_flock(pid: int) -> bool:
    """/proc/locks lists a blocked flock request with '->' before its kind."""
    with open("/proc/locks") as locks:
        return any(f"-> FLOCK  ADVISORY  WRITE {pid} " in line for line in locks)


def test_writers_of_two_processes_take_turns_on_the_lock_file_not_in_busy_retries(
        database, tmp_path) -> None:
    """Two writers on one SQLite file (the server's worker processes), each connection with no
    busy timeout: the second waits for the first's turn on the lock file, then writes; it
    never meets SQLite's lock (which, here, would fail it at once)."""
    import os
    import time

    path, conn = database
    other = open_connection(path)
    for c in (conn, other):
        c.execute("PRAGMA busy_timeout = 0")
    lock = tmp_path / "write-turn"
    first, second = GroupCommitWriter(conn, turn_lock=lock), \
        GroupCommitWriter(other, turn_lock=lock)
    holding, release = threading.Event(), threading.Event()

    def held(c):  # type: ignore[no-untyped-def]
        holding.set()
        release.wait(30)
        SqliteResources(c, "a", "r").put("k", "first", {})
        return "first", [row(1)]

    def after(c):  # type: ignore[no-untyped-def]
        assert SqliteResources(c, "a", "r").get("k", "first") == {}  # the first committed
        return "second", [row(2)]

    outcomes: dict[str, object] = {}
    threads = [threading.Thread(target=lambda: outcomes.update(first=first.run_blocking(held))),
               threading.Thread(target=lambda: outcomes.update(
                   second=asyncio.run(second.run(after))))]
    try:
        threads[0].start()
        assert holding.wait(30)
        threads[1].start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_flock(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling /proc/locks, bounded by the deadline
        assert _waiting_for_a_flock(os.getpid()), "the second writer never waited for its turn"
        release.set()
        for thread in threads:
            thread.join(30)
    finally:
        release.set()
        first.stop()
        second.stop()
        other.close()
    assert outcomes == {"first": "first", "second": "second"}
    assert [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")] == [1, 2]
