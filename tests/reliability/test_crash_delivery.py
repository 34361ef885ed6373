"""Crash during delivery (R6): kill -9 while log files and digests are written; each record once."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from searchtrail.audit.delivery import UNCLAIMED_RECORDS
from tests.functional.server import ServerProcess
from tests.functional.trails import (Delivered, chain_closed, counts, local_s3, read_bucket,
                                     searchtrail_cli, validate_both, wait_for)
from tests.reliability.checkers import (check_delivery, check_store, read_digests,
                                        records_by_tid, sql_refused, stored_records)
from tests.reliability.history import History, LoadThreads
from tests.reliability.ledger import Ledger, Profile

pytestmark = pytest.mark.reliability

BUCKET = "crash-trail"
TRAIL = "crash"
# The shortest periods the server allows, so kills land in assignment, upload and signing.
FAST_DELIVERY = ["--delivery-interval", "1", "--digest-interval", "1"]
MAX_OPS_PER_ROUND = 3_000
CATCH_UP_SECONDS = 60
IN_FLIGHT_SECONDS = 3.0
IN_FLIGHT = ("log_files", "digests")  # targeted kills alternate between the two uploads


class Traffic:
    """Two threads of calls (reads and policy creations) recorded in a History until stopped."""

    def __init__(self, history: History, server: ServerProcess, threads: int = 2) -> None:
        self.history = history
        self.clients = [history.wrap(server.client("opensearchserverless")) for _ in range(threads)]
        self.made = 0
        self._lock = threading.Lock()
        self._threads = LoadThreads(self._one, self.clients, MAX_OPS_PER_ROUND)

    def start(self) -> None:
        self._threads.start()

    def stop(self) -> None:
        self._threads.stop()

    def _one(self, aoss) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self.made += 1
            number = self.made
        if number % 3:
            self.history.call(aoss, "list_collections")
        else:
            rules = [{"ResourceType": "collection", "Resource": [f"collection/n{number}"]}]
            policy = [{"Rules": rules, "AllowFromPublic": True}]
            self.history.call(aoss, "create_security_policy", name=f"n{number}", type="network",
                              policy=json.dumps(policy))


def logging_trail(server: ServerProcess, bucket: str, trail: str,
                  env: dict[str, str] | None = None) -> str:
    """A local folder bucket (made by the CLI, with ``env``) and a logging trail with log file
    validation delivering to it; the trail's ARN."""
    made = searchtrail_cli("buckets", "create", bucket, "--data-dir", str(server.data_dir),
                           env=env)
    assert made.returncode == 0, made.stderr
    cloudtrail = server.client("cloudtrail")
    trail_arn = cloudtrail.create_trail(Name=trail, S3BucketName=bucket,
                                        EnableLogFileValidation=True)["TrailARN"]
    cloudtrail.start_logging(Name=trail)
    return trail_arn


