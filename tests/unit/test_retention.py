"""Retention on a real SQLite store: expired records leave with their lookup and outbox rows,
never before every trail has delivered them, and migration 0011's triggers hold the rest."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson
import pytest

from searchtrail.audit import retention
from searchtrail.audit.delivery import DeliveryWorker, TrailStart
from searchtrail.audit.record import lookup_values
from searchtrail.audit.retention import EventRetention
from searchtrail.auth.identities import Identities
from searchtrail.config import load_settings
from searchtrail.store import kinds
from searchtrail.store.sqlite.connection import migrate, open_connection
from searchtrail.store.sqlite.events import EventRow
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

ACCOUNT = "111122223333"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
GONE_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/deleted"
# The triggers read SQLite's own clock, so the records' ages are taken from the real one.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
OLD = NOW - timedelta(days=100)
JUST_EXPIRED = NOW - timedelta(days=90, hours=1)  # less than a day past a 90-day window
RECENT = NOW - timedelta(hours=1)


class Store:
    """A migrated store (SQLite, or PostgreSQL's connections), its writer, a reader, and
    records appended at chosen times."""

    def __init__(self, conn: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self.conn = conn
        self.writer = GroupCommitWriter(self.conn)
        self.writer.start()
        self.reader = reader
        self.path: Path | None = None  # SQLite's file, for a delivery worker's reader

    def append(self, *times: datetime, trails: tuple[str, ...] = ()) -> None:
        rows = []
        for when in times:
            record = {"eventID": str(uuid.uuid4()), "eventName": "ListCollections",
                      "eventSource": "aoss.amazonaws.com", "readOnly": True,
                      "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "userIdentity": {"type": "IAMUser", "userName": "alice",
                                       "accessKeyId": "AKIAEXAMPLE"},
                      "resources": [{"type": "AWS::AOSS::Collection",
                                     "ARN": f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/c"}]}
            rows.append(EventRow(ACCOUNT, "us-east-1", int(when.timestamp()),
                                 orjson.dumps(record).decode(), lookup_values(record),
                                 deliveries=tuple((arn, ACCOUNT) for arn in trails)))
        self.writer.run_blocking(lambda conn: (None, rows))

    def seqs(self, table: str) -> list[int]:
        return [seq for (seq,) in self.conn.execute(f"SELECT DISTINCT seq FROM {table} ORDER BY seq")]

    def mark(self) -> int:
        return self.conn.execute("SELECT pruned_through FROM retention").fetchone()[0]

    def prune(self, trails: tuple[str, ...] | dict[str, TrailStart] = (), days: int = 90) -> int:
        return EventRetention(days, lambda: NOW).prune_batch(self.reader, self.writer, trails)[0]

    def add_log_file(self, arn: str, delivered: datetime | None, last_seq: int, *,
                     notified: bool = True, region: str = "us-east-1") -> None:
        """A log-file row of (arn, ACCOUNT, region) holding seqs up to ``last_seq``."""
        at = None if delivered is None else delivered.timestamp()
        self.writer.run_blocking(lambda conn: (conn.execute(
            "INSERT INTO log_files (trail_arn, account, region, bucket, key, created_at, records, "
            "sha256, newest_event, oldest_event, delivered_at, notified_at, first_seq, last_seq) "
            "VALUES (?, ?, ?, 'bucket', ?, ?, 1, 'ab', 0, 0, ?, ?, ?, ?)",
            (arn, ACCOUNT, region, f"file-{uuid.uuid4()}", at or 0.0, at,
             at if notified else None, last_seq, last_seq)) and None, []))

    def add_digest(self, arn: str, end: datetime, *, delivered: bool = True) -> None:
        """A digest row of (arn, ACCOUNT, us-east-1) ending at ``end``, the trail's last one
        before it as its previous."""
        self.writer.run_blocking(lambda conn: (conn.execute(
            "INSERT INTO digests (trail_arn, account, region, bucket, key, start_time, end_time, "
            "previous_id, sha256, signature, body, delivered_at) "
            "VALUES (?, ?, 'us-east-1', 'bucket', ?, ?, ?, "
            "(SELECT max(id) FROM digests WHERE trail_arn = ?), 'ab', 'cd', ?, ?)",
            (arn, ACCOUNT, f"digest-{uuid.uuid4()}", end.timestamp() - 3600, end.timestamp(),
             arn, b"gzip", end.timestamp() if delivered else None)) and None, []))

    def add_trail(self, arn: str, start: TrailStart | None = None) -> None:
        """The trail's resource row: it exists (a trail without one has been deleted), made
        after ``start``'s seq and time (a trail of the same ARN deleted before it)."""
        doc = {"S3BucketName": "bucket"} if start is None else {
            "S3BucketName": "bucket", "RecordsAfterSeq": start.records_after,
            "CreatedTime": start.created}
        self.writer.run_blocking(lambda conn: (conn.execute(
            "INSERT INTO resources (account, region, kind, key, doc) VALUES (?, '', ?, ?, ?)",
            (ACCOUNT, kinds.TRAIL, arn, orjson.dumps(doc).decode())) and None, []))

    def add_claim(self, arn: str, through: int) -> None:
        self.writer.run_blocking(lambda conn: (conn.execute(
            "INSERT INTO outbox_claims (trail_arn, through_seq) VALUES (?, ?)",
            (arn, through)) and None, []))

    def claims(self) -> list[str]:
        return [arn for (arn,) in self.conn.execute(
            "SELECT trail_arn FROM outbox_claims ORDER BY trail_arn")]

    def times(self, table: str) -> list[int]:
        """Each row's delivery time (log files) or end time (digests), whole seconds, in order."""
        column = {"log_files": "delivered_at", "digests": "end_time"}[table]
        return sorted(int(at or 0) for (at,) in self.conn.execute(f"SELECT {column} FROM {table}"))

    def prune_bookkeeping(self, validating: tuple[str, ...] = (),
                          existing: tuple[str, ...] | dict[str, TrailStart] | None = None
                          ) -> tuple[int, int, bool]:
        return EventRetention(90, lambda: NOW).prune_bookkeeping(self.reader, self.writer,
                                                                 validating, existing)

    @contextlib.contextmanager
    def direct(self) -> Iterator[sqlite3.Connection]:
        """The store's connection itself, as another program would write, the writer stopped
        meanwhile."""
        self.writer.stop()
        try:
            yield self.conn
        finally:
            self.writer = GroupCommitWriter(self.conn)
            self.writer.start()

    def assert_refused(self, sql: str, tables: Iterable[str]) -> None:
        """``sql`` is refused as rewriting history, and ``tables`` stay as they were."""
        with self.direct() as conn:
            before = {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                with conn:
                    conn.execute(sql)
            assert {table: conn.execute(f"SELECT * FROM {table}").fetchall()
                    for table in before} == before

    def close(self) -> None:
        self.writer.stop()
        self.reader.close()
        self.conn.close()


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    conn = open_connection(tmp_path / "db.sqlite3")
    migrate(conn)
    opened = Store(conn, open_connection(tmp_path / "db.sqlite3", read_only=True))
    opened.path = tmp_path / "db.sqlite3"
    yield opened
    opened.close()


def test_expired_records_leave_with_their_lookup_rows_and_recent_ones_stay(store) -> None:  # type: ignore[no-untyped-def]
    store.append(OLD, OLD, OLD + timedelta(days=5), RECENT, RECENT)
    lookups_per_record = len(store.conn.execute("SELECT * FROM event_lookup").fetchall()) // 5
    assert lookups_per_record >= 6  # EventId, name, read-only, source, user, key, resource...

    assert store.prune() == 3

    assert store.seqs("events") == [4, 5] and store.seqs("event_lookup") == [4, 5]
    assert len(store.conn.execute("SELECT * FROM event_lookup").fetchall()) == 2 * lookups_per_record
    assert store.mark() == 3
    assert store.prune() == 0  # nothing else has expired


def test_the_newest_record_stays_however_old_so_seqs_keep_growing(store) -> None:  # type: ignore[no-untyped-def]
    store.append(OLD, OLD, OLD)
    assert store.prune() == 2
    assert store.seqs("events") == [3]
    store.append(RECENT)
    assert store.seqs("events") == [3, 4]


def test_a_record_older_than_a_younger_one_before_it_waits_its_turn(store) -> None:  # type: ignore[no-untyped-def]
    # the wall clock stepped back between the second and the third record
    store.append(OLD, RECENT, OLD, RECENT)
    assert store.prune() == 1
    assert store.seqs("events") == [2, 3, 4]


def test_records_leave_a_batch_per_unit_and_a_full_batch_looks_again_at_once(store, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)
    store.append(OLD, OLD, OLD, OLD, OLD, RECENT)
    ticks = [0.0]
    counted: list[int] = []
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0], removed=counted.append)
    with caplog.at_level(logging.INFO, logger="searchtrail.retention"):
        assert pruner.run_due(store.reader, store.writer, ()) == 2
        assert pruner.run_due(store.reader, store.writer, ()) == 2  # full: again at once
        assert pruner.run_due(store.reader, store.writer, ()) == 1
        assert pruner.run_due(store.reader, store.writer, ()) == 0  # caught up: waits
    assert counted == [2, 2, 1]  # for /metrics
    assert [record.getMessage() for record in caplog.records] == [
        "removing records older than 90 days, the oldest first",
        "removed 5 records older than 90 days; nothing more to remove for now"]
    store.append(OLD)  # (the clock stepped back) an expired record after the recent one
    ticks[0] = retention.PRUNE_INTERVAL_SECONDS - 1
    store.append(RECENT)
    assert pruner.run_due(store.reader, store.writer, ()) == 0
    assert store.seqs("events") == [6, 7, 8]


