"""The delivery worker's claims and per-tick questions on a real SQLite store, and migrations
0004 (partial outbox indexes), 0005 (indexes of what still waits) and 0006 (range claims)."""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from searchtrail.audit import delivery
from searchtrail.audit.delivery import DeliveryWorker, unclaimed_records
from searchtrail.audit.objectstore import ObjectStoreError
from searchtrail.audit.logfile import build_log_file, unique_suffix
from searchtrail.installation import signing_keys_in
from searchtrail.store import kinds
from searchtrail.store.migrations import numbered_scripts
from searchtrail.store.sqlite.connection import (
    _statements,
    migrate,
    open_connection,
)
from searchtrail.store.sqlite.events import EventRow
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

ACCOUNT = "111122223333"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
OTHER_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/other"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


class MemoryStore:
    """Keeps what was put, by (bucket, key); every put is counted (puts come from the worker's
    upload threads)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts = 0
        self._lock = threading.Lock()

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        with self._lock:
            self.puts += 1
            self.objects[(bucket, key)] = body


def _logging_trail_worker(conn: sqlite3.Connection, path: Path, clocks: "Clocks | None" = None
                          ) -> tuple[GroupCommitWriter, DeliveryWorker, MemoryStore]:
    """A logging trail, a started writer on ``conn`` and a worker reading ``path`` that stores
    into memory. With ``clocks``, the trail validates (it began logging 100 s before T0, its
    digests last 10 s) and the worker runs on those clocks; without, its clock stands at NOW."""
    if clocks is None:
        SqliteResources(conn, ACCOUNT, "").put(kinds.TRAIL, ARN, {
            "Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket",
            "HomeRegion": "us-east-1", "IsLogging": True})
        timing: dict = {"signing_keys": None, "digest_interval": 3600, "clock": lambda: NOW}
    else:
        timing = {"signing_keys": lambda c: signing_keys_in(SqliteResources(c, "", "")),
                  "digest_interval": 10, "ticks": lambda: clocks.ticks,
                  "clock": lambda: datetime.fromtimestamp(clocks.wall, timezone.utc)}
    writer = GroupCommitWriter(conn)
    writer.start()
    if clocks is not None:
        set_trail(writer, IsLogging=True, StartLoggingTime=T0 - 100)
    objects = MemoryStore()
    worker = DeliveryWorker(
        reader=lambda: open_connection(path, read_only=True), writer=writer, store=objects,
        notifier=None,  # type: ignore[arg-type]  # no SNS
        delivery_interval=1, org_id=None, **timing)
    return writer, worker, objects


def _open_store(tmp_path: Path, clocks: "Clocks | None" = None
                ) -> tuple[sqlite3.Connection, GroupCommitWriter, DeliveryWorker, MemoryStore]:
    path = tmp_path / "db.sqlite3"
    conn = open_connection(path)
    migrate(conn)
    return (conn, *_logging_trail_worker(conn, path, clocks))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A migrated database with a logging trail, its writer running, and a worker on both."""
    conn, writer, worker, objects = _open_store(tmp_path)
    yield conn, writer, worker, objects
    writer.stop()
    conn.close()


def record(n: int, region: str) -> str:
    return json.dumps({"eventID": f"e{n}", "eventTime": "2026-11-30T11:59:00Z",
                       "awsRegion": region}, separators=(",", ":"))


def append(writer: GroupCommitWriter, regions: list[str],
           trails: tuple[str, ...] = (ARN,)) -> None:
    """One record per region given, each with an outbox row for every trail, in one commit."""
    rows = [EventRow(ACCOUNT, region, 1_764_503_940, record(n, region),
                     deliveries=tuple((arn, ACCOUNT) for arn in trails))
            for n, region in enumerate(regions)]
    writer.run_blocking(lambda conn: (None, rows))


def files(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT id, trail_arn, region, records, key FROM log_files "
                        "ORDER BY id").fetchall()


def _file_seqs(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """Each log file's records, as the worker reads them: its group's rows in its range."""
    return {file_id: [seq for (seq,) in conn.execute(
        "SELECT seq FROM outbox WHERE trail_arn = ? AND account = ? AND region = ? "
        "AND seq BETWEEN ? AND ? ORDER BY seq", (arn, account, region, first, last))]
        for file_id, arn, account, region, first, last in conn.execute(
            "SELECT id, trail_arn, account, region, first_seq, last_seq FROM log_files")}


def test_a_backlog_is_claimed_in_one_writer_unit_of_one_row_per_file(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    monkeypatch.setattr(delivery, "MAX_RECORDS_PER_FILE", 3)
    append(writer, ["us-east-1"] * 8 + ["eu-west-1"] * 2)
    units_before, changes_before = writer.stats.units, conn.total_changes

    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)

    claimed = files(conn)
    assert [(region, records) for _, _, region, records, _ in claimed] == [
        ("eu-west-1", 2), ("us-east-1", 3), ("us-east-1", 3), ("us-east-1", 2)]
    assert writer.stats.units - units_before == 1
    # four log file rows and the trail's mark: no outbox row is written by a claim
    assert conn.total_changes - changes_before == 5
    assert conn.execute(delivery._CLAIMED_THROUGH, (ARN,)).fetchone()[0] == 10
    outbox = conn.execute("SELECT seq, region FROM outbox ORDER BY seq").fetchall()
    by_file = _file_seqs(conn)
    # every row in exactly one file, each file its group's oldest rows first, as counted
    assert sorted(seq for seqs in by_file.values() for seq in seqs) == [s for s, _ in outbox]
    for file_id, _, region, records, key in claimed:
        seqs = by_file[file_id]
        assert len(seqs) == records and {r for s, r in outbox if s in seqs} == {region}
        assert key.endswith(f"_{unique_suffix(f'{ARN}|{ACCOUNT}|{region}|{seqs[0]}'.encode())}"
                            ".json.gz")
    us_east = [by_file[file_id] for file_id, _, region, _, _ in claimed if region == "us-east-1"]
    assert us_east == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert unclaimed_records(conn) == 0


def test_claims_leave_other_trails_rows_and_later_rows_alone(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    append(writer, ["us-east-1"] * 3, trails=(ARN, OTHER_ARN))
    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)
    append(writer, ["us-east-1"] * 2, trails=(ARN, OTHER_ARN))

    assert unclaimed_records(conn) == 2 + 5
    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)
    assert [records for _, _, _, records, _ in files(conn)] == [3, 2]
    assert list(_file_seqs(conn).values()) == [[1, 2, 3], [4, 5]]
    assert unclaimed_records(conn) == 5  # the other trail's, untouched


