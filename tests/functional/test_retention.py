"""Retention on a running server whose wall clock moves 100 days on: records past event
history's 90 days leave the store once every trail has delivered them, and not before, then
their log-file and digest rows, and all a deleted trail left; their log files stay valid in
the bucket."""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing

import pytest

from searchtrail.audit.delivery import UNCLAIMED_RECORDS
from tests.functional.server import ServerProcess
from tests.functional.trails import (counts, local_s3, read_bucket, searchtrail_cli,
                                     stored_count, wait_for)
from tests.reliability.faketime import SteppedClock, faketime_library

DAYS_ON = 100
KEPT, LATE, GONE = "kept-bucket", "late-bucket", "gone-bucket"


def delivered(server: ServerProcess) -> bool:
    return stored_count(server, "SELECT (SELECT count(*) FROM log_files WHERE delivered_at IS NULL) + "
                  + UNCLAIMED_RECORDS) == 0


def test_records_leave_the_store_100_days_on_once_every_trail_has_delivered_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = SteppedClock(tmp_path / "faketime")
    env = {**clock.env(faketime_library()), "SEARCHTRAIL_RETENTION_CHECK_SECONDS": "0.5"}
    args = ["--delivery-interval", "1", "--digest-interval", "2"]
    data = tmp_path / "data"
    server = ServerProcess(data, env=env, args=args).start()
    try:
        for bucket in (KEPT, LATE, GONE):
            searchtrail_cli("buckets", "create", bucket, "--data-dir", str(data))
        cloudtrail = server.client("cloudtrail")
        kept_arn = cloudtrail.create_trail(Name="kept", S3BucketName=KEPT,
                                           EnableLogFileValidation=True)["TrailARN"]
        late_arn = cloudtrail.create_trail(Name="late", S3BucketName=LATE)["TrailARN"]
        gone_arn = cloudtrail.create_trail(Name="gone", S3BucketName=GONE,
                                           EnableLogFileValidation=True)["TrailARN"]
        # deleted too, then made again under its name (not logging)
        again_arn = cloudtrail.create_trail(Name="again", S3BucketName=KEPT,
                                            EnableLogFileValidation=True)["TrailARN"]
        # its deliveries fail until its settings are back
        (data / "bucket-meta" / LATE).rename(tmp_path / "late-bucket-meta")
        cloudtrail.start_logging(Name="kept")
        cloudtrail.start_logging(Name="late")
        cloudtrail.start_logging(Name="gone")
        cloudtrail.start_logging(Name="again")
        aoss = server.client("opensearchserverless")
        for _ in range(20):
            aoss.list_collections()
        wait_for(lambda: "LatestDeliveryError" in cloudtrail.get_trail_status(Name="late"),
                 seconds=30, what="the late trail's delivery error")
        old_last = stored_count(server, "SELECT max(seq) FROM events")
        late_first = stored_count(server, "SELECT min(seq) FROM outbox WHERE trail_arn = ?", late_arn)
        assert late_first > 1  # before the late trail logged, records went to the kept one
        old_lookups = stored_count(server, "SELECT count(*) FROM event_lookup")
        before_step = time.time() + 86_400
        old_rows = ("SELECT (SELECT count(*) FROM log_files WHERE delivered_at < ?1) + "
                    "(SELECT count(*) FROM digests WHERE end_time < ?1)")
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM digests WHERE trail_arn = ? "
                                      "AND delivered_at IS NOT NULL", kept_arn) >= 2,
                 seconds=30, what="the kept trail's digests")
        assert stored_count(server, old_rows, before_step) >= 3  # a log file, two digests
        # trails deleted after delivering: their records wait for the late trail like any
        for name, arn in (("gone", gone_arn), ("again", again_arn)):
            wait_for(lambda: stored_count(server, "SELECT count(*) FROM digests WHERE trail_arn "
                                          "= ? AND delivered_at IS NOT NULL", arn) >= 1,
                     seconds=30, what=f"the {name} trail's digest")
            cloudtrail.delete_trail(Name=name)
        assert cloudtrail.create_trail(Name="again", S3BucketName=KEPT)["TrailARN"] == again_arn
    finally:
        server.stop()

    server = ServerProcess(data, env=days_on(clock, env), args=args).start()
    try:
        cloudtrail = server.client("cloudtrail")
        aoss = server.client("opensearchserverless")
        # The records from before the late trail logged (creating the trails, starting the
        # kept one) were delivered: they leave. The late trail's stay while its bucket is away.
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM events WHERE seq < ?",
                                late_first) == 0, seconds=30, what="the first records removed")
        # each pass looks for expired records after delivering: once the kept trail has
        # delivered a record of today twice over, a pass has looked since they left
        for _ in range(2):
            aoss.list_collections()
            wait_for(lambda: delivered_by(server, kept_arn), seconds=30,
                     what="the kept trail's records of today")
        assert stored_count(server, "SELECT count(*) FROM events WHERE seq <= ?",
                      old_last) == old_last - late_first + 1
        assert stored_count(server, "SELECT pruned_through FROM retention") == late_first - 1

        # back: the late trail delivers, then the records leave
        (tmp_path / "late-bucket-meta").rename(data / "bucket-meta" / LATE)
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM events WHERE seq <= ?",
                                old_last) == 0, seconds=60, what="the expired records removed")
        wait_for(lambda: delivered(server), seconds=30, what="every record delivered")
        assert stored_count(server, "SELECT count(*) FROM event_lookup WHERE seq <= ?", old_last) == 0
        assert stored_count(server, "SELECT count(*) FROM outbox WHERE seq <= ?", old_last) == 0
        assert 0 < stored_count(server, "SELECT count(*) FROM event_lookup") < old_lookups
        assert stored_count(server, "SELECT pruned_through FROM retention") >= old_last
        removed = server.metric("searchtrail_records_removed_total")
        assert removed is not None and removed >= old_last - late_first + 1, removed
        # today's records are all there, and found
        events = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])["Events"]
        assert len(events) == 2
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            with closing(sqlite3.connect(data / "searchtrail.sqlite3", timeout=30)) as conn:
                conn.execute("DELETE FROM events WHERE seq = (SELECT min(seq) FROM events)")
    finally:
        server.stop()

    # Log-file and digest rows are looked at once an hour, and first as a server starts: by
    # now each chain has newer ones, so the rows of 100 days ago go, counted in /metrics.
    left = stored_count(server, old_rows, before_step)
    assert left  # at least each chain's newest of then, which the last server kept
    server = ServerProcess(data, env=env, args=args).start()
    try:
        # the tables' counts follow the pass's last unit, one after the other
        counted = wait_for(lambda: len(found := rows_removed(server)) == 3 and found,
                           seconds=30, what="the log-file and digest rows of 100 days ago removed")
        assert stored_count(server, old_rows, before_step) == 0
        assert counted.pop("outbox_claims") == 1  # the deleted trail's mark, its rows before it
        assert sum(counted.values()) == left, counted
        assert not stored_count(server, "SELECT (SELECT count(*) FROM log_files WHERE trail_arn "
                                "= ?1) + (SELECT count(*) FROM digests WHERE trail_arn = ?1) + "
                                "(SELECT count(*) FROM outbox_claims WHERE trail_arn = ?1)",
                                gone_arn)
        # the trail made again keeps its mark; the deleted one's rows under its ARN went
        assert not stored_count(server, "SELECT (SELECT count(*) FROM log_files WHERE trail_arn "
                                "= ?1) + (SELECT count(*) FROM digests WHERE trail_arn = ?1)",
                                again_arn)
        assert stored_count(server, "SELECT count(*) FROM outbox_claims WHERE trail_arn = ?",
                            again_arn) == 1
        assert stored_count(server, "SELECT count(*) FROM digests WHERE trail_arn = ?", kept_arn)
        # the removed records' log files stay in the bucket, and the trail still validates
        validated = searchtrail_cli("trail", "validate", "--trail-arn", kept_arn,
                                    "--start-time", "2020-01-01T00:00:00Z",
                                    "--data-dir", str(data), env=env)
        assert validated.returncode == 0, validated.stdout + validated.stderr
        digests, log_files = counts(validated.stdout)
        assert log_files and log_files.split("/")[0] == log_files.split("/")[1] != "0", (
            validated.stdout)
    finally:
        server.stop()


