"""The write transaction's read cache (ResourceChanges.read): a repeated read inside one
transaction is answered without SQL until anything is written, rolled back or begun anew,
and every caller gets documents of its own."""

from __future__ import annotations

import pytest

from searchtrail.store.api import Conflict
from searchtrail.store.sqlite.connection import open_connection
from searchtrail.store.sqlite.resources import (MAX_CACHED_READS, MAX_KEPT_TEXT,
                                                ResourceChanges, SqliteResources)
from searchtrail.store.sqlite.writer import GroupCommitWriter

ACCOUNT = "111122223333"
REGION = "us-east-1"
KIND = "collection"


@pytest.fixture
def statements(conn) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    yield seen
    conn.set_trace_callback(None)


@pytest.fixture
def repo(conn) -> SqliteResources:  # type: ignore[no-untyped-def]
    writes = SqliteResources(conn, ACCOUNT, REGION)
    writes.put(KIND, "a", {"name": "a", "status": "CREATING"})
    writes.put(KIND, "b", {"name": "b", "status": "ACTIVE"})
    return SqliteResources(conn, ACCOUNT, REGION, ResourceChanges())


def selects(statements: list[str]) -> int:
    return sum(1 for sql in statements if sql.lstrip().upper().startswith("SELECT"))


def every_read(repo: SqliteResources) -> tuple:
    return (repo.get(KIND, "a"), repo.get_many(KIND, ["a", "b", "c"]), repo.list(KIND),
            repo.count(KIND), repo.list(KIND, "b"), repo.get(KIND, "missing"))


def test_a_repeated_read_in_one_transaction_runs_no_sql(conn, repo, statements) -> None:
    conn.execute("BEGIN IMMEDIATE")
    first = every_read(repo)
    assert selects(statements) == 6
    assert every_read(repo) == first
    assert every_read(repo.scoped(ACCOUNT, REGION)) == first  # scoped copies share it
    assert selects(statements) == 6
    other_region = repo.scoped(ACCOUNT, "eu-west-1")
    assert other_region.list(KIND) == [] and selects(statements) == 7  # another scope reads
    conn.execute("COMMIT")


def test_outside_a_transaction_and_without_counters_every_read_runs(conn, repo,
                                                                    statements) -> None:
    every_read(repo)
    every_read(repo)
    assert selects(statements) == 12
    plain = SqliteResources(conn, ACCOUNT, REGION)
    conn.execute("BEGIN IMMEDIATE")
    every_read(plain)
    every_read(plain)
    assert selects(statements) == 24
    conn.execute("COMMIT")


def test_each_caller_gets_documents_of_its_own(conn, repo) -> None:
    conn.execute("BEGIN IMMEDIATE")
    repo.get(KIND, "a")["status"] = "changed by one caller"
    repo.list(KIND)[0]["status"] = "changed by another"
    repo.get_many(KIND, ["a"])["a"]["status"] = "and another"
    assert repo.get(KIND, "a")["status"] == "CREATING"
    assert repo.list(KIND)[0]["status"] == "CREATING"
    assert repo.get_many(KIND, ["a"])["a"]["status"] == "CREATING"
    conn.execute("COMMIT")


@pytest.mark.parametrize("write", ["put", "insert", "delete", "delete_below"])
def test_a_write_through_any_repository_with_counters_is_read_back(conn, repo, write) -> None:
    conn.execute("BEGIN IMMEDIATE")
    before = every_read(repo)
    other_kind = repo.scoped(ACCOUNT, REGION)  # any kind's write forgets every read
    if write == "put":
        other_kind.put("policy", "p", {"x": 1})
        repo.put(KIND, "a", {"name": "a", "status": "ACTIVE"})
        assert repo.get(KIND, "a")["status"] == "ACTIVE"
    elif write == "insert":
        repo.insert(KIND, "c", {"name": "c"})
        assert repo.count(KIND) == 3 and "c" in repo.get_many(KIND, ["a", "b", "c"])
    elif write == "delete":
        repo.delete(KIND, "a")
        assert repo.get(KIND, "a") is None and repo.count(KIND) == 1
    else:
        repo.delete_below(KIND, "b")
        assert [doc["name"] for doc in repo.list(KIND)] == ["b"]
    assert every_read(repo) != before
    conn.execute("ROLLBACK")