def test_every_account_folder_and_region_of_the_trail_gets_its_files(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    folders = ("111122223333", "444455556666", "777788889999")
    rows = [EventRow(ACCOUNT, region, 1_764_503_940, record(n, region),
                     deliveries=((ARN, folders[n % 3]),))
            for n, region in enumerate(["us-east-1", "eu-west-1"] * 6)]
    rows.append(EventRow(ACCOUNT, "ap-south-1", 1_764_503_940, record(99, "ap-south-1"),
                         deliveries=((OTHER_ARN, "999999999999"),)))
    writer.run_blocking(lambda c: (None, rows))

    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)

    claimed = conn.execute("SELECT account, region, records FROM log_files ORDER BY id").fetchall()
    assert claimed == [(folder, region, 2) for folder in folders
                       for region in ("eu-west-1", "us-east-1")]
    assert unclaimed_records(conn) == 1  # the other trail's


def test_a_claim_read_before_another_claim_is_dropped_not_doubled(store) -> None:  # type: ignore[no-untyped-def]
    """The unit checks the trail's mark it was computed from: a stale claim adds nothing."""
    conn, writer, worker, _ = store
    append(writer, ["us-east-1"] * 4)
    trail = {"S3BucketName": "bucket"}
    through, newest = worker._unclaimed_bounds(ARN)
    parts = worker._next_files(ARN, through, newest)
    worker._assign(ARN, trail, NOW)
    writer.run_blocking(worker._claim_unit(ARN, trail, through, newest, parts, NOW))
    assert [records for _, _, _, records, _ in files(conn)] == [4]
    assert worker._unclaimed_bounds(ARN) is None


# A group's rows of one trail, read from outbox_by_group alone (migration 0010): no look-up of
# each outbox row to test its trail.
_TRAILS_GROUP_RANGE = ("COVERING INDEX outbox_by_group (account=? AND region=? AND trail_arn=? "
                       "AND seq>? AND seq<?)")


def test_reading_a_backlog_and_a_files_records_take_indexes(store) -> None:  # type: ignore[no-untyped-def]
    conn, _, _, _ = store
    assert "COVERING INDEX sqlite_autoindex_outbox_1 (trail_arn=?)" in _plan(
        conn, delivery._NEWEST_ROW, (ARN,))
    plan = _plan(conn, delivery._NEXT_FILE, (ACCOUNT, "us-east-1", 0, 10, ARN, 3))
    assert f"SEARCH outbox USING {_TRAILS_GROUP_RANGE}" in plan and "TEMP B-TREE" not in plan
    assert "COVERING INDEX log_files_ranges (trail_arn=? AND account=? AND region=?)" in _plan(
        conn, delivery._GROUP_MARK, (ARN, ACCOUNT, "us-east-1"))
    groups = _plan(conn, delivery._OUTBOX_GROUPS, ())
    assert "SCAN outbox" not in groups and "outbox_by_group (account=? AND region>?)" in groups
    plan = _plan(conn, delivery._FILE_RECORDS, (ACCOUNT, "us-east-1", 1, 5, ARN))
    assert f"SEARCH o USING {_TRAILS_GROUP_RANGE}" in plan, plan
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in plan and "TEMP B-TREE" not in plan


def test_a_ticks_work_does_not_grow_with_other_resources(tmp_path: Path) -> None:
    """A tick comes up to five times a second, and the resources table holds every account's
    policies, collections and idempotency records besides the trails: the SQLite steps of a
    delivery pass must not grow with them (reading the whole table made them grow ~20-fold
    from 100 to 3,000 such records here)."""

    def steps_of_a_pass(unrelated: int) -> int:
        path = tmp_path / f"db-{unrelated}.sqlite3"
        conn = open_connection(path)
        migrate(conn)
        for account in ("000000000001", ACCOUNT, "999999999999"):
            resources = SqliteResources(conn, account, "us-east-1")
            for n in range(unrelated // 3):
                resources.put("aoss.idempotency", f"020400/CreateSecurityPolicy/{n:06d}",
                              {"response": {}, "padding": "x" * 200})
        steps = [0]

        def counted_reader() -> sqlite3.Connection:
            reader = open_connection(path, read_only=True)
            reader.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 10)
            return reader

        writer, _, _ = _logging_trail_worker(conn, path)
        try:
            worker = DeliveryWorker(
                reader=counted_reader, writer=writer, store=MemoryStore(), notifier=None,
                signing_keys=None,  # type: ignore[arg-type]
                delivery_interval=1, digest_interval=3600, org_id=None, clock=lambda: NOW)
            assert [arn for arn, _ in worker._every_trail()] == [ARN]
            append(writer, ["us-east-1"])
            worker.run_once()
        finally:
            writer.stop()
            conn.close()
        return steps[0] * 10  # the handler runs once every 10 virtual machine steps

    few, many = steps_of_a_pass(100), steps_of_a_pass(3_000)
    assert many - few < 300, (few, many)


