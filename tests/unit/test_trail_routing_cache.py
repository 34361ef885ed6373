"""The trail router's cache of trails: reused between writes, dropped on any trail write or
rollback, so a call never routes by a trail that is not in the database."""

from __future__ import annotations

import pytest

from searchtrail.audit.routing import TrailRouter
from searchtrail.store import kinds
from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.connection import open_connection
from searchtrail.store.sqlite.resources import ResourceChanges, SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

ACCOUNT = "111122223333"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t1"
RECORD = {"eventSource": "aoss.amazonaws.com", "eventName": "ListCollections",
          "readOnly": True, "managementEvent": True, "eventCategory": "Management"}


def trail(logging: bool = True) -> dict:
    return {"TrailARN": ARN, "Name": "t1", "HomeRegion": "us-east-1", "IsLogging": logging,
            "IsMultiRegionTrail": True, "IsOrganizationTrail": False}


@pytest.fixture
def changes() -> ResourceChanges:
    return ResourceChanges()


def routes(router: TrailRouter, conn) -> tuple:  # type: ignore[no-untyped-def]
    return router.deliveries(conn, ACCOUNT, "us-east-1", RECORD)


def test_cached_trails_are_reused_until_a_trail_is_written(conn, changes) -> None:
    router = TrailRouter(changes)
    repo = SqliteResources(conn, ACCOUNT, "", changes)
    assert routes(router, conn) == ()
    repo.put(kinds.TRAIL, ARN, trail())
    assert routes(router, conn) == ((ARN, ACCOUNT),)  # the write dropped the cached "no trail"
    repo.put(kinds.TRAIL, ARN, trail(logging=False))
    assert routes(router, conn) == ()
    # a write that bypasses the counters (another process) is not seen until a bump
    SqliteResources(conn, ACCOUNT, "").put(kinds.TRAIL, ARN, trail())
    assert routes(router, conn) == ()
    changes.bump(None)
    assert routes(router, conn) == ((ARN, ACCOUNT),)


def test_without_counters_every_call_reads_the_trails(conn) -> None:
    router = TrailRouter()
    assert routes(router, conn) == ()
    SqliteResources(conn, ACCOUNT, "").put(kinds.TRAIL, ARN, trail())
    assert routes(router, conn) == ((ARN, ACCOUNT),)


@pytest.mark.parametrize("own_savepoint", [False, True],
                         ids=["in-the-writers-savepoint", "undoes-itself"])
def test_a_failed_batch_drops_what_was_cached_inside_it(conn, changes, own_savepoint) -> None:
    """A trail created and routed to in a unit that then fails must not linger, whether the
    writer's savepoint or the unit's own (the gateway's) undoes its writes."""
    router = TrailRouter(changes)
    writer = GroupCommitWriter(conn, changes=changes)
    writer.start()
    try:
        def create_route_then_fail(unit_conn):  # type: ignore[no-untyped-def]
            if own_savepoint:
                unit_conn.execute("SAVEPOINT mine")
            SqliteResources(unit_conn, ACCOUNT, "", changes).put(kinds.TRAIL, ARN, trail())
            assert routes(router, unit_conn) == ((ARN, ACCOUNT),)
            if own_savepoint:
                unit_conn.execute("ROLLBACK TO mine")
                unit_conn.execute("RELEASE mine")
            raise RuntimeError("the unit fails after routing")

        create_route_then_fail.undoes_itself = own_savepoint  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            writer.run_blocking(create_route_then_fail)
        assert writer.run_blocking(lambda unit_conn: (routes(router, unit_conn), [])) == ()
    finally:
        writer.stop()


def test_another_processs_trail_write_is_seen_by_the_next_transaction(db, conn,
                                                                      changes) -> None:
    """Another node's (or worker's) trail writes bump no counter here, but they move the
    trails' resource version, and the writer's next BEGIN drops the cached trails."""
    router = TrailRouter(changes)
    writer = GroupCommitWriter(conn, changes=changes)
    writer.start()
    other_node = open_connection(db)
    try:
        assert writer.run_blocking(lambda unit_conn: (routes(router, unit_conn), [])) == ()
        with other_node:
            SqliteResources(other_node, ACCOUNT, "").put(kinds.TRAIL, ARN, trail())
        assert writer.run_blocking(lambda unit_conn: (routes(router, unit_conn), [])) == (
            (ARN, ACCOUNT),)
    finally:
        other_node.close()
        writer.stop()


def test_cached_trails_outlive_another_processs_writes_of_other_kinds(db, conn,
                                                                     changes) -> None:
    """Only the kinds whose version moved are read again: a create/delete workload on another
    node or worker does not make every batch read the trails anew."""
    router = TrailRouter(changes)
    writer = GroupCommitWriter(conn, changes=changes)
    writer.start()
    other_node = open_connection(db)
    statements: list[str] = []
    try:
        assert writer.run_blocking(lambda unit_conn: (routes(router, unit_conn), [])) == ()
        with other_node:
            SqliteResources(other_node, ACCOUNT, "us-east-1").put("aoss.policy", "p", {})
        conn.set_trace_callback(statements.append)
        assert writer.run_blocking(lambda unit_conn: (routes(router, unit_conn), [])) == ()
        assert not [sql for sql in statements if "account IN" in sql]  # the trails were kept
    finally:
        conn.set_trace_callback(None)
        other_node.close()
        writer.stop()


def test_a_read_only_unit_that_writes_and_fails_fails_its_batch(conn, changes) -> None:
    """Read-only units run without a savepoint; if one wrote anyway, nothing may half-commit."""
    writer = GroupCommitWriter(conn, changes=changes)
    writer.start()
    try:
        def sneaky(unit_conn):  # type: ignore[no-untyped-def]
            SqliteResources(unit_conn, ACCOUNT, "").put("thing", "k", {"v": 1})
            raise ValueError("failed after writing")

        sneaky.read_only = True  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailable):
            writer.run_blocking(sneaky)
        assert SqliteResources(conn, ACCOUNT, "").get("thing", "k") is None

        def clean_read(unit_conn):  # type: ignore[no-untyped-def]
            raise ValueError("a read that failed without writing")

        clean_read.read_only = True  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            writer.run_blocking(clean_read)
    finally:
        writer.stop()