def test_a_pass_removes_its_records_in_units_of_a_few_each(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(OLD, OLD, OLD, OLD, OLD, RECENT)
    units = store.writer.stats.units
    assert store.prune() == 5
    assert store.writer.stats.units - units == 3  # 2 + 2 + 1, each committed on its own
    assert store.seqs("events") == [6] and store.seqs("event_lookup") == [6]


def test_a_store_clock_behind_this_nodes_is_a_warning_and_nothing_is_removed(store, caplog) -> None:  # type: ignore[no-untyped-def]
    store.append(RECENT, RECENT, RECENT)
    ahead = EventRetention(90, lambda: NOW + timedelta(days=100))  # SQLite's clock is real
    with caplog.at_level(logging.WARNING, logger="searchtrail.retention"):
        assert ahead.run_due(store.reader, store.writer, ()) == 0
    assert "database server's clock a day or more behind" in caplog.text
    assert store.seqs("events") == [1, 2, 3] and store.mark() == 0


class BusyWriter:
    """The store's writer, with an API call recorded (its event appended) before each of the
    pruner's units."""

    def __init__(self, store: Store, recorder: Store | None = None) -> None:
        self.store = store
        self.recorder = recorder or store  # another worker's, or this one's

    def run_blocking(self, unit):  # type: ignore[no-untyped-def]
        self.recorder.append(RECENT)
        return self.store.writer.run_blocking(unit)


def test_beside_a_busy_api_a_unit_goes_every_pause_and_a_quiet_one_takes_the_rest(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(*[JUST_EXPIRED] * 20, RECENT)
    ticks = [0.0]
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0])
    busy = BusyWriter(store)
    assert pruner.run_due(store.reader, busy, ()) == 2  # one unit, then it yields
    assert pruner.run_due(store.reader, busy, ()) == 0  # until the pause is over
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    assert pruner.run_due(store.reader, busy, ()) == 2
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    assert pruner.run_due(store.reader, store.writer, ()) == 16  # quiet: the rest in one pass
    assert store.seqs("events") == [21, 22, 23]  # the recent record and the two busy calls