def test_every_record_is_delivered_once_in_order_and_a_retry_writes_the_same_bytes(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, objects = store
    append(writer, ["us-east-1", "eu-west-1", "us-east-1", "us-east-1"])

    worker.run_once()

    stored = {key: json.loads(gzip.decompress(body))["Records"]
              for (_, key), body in objects.objects.items()}
    ids = sorted(r["eventID"] for records in stored.values() for r in records)
    assert ids == ["e0", "e1", "e2", "e3"]
    by_region = {records[0]["awsRegion"]: [r["eventID"] for r in records]
                 for records in stored.values()}
    assert by_region == {"us-east-1": ["e0", "e2", "e3"], "eu-west-1": ["e1"]}
    assert conn.execute("SELECT count(*) FROM log_files WHERE delivered_at IS NULL "
                        "OR sha256 IS NULL").fetchone()[0] == 0
    # the body is exactly the log-file builder's, from the stored records in seq order
    us_key = next(key for key, records in stored.items() if records[0]["awsRegion"] == "us-east-1")
    expected = build_log_file([record(n, "us-east-1") for n in (0, 2, 3)])
    assert objects.objects[("bucket", us_key)] == expected.body

    # A crash after the upload but before it was marked: the retry rewrites the same bytes.
    before = dict(objects.objects)
    writer.run_blocking(lambda c: (c.execute("UPDATE log_files SET delivered_at = NULL"), []))
    worker.run_once()
    assert objects.objects == before and objects.puts == 4


class MeetingStore(MemoryStore):
    """Each put waits (bounded) until ``parties`` puts are under way at once."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.meeting = threading.Barrier(parties, timeout=10)

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        self.meeting.wait()  # BrokenBarrierError if the puts came one at a time
        super().put_object(bucket, key, body, content_type=content_type, metadata=metadata)


def test_a_passes_log_files_are_stored_several_at_once(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"]
    worker._store = meeting = MeetingStore(len(regions))
    append(writer, regions)
    units = writer.stats.units

    worker.run_once()

    assert meeting.puts == 4 and not meeting.meeting.broken
    assert conn.execute("SELECT count(*) FROM log_files WHERE delivered_at IS NOT NULL "
                        "AND sha256 IS NOT NULL").fetchone()[0] == 4
    # the claim, then the four files marked delivered together in one unit
    assert writer.stats.units - units == 2


class MeetingNotifier:
    """Each publish waits (bounded) until ``parties`` publishes are under way at once."""

    def __init__(self, parties: int) -> None:
        self.meeting = threading.Barrier(parties, timeout=10)
        self.messages: list[dict] = []
        self._lock = threading.Lock()

    def publish(self, topic_arn: str, message: str) -> None:
        self.meeting.wait()  # BrokenBarrierError if the publishes came one at a time
        with self._lock:
            self.messages.append(json.loads(message))


class NotifiedFirstStore(MemoryStore):
    """The put of the ``after``-th file waits (bounded) until a notification was published."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.notified = threading.Event()
        self.waited: bool | None = None
        self._lock = threading.Lock()
        self._started = 0

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        with self._lock:
            self._started += 1
            last = self._started == self.after
        if last:
            self.waited = self.notified.wait(timeout=5)
        super().put_object(bucket, key, body, content_type=content_type, metadata=metadata)


class RecordingNotifier:
    def __init__(self, store: NotifiedFirstStore) -> None:
        self.store = store
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def publish(self, topic_arn: str, message: str) -> None:
        with self._lock:
            self.keys.append(json.loads(message)["s3ObjectKey"][0])
        self.store.notified.set()


def test_a_stored_files_notification_goes_while_later_files_of_the_pass_are_stored(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(delivery, "UPLOADS_IN_FLIGHT", 2)
    conn, writer, worker, _ = store
    regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "us-west-2"]
    writer.run_blocking(lambda c: (SqliteResources(c, ACCOUNT, "").put(kinds.TRAIL, ARN, {
        "Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket", "HomeRegion": "us-east-1",
        "IsLogging": True, "SnsTopicARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:audit"}), []))
    worker._store = objects = NotifiedFirstStore(after=len(regions))
    worker._notifier = notifier = RecordingNotifier(objects)
    append(writer, regions)

    worker.run_once()

    # the last file's put waited for a notification, which an earlier file's stored mark sent
    assert objects.waited is True
    keys = sorted(key for (key,) in conn.execute("SELECT key FROM log_files"))
    assert len(keys) == 5 and sorted(notifier.keys) == keys
    assert conn.execute("SELECT count(*) FROM log_files WHERE notified_at IS NULL "
                        "OR delivered_at IS NULL").fetchone()[0] == 0


def test_a_passes_notifications_are_published_several_at_once(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"]
    writer.run_blocking(lambda c: (SqliteResources(c, ACCOUNT, "").put(kinds.TRAIL, ARN, {
        "Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket", "HomeRegion": "us-east-1",
        "IsLogging": True, "SnsTopicARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:audit"}), []))
    worker._notifier = notifier = MeetingNotifier(len(regions))
    append(writer, regions)

    worker.run_once()

    keys = sorted(key for (key,) in conn.execute("SELECT key FROM log_files"))
    assert len(keys) == 4 and not notifier.meeting.broken
    assert sorted(m["s3ObjectKey"][0] for m in notifier.messages) == keys
    assert conn.execute("SELECT count(*) FROM log_files WHERE notified_at IS NULL").fetchone()[0] == 0


class FailingKeyStore(MemoryStore):
    """Refuses every put of one key while ``failing_key`` names it; lists the log files tried."""

    def __init__(self) -> None:
        super().__init__()
        self.failing_key: str | None = None
        self.attempted: list[str] = []

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        if "CloudTrail-Digest" not in key:
            self.attempted.append(key)
        if key == self.failing_key:
            raise ObjectStoreError("ServiceUnavailable", "the store is down")
        super().put_object(bucket, key, body, content_type=content_type, metadata=metadata)


@pytest.mark.parametrize("in_flight", [1, 8])
def test_a_failed_put_stops_sending_keeps_what_was_stored_and_the_retry_finishes(
        validating, monkeypatch, in_flight) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _, clocks = validating
    monkeypatch.setattr(delivery, "UPLOADS_IN_FLIGHT", in_flight)
    worker._store = objects = FailingKeyStore()
    append(writer, ["ap-south-1", "eu-west-1", "sa-east-1", "us-east-1"])
    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)
    keys = [key for (key,) in conn.execute("SELECT key FROM log_files ORDER BY id")]
    objects.failing_key = keys[1]

    worker.run_once()

    delivered = [key for (key,) in conn.execute(
        "SELECT key FROM log_files WHERE delivered_at IS NOT NULL ORDER BY id")]
    if in_flight == 1:  # one at a time: nothing is sent after the failure
        assert objects.attempted == keys[:2] and delivered == keys[:1]
    else:  # all four were under way: those stored are kept
        assert sorted(objects.attempted) == sorted(keys)
        assert delivered == [keys[0], keys[2], keys[3]]
    status = SqliteResources(conn, ACCOUNT, "").get(kinds.TRAIL_STATUS, ARN)
    assert status["LatestDeliveryError"] == "ServiceUnavailable"

    objects.failing_key = None
    clocks.advance(0.5)  # inside the back-off: nothing is tried
    attempts = len(objects.attempted)
    worker.run_once()
    assert len(objects.attempted) == attempts
    clocks.advance(1)
    worker.run_once()

    assert conn.execute("SELECT count(*) FROM log_files WHERE delivered_at IS NULL").fetchone()[0] == 0
    assert sorted(key for _, key in objects.objects if "CloudTrail-Digest" not in key) == sorted(keys)
    status = SqliteResources(conn, ACCOUNT, "").get(kinds.TRAIL_STATUS, ARN)
    assert "LatestDeliveryError" not in status
    clocks.advance(11)  # the chains' next digests
    worker.run_once()
    # every file is listed by a digest exactly once
    listed, delivered, _ = listed_and_delivered(conn, objects)
    assert sorted(listed) == sorted(delivered)


def test_an_idle_trail_claims_nothing_and_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    _, writer, worker, objects = store
    units = writer.stats.units
    worker.run_once()
    assert writer.stats.units == units and objects.puts == 0


def _migrate_to(conn: sqlite3.Connection, version: int) -> None:
    """Apply the migrations up to ``version`` only, as an older server left the store."""
    conn.execute("BEGIN IMMEDIATE")
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in numbered_scripts("searchtrail.store.sqlite"):
        if current < number <= version:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("COMMIT")


def _plan(conn: sqlite3.Connection, sql: str, params: tuple) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_migration_0004_upgrades_a_store_with_claimed_and_unclaimed_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = open_connection(tmp_path / "db.sqlite3")
    _migrate_to(conn, 3)
    conn.execute("BEGIN")
    for seq in range(1, 201):
        conn.execute("INSERT INTO events (seq, account, region, event_time, record) "
                     "VALUES (?, ?, 'us-east-1', 1, '{}')", (seq, ACCOUNT))
        conn.execute("INSERT INTO outbox (trail_arn, account, region, seq) "
                     "VALUES (?, ?, 'us-east-1', ?)", (ARN, ACCOUNT, seq))
    conn.execute("INSERT INTO log_files (id, trail_arn, account, region, bucket, key, created_at, "
                 "records) VALUES (1, ?, ?, 'us-east-1', 'bucket', 'k', 0, 150)", (ARN, ACCOUNT))
    conn.execute("UPDATE outbox SET file_id = 1 WHERE seq <= 150")
    conn.execute("ANALYZE")  # statistics from before the upgrade, as bulk-loaded stores have
    conn.execute("COMMIT")

    _migrate_to(conn, 4)

    indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                "AND tbl_name = 'outbox' AND sql IS NOT NULL"))
    assert indexes["outbox_unassigned"].endswith("WHERE file_id IS NULL")
    assert indexes["outbox_by_file"].endswith("WHERE file_id IS NOT NULL")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM outbox WHERE file_id IS NULL").fetchone()[0] == 50
    assert conn.execute("SELECT count(*) FROM outbox WHERE file_id = 1").fetchone()[0] == 150
    # the worker of 0004 and 0005 read unclaimed rows and a file's rows through them
    assert "USING INDEX outbox_unassigned (account=? AND region=?)" in _plan(
        conn, "SELECT count(*) FROM outbox INDEXED BY outbox_unassigned WHERE file_id IS NULL "
        "AND account = ? "
        "AND region = ? AND trail_arn = ?", (ACCOUNT, "us-east-1", ARN))
    assert "COVERING INDEX outbox_by_file (file_id=?)" in _plan(
        conn, "SELECT seq FROM outbox WHERE file_id = ? ORDER BY seq", (1,))
    # the outbox is as append-only as before: no row is released, deleted or replaced
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE outbox SET file_id = NULL WHERE file_id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM outbox")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # same id
        conn.execute("INSERT OR REPLACE INTO outbox (id, trail_arn, account, region, seq) "
                     "VALUES (1, ?, ?, 'us-east-1', 999)", (OTHER_ARN, ACCOUNT))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # same trail and record
        conn.execute("INSERT OR REPLACE INTO outbox (trail_arn, account, region, seq) "
                     "VALUES (?, ?, 'us-east-1', 1)", (ARN, ACCOUNT))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("INSERT OR REPLACE INTO outbox SELECT id, trail_arn, account, region, seq, "
                     "NULL FROM outbox")
    conn.execute("INSERT INTO outbox (trail_arn, account, region, seq) "
                 "VALUES (?, ?, 'us-east-1', 1)", (OTHER_ARN, ACCOUNT))  # a new row is fine
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 201
    assert conn.execute("SELECT count(*) FROM outbox WHERE file_id IS NULL").fetchone()[0] == 51
    conn.close()