def test_a_write_that_bypasses_the_counters_is_read_back(conn, repo) -> None:
    """Another repository on the same connection (no counters) or plain SQL: the
    connection's total_changes moved, so nothing cached before is trusted."""
    conn.execute("BEGIN IMMEDIATE")
    assert repo.count(KIND) == 2
    SqliteResources(conn, ACCOUNT, REGION).insert(KIND, "c", {"name": "c"})
    assert repo.count(KIND) == 3
    conn.execute("DELETE FROM resources WHERE key = 'c'")
    assert repo.count(KIND) == 2
    conn.execute("ROLLBACK")


def test_only_a_key_read_as_absent_since_the_last_write_is_inserted_without_a_check(
        conn, repo, statements) -> None:
    """An insert of a key this transaction read as absent, with nothing written since, is
    sent as an upsert (it cannot conflict); any other insert still conflicts on a key taken."""
    def last_insert() -> str:
        return [sql for sql in statements if sql.startswith("INSERT INTO resources")][-1]

    conn.execute("BEGIN IMMEDIATE")
    assert repo.get(KIND, "c") is None
    repo.insert(KIND, "c", {"name": "c"})
    assert last_insert().endswith("DO UPDATE SET doc = excluded.doc")
    assert repo.get(KIND, "c") == {"name": "c"}
    assert repo.get(KIND, "a") is not None
    with pytest.raises(Conflict):  # read as present: a plain insert, which conflicts
        repo.insert(KIND, "a", {"name": "a"})
    assert not last_insert().endswith("DO UPDATE SET doc = excluded.doc")
    assert repo.get(KIND, "d") is None
    SqliteResources(conn, ACCOUNT, REGION).put(KIND, "d", {"name": "d"})  # no counters
    with pytest.raises(Conflict):  # the connection's changes moved: the absence is stale
        repo.insert(KIND, "d", {"name": "other"})
    conn.execute("ROLLBACK")


def test_a_get_and_count_is_one_read_and_answers_the_get_and_the_count_after_it(
        conn, repo, statements) -> None:
    """A create's name check and quota count in one statement; the get and count it stands
    for are answered from it, and its absent key is inserted without a check."""
    def last_insert() -> str:
        return [sql for sql in statements if sql.startswith("INSERT INTO resources")][-1]

    conn.execute("BEGIN IMMEDIATE")
    assert repo.get_and_count(KIND, "c", "") == (None, 2)
    assert repo.get_and_count(KIND, "a", "a") == ({"name": "a", "status": "CREATING"}, 1)
    assert repo.get_and_count(KIND, "b", "x") == ({"name": "b", "status": "ACTIVE"}, 0)
    assert selects(statements) == 3
    assert repo.get(KIND, "c") is None and repo.count(KIND) == 2 and repo.count(KIND, "a") == 1
    assert repo.get(KIND, "a") == {"name": "a", "status": "CREATING"}
    assert selects(statements) == 3
    repo.insert(KIND, "c", {"name": "c"})
    assert last_insert().endswith("DO UPDATE SET doc = excluded.doc")
    assert repo.get_and_count(KIND, "c", "") == ({"name": "c"}, 3)  # after a write: read again
    assert selects(statements) == 4
    conn.execute("ROLLBACK")