@pytest.mark.parametrize("days_late, units", [(0, 1), (3, 4)])
def test_beside_a_busy_api_a_failing_trails_old_record_does_not_make_the_backlog_late(store, monkeypatch, days_late, units) -> None:  # type: ignore[no-untyped-def]
    """How late removal is was judged by the oldest record stored, which a failing trail holds
    back: every backlog then took the most units a pause beside the API, however fresh. It is
    now judged by the record last removed around the held ones."""
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(OLD, trails=(ARN,))  # held 10 days past the window
    store.append(*[JUST_EXPIRED - timedelta(days=days_late)] * 20, RECENT)
    ticks = [0.0]
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0])
    busy = BusyWriter(store)
    # one unit (the held record and the next), then it yields: none removed around yet
    assert pruner.run_due(store.reader, busy, (ARN,)) == 1
    assert pruner.run_due(store.reader, busy, (ARN,)) == 0  # until the pause is over
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    assert pruner.run_due(store.reader, busy, (ARN,)) == 2 * units
    assert store.seqs("events")[:2] == [1, 3 + 2 * units]


def test_calls_another_worker_records_count_as_a_busy_api(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Another worker process (or node) commits through its own writer: its calls show in the
    store, not in this writer's counts."""
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(*[JUST_EXPIRED] * 10, RECENT)
    other = Store(open_connection(store.path), open_connection(store.path, read_only=True))
    try:
        pruner = EventRetention(90, lambda: NOW, ticks=lambda: 0.0)
        assert pruner.run_due(store.reader, BusyWriter(store, other), ()) == 2  # then it yields
    finally:
        other.close()


@pytest.mark.parametrize("days_late, units", [(0, 1), (3, 4), (30, retention.MAX_BUSY_UNITS)])
def test_beside_a_busy_api_a_backlog_days_late_goes_a_unit_more_a_pause_for_each_day(store, monkeypatch, days_late, units) -> None:  # type: ignore[no-untyped-def]
    """An API busy around the clock leaves no quiet spell: retention keeps up by going faster
    the further behind it is, up to a cap."""
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(*[JUST_EXPIRED - timedelta(days=days_late)] * (4 * units + 1), RECENT)
    ticks = [0.0]
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0])
    busy = BusyWriter(store)
    assert pruner.run_due(store.reader, busy, ()) == 2 * units  # then it yields
    assert pruner.run_due(store.reader, busy, ()) == 0  # until the pause is over
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    assert pruner.run_due(store.reader, busy, ()) == 2 * units