def _log_file(conn: sqlite3.Connection, trail: str, account: str, region: str, n: int, *,
              delivered: bool, notified: bool) -> None:
    conn.execute("INSERT INTO log_files (trail_arn, account, region, bucket, key, created_at, "
                 "records, delivered_at, notified_at) VALUES (?, ?, ?, 'bucket', ?, 0, 1, ?, ?)",
                 (trail, account, region, f"{trail}/{account}/{region}/{n}",
                  1 if delivered else None, 1 if notified else None))


def _digest(conn: sqlite3.Connection, trail: str, region: str, end: int, *,
            delivered: bool) -> None:
    conn.execute("INSERT INTO digests (trail_arn, account, region, bucket, key, start_time, "
                 "end_time, sha256, signature, body, delivered_at) VALUES (?, ?, ?, 'bucket', ?, "
                 "0, ?, '', '', x'', ?)", (trail, ACCOUNT, region, f"{trail}/{region}/{end}", end,
                                           1 if delivered else None))


def test_a_trails_chains_are_found_by_index_seeks(store) -> None:  # type: ignore[no-untyped-def]
    """The chain list is read on every tick of a validating trail: one seek per pair, never a
    read of every file the trail ever had."""
    conn, writer, worker, _ = store
    pairs = [(account, region) for account in ("111122223333", "444455556666", "777788889999")
             for region in ("eu-west-1", "us-east-1", "us-west-2")]

    def fill(c: sqlite3.Connection) -> tuple[None, list]:
        for n in range(40):
            for account, region in pairs[:-1]:
                _log_file(c, ARN, account, region, n, delivered=True, notified=True)
            _log_file(c, OTHER_ARN, "999999999999", "ap-south-1", n, delivered=True,
                      notified=True)
        # a chain that has digests but no log file, and another trail's digest
        for trail, region in ((ARN, "sa-east-1"), (OTHER_ARN, "ca-central-1")):
            _digest(c, trail, region, 1, delivered=False)
        return None, []

    writer.run_blocking(fill)
    chains = worker._chains(ARN, {"HomeRegion": "ap-northeast-1", "IsMultiRegionTrail": True})

    expected = {*pairs[:-1], (ACCOUNT, "sa-east-1"), (ACCOUNT, "ap-northeast-1")}
    assert chains == sorted(expected)
    distinct = conn.execute("SELECT DISTINCT account, region FROM log_files WHERE trail_arn = ? "
                            "UNION SELECT DISTINCT account, region FROM digests "
                            "WHERE trail_arn = ?", (ARN, ARN)).fetchall()
    assert set(chains) == {*distinct, (ACCOUNT, "ap-northeast-1")}
    for table in ("log_files", "digests"):
        plan = _plan(conn, delivery._TRAIL_CHAINS[table], (ARN,))
        assert f"SCAN {table}" not in plan and f"SEARCH {table} USING COVERING INDEX" in plan
        assert "account=? AND region>?" in plan