def test_a_rollback_to_a_savepoint_needs_forget_reads(conn, repo) -> None:
    """What the gateway does when an operation fails after writing: the rows read after its
    write were cached, and ROLLBACK TO moves no counter, so it must forget them."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SAVEPOINT operation")
    repo.put(KIND, "a", {"name": "a", "status": "DELETING"})
    assert repo.get(KIND, "a")["status"] == "DELETING"
    conn.execute("ROLLBACK TO operation")
    assert repo.get(KIND, "a")["status"] == "DELETING"  # stale: why the gateway forgets
    repo._changes.forget_reads()
    assert repo.get(KIND, "a")["status"] == "CREATING"
    conn.execute("RELEASE operation")
    conn.execute("COMMIT")


def status_unit(changes: ResourceChanges):  # type: ignore[no-untyped-def]
    def status(unit_conn):  # type: ignore[no-untyped-def]
        doc = SqliteResources(unit_conn, ACCOUNT, REGION, changes).get(KIND, "a")
        return (doc["status"] if doc else None), []

    return status


def test_reads_outlive_a_transaction_until_the_resource_version_moves(db, conn, repo,
                                                                     statements) -> None:
    """Another process may write between two transactions without moving this connection's
    counters: its write moves that kind's resource version, and the writer's BEGIN then
    drops what was read. While the version stays, the next transaction reads nothing anew."""
    writer = GroupCommitWriter(conn, changes=repo._changes)
    writer.start()
    other_process = open_connection(db)
    status = status_unit(repo._changes)
    try:
        assert writer.run_blocking(status) == "CREATING"
        before = selects(statements)
        assert writer.run_blocking(status) == "CREATING"
        assert selects(statements) == before + 1  # the version alone: the read was kept
        with other_process:
            SqliteResources(other_process, ACCOUNT, REGION).put(
                KIND, "a", {"name": "a", "status": "ACTIVE"})
        assert writer.run_blocking(status) == "ACTIVE"
        with other_process:  # a change made with no repository at all moves it too
            other_process.execute("UPDATE resources SET doc = ? WHERE key = 'a'",
                                  ('{"name": "a", "status": "DELETING"}',))
        assert writer.run_blocking(status) == "DELETING"
        with other_process:
            other_process.execute("DELETE FROM resources WHERE key = 'a'")
        assert writer.run_blocking(status) is None
    finally:
        other_process.close()
        writer.stop()


def test_a_transaction_that_wrote_leaves_nothing_cached_for_the_next(conn, repo) -> None:
    """Its own writes move the version too, even one made without a repository (which bumps
    no counter): the next BEGIN starts afresh."""
    writer = GroupCommitWriter(conn, changes=repo._changes)
    writer.start()
    status = status_unit(repo._changes)
    try:
        assert writer.run_blocking(status) == "CREATING"

        def write_directly(unit_conn):  # type: ignore[no-untyped-def]
            unit_conn.execute("UPDATE resources SET doc = ? WHERE key = 'a'",
                              ('{"name": "a", "status": "DELETING"}',))
            return None, []

        writer.run_blocking(write_directly)
        assert writer.run_blocking(status) == "DELETING"
    finally:
        writer.stop()


def test_a_large_cache_is_not_kept_for_the_next_transaction(conn, repo, statements) -> None:
    """Server memory stays bounded: reads holding more text than MAX_KEPT_TEXT start afresh at
    the next BEGIN, even with no resource changed."""
    with conn:
        SqliteResources(conn, ACCOUNT, REGION).put(KIND, "big", {"blob": "x" * MAX_KEPT_TEXT})
    writer = GroupCommitWriter(conn, changes=repo._changes)
    writer.start()

    def read_big(unit_conn):  # type: ignore[no-untyped-def]
        return len(SqliteResources(unit_conn, ACCOUNT, REGION, repo._changes).get(
            KIND, "big")["blob"]), []

    try:
        assert writer.run_blocking(read_big) == MAX_KEPT_TEXT
        before = selects(statements)
        assert writer.run_blocking(read_big) == MAX_KEPT_TEXT
        assert selects(statements) == before + 2  # the version, then the document again
    finally:
        writer.stop()


def test_the_cache_holds_a_bounded_number_of_reads(conn, repo, statements) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for n in range(MAX_CACHED_READS + 10):
        repo.get(KIND, f"k{n}")
    assert len(repo._changes._reads) == MAX_CACHED_READS
    before = selects(statements)
    repo.get(KIND, f"k{MAX_CACHED_READS + 5}")  # past the bound: read again
    repo.get(KIND, "k0")  # within it: cached
    assert selects(statements) == before + 1
    conn.execute("COMMIT")