def test_r6_kill_9_during_delivery_and_signing_delivers_each_record_once(
        tmp_path: Path, profile: Profile, ledger: Ledger) -> None:
    kills = profile.pick(ci=4, full=20)
    rng = random.Random(0xD16E57)
    history = History()
    server = ServerProcess(tmp_path / "data", args=FAST_DELIVERY).start()
    try:
        trail_arn = logging_trail(server, BUCKET, TRAIL)
        traffic = Traffic(history, server)
        caught: list[tuple[int, int, int]] = []
        for round_ in range(kills):
            traffic.start()
            threading.Event().wait(rng.uniform(0.5, 3.0))  # the nemesis: a random kill moment
            if round_ % 2:  # ...or the first moment after it that a file or digest is in flight
                _wait_for_upload_in_flight(server.data_dir / "searchtrail.sqlite3",
                                           IN_FLIGHT[round_ // 2 % 2])
            server.kill9()
            traffic.stop()
            caught.append(_unfinished_delivery(server.data_dir / "searchtrail.sqlite3"))
            server = ServerProcess(server.data_dir, port=server.port, args=FAST_DELIVERY).start()
        trail = catch_up_and_check(server, history, TRAIL, trail_arn, BUCKET)
        # a record's log file, a file's key and hash and a signed digest are fixed once written
        refused = sql_refused(server.data_dir / "searchtrail.sqlite3", DELIVERY_TAMPERING)
    finally:
        server.stop()
    ops = history.ops
    ledger.add("R6", calls_made=len(ops), kills=kills, **trail.delivery.counts())
    ledger.add("R7", tamper_cases=len(refused), tamper_detected=sum(refused.values()))
    ledger.note("R6", log_files=len(trail.delivered.log_keys),
                digests=len(trail.delivered.digest_keys),
                outcomes={k: sum(op.outcome == k for op in ops) for k in ("ok", "fail", "info")},
                store_problems=len(trail.store.problems),
                # per kill: records not yet in a file, files fixed but not stored, same for digests
                left_at_kill=caught)
    ledger.note("R7", delivery_rows_refused=sorted(k for k, v in refused.items() if v))
    trail.assert_whole(calls_at_least=50 * kills)
    assert any(files or digests for _, files, digests in caught), "no kill caught an upload"
    assert all(refused.values()), {k: v for k, v in refused.items() if not v}


@dataclass
class TrailCheck:
    """What a trail delivered to a local folder, checked against the store and the calls."""

    delivered: Delivered
    digests: list[dict[str, Any]]
    expected: list[dict[str, Any]]
    delivery: Any
    store: Any
    aws: subprocess.CompletedProcess
    ours: subprocess.CompletedProcess

    def assert_whole(self, *, calls_at_least: int) -> None:
        """Each record once in a log file in the bucket, every call's record, and both
        validators N/N digests and M/M log files (N and M from the bucket listing)."""
        assert self.delivery.ok, str(self.delivery)
        assert self.store.ok, str(self.store)
        assert len(self.expected) > calls_at_least, "too little traffic to mean anything"
        logs, digests = len(self.delivered.log_keys), len(self.digests)
        whole = (f"{digests}/{digests}", f"{logs}/{logs}")
        for run in (self.aws, self.ours):
            assert run.returncode == 0 and counts(run.stdout) == whole, run.stdout + run.stderr


def catch_up_and_check(server: ServerProcess, history: History, trail: str, trail_arn: str,
                       bucket: str) -> TrailCheck:
    """Stop the trail's logging, wait until every record and the final digest are delivered,
    then check the bucket against the store and the calls, and run both validators."""
    server.client("cloudtrail").stop_logging(Name=trail)
    wait_for(lambda: chain_closed(server, trail), seconds=CATCH_UP_SECONDS,
             what="every record delivered and the final digest written")
    s3 = local_s3(server)
    delivered = read_bucket(s3, bucket)
    digests = read_digests(s3, bucket, delivered.digest_keys)
    records = stored_records(server)
    joined = records_by_tid(records)
    expected = [r for op in history.ops for r in joined.get(op.tid, ())]
    delivery = check_delivery(expected, delivered, digests,
                              stored_ids={r["eventID"] for r in records})
    aws, ours = validate_both(server, trail_arn, s3_endpoint=server.endpoint + "/_s3",
                              region="us-east-1")
    return TrailCheck(delivered, digests, expected, delivery, check_store(history.ops, records),
                      aws, ours)


def _wait_for_upload_in_flight(database: Path, table: str) -> None:
    """Until a log file or digest is fixed in the database but not yet stored (bounded)."""
    conn = sqlite3.connect(database)
    query = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE delivered_at IS NULL)"
    try:
        wait_for(lambda: conn.execute(query).fetchone()[0], seconds=IN_FLIGHT_SECONDS,
                 what="an upload in flight", step=0.001)
    except AssertionError:
        pass  # none seen in time: this kill lands at the random moment instead
    finally:
        conn.close()


def _unfinished_delivery(database: Path) -> tuple[int, int, int]:
    """What a kill interrupted: the work the next incarnation must finish (or redo)."""
    conn = sqlite3.connect(database)
    try:
        return conn.execute(
            f"SELECT {UNCLAIMED_RECORDS}, "
            "(SELECT count(*) FROM log_files WHERE delivered_at IS NULL), "
            "(SELECT count(*) FROM digests WHERE delivered_at IS NULL)").fetchone()
    finally:
        conn.close()


DELIVERY_TAMPERING = (
    "DELETE FROM outbox",
    "UPDATE outbox_claims SET through_seq = 0",  # would claim every record a second time
    "UPDATE log_files SET last_seq = last_seq - 1",  # would leave a record out of its file
    "UPDATE outbox SET seq = seq + 1",
    "INSERT OR REPLACE INTO outbox SELECT * FROM outbox",
    "UPDATE log_files SET key = key || '.moved'",
    "UPDATE log_files SET sha256 = 'x'",
    "DELETE FROM log_files",
    "UPDATE digests SET signature = 'x'",
    "UPDATE digests SET previous_id = NULL",
    "DELETE FROM digests",
)