def test_the_questions_of_every_tick_read_only_what_still_waits(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store

    def fill(c: sqlite3.Connection) -> tuple[None, list]:
        for n in range(30):
            _log_file(c, ARN, ACCOUNT, "us-east-1", n, delivered=True, notified=True)
        _log_file(c, ARN, ACCOUNT, "us-east-1", 30, delivered=True, notified=False)
        return None, []

    writer.run_blocking(fill)
    trail = {"S3BucketName": "bucket", "HomeRegion": "us-east-1", "SnsTopicARN": "arn:topic"}
    assert worker._has_work(ARN, trail)  # a stopped trail still notifies its last file
    writer.run_blocking(lambda c: (c.execute("UPDATE log_files SET notified_at = 2"), []))
    assert not worker._has_work(ARN, trail)

    for sql, index in (
            ("SELECT 1 FROM log_files WHERE trail_arn = ? AND notified_at IS NULL LIMIT 1",
             "log_files_unnotified"),
            ("SELECT id, bucket, key FROM log_files WHERE trail_arn = ? AND delivered_at IS NOT "
             "NULL AND notified_at IS NULL ORDER BY id", "log_files_unnotified"),
            ("SELECT id, bucket, key, signature, body FROM digests WHERE trail_arn = ? "
             "AND delivered_at IS NULL ORDER BY id", "digests_undelivered"),
            ("SELECT 1 FROM digests WHERE trail_arn = ? AND delivered_at IS NULL LIMIT 1",
             "digests_undelivered")):
        assert f"USING INDEX {index} (trail_arn=?)" in _plan(conn, sql, (ARN,)), sql
    # the backlog /metrics is told after each pass: seeks to what still waits
    assert "USING INDEX log_files_pending (trail_arn=? AND delivered_at=?)" in _plan(
        conn, delivery._WAITING_FILES, (ARN, 0))
    assert "INDEX sqlite_autoindex_outbox_1 (trail_arn=? AND seq>?)" in _plan(
        conn, delivery._OLDEST_UNCLAIMED, (ARN, 0))


def test_a_stopped_trail_waits_for_a_digest_after_its_stop_read_by_seeks(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    trail = {"S3BucketName": "bucket", "HomeRegion": "us-east-1", "StartLoggingTime": 10,
             "LogFileValidationEnabled": True, "StopLoggingTime": 100}

    def digest(region: str, end: int) -> None:
        writer.run_blocking(lambda c: (_digest(c, ARN, region, end, delivered=True), []))

    def delivered_file(region: str, key: str, at: int) -> None:
        writer.run_blocking(lambda c: (c.execute(
            "INSERT INTO log_files (trail_arn, account, region, bucket, key, created_at, "
            "records, delivered_at, notified_at) VALUES (?, ?, ?, 'bucket', ?, 0, 1, ?, ?)",
            (ARN, ACCOUNT, region, key, at, at)), []))

    assert worker._has_work(ARN, trail)  # no digest at all yet
    digest("eu-west-1", 50)
    digest("us-east-1", 90)
    assert worker._has_work(ARN, trail)  # every digest ends before the stop
    digest("eu-west-1", 120)
    assert worker._has_work(ARN, trail)  # the home chain still ends before the stop
    digest("us-east-1", 120)
    assert not worker._has_work(ARN, trail)  # every chain closed after the stop
    # A digest begun before the stop was seen ended after it while a file waited for a retry:
    # that file, delivered after the digest's end, still needs a digest.
    delivered_file("eu-west-1", "late", 130)
    assert worker._has_work(ARN, trail)
    assert "USING COVERING INDEX log_files_delivered (trail_arn=? AND account=? AND region=? " \
           "AND delivered_at>?)" in _plan(conn, delivery._UNCOVERED_FILE,
                                          (ARN, ACCOUNT, "eu-west-1", 120))
    digest("eu-west-1", 140)
    assert not worker._has_work(ARN, trail)  # covered again
    # The same race in a chain whose first file came then: it has no digest to be late for.
    delivered_file("ap-south-1", "first", 130)
    assert worker._has_work(ARN, trail)
    digest("ap-south-1", 140)
    assert not worker._has_work(ARN, trail)
    # A stopped trail that never started logging has no chain to close.
    assert not worker._has_work(ARN, {**trail, "StartLoggingTime": None})
    plan = _plan(conn, delivery._LAST_DIGEST_END, (ARN, ACCOUNT, "us-east-1"))
    assert "SEARCH digests USING COVERING INDEX digests_chain (trail_arn=? AND account=? AND " \
           "region=?)" in plan


def test_migration_0005_indexes_only_the_waiting_rows_of_an_older_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = open_connection(tmp_path / "db.sqlite3")
    _migrate_to(conn, 4)
    conn.execute("BEGIN")
    for n in range(20):
        _log_file(conn, ARN, ACCOUNT, "us-east-1", n, delivered=n < 15, notified=n < 10)
    conn.execute("COMMIT")

    _migrate_to(conn, 5)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    waiting = conn.execute("SELECT count(*) FROM log_files INDEXED BY log_files_unnotified "
                           "WHERE trail_arn = ? AND notified_at IS NULL", (ARN,)).fetchone()[0]
    assert waiting == 10
    conn.close()


def test_migration_0006_turns_row_claims_into_ranges_without_doubling_or_losing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A store left by 0005: one group claimed past an older unclaimed row of another group
    (claims ran group by group), a trail with nothing claimed, one with everything claimed."""
    path = tmp_path / "db.sqlite3"
    conn = open_connection(path)
    _migrate_to(conn, 5)
    third = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/third"
    regions = ["us-east-1"] * 6 + ["eu-west-1"] * 2 + ["us-east-1"] * 2
    conn.execute("BEGIN")
    for seq, region in enumerate(regions, start=1):
        conn.execute("INSERT INTO events (seq, account, region, event_time, record) "
                     "VALUES (?, ?, ?, 1764503940, ?)", (seq, ACCOUNT, region, record(seq, region)))
        for arn in (ARN, OTHER_ARN, third):
            conn.execute("INSERT INTO outbox (trail_arn, account, region, seq) VALUES (?, ?, ?, ?)",
                         (arn, ACCOUNT, region, seq))
    for file_id, arn, delivered in ((1, ARN, None), (2, third, 5), (3, third, 5)):
        conn.execute("INSERT INTO log_files (id, trail_arn, account, region, bucket, key, "
                     "created_at, records, delivered_at, notified_at) VALUES "
                     "(?, ?, ?, ?, 'bucket', ?, 0, 0, ?, ?)",
                     (file_id, arn, ACCOUNT, "eu-west-1" if file_id == 3 else "us-east-1",
                      f"old/{file_id}", delivered, delivered))
    conn.execute("UPDATE outbox SET file_id = 1 WHERE trail_arn = ? AND region = 'us-east-1'",
                 (ARN,))
    conn.execute("UPDATE outbox SET file_id = CASE region WHEN 'us-east-1' THEN 2 ELSE 3 END "
                 "WHERE trail_arn = ?", (third,))
    conn.execute("COMMIT")

    assert migrate(conn) == numbered_scripts("searchtrail.store.sqlite")[-1][0]  # up to the newest
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "file_id" not in {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    assert conn.execute("SELECT id, first_seq, last_seq FROM log_files ORDER BY id").fetchall() \
        == [(1, 1, 10), (2, 1, 10), (3, 7, 8)]
    assert dict(conn.execute("SELECT trail_arn, through_seq FROM outbox_claims")) == {
        ARN: 6, OTHER_ARN: 0, third: 10}
    assert unclaimed_records(conn) == 2 + 10  # eu-west-1 of the first trail, all of the other

    writer, worker, objects = _logging_trail_worker(conn, path)
    try:
        worker.run_once()
    finally:
        writer.stop()
    # the old pending file is read through its range; the new one takes only eu-west-1
    delivered = {key: [r["eventID"] for r in json.loads(gzip.decompress(body))["Records"]]
                 for (_, key), body in objects.objects.items()}
    assert delivered.pop("old/1") == ["e1", "e2", "e3", "e4", "e5", "e6", "e9", "e10"]
    assert list(delivered.values()) == [["e7", "e8"]]
    assert conn.execute(delivery._CLAIMED_THROUGH, (ARN,)).fetchone()[0] == 10
    assert unclaimed_records(conn) == 10

    # what a record's claim may become is as fixed as before, and a mark only moves forward
    for tampering in ("UPDATE outbox SET seq = seq", "DELETE FROM outbox",
                      "INSERT OR REPLACE INTO outbox SELECT * FROM outbox",
                      "UPDATE log_files SET last_seq = last_seq - 1",
                      "UPDATE log_files SET first_seq = NULL",
                      "UPDATE outbox_claims SET through_seq = 0", "DELETE FROM outbox_claims",
                      f"INSERT OR REPLACE INTO outbox_claims VALUES ('{ARN}', 0)"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(tampering)
    conn.execute("UPDATE outbox_claims SET through_seq = 11 WHERE trail_arn = ?", (ARN,))
    conn.close()


def test_migration_0010_puts_the_trail_in_the_group_index_and_loses_no_row(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A store left by 0009 with two trails' rows over two accounts and Regions: after the
    upgrade each trail's files hold exactly its own rows, read from the index alone."""
    path = tmp_path / "db.sqlite3"
    conn = open_connection(path)
    _migrate_to(conn, 9)
    member = "444455556666"
    placements = [(ACCOUNT, "us-east-1"), (member, "eu-west-1"), (ACCOUNT, "eu-west-1"),
                  (member, "us-east-1")] * 3
    conn.execute("BEGIN")
    for seq, (account, region) in enumerate(placements, start=1):
        conn.execute("INSERT INTO events (seq, account, region, event_time, record) "
                     "VALUES (?, ?, ?, 1764503940, ?)", (seq, account, region, record(seq, region)))
        for arn in (ARN, OTHER_ARN) if seq % 3 else (OTHER_ARN,):  # every third: the other's only
            conn.execute("INSERT INTO outbox (trail_arn, account, region, seq) VALUES (?, ?, ?, ?)",
                         (arn, account, region, seq))
    conn.execute("COMMIT")

    newest = numbered_scripts("searchtrail.store.sqlite")[-1][0]
    with caplog.at_level(logging.INFO, logger="searchtrail.store"):
        assert migrate(conn) == newest
        assert migrate(conn) == newest  # up to date: nothing to say
    # the upgrade is announced once: rebuilding the index of a large store holds start-up
    assert [r.getMessage() for r in caplog.records] == [
        f"upgrading the store's schema from version 9 to {newest}; on a store of millions "
        "of events this can take a minute or more"]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'outbox_by_group'"
                        ).fetchone()[0].endswith("(account, region, trail_arn, seq)")
    assert f"SEARCH outbox USING {_TRAILS_GROUP_RANGE}" in _plan(
        conn, delivery._NEXT_FILE, (ACCOUNT, "us-east-1", 0, 12, ARN, 100))

    writer, worker, objects = _logging_trail_worker(conn, path)
    try:
        worker.run_once()
    finally:
        writer.stop()
    delivered = sorted([r["eventID"] for r in json.loads(gzip.decompress(body))["Records"]]
                       for body in objects.objects.values())
    assert delivered == [["e1", "e5"], ["e2", "e10"], ["e4", "e8"], ["e7", "e11"]]  # seq order
    assert unclaimed_records(conn) == 12  # the other trail's rows, all still waiting
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM outbox")
    conn.close()


# -- a wall clock that steps back, and digest windows ------------------------------------------

T0 = NOW.timestamp()


class Clocks:
    """The worker's wall clock and monotonic ticks, each set by the test."""

    def __init__(self) -> None:
        self.wall = T0
        self.ticks = 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.ticks += seconds


def set_trail(writer: GroupCommitWriter, **fields: object) -> None:
    """The validating trail's document, as the trails service writes it (the fields the worker
    reads)."""
    doc = {"Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket", "HomeRegion": "us-east-1",
           "LogFileValidationEnabled": True, **fields}
    writer.run_blocking(lambda c: (SqliteResources(c, ACCOUNT, "").put(kinds.TRAIL, ARN, doc), []))


def listed_and_delivered(conn: sqlite3.Connection, objects: MemoryStore
                         ) -> tuple[list[str], list[str], list[str]]:
    """(keys of the files the stored digests list, with repeats; keys of the delivered files;
    keys of the stored digests)."""
    digests = [key for _, key in objects.objects if "CloudTrail-Digest" in key]
    listed = [entry["s3Object"] for key in digests
              for entry in json.loads(gzip.decompress(objects.objects[("bucket", key)]))["logFiles"]]
    delivered = [key for (key,) in conn.execute(
        "SELECT key FROM log_files WHERE delivered_at IS NOT NULL ORDER BY id")]
    return listed, delivered, digests


@pytest.fixture
def validating(tmp_path: Path):  # type: ignore[no-untyped-def]
    """As ``store``, with a validating trail and a worker on clocks the test sets."""
    clocks = Clocks()
    conn, writer, worker, objects = _open_store(tmp_path, clocks)
    yield conn, writer, worker, objects, clocks
    writer.stop()
    conn.close()


def test_a_wall_clock_stepped_back_stalls_nothing_and_leaves_no_file_out_of_a_digest(validating) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, objects, clocks = validating
    append(writer, ["us-east-1"])
    worker.run_once()  # a file, then the chain's first digest ending at T0
    append(writer, ["us-east-1"])
    clocks.advance(11)
    worker.run_once()  # the second file, then the second digest ending at T0 + 11
    last_end = conn.execute("SELECT max(end_time) FROM digests").fetchone()[0]
    assert last_end == T0 + 11

    clocks.wall -= 3600  # the wall clock steps back an hour; monotonic ticks go on
    clocks.ticks += 2
    append(writer, ["us-east-1"])
    worker.run_once()
    times = [at for (at,) in conn.execute("SELECT delivered_at FROM log_files ORDER BY id")]
    # claimed and delivered at once, dated at the chain's last digest
    assert times[2:] == [last_end], times
    # StopLogging while the clock is behind: the final digest waits for the clock to pass the
    # chain, rather than ending before it begins
    set_trail(writer, IsLogging=False, StartLoggingTime=T0 - 100, StopLoggingTime=clocks.wall)
    digests_before = len(listed_and_delivered(conn, objects)[2])
    clocks.ticks += 2
    worker.run_once()
    assert len(listed_and_delivered(conn, objects)[2]) == digests_before

    clocks.wall = T0 + 14  # the clock is put right
    clocks.ticks += 2
    worker.run_once()
    listed, delivered, digests = listed_and_delivered(conn, objects)
    assert len(delivered) == 3 and sorted(listed) == sorted(delivered), (listed, delivered)
    assert len(digests) == digests_before + 1
    ends = [row[0] for row in conn.execute("SELECT end_time FROM digests ORDER BY id")]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_a_digest_ending_in_its_chains_last_second_waits_for_the_next(validating) -> None:  # type: ignore[no-untyped-def]
    """A digest's key carries its end to the second: a final digest in the same second as the
    last one has its key, which the store refuses (failing the worker's whole pass)."""
    conn, writer, worker, objects, clocks = validating
    append(writer, ["us-east-1"])
    clocks.wall = T0 + 0.1
    worker.run_once()  # a file delivered at T0 + 0.1, and the first digest ending then
    set_trail(writer, IsLogging=False, StartLoggingTime=T0 - 100, StopLoggingTime=T0 + 0.3)
    clocks.wall, clocks.ticks = T0 + 0.6, 0.5
    worker.run_once()  # the final digest is due, but must wait for the next second
    listed, delivered, digests = listed_and_delivered(conn, objects)
    assert len(delivered) == 1 and listed == [] and len(digests) == 1 and objects.puts == 2
    clocks.wall, clocks.ticks = T0 + 1.1, 1.0
    worker.run_once()
    listed, delivered, digests = listed_and_delivered(conn, objects)
    assert listed == delivered and len(digests) == 2
    assert objects.puts == 3  # one file and two digests, none stored twice


def test_a_stop_and_start_within_one_tick_leave_no_file_out_of_a_digest(validating) -> None:  # type: ignore[no-untyped-def]
    """The old chain gets no final digest (the trail logs again when the worker looks); the new
    chain begins at the new StartLoggingTime, and its first digest lists the file delivered
    between the two."""
    conn, writer, worker, objects, clocks = validating
    worker.run_once()  # the first digest, ending at T0
    append(writer, ["us-east-1"])
    clocks.advance(1)
    worker.run_once()  # a file delivered at T0 + 1, no digest yet
    set_trail(writer, IsLogging=True, StartLoggingTime=T0 + 2, StopLoggingTime=T0 + 1.5)
    clocks.advance(12)
    worker.run_once()
    listed, delivered, digests = listed_and_delivered(conn, objects)
    assert len(digests) == 2 and len(delivered) == 1 and listed == delivered
    newest = max(digests)  # keys end in the digest's end time
    body = json.loads(gzip.decompress(objects.objects[("bucket", newest)]))
    assert body["previousDigestSignature"] is None  # a new chain, as AWS begins one


def test_a_trail_made_again_under_its_arn_begins_a_chain_listing_none_of_the_deleted_ones_files(validating) -> None:  # type: ignore[no-untyped-def]
    """As a stop and a start within one tick, but the trail was deleted and created again: the
    file the deleted one delivered after its last digest is not the new one's to list."""
    conn, writer, worker, objects, clocks = validating
    worker.run_once()  # the first trail's first digest, ending at T0
    append(writer, ["us-east-1"])
    clocks.advance(1)
    worker.run_once()  # its file, delivered at T0 + 1, in no digest yet
    newest = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    set_trail(writer, IsLogging=True, CreatedTime=T0 + 2, StartLoggingTime=T0 + 2,
              RecordsAfterSeq=newest + 1)
    clocks.advance(12)
    worker.run_once()
    listed, delivered, digests = listed_and_delivered(conn, objects)
    assert len(digests) == 2 and len(delivered) == 1 and listed == []
    body = json.loads(gzip.decompress(objects.objects[("bucket", max(digests))]))
    assert body["previousDigestSignature"] is None


def test_a_trail_made_again_under_its_arn_writes_digests_only_for_its_own_chains(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store

    def fill(c: sqlite3.Connection) -> tuple[None, list]:
        for region, last_seq in (("eu-west-1", 5), ("us-west-2", 12)):  # the deleted trail's, ours
            c.execute("INSERT INTO log_files (trail_arn, account, region, bucket, key, created_at, "
                      "records, first_seq, last_seq) VALUES (?, ?, ?, 'bucket', ?, 0, 1, ?, ?)",
                      (ARN, ACCOUNT, region, f"file-{region}", last_seq, last_seq))
        _digest(c, ARN, "sa-east-1", 100, delivered=True)  # ended before the trail was created
        _digest(c, ARN, "ap-south-1", 300, delivered=True)
        return None, []

    writer.run_blocking(fill)
    made_again = {"HomeRegion": "us-east-1", "IsMultiRegionTrail": True, "RecordsAfterSeq": 10,
                  "CreatedTime": 200}
    assert worker._chains(ARN, made_again) == [
        (ACCOUNT, "ap-south-1"), (ACCOUNT, "us-east-1"), (ACCOUNT, "us-west-2")]
    assert len(worker._chains(ARN, {"HomeRegion": "us-east-1",  # a trail of before
                                    "IsMultiRegionTrail": True})) == 5


def test_a_status_that_arrives_after_its_trail_was_deleted_or_made_again_is_dropped(store) -> None:  # type: ignore[no-untyped-def]
    """An upload can end after DeleteTrail: its outcome must not leave a status behind, nor
    show on a new trail under the same ARN (a test suite's next trail of the same name)."""
    conn, writer, worker, _ = store
    read = SqliteResources(conn, ACCOUNT, "")
    deleted = read.get(kinds.TRAIL, ARN)
    made_again = {**deleted, "CreatedTime": T0}
    writer.run_blocking(lambda c: (SqliteResources(c, ACCOUNT, "").put(kinds.TRAIL, ARN,
                                                                       made_again), []))
    worker._update_status(ARN, deleted, {"LatestDeliveryError": "NoSuchBucket"})
    assert read.get(kinds.TRAIL_STATUS, ARN) is None
    worker._update_status(ARN, made_again, {"LatestDeliveryError": "AccessDenied"})
    assert read.get(kinds.TRAIL_STATUS, ARN) == {"LatestDeliveryError": "AccessDenied"}

    def delete(c: sqlite3.Connection) -> tuple[None, list]:
        repo = SqliteResources(c, ACCOUNT, "")
        repo.delete(kinds.TRAIL, ARN)
        repo.delete(kinds.TRAIL_STATUS, ARN)  # as DeleteTrail does
        return None, []

    writer.run_blocking(delete)
    worker._update_status(ARN, made_again, {"LatestDeliveryError": "AccessDenied"})
    assert read.get(kinds.TRAIL_STATUS, ARN) is None


class DownStore(MemoryStore):
    """Refuses every put while ``down``."""

    down = True

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        if self.down:
            raise ObjectStoreError("ServiceUnavailable", "the store is down")
        super().put_object(bucket, key, body, content_type=content_type, metadata=metadata)


def test_each_pass_tells_every_trails_backlog_until_its_records_are_stored(validating) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _, clocks = validating
    told: list[dict[str, delivery.Backlog] | None] = []
    worker._backlog = told.append
    worker._store = objects = DownStore()
    SqliteResources(conn, ACCOUNT, "").put(kinds.TRAIL, OTHER_ARN, {
        "Name": "other", "TrailARN": OTHER_ARN, "S3BucketName": "bucket",
        "HomeRegion": "us-east-1", "IsLogging": False})

    def record_at(seconds_ago: int, count: int) -> None:
        rows = [EventRow(ACCOUNT, "us-east-1", int(clocks.wall) - seconds_ago,
                         record(n, "us-east-1"), deliveries=((ARN, ACCOUNT),))
                for n in range(count)]
        writer.run_blocking(lambda c: (None, rows))

    worker.run_once()
    assert told[-1] == {ARN: (0.0, 0), OTHER_ARN: (0.0, 0)}

    record_at(60, 2)  # rows no file has claimed yet count from their eventTime
    trail = SqliteResources(conn, ACCOUNT, "").get(kinds.TRAIL, ARN)
    assert delivery.trail_backlog(conn, ARN, trail, clocks.wall) == (60.0, 0)

    clocks.advance(5)
    worker.run_once()  # claimed into a file whose upload fails: it waits, and so does its lag
    assert told[-1] == {ARN: (65.0, 1), OTHER_ARN: (0.0, 0)}

    clocks.advance(5)
    record_at(1, 3)  # newer rows do not hide the oldest record's age
    worker.run_once()
    assert told[-1][ARN] == (70.0, 2)

    objects.down = False
    clocks.advance(30)  # past the back-off
    worker.run_once()
    assert told[-1][ARN] == (0.0, 0)
    assert len(objects.objects) >= 2

    # A node that does not deliver tells no trail's backlog: the one that delivers does.
    worker._leadership = lambda: False
    worker.run_once()
    assert told[-1] is None