def test_a_failing_trail_in_another_region_keeps_only_its_own_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One trail whose bucket failed, in any account or Region, had kept every later record of
    the whole store past the window for as long as it failed."""
    clock = SteppedClock(tmp_path / "faketime")
    env = {**clock.env(faketime_library()), "SEARCHTRAIL_RETENTION_CHECK_SECONDS": "0.5"}
    args = ["--delivery-interval", "1"]
    data = tmp_path / "data"
    server = ServerProcess(data, env=env, args=args).start()
    try:
        searchtrail_cli("buckets", "create", KEPT, "--data-dir", str(data))
        searchtrail_cli("buckets", "create", LATE, "--data-dir", str(data), "--region", "us-west-2")
        east = server.client("cloudtrail")
        west = server.client("cloudtrail", region="us-west-2")
        kept_arn = east.create_trail(Name="kept", S3BucketName=KEPT)["TrailARN"]
        west_arn = west.create_trail(Name="west", S3BucketName=LATE)["TrailARN"]  # us-west-2's
        (data / "bucket-meta" / LATE).rename(tmp_path / "late-bucket-meta")  # it fails
        east.start_logging(Name="kept")
        west.start_logging(Name="west")
        for region in ("us-east-1", "us-west-2"):
            aoss = server.client("opensearchserverless", region=region)
            for _ in range(5):
                aoss.list_collections()
        wait_for(lambda: "LatestDeliveryError" in west.get_trail_status(Name="west"),
                 seconds=30, what="the west trail's delivery error")
        wait_for(lambda: delivered_by(server, kept_arn), seconds=30, what="the kept trail's")
        west_rows = ("SELECT count(*) || ' ' || min(seq) FROM outbox JOIN events USING (seq) "
                     "WHERE trail_arn = ?")
        held, held_first = map(int, stored_count(server, west_rows, west_arn).split())
        assert held >= 5
        old_last = stored_count(server, "SELECT max(seq) FROM events")
        assert old_last - held_first > held  # us-east-1's records among them
    finally:
        server.stop()

    server = ServerProcess(data, env=days_on(clock, env), args=args).start()
    try:
        # every old record but the west trail's (and the newest, whose seq the next follow)
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM events WHERE seq < ? AND seq "
                                      "NOT IN (SELECT seq FROM outbox WHERE trail_arn = ?)",
                                      old_last, west_arn) == 0,
                 seconds=30, what="the old records the west trail does not take removed")
        assert stored_count(server, west_rows, west_arn) == f"{held} {held_first}"
        assert stored_count(server, "SELECT pruned_through FROM retention") < held_first
        assert stored_count(server, "SELECT count(*) FROM event_lookup WHERE seq NOT IN "
                            "(SELECT seq FROM events)") == 0
        # its bucket back, the west trail delivers every record it took, then they leave
        (tmp_path / "late-bucket-meta").rename(data / "bucket-meta" / LATE)
        wait_for(lambda: delivered_by(server, west_arn), seconds=30, what="the west trail's")
        delivered = read_bucket(local_s3(server), LATE).records_by_key
        assert sorted(record["awsRegion"] for records in delivered.values()
                      for record in records) == ["us-west-2"] * held
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM events WHERE seq < ?",
                                      old_last) == 0, seconds=30, what="the west trail's removed")
    finally:
        server.stop()


def days_on(clock: SteppedClock, env: dict[str, str]) -> dict[str, str]:
    """``env`` for a server whose clock is now DAYS_ON days ahead."""
    clock.set_offset(DAYS_ON * 86_400)
    # the test's clients sign with the real clock, as far behind the server's
    env["SEARCHTRAIL_CLOCK_SKEW_SECONDS"] = str((DAYS_ON + 1) * 86_400)
    return env


def rows_removed(server: ServerProcess) -> dict[str, float]:
    """/metrics' count of removed log-file, digest and claim-mark rows, by table (empty before
    any)."""
    found = re.findall(r'^searchtrail_delivery_rows_removed_total\{table="(\w+)"\} (\S+)$',
                       server.metrics(), re.M)
    return {table: float(value) for table, value in found}


def delivered_by(server: ServerProcess, arn: str) -> bool:
    """Every record of the trail is in a stored log file."""
    return stored_count(server, "SELECT (SELECT count(*) FROM log_files WHERE trail_arn = ?1 "
                  "AND delivered_at IS NULL) + (SELECT count(*) FROM outbox WHERE trail_arn = ?1 "
                  "AND seq > coalesce((SELECT through_seq FROM outbox_claims "
                  "WHERE trail_arn = ?1), 0))", arn) == 0


def test_serve_takes_the_days_of_history_and_refuses_fewer_than_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "--retention-days" in searchtrail_cli("serve", "--help").stdout
    refused = searchtrail_cli("serve", "--retention-days", "0", "--data-dir", str(tmp_path),
                              env={"COLUMNS": "200"})  # the error box on one line
    assert refused.returncode == 2
    assert "--retention-days" in refused.stderr and "greater than or equal" in refused.stderr
