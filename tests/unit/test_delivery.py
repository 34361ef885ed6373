"""The delivery worker's claims on a real SQLite store, and migration 0004 (partial outbox indexes)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from searchtrail.audit import delivery
from searchtrail.audit.delivery import TRAIL_KIND, UNCLAIMED, DeliveryWorker
from searchtrail.audit.logfile import build_log_file, unique_suffix
from searchtrail.store.sqlite.connection import (
    _migration_scripts,
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
    """Keeps what was put, by (bucket, key); every put is counted."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts = 0

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        self.puts += 1
        self.objects[(bucket, key)] = body


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A migrated database with a logging trail, its writer running, and a worker on both."""
    path = tmp_path / "db.sqlite3"
    conn = open_connection(path)
    migrate(conn)
    SqliteResources(conn, ACCOUNT, "").put(TRAIL_KIND, ARN, {
        "Name": "audit", "TrailARN": ARN, "S3BucketName": "bucket", "HomeRegion": "us-east-1",
        "IsLogging": True})
    writer = GroupCommitWriter(conn)
    writer.start()
    objects = MemoryStore()
    worker = DeliveryWorker(
        reader=lambda: open_connection(path, read_only=True), writer=writer, store=objects,
        notifier=None, signing_keys=None,  # type: ignore[arg-type]  # no SNS, no validation
        delivery_interval=1, digest_interval=3600, org_id=None, clock=lambda: NOW)
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


def test_a_backlog_is_claimed_one_file_per_writer_unit(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    monkeypatch.setattr(delivery, "MAX_RECORDS_PER_FILE", 3)
    append(writer, ["us-east-1"] * 8 + ["eu-west-1"] * 2)
    units_before = writer.stats.units

    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)

    claimed = files(conn)
    assert [(region, records) for _, _, region, records, _ in claimed] == [
        ("eu-west-1", 2), ("us-east-1", 3), ("us-east-1", 3), ("us-east-1", 2)]
    assert writer.stats.units - units_before == 4  # one writer unit per file
    outbox = conn.execute("SELECT id, region, file_id FROM outbox ORDER BY id").fetchall()
    assert all(file_id is not None for _, _, file_id in outbox)
    for file_id, _, region, records, key in claimed:
        ids = [i for i, r, f in outbox if f == file_id]
        assert len(ids) == records
        # each file holds its group's oldest unclaimed rows, and its key comes from the first
        assert ids == [i for i, r, f in outbox if r == region and f == file_id]
        assert key.endswith(f"_{unique_suffix(f'{ARN}|{ACCOUNT}|{region}|{ids[0]}'.encode())}"
                            ".json.gz")
    # a group's files take its rows in id order: the first file the three oldest
    us_east = [(i, f) for i, r, f in outbox if r == "us-east-1"]
    assert [f for _, f in us_east] == sorted(f for _, f in us_east)


def test_claims_leave_other_trails_rows_and_later_rows_alone(store) -> None:  # type: ignore[no-untyped-def]
    conn, writer, worker, _ = store
    append(writer, ["us-east-1"] * 3, trails=(ARN, OTHER_ARN))
    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)
    append(writer, ["us-east-1"] * 2, trails=(ARN, OTHER_ARN))

    unclaimed = conn.execute("SELECT trail_arn, count(*) FROM outbox WHERE file_id IS NULL "
                             "GROUP BY trail_arn ORDER BY trail_arn").fetchall()
    assert unclaimed == [(ARN, 2), (OTHER_ARN, 5)]
    worker._assign(ARN, {"S3BucketName": "bucket"}, NOW)
    assert [records for _, _, _, records, _ in files(conn)] == [3, 2]


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
    expected = build_log_file([record(n, "us-east-1") for n in (0, 2, 3)], [1_764_503_940] * 3)
    assert objects.objects[("bucket", us_key)] == expected.body

    # A crash after the upload but before it was marked: the retry rewrites the same bytes.
    before = dict(objects.objects)
    writer.run_blocking(lambda c: (c.execute("UPDATE log_files SET delivered_at = NULL"), []))
    worker.run_once()
    assert objects.objects == before and objects.puts == 4


def test_an_idle_trail_claims_nothing_and_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    _, writer, worker, objects = store
    units = writer.stats.units
    worker.run_once()
    assert writer.stats.units == units and objects.puts == 0


def _migrate_to(conn: sqlite3.Connection, version: int) -> None:
    """Apply the migrations up to ``version`` only, as an older server left the store."""
    conn.execute("BEGIN IMMEDIATE")
    for number, script in _migration_scripts():
        if number <= version:
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

    assert migrate(conn) == 4

    indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                "AND tbl_name = 'outbox' AND sql IS NOT NULL"))
    assert indexes["outbox_unassigned"].endswith("WHERE file_id IS NULL")
    assert indexes["outbox_by_file"].endswith("WHERE file_id IS NOT NULL")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM outbox WHERE file_id IS NULL").fetchone()[0] == 50
    assert conn.execute("SELECT count(*) FROM outbox WHERE file_id = 1").fetchone()[0] == 150
    # the worker reads unclaimed rows and a file's rows through the partial indexes
    assert "USING INDEX outbox_unassigned (account=? AND region=?)" in _plan(
        conn, f"SELECT count(*) FROM {UNCLAIMED} WHERE file_id IS NULL AND account = ? "
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