def test_beside_a_busy_api_a_backlog_a_day_late_also_keeps_pace_with_the_records_expiring_now(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Quiet spells have not been enough once the oldest is a day late: each pause then takes
    as many units as records expire per pause now (stored per second just before the
    window's edge), one more, beyond MAX_BUSY_UNITS, so an API busy around the clock cannot
    grow the store for ever."""
    busy_backlog_keeps_pace(store, monkeypatch)


def test_keeping_pace_takes_at_most_its_cap_of_units_a_pass(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Records out of time order can make the count a wild guess: it cannot make a pass go on
    without end (the delivery worker's thread runs it)."""
    monkeypatch.setattr(retention, "KEEP_PACE_MAX_UNITS", 3)
    pruner, busy, ticks = late_backlog_beside_expiring_records(store, monkeypatch)
    assert pruner.run_due(store.reader, busy, ()) == 2 * 3
    ticks[0] += 10 * retention.BUSY_PAUSE_SECONDS  # however long since
    assert pruner.run_due(store.reader, busy, ()) == 2 * 3


def late_backlog_beside_expiring_records(store: Store, monkeypatch: pytest.MonkeyPatch
                                         ) -> tuple[EventRetention, BusyWriter, list[float]]:
    """60 records 5 days late (MAX_BUSY_UNITS alone: 2 units of 2), then 16 records a second
    expiring over the 10 s (KEEP_PACE_SPAN_SECONDS) before the window's edge: 8 units a
    second keep pace with them, 9 gain on it. A pruner, a writer that records a call before
    each unit, and the pruner's clock ticks (to move on)."""
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    monkeypatch.setattr(retention, "MAX_BUSY_UNITS", 2)
    monkeypatch.setattr(retention, "KEEP_PACE_SPAN_SECONDS", 10)
    edge = NOW - timedelta(days=90)
    expiring = [edge - timedelta(seconds=10 - i // 16) for i in range(160)]
    store.append(*[JUST_EXPIRED - timedelta(days=5)] * 60, *expiring, RECENT)
    ticks = [0.0]
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0])
    return pruner, BusyWriter(store), ticks


def busy_backlog_keeps_pace(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above, on any store (PostgreSQL's too)."""
    pruner, busy, ticks = late_backlog_beside_expiring_records(store, monkeypatch)
    assert pruner.run_due(store.reader, busy, ()) == 2 * 9  # then it yields
    assert pruner.run_due(store.reader, busy, ()) == 0  # until the pause is over
    ticks[0] += 2 * retention.BUSY_PAUSE_SECONDS  # a pass and the worker's tick stretch it
    assert pruner.run_due(store.reader, busy, ()) == 2 * 17  # pace for the seconds gone by
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    assert pruner.run_due(store.reader, busy, ()) == 2 * 9
    ticks[0] += retention.BUSY_PAUSE_SECONDS
    # under a day late now (the rest are at the edge): the backlog yields, one unit a pause
    assert pruner.run_due(store.reader, busy, ()) == 2


def test_a_retention_of_days_keeps_records_younger_than_that(store) -> None:  # type: ignore[no-untyped-def]
    store.append(NOW - timedelta(days=40), NOW - timedelta(days=20), RECENT)
    assert store.prune(days=30) == 1
    assert store.seqs("events") == [2, 3]


def test_a_trail_keeps_its_records_until_their_log_file_is_delivered(store) -> None:  # type: ignore[no-untyped-def]
    SqliteResources(store.conn, ACCOUNT, "").put(kinds.TRAIL, ARN, {
        "Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket", "HomeRegion": "us-east-1",
        "IsLogging": True})
    store.append(OLD, OLD, OLD, trails=(ARN,))
    store.append(RECENT, trails=(ARN,))
    assert store.prune((ARN,)) == 0  # not even claimed by a log file
    stored: list[str] = []

    class FailingThenWorkingStore:
        def put_object(self, bucket: str, key: str, body: bytes, **_: object) -> None:
            if not stored:
                stored.append("refused")
                raise_error()
            stored.append(key)

    def raise_error() -> None:
        from searchtrail.audit.objectstore import ObjectStoreError
        raise ObjectStoreError("SlowDown", "try again")

    ticks = [0.0]
    worker = DeliveryWorker(
        reader=lambda: open_connection(store.path, read_only=True), writer=store.writer,
        store=FailingThenWorkingStore(), notifier=None,  # type: ignore[arg-type]
        signing_keys=None, delivery_interval=1, digest_interval=3600,  # type: ignore[arg-type]
        org_id=None, clock=lambda: NOW, ticks=lambda: ticks[0],
        retention=EventRetention(90, lambda: NOW, ticks=lambda: ticks[0]))
    worker.run_once()  # claims the four records into a log file whose upload fails
    assert stored == ["refused"]
    assert store.conn.execute("SELECT count(*) FROM log_files WHERE delivered_at IS NULL"
                              ).fetchone()[0] == 1
    assert store.seqs("events") == [1, 2, 3, 4] and store.mark() == 0
    ticks[0] += 120  # past the back-off and the pruner's interval
    worker.run_once()  # stored, then the three expired records leave
    assert len(stored) == 2
    assert store.seqs("events") == [4] and store.seqs("outbox") == [4]
    assert store.seqs("event_lookup") == [4]


def test_a_trail_that_holds_expired_records_back_is_named_and_their_lateness_measured(  # type: ignore[no-untyped-def]
        store, caplog) -> None:
    """A trail that has not delivered keeps its expired records: it was seen only as "nothing
    more to remove for now"."""
    store.append(OLD, trails=(ARN,))
    store.append(OLD + timedelta(days=1), OLD + timedelta(days=2), RECENT)
    overdue: list[float] = []
    ticks = [0.0]
    retention = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0], overdue=overdue.append)
    with caplog.at_level("WARNING", logger="searchtrail.retention"):
        # the two it does not take leave around it
        assert retention.prune_batch(store.reader, store.writer, (ARN,))[0] == 2
        assert retention.prune_batch(store.reader, store.writer, (ARN,))[0] == 0
    assert store.seqs("events") == [1, 4]
    assert overdue == [10 * 86_400.0] * 2  # the oldest kept is 10 days past the window
    [warning] = [r for r in caplog.records if r.name == "searchtrail.retention"]
    assert f"that trail {ARN} takes" in warning.getMessage()
    ticks[0] += 3_600  # named again an hour later
    with caplog.at_level("WARNING", logger="searchtrail.retention"):
        retention.prune_batch(store.reader, store.writer, (ARN,))
    assert len([r for r in caplog.records if r.name == "searchtrail.retention"]) == 2
    # the trail gone, its record leaves and nothing is overdue
    assert retention.prune_batch(store.reader, store.writer, ())[0] == 1
    assert overdue[-1] == 0.0
    assert store.seqs("events") == [4] and store.seqs("event_lookup") == [4]


OTHER_REGION_ARN = f"arn:aws:cloudtrail:us-west-2:{ACCOUNT}:trail/elsewhere"


def test_a_trail_that_has_not_delivered_holds_only_the_records_it_takes(store) -> None:  # type: ignore[no-untyped-def]
    """One trail whose bucket failed, anywhere, had every later record of the whole store,
    every account and Region, stay past the window for as long as it failed."""
    store.append(OLD, trails=(ARN, OTHER_REGION_ARN))  # both take it; only ARN delivered
    store.append(OLD, OLD, trails=(ARN,))
    store.append(OLD, trails=(ARN, OTHER_REGION_ARN))
    store.append(OLD, RECENT, trails=(ARN,))
    store.add_claim(ARN, 6)
    store.add_log_file(ARN, RECENT, 6)  # ARN has delivered them all
    lookups = {seq: count for seq, count in store.conn.execute(
        "SELECT seq, count(*) FROM event_lookup GROUP BY seq")}
    trails = (ARN, OTHER_REGION_ARN)
    assert store.prune(trails) == 3  # the records the failing trail does not take
    assert store.seqs("events") == [1, 4, 6]
    assert store.mark() == 0  # the mark stays below the failing trail's oldest
    assert store.conn.execute("SELECT trail_arn, seq FROM outbox ORDER BY seq, trail_arn"
                              ).fetchall() == [(ARN, 1), (OTHER_REGION_ARN, 1), (ARN, 4),
                                               (OTHER_REGION_ARN, 4), (ARN, 6)]
    assert {seq: count for seq, count in store.conn.execute(
        "SELECT seq, count(*) FROM event_lookup GROUP BY seq")} == {
            seq: lookups[seq] for seq in (1, 4, 6)}
    assert store.prune(trails) == 0
    # it delivers (or is deleted): the rest leave and the mark passes them
    assert store.prune((ARN,)) == 2
    assert store.seqs("events") == [6] and store.mark() == 4


def around_steps_per_record(store: Store, records: int) -> float:
    """SQLite's steps (per 10 VM instructions) on the writer's connection per record removed
    around a failing trail that takes every other one of ``records`` stored in one second."""
    for _ in range(records // 2):
        store.append(OLD, trails=(ARN,))
        store.append(OLD)
    store.append(RECENT)
    steps = [0]
    store.conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 10)
    try:
        removed = EventRetention(90, lambda: NOW).prune_batch(store.reader, store.writer, (ARN,))[0]
    finally:
        store.conn.set_progress_handler(None, 0)
    assert removed == records // 2
    return steps[0] / removed


def test_removing_around_held_records_costs_the_same_whatever_else_shares_their_second(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A run of one record deleted its lookup rows by a range of times: every row of the same
    value in that second was stepped over, once per run (7-22x the cost of a record on a busy
    store, units of 15-45 ms)."""
    costs = []
    for records in (100, 800):
        conn = open_connection(tmp_path / f"{records}.sqlite3")
        migrate(conn)
        store = Store(conn, open_connection(tmp_path / f"{records}.sqlite3", read_only=True))
        try:
            costs.append(around_steps_per_record(store, records))
        finally:
            store.close()
    assert costs[1] < 1.3 * costs[0], costs  # 6.6x before


def test_removing_around_held_records_goes_on_where_the_last_pass_stopped(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A pass looks at a budget's worth of records; were each to start again at the mark, a
    failing trail holding more than that would keep every record after them."""
    monkeypatch.setattr(retention, "PRUNE_BATCH", 4)
    monkeypatch.setattr(retention, "PRUNE_UNIT", 2)
    store.append(*[OLD] * 8, trails=(ARN,))
    store.append(OLD, OLD)
    store.append(RECENT, trails=(ARN,))
    pruner = EventRetention(90, lambda: NOW)
    assert pruner.prune_batch(store.reader, store.writer, (ARN,)) == (0, 0.0)  # 1-4: held
    assert pruner.prune_batch(store.reader, store.writer, (ARN,)) == (0, 0.0)  # 5-8: held
    assert pruner.prune_batch(store.reader, store.writer, (ARN,)) == (2, None)
    assert store.seqs("events") == [*range(1, 9), 11]
    # the trail delivers the first half: the next pass starts again below, at its new oldest
    store.add_claim(ARN, 4)
    store.add_log_file(ARN, RECENT, 4)
    assert pruner.prune_batch(store.reader, store.writer, (ARN,)) == (4, 0.0)
    assert store.seqs("events") == [5, 6, 7, 8, 11] and store.mark() == 4


def test_a_wall_clock_that_jumps_ahead_removes_nothing_for_a_day(store, caplog) -> None:  # type: ignore[no-untyped-def]
    """A clock stepped 100 days ahead while the server ran had retention remove the whole
    history in a second; when it came back, event history was empty."""
    store.append(NOW - timedelta(days=30), NOW - timedelta(days=20), RECENT)
    wall, ticks = [NOW], [0.0]
    retention = EventRetention(90, lambda: wall[0], ticks=lambda: ticks[0], interval_seconds=60)
    assert retention.run_due(store.reader, store.writer, ()) == 0  # nothing has expired
    wall[0], ticks[0] = NOW + timedelta(days=100, seconds=60), 60.0  # stepped ahead
    with caplog.at_level("WARNING", logger="searchtrail.retention"):
        assert retention.run_due(store.reader, store.writer, ()) == 0
    assert "jumped 100.0 days ahead" in caplog.text
    assert store.seqs("events") == [1, 2, 3]
    wall[0], ticks[0] = NOW + timedelta(days=100, hours=23), 23 * 3_600.0
    assert retention.run_due(store.reader, store.writer, ()) == 0  # still held
    # a day on, the clock is taken at its word
    wall[0], ticks[0] = NOW + timedelta(days=101, minutes=2), 86_520.0
    assert retention.run_due(store.reader, store.writer, ()) == 2
    assert store.seqs("events") == [3]


def test_temporary_credentials_leave_a_day_after_they_expired(store) -> None:  # type: ignore[no-untyped-def]
    """Every AssumeRole and GetSessionToken left its document (its secret key with it) in the
    store for good: a test suite assuming a role per test grew it without end."""
    identities = Identities(SqliteResources(store.conn, "", ""))
    account = identities.create_account(NOW, make_default=True)
    for hours_ago in (49, 30, 2):  # expired two days ago, a day and a bit ago, not yet a day
        identities.store_session_credentials({
            "AccessKeyId": f"ASIA{hours_ago:016d}", "SecretAccessKey": "s",
            "SessionToken": "t", "Owner": {"account_id": account},
            "Expiration": int((NOW - timedelta(hours=hours_ago)).timestamp())})
    store.conn.commit()

    def purge(conn, before: int, limit: int) -> int:  # type: ignore[no-untyped-def]
        return Identities(SqliteResources(conn, "", "")).purge_expired_sessions(before, limit)

    retention = EventRetention(90, lambda: NOW, purge_sessions=purge)
    retention.run_due(store.reader, store.writer, ())
    left = [doc["AccessKeyId"] for doc in SqliteResources(store.conn, "", "").list(
        "access-key", "ASIA")]
    assert left == [f"ASIA{2:016d}"]


def test_a_deleted_trails_undelivered_rows_do_not_hold_records(store) -> None:  # type: ignore[no-untyped-def]
    store.append(OLD, OLD, trails=(GONE_ARN,))
    store.append(RECENT, trails=(GONE_ARN,))
    assert store.prune((GONE_ARN,)) == 0  # were the trail still there, they would stay
    assert store.prune(()) == 2  # it no longer exists: its rows go with their records
    assert store.seqs("outbox") == [3]


def test_a_trail_made_again_under_its_arn_is_not_held_back_by_what_the_deleted_one_left(store) -> None:  # type: ignore[no-untyped-def]
    store.append(OLD, OLD, trails=(ARN,))  # the deleted trail's: one never stored, one unclaimed
    store.add_log_file(ARN, None, 1)
    store.append(RECENT)
    assert store.prune({ARN: TrailStart(0)}) == 0  # were it the same trail, both would wait
    assert store.prune({ARN: TrailStart(2)}) == 2  # the trail there now logs records after seq 2


UNDELIVERED = datetime.fromtimestamp(0, timezone.utc)  # Store.times's 0


def ts(*moments: datetime) -> list[int]:
    return sorted(int(moment.timestamp()) for moment in moments)


def test_log_file_and_digest_rows_past_the_window_leave_and_each_chains_newest_stays(store) -> None:  # type: ignore[no-untyped-def]
    store.add_log_file(ARN, OLD, 1)
    store.add_log_file(ARN, OLD + timedelta(hours=1), 2)
    store.add_log_file(ARN, RECENT, 3)
    store.add_log_file(ARN, OLD, 1, region="eu-west-1")  # a chain's only file, however old
    for end in (OLD, OLD + timedelta(hours=1), RECENT):
        store.add_digest(ARN, end)
    store.add_digest(GONE_ARN, OLD)  # a deleted trail's last digest
    store.add_digest(GONE_ARN, OLD - timedelta(hours=1))

    counted: list[tuple[str, int]] = []
    pruner = EventRetention(90, lambda: NOW, rows_removed=lambda *row: counted.append(row))
    assert pruner.prune_bookkeeping(store.reader, store.writer, (ARN,)) == (2, 3, False)

    assert counted == [("log_files", 2), ("digests", 3)]  # the /metrics counters
    assert store.times("log_files") == ts(OLD, RECENT)
    assert store.times("digests") == ts(OLD, RECENT)
    assert store.prune_bookkeeping(validating=(ARN,)) == (0, 0, False)


def test_a_log_file_stays_while_undelivered_unnotified_or_listed_in_no_digest_of_a_validating_trail(store) -> None:  # type: ignore[no-untyped-def]
    store.add_log_file(ARN, None, 1)
    store.add_log_file(ARN, OLD, 2, notified=False)  # its notification is still owed
    store.add_log_file(ARN, OLD + timedelta(hours=2), 3)  # after the last digest's end
    store.add_log_file(ARN, RECENT, 4)
    store.add_digest(ARN, OLD + timedelta(hours=1))
    store.add_digest(ARN, OLD + timedelta(hours=1, minutes=1), delivered=False)

    # the older digest goes: its successor's row, still to be stored, is fixed already
    assert store.prune_bookkeeping(validating=(ARN,)) == (0, 1, False)
    assert store.times("log_files") == ts(UNDELIVERED, OLD, OLD + timedelta(hours=2), RECENT)
    assert store.times("digests") == ts(OLD + timedelta(hours=1, minutes=1))
    # the trail no longer writes digests: the listed-or-not check no longer holds its files
    assert store.prune_bookkeeping(validating=()) == (1, 0, False)
    assert store.times("log_files") == ts(UNDELIVERED, OLD, RECENT)


def deleted_trail_bookkeeping(store: Store) -> None:
    """ARN exists; GONE_ARN was deleted. Each has a claim mark and an old log file and digest
    (its chain's newest) over record 1 (OLD), still in the store; record 2 is recent."""
    store.add_trail(ARN)
    store.append(OLD, trails=(ARN, GONE_ARN))
    store.append(RECENT)
    for arn in (ARN, GONE_ARN):
        store.add_log_file(arn, OLD, 1)
        store.add_digest(arn, OLD)
        store.add_claim(arn, 1)


def test_a_deleted_trails_newest_rows_and_claim_mark_leave_once_its_records_have(store) -> None:  # type: ignore[no-untyped-def]
    deleted_trail_bookkeeping(store)
    counted: list[tuple[str, int]] = []
    pruner = EventRetention(90, lambda: NOW, rows_removed=lambda *row: counted.append(row))
    # its record is still in the outbox: a claim could still follow its rows
    assert pruner.prune_bookkeeping(store.reader, store.writer, (), (ARN,)) == (0, 0, False)
    assert store.claims() == sorted((ARN, GONE_ARN))

    assert store.prune((ARN,)) == 1  # ARN delivered it; the deleted trail holds nothing back
    assert pruner.prune_bookkeeping(store.reader, store.writer, (), (ARN,)) == (1, 1, False)

    assert counted == [("log_files", 1), ("digests", 1), ("outbox_claims", 1)]
    for table in ("log_files", "digests"):  # the existing trail's newest rows stay
        assert [arn for (arn,) in store.conn.execute(f"SELECT trail_arn FROM {table}")] == [ARN]
    assert store.claims() == [ARN]
    # without the existing trails named, every trail with rows counts as existing
    assert store.prune_bookkeeping() == (0, 0, False)


def unstored_bookkeeping(store: Store) -> None:
    """ARN exists; GONE_ARN was deleted, its record 1 (OLD) still in the store. Each has a log
    file never stored, one stored but never notified and a digest never stored (their bucket
    and topic failed), and a claim mark; record 2 is recent."""
    store.add_trail(ARN)
    store.append(OLD, trails=(GONE_ARN,))
    store.append(RECENT)
    for arn in (ARN, GONE_ARN):
        store.add_log_file(arn, None, 1)
        store.add_log_file(arn, OLD, 1, notified=False, region="eu-west-1")
        store.add_digest(arn, OLD, delivered=False)
        store.add_claim(arn, 1)


def test_a_deleted_trails_rows_never_stored_or_notified_leave_too_once_its_records_have(store) -> None:  # type: ignore[no-untyped-def]
    unstored_bookkeeping(store)
    tables = ("log_files", "digests", "outbox_claims")
    # its record is still in the store: its rows fall under the existing trails' rules
    store.assert_refused(f"DELETE FROM log_files WHERE trail_arn = '{GONE_ARN}'", tables)
    store.assert_refused(f"DELETE FROM digests WHERE trail_arn = '{GONE_ARN}'", tables)
    assert store.prune(()) == 1

    assert store.prune_bookkeeping(existing=(ARN,)) == (2, 1, False)

    for table in ("log_files", "digests"):  # the existing trail keeps what waits for a retry
        assert {arn for (arn,) in store.conn.execute(f"SELECT trail_arn FROM {table}")} == {ARN}
    assert store.claims() == [ARN]


# The trail there now was made after seq 1, 95 days ago; a trail of its ARN was deleted before.
MADE_AGAIN = TrailStart(records_after=1, created=(NOW - timedelta(days=95)).timestamp())


def recreated_trail_bookkeeping(store: Store) -> None:
    """ARN was deleted and made again (MADE_AGAIN). The deleted trail's record 1 (OLD) is still
    in the store; it left a log file never stored, its eu-west-1 chain's only file, a digest
    never stored and its last digest. The trail there now has record 2, a log file and a
    digest of its own, each its chain's newest."""
    store.append(OLD, trails=(ARN,))
    store.add_log_file(ARN, None, 1)
    store.add_log_file(ARN, OLD, 1, region="eu-west-1")
    store.add_digest(ARN, OLD - timedelta(hours=1), delivered=False)
    store.add_digest(ARN, OLD)
    store.add_trail(ARN, MADE_AGAIN)
    store.add_claim(ARN, 1)
    store.append(RECENT, trails=(ARN,))
    store.add_log_file(ARN, RECENT, 2)
    store.add_digest(ARN, RECENT)


def test_what_a_deleted_trail_left_under_the_arn_of_one_made_again_leaves_once_its_records_have(store) -> None:  # type: ignore[no-untyped-def]
    recreated_trail_bookkeeping(store)
    tables = ("log_files", "digests", "outbox_claims")
    # its record is still in the store: the rows it left fall under the existing trail's rules
    store.assert_refused("DELETE FROM log_files WHERE last_seq = 1", tables)
    store.assert_refused(f"DELETE FROM digests WHERE end_time < {RECENT.timestamp()}", tables)
    # (its stored last digest is below the chain's newest: that one may go already)
    assert store.prune_bookkeeping(existing={ARN: MADE_AGAIN}) == (0, 1, False)
    assert store.prune({ARN: MADE_AGAIN}) == 1  # the trail there now does not hold it

    assert store.prune_bookkeeping(existing={ARN: MADE_AGAIN}) == (2, 1, False)

    assert store.times("log_files") == ts(RECENT)  # the trail's own newest rows stay
    assert store.times("digests") == ts(RECENT)
    assert store.claims() == [ARN]
    # named without where it begins, the trail there now owns every row under its ARN
    store.add_log_file(ARN, OLD, 1, region="eu-central-1")
    assert store.prune_bookkeeping(existing=(ARN,)) == (0, 0, False)


RECREATED_TRAIL_TAMPERING = (
    f"DELETE FROM log_files WHERE last_seq = 2",  # the trail's own newest rows
    f"DELETE FROM digests WHERE end_time >= {RECENT.timestamp()}",
    f"DELETE FROM outbox_claims",  # the trail exists
)


# ids without the time in them: two xdist workers collecting in different seconds must agree
@pytest.mark.parametrize("sql", RECREATED_TRAIL_TAMPERING,
                         ids=["own-newest-log-files", "own-newest-digests", "claims"])
def test_a_trail_made_again_keeps_its_own_rows_when_the_deleted_ones_may_go(store, sql) -> None:  # type: ignore[no-untyped-def]
    recreated_trail_bookkeeping(store)
    assert store.prune({ARN: MADE_AGAIN}) == 1
    tables = ("log_files", "digests", "outbox_claims")
    store.assert_refused(sql, tables)
    with store.direct() as conn, conn:  # what the deleted trail left may go
        assert conn.execute("DELETE FROM log_files WHERE last_seq = 1").rowcount == 2
        assert conn.execute("DELETE FROM digests WHERE end_time < ?",
                            (MADE_AGAIN.created,)).rowcount == 2


def test_a_deleted_trails_rows_delivered_in_the_last_day_stay(store) -> None:  # type: ignore[no-untyped-def]
    store.add_log_file(GONE_ARN, RECENT, 1)
    store.add_digest(GONE_ARN, RECENT)
    store.add_claim(GONE_ARN, 1)
    assert store.prune_bookkeeping(existing=()) == (0, 0, False)
    assert store.times("log_files") == ts(RECENT) and store.claims() == [GONE_ARN]


def test_bookkeeping_leaves_a_unit_a_chain_at_a_time_and_looks_again_while_more_wait(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retention, "BOOKKEEPING_UNIT", 2)
    for hour in range(5):
        store.add_digest(ARN, OLD + timedelta(hours=hour))
    store.add_digest(ARN, RECENT)
    ticks = [0.0]
    pruner = EventRetention(90, lambda: NOW, ticks=lambda: ticks[0], interval_seconds=60)
    pruner.run_due(store.reader, store.writer, (ARN,))
    assert len(store.times("digests")) == 4  # two went; more wait
    ticks[0] += 60
    pruner.run_due(store.reader, store.writer, (ARN,))
    ticks[0] += 60
    pruner.run_due(store.reader, store.writer, (ARN,))
    assert store.times("digests") == ts(RECENT)
    store.add_digest(ARN, OLD)  # found only at the next hour's look
    ticks[0] += 60
    pruner.run_due(store.reader, store.writer, (ARN,))
    assert len(store.times("digests")) == 2
    ticks[0] += retention.BOOKKEEPING_INTERVAL_SECONDS
    pruner.run_due(store.reader, store.writer, (ARN,))
    assert store.times("digests") == ts(RECENT)


BOOKKEEPING_TAMPERING = (
    "DELETE FROM log_files",
    "DELETE FROM log_files WHERE last_seq = 3",  # the chain's newest
    "DELETE FROM log_files WHERE last_seq = 2",  # delivered less than a day ago
    "DELETE FROM log_files WHERE delivered_at IS NULL",
    "DELETE FROM digests",
    "DELETE FROM digests WHERE end_time = (SELECT max(end_time) FROM digests)",
    "DELETE FROM digests WHERE delivered_at IS NULL",
    "UPDATE digests SET previous_id = 1",
)


@pytest.mark.parametrize("sql", BOOKKEEPING_TAMPERING)
def test_only_expired_delivered_log_file_and_digest_rows_below_their_chains_newest_can_be_deleted(store, sql) -> None:  # type: ignore[no-untyped-def]
    store.add_trail(ARN)
    store.add_log_file(ARN, OLD, 1)
    store.add_log_file(ARN, None, 0)
    store.add_log_file(ARN, RECENT, 2)
    store.add_log_file(ARN, OLD, 3)
    store.add_digest(ARN, OLD, delivered=False)
    store.add_digest(ARN, OLD + timedelta(hours=1))
    store.assert_refused(sql, ("log_files", "digests"))
    with store.direct() as conn, conn:  # what may go does
        assert conn.execute("DELETE FROM log_files WHERE last_seq = 1").rowcount == 1


DELETED_TRAIL_TAMPERING = (
    f"DELETE FROM outbox_claims WHERE trail_arn = '{ARN}'",  # the trail exists
    f"DELETE FROM log_files WHERE trail_arn = '{ARN}'",  # so its newest rows stay
    f"DELETE FROM digests WHERE trail_arn = '{ARN}'",
    f"DELETE FROM log_files WHERE trail_arn = '{GONE_ARN}'",  # its record is in the outbox
    f"DELETE FROM digests WHERE trail_arn = '{GONE_ARN}'",
    f"DELETE FROM outbox_claims WHERE trail_arn = '{GONE_ARN}'",  # and its log file's row
)


@pytest.mark.parametrize("sql", DELETED_TRAIL_TAMPERING)
def test_a_trails_last_rows_and_mark_can_be_deleted_only_once_it_and_its_records_are_gone(store, sql) -> None:  # type: ignore[no-untyped-def]
    deleted_trail_bookkeeping(store)
    tables = ("log_files", "digests", "outbox_claims")
    store.assert_refused(sql, tables)
    assert store.prune((ARN,)) == 1
    store.assert_refused(f"DELETE FROM outbox_claims WHERE trail_arn = '{GONE_ARN}'", tables)
    with store.direct() as conn, conn:  # its record gone, what it left may go, the mark last
        for table in tables:
            assert conn.execute(f"DELETE FROM {table} WHERE trail_arn = ?",
                                (GONE_ARN,)).rowcount == 1


TAMPERING = (
    "DELETE FROM events",
    "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)",
    "DELETE FROM events WHERE seq = 3",  # above the mark, younger than a day
    "DELETE FROM event_lookup",
    "DELETE FROM event_lookup WHERE seq = 3",
    "DELETE FROM outbox",
    "DELETE FROM outbox WHERE seq = 3",
    "UPDATE retention SET pruned_through = 0",  # back below what is gone
    "UPDATE retention SET pruned_through = (SELECT max(seq) FROM events) - 1",  # over recent
    "UPDATE retention SET pruned_through = (SELECT max(seq) FROM events)",  # the newest
    "DELETE FROM retention",
    "INSERT OR REPLACE INTO retention (id, pruned_through) VALUES (1, 1000000)",
    "UPDATE events SET record = '{}' WHERE seq = 3",
)


@pytest.mark.parametrize("sql", TAMPERING)
def test_the_mark_only_moves_forward_over_old_records_and_nothing_younger_can_be_deleted(store, sql) -> None:  # type: ignore[no-untyped-def]
    store.append(OLD, OLD, RECENT, RECENT, trails=(GONE_ARN,))
    assert store.prune() == 2
    store.assert_refused(sql, ("events", "event_lookup", "outbox", "retention"))


@pytest.mark.parametrize("table", ["outbox", "event_lookup", "events"])
def test_above_the_mark_a_record_a_day_old_may_be_deleted_but_not_the_newest(store, table) -> None:  # type: ignore[no-untyped-def]
    """Migration 0017: what retention removes around a failing trail's records."""
    store.append(OLD, OLD - timedelta(days=1), trails=(GONE_ARN,))
    tables = ("events", "event_lookup", "outbox")
    store.assert_refused(f"DELETE FROM {table} WHERE seq = 2", tables)  # the newest
    with store.direct() as conn, conn:  # the store's own order: outbox, lookup, record
        for each in ("outbox", "event_lookup", "events"):
            assert conn.execute(f"DELETE FROM {each} WHERE seq = 1").rowcount >= 1
            if each == table:
                break
    assert store.mark() == 0


def test_retention_days_must_be_a_day_or_more() -> None:
    assert load_settings({"retention_days": "7"}, environ={}, config_file=Path("/nonexistent.toml")).retention_days == 7
    with pytest.raises(ValueError, match="retention_days '0': give the days"):
        load_settings({"retention_days": "0"}, environ={}, config_file=Path("/nonexistent.toml"))
    with pytest.raises(ValueError, match="retention_check_seconds '-1': .* or 0 to keep every"):
        load_settings({"retention_check_seconds": "-1"}, environ={},
                      config_file=Path("/nonexistent.toml"))


def test_only_an_unstored_chain_end_of_a_trail_gone_to_another_bucket_may_be_dropped(
        store) -> None:  # type: ignore[no-untyped-def]
    """Delivery drops the digest it fixed for a bucket its trail has left, never stored, and
    makes it again for the new bucket; the store allows that and nothing more."""
    stored = RECENT - timedelta(hours=1)
    store.add_trail(ARN)
    store.add_digest(ARN, stored)
    store.add_digest(ARN, RECENT, delivered=False)
    store.add_log_file(ARN, None, 1)
    tables = ("digests", "log_files")
    # the trail still delivers to the digest's bucket: it waits for a retry there
    store.assert_refused(f"DELETE FROM digests WHERE end_time = {RECENT.timestamp()}", tables)
    store.writer.run_blocking(lambda conn: (conn.execute(
        "UPDATE resources SET doc = json_set(doc, '$.S3BucketName', 'moved') WHERE key = ?",
        (ARN,)) and None, []))
    store.assert_refused(f"DELETE FROM digests WHERE end_time = {stored.timestamp()}", tables)
    store.assert_refused("UPDATE log_files SET sha256 = 'x'", tables)
    with store.direct() as conn, conn:
        conn.execute(f"DELETE FROM digests WHERE end_time = {RECENT.timestamp()}")
        conn.execute("UPDATE log_files SET bucket = 'moved', key = 'k' WHERE delivered_at IS NULL")
    assert store.times("digests") == ts(stored)
    assert store.conn.execute("SELECT bucket, key FROM log_files").fetchall() == [("moved", "k")]
