"""The PostgreSQL store: a node keeps its state and events in a real PostgreSQL server and
behaves as on SQLite (calls recorded, event history, a trail delivered and validated), the
store refuses to rewrite history, and a store it cannot reach is a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import select
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Callable

import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from searchtrail.audit import retention
from searchtrail.store.api import Conflict, KeysCounted, StoreUnavailable
from searchtrail.store.lookupkeys import lookup_key
from searchtrail.store.migrations import numbered_scripts
from searchtrail.store.postgres.connection import (MAX_HELD_WRITES, STUCK_HOLDER_MS,
                                                    WRITE_LOCK_KEY, PostgresConnection, migrate)
from searchtrail.store.postgres.notify import PostgresSignal
from searchtrail.store.sqlite.events import EventRow, append_events, last_event_seq
from searchtrail.store.sqlite.resources import (RESOURCE_VERSIONS, ResourceChanges,
                                                SqliteResources)
from searchtrail.store.sqlite.writer import RECORDS_SENT_AHEAD, GroupCommitWriter
from tests.clients import boto3_client
from tests.e2e.console_http import (ROOT_PASSWORD, USER_PASSWORD, ConsoleUser,
                                    set_console_password)
from tests.functional.server import ServerProcess, free_port
from tests.functional.trails import (chain_closed, counts, local_s3, read_bucket, searchtrail_cli,
                                     validate_both, wait_for)
from tests.postgres import start_postgres
from tests.unit.test_lookup_keys import (TRICKY_VALUES, assert_keyed_and_found,
                                         fill_text_keyed_store)
from tests.unit.test_retention import (ARN, GONE_ARN, MADE_AGAIN, OLD, RECENT, UNDELIVERED,
                                        busy_backlog_keeps_pace, deleted_trail_bookkeeping,
                                        recreated_trail_bookkeeping, ts, unstored_bookkeeping)
from tests.unit.test_retention import Store as RetentionStore

BUCKET = "pg-trail-bucket"
TRAIL = "pg-trail"


@pytest.fixture
def pg_server(tmp_path, postgres):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "data", args=["--delivery-interval", "1",
                                                    "--digest-interval", "2"])
    server.use_postgres(postgres.database())
    yield server.start()
    server.stop()


def test_a_node_on_postgresql_records_every_call_and_delivers_a_valid_trail(pg_server) -> None:
    with urllib.request.urlopen(pg_server.endpoint + "/_searchtrail/health", timeout=5) as r:
        health = json.loads(r.read())
    assert (health["store"], health["fsync"], health["synchronous_commit"]) == (
        "postgresql", "on", "on")
    assert health["keyChangeSignal"] == "working"  # it hears the other nodes' key changes
    made = searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(pg_server.data_dir))
    assert made.returncode == 0, made.stderr  # the CLI finds the store in searchtrail.toml
    cloudtrail = pg_server.client("cloudtrail")
    trail_arn = cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET,
                                        EnableLogFileValidation=True)["TrailARN"]
    cloudtrail.start_logging(Name=TRAIL)
    aoss = pg_server.client("opensearchserverless")
    policy = json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/pg*"]}],
                         "AWSOwnedKey": True})
    request_ids = [aoss.create_security_policy(name="pg-keys", type="encryption",
                                               policy=policy)["ResponseMetadata"]["RequestId"]]
    for number in range(3):
        request_ids.append(aoss.create_collection(name=f"pg{number}")
                           ["ResponseMetadata"]["RequestId"])
    with pytest.raises(ClientError) as conflict:  # a failed call rolls back, and is recorded
        aoss.create_security_policy(name="pg-keys", type="encryption", policy=policy)
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    request_ids.append(conflict.value.response["ResponseMetadata"]["RequestId"])
    names = [c["name"] for c in aoss.list_collections()["collectionSummaries"]]
    assert names == ["pg0", "pg1", "pg2"]  # ordered by key, as on SQLite

    found = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateCollection"}])["Events"]
    assert [json.loads(e["CloudTrailEvent"])["requestParameters"]["name"] for e in found] == [
        "pg2", "pg1", "pg0"]
    first_page = cloudtrail.lookup_events(MaxResults=2)
    second_page = cloudtrail.lookup_events(MaxResults=2, NextToken=first_page["NextToken"])
    assert not {e["EventId"] for e in first_page["Events"]} & {
        e["EventId"] for e in second_page["Events"]}

    cloudtrail.stop_logging(Name=TRAIL)
    wait_for(lambda: chain_closed(pg_server, TRAIL), seconds=60,
             what="every record delivered and the final digest written")
    delivered = read_bucket(local_s3(pg_server), BUCKET)
    in_files = [r["requestID"] for records in delivered.records_by_key.values() for r in records]
    assert all(in_files.count(request_id) == 1 for request_id in request_ids), in_files
    aws, ours = validate_both(pg_server, trail_arn, s3_endpoint=pg_server.endpoint + "/_s3",
                              region="us-east-1")
    whole = (f"{len(delivered.digest_keys)}/{len(delivered.digest_keys)}",
             f"{len(delivered.log_keys)}/{len(delivered.log_keys)}")
    for run in (aws, ours):
        assert run.returncode == 0 and counts(run.stdout) == whole, run.stdout + run.stderr
    assert not (pg_server.data_dir / "searchtrail.sqlite3").exists()



@pytest.fixture
def two_nodes(tmp_path, postgres):  # type: ignore[no-untyped-def]
    """Two nodes sharing one database."""
    url = postgres.database()
    nodes = [ServerProcess(tmp_path / f"node{number}").use_postgres(url).start()
             for number in range(2)]
    yield nodes
    for node in nodes:
        node.stop()


def test_a_trail_changed_on_one_node_routes_the_next_call_on_the_other(two_nodes) -> None:
    # Each node caches the trails it routes by while no trail changes on any node (their
    # kind's resource version): a call on node 1 right after node 0 starts or stops logging
    # must see the change.
    key = two_nodes[0].credentials()
    aoss = two_nodes[1].client("opensearchserverless", key=key)
    cloudtrail = two_nodes[0].client("cloudtrail", key=key)

    def routed() -> int:
        with contextlib.closing(two_nodes[0].store()) as store:
            return store.execute("SELECT count(*) FROM outbox").fetchone()[0]

    aoss.list_collections()  # node 1 has read (and may cache) "no trails"
    searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(two_nodes[0].data_dir))
    cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET)
    cloudtrail.start_logging(Name=TRAIL)
    before = routed()
    aoss.list_collections()
    assert routed() == before + 1
    cloudtrail.stop_logging(Name=TRAIL)
    stopped = routed()
    aoss.list_collections()
    assert routed() == stopped


def test_a_resource_changed_on_one_node_is_read_by_the_next_call_on_the_other(
        two_nodes) -> None:
    # A node keeps its write transactions' reads while no resource version moves: the other
    # node's change moves its kind's, so the very next call here reads the store again.
    key = two_nodes[0].credentials()
    here, there = (node.client("opensearchserverless", key=key) for node in two_nodes)
    policy = '[{"Rules":[{"ResourceType":"collection","Resource":["collection/logs"]}],' \
             '"AllowFromPublic":true}]'

    def names() -> list[str]:
        return [item["name"] for item in
                here.list_security_policies(type="network")["securityPolicySummaries"]]

    assert names() == [] and names() == []  # read, then answered from what was read
    there.create_security_policy(name="pol-one", type="network", policy=policy)
    assert names() == ["pol-one"]
    there.delete_security_policy(name="pol-one", type="network")
    assert names() == []


def test_a_key_deleted_through_one_node_stops_working_on_the_other_at_once(two_nodes) -> None:
    root = two_nodes[0].credentials()
    iam = two_nodes[0].client("iam", key=root)
    iam.create_user(UserName="leaver")
    iam.attach_user_policy(UserName="leaver",
                           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    made = iam.create_access_key(UserName="leaver")["AccessKey"]
    aoss = two_nodes[1].client("opensearchserverless",
                               key=(made["AccessKeyId"], made["SecretAccessKey"]))
    aoss.list_collections()  # the key is now in node 1's cache
    iam.delete_access_key(UserName="leaver", AccessKeyId=made["AccessKeyId"])
    with pytest.raises(ClientError) as refused:  # within the 1 s a cached key would live
        aoss.list_collections()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # and a key changed back works again at once (the other node does not cache the refusal)
    again = iam.create_access_key(UserName="leaver")["AccessKey"]
    iam.update_access_key(UserName="leaver", AccessKeyId=again["AccessKeyId"], Status="Inactive")
    other = two_nodes[1].client("opensearchserverless",
                                key=(again["AccessKeyId"], again["SecretAccessKey"]))
    with pytest.raises(ClientError):
        other.list_collections()  # inactive: refused, and the refusal may be cached
    iam.update_access_key(UserName="leaver", AccessKeyId=again["AccessKeyId"], Status="Active")
    assert other.list_collections()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_download_served_by_one_node_shows_its_progress_on_the_other(two_nodes) -> None:
    set_console_password(str(two_nodes[0].data_dir), ROOT_PASSWORD)
    user = ConsoleUser(two_nodes[0].endpoint)
    assert user.sign_in(ROOT_PASSWORD).status_code == 303  # the session is in the store
    download = user.http.get(two_nodes[0].endpoint + "/console/events/export",
                             params={"range": "1h", "format": "csv", "export": "across-nodes"})
    assert download.status_code == 200, download.text
    rows = download.text.count("\r\n") - 1  # the sign-in's record at least
    assert rows >= 1, download.text

    def progress(export: str) -> str:
        shown = user.http.get(two_nodes[1].endpoint + "/console/events/export/progress",
                              params={"export": export})
        assert shown.status_code == 200, shown.text
        return shown.text

    assert f"Download complete: {rows} event" in progress("across-nodes")
    assert "Preparing the download" in progress("not-started")


def test_failed_sign_ins_on_one_node_throttle_the_user_on_the_other(two_nodes) -> None:
    iam = two_nodes[0].client("iam", key=two_nodes[0].credentials())
    iam.create_user(UserName="dave")
    iam.create_login_profile(UserName="dave", Password=USER_PASSWORD)
    for attempt in range(5):  # the per-user limit, spread over both nodes
        answer = ConsoleUser(two_nodes[attempt % 2].endpoint).sign_in("wrong-Pa55word",
                                                                      user="dave")
        assert answer.status_code == 401
    for node in two_nodes:
        answer = ConsoleUser(node.endpoint).sign_in(USER_PASSWORD, user="dave")
        assert answer.status_code == 429 and "Too many failed" in answer.text


# What the store refuses (as SQLite's triggers do): history rewritten in place. Each with the
# table it changes, which must have rows for the refusal to mean anything.
TAMPERING = (
    ("events", "UPDATE events SET record = '{}'"),
    ("events", "DELETE FROM events"),
    ("event_lookup", "DELETE FROM event_lookup"),
    ("outbox", "UPDATE outbox SET seq = seq + 1"),
    ("outbox", "DELETE FROM outbox"),
    ("outbox_claims", "UPDATE outbox_claims SET through_seq = 0"),
    ("log_files", "UPDATE log_files SET key = key || '.moved'"),
    ("log_files", "UPDATE log_files SET last_seq = last_seq - 1"),
    ("log_files", "DELETE FROM log_files"),
    ("digests", "UPDATE digests SET signature = 'x'"),
    ("digests", "DELETE FROM digests"),
    # retention's mark: never over records younger than a day, never removed
    ("retention", "UPDATE retention SET pruned_through = (SELECT max(seq) FROM events) - 1"),
    ("retention", "DELETE FROM retention"),
    # TRUNCATE fires no row trigger (migration 0019)
    *((table, f"TRUNCATE {table}") for table in ("events", "event_lookup", "retention", "outbox",
                                                 "outbox_claims", "log_files", "digests")),
)


def test_the_store_refuses_to_rewrite_recorded_history(pg_server) -> None:
    cloudtrail = pg_server.client("cloudtrail")
    searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(pg_server.data_dir))
    cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET, EnableLogFileValidation=True)
    cloudtrail.start_logging(Name=TRAIL)
    pg_server.client("opensearchserverless").list_collections()
    cloudtrail.stop_logging(Name=TRAIL)
    wait_for(lambda: chain_closed(pg_server, TRAIL), seconds=60, what="the trail delivered")
    conn = PostgresConnection(pg_server.database_url)
    try:
        for table, statement in TAMPERING:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert rows > 0, f"nothing to tamper with: {statement}"
            conn.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(statement)
            finally:
                conn.execute("ROLLBACK")
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows
        latest = numbered_scripts("searchtrail.store.postgres")[-1][0]
        assert migrate(conn) == latest  # a second start finds the schema up to date
    finally:
        conn.close()


def test_a_store_that_cannot_be_reached_or_named_is_a_clear_error(tmp_path) -> None:
    unreachable = f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/nowhere"
    run = searchtrail_cli("serve", "--data-dir", str(tmp_path / "data"),
                          "--database-url", unreachable)
    assert run.returncode == 1, run.stdout + run.stderr
    told = " ".join(run.stderr.split())  # the console wraps long lines
    assert "cannot open the store at postgresql://someone:***@127.0.0.1" in told, told
    assert "hunter2" not in run.stdout + run.stderr and "Traceback" not in run.stderr
    wrong = searchtrail_cli("serve", "--data-dir", str(tmp_path / "data"),
                            "--database-url", "mysql://db.example/x")
    assert wrong.returncode == 2 and "postgresql://" in wrong.stderr, wrong.stderr


def _terminate(admin_url: str, conn: PostgresConnection) -> None:
    """Drop ``conn``'s session from the server's side, as a restart or a failover would."""
    import psycopg

    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


@pytest.fixture
def store_conn(postgres):  # type: ignore[no-untyped-def]
    """A PostgresConnection to a new, migrated database on the test server."""
    conn = PostgresConnection(postgres.database())
    migrate(conn)
    yield conn
    conn.close()


@pytest.fixture
def retention_store(postgres):  # type: ignore[no-untyped-def]
    """tests/unit/test_retention.py's store on a migrated PostgreSQL database, and its URL."""
    postgres_url = postgres.database()
    conn = PostgresConnection(postgres_url)
    migrate(conn)
    store = RetentionStore(conn, PostgresConnection(postgres_url, read_only=True))
    yield store, postgres_url
    store.close()


def assert_refused(postgres_url: str, *statements: str) -> None:
    """Each statement, on a connection of its own, is refused as rewriting history."""
    for statement in statements:
        with contextlib.closing(PostgresConnection(postgres_url)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                other.execute(statement)
            other.execute("ROLLBACK")


def test_expired_records_leave_with_their_lookup_and_outbox_rows_and_no_others_can(
        retention_store) -> None:
    store, postgres_url = retention_store
    store.append(OLD, OLD, RECENT, RECENT, trails=(GONE_ARN,))
    lookups = store.conn.execute("SELECT count(*) FROM event_lookup").fetchone()[0]
    assert store.prune() == 2
    assert store.seqs("events") == [3, 4] and store.seqs("outbox") == [3, 4]
    assert store.seqs("event_lookup") == [3, 4]
    assert store.conn.execute("SELECT count(*) FROM event_lookup").fetchone()[0] == lookups // 2
    assert store.mark() == 2
    assert_refused(postgres_url, "DELETE FROM events WHERE seq = 3", "DELETE FROM event_lookup",
                   "DELETE FROM outbox", "UPDATE retention SET pruned_through = 1",
                   "UPDATE retention SET pruned_through = 3")
    assert store.seqs("events") == [3, 4] and store.mark() == 2


def test_a_trail_that_has_not_delivered_holds_only_its_records_and_the_rest_leave_around(
        retention_store) -> None:
    """Migration 0018: above the mark, records a day old may go (the newest, and younger ones,
    stay); retention removes the expired ones no failing trail takes."""
    store, postgres_url = retention_store
    store.append(OLD, trails=(ARN, GONE_ARN))
    store.append(OLD, OLD, trails=(GONE_ARN,))
    store.append(OLD, trails=(ARN, GONE_ARN))
    store.append(RECENT, RECENT)
    assert store.prune((ARN,)) == 2
    assert store.seqs("events") == [1, 4, 5, 6] and store.mark() == 0
    assert store.seqs("event_lookup") == [1, 4, 5, 6] and store.seqs("outbox") == [1, 4]
    assert_refused(postgres_url, "DELETE FROM events WHERE seq = 5",
                   "DELETE FROM event_lookup WHERE seq = 5", "DELETE FROM events WHERE seq = 6")
    assert store.prune(()) == 2
    assert store.seqs("events") == [5, 6] and store.mark() == 4


def test_beside_a_busy_api_a_backlog_a_day_late_keeps_pace_with_the_records_expiring_now(
        retention_store, monkeypatch) -> None:
    busy_backlog_keeps_pace(retention_store[0], monkeypatch)


def test_expired_log_file_and_digest_rows_leave_but_each_chains_newest_and_young_ones_stay(
        retention_store) -> None:
    store, postgres_url = retention_store
    store.add_trail(ARN)  # it exists: each chain's newest and unstored rows stay
    store.add_log_file(ARN, OLD, 1)
    store.add_log_file(ARN, OLD + timedelta(hours=1), 2)
    store.add_log_file(ARN, None, 3)
    store.add_log_file(ARN, RECENT, 4)
    for end in (OLD, OLD + timedelta(hours=1), RECENT):
        store.add_digest(ARN, end)  # each names the one before as its previous

    assert store.prune_bookkeeping(validating=(ARN,)) == (2, 2, False)

    assert store.times("log_files") == ts(UNDELIVERED, RECENT)
    assert store.times("digests") == ts(RECENT)
    assert_refused(postgres_url, "DELETE FROM log_files", "DELETE FROM digests",
                   "DELETE FROM log_files WHERE delivered_at IS NULL")
    assert store.times("log_files") == ts(UNDELIVERED, RECENT)


def test_a_deleted_trails_last_rows_and_mark_leave_once_its_records_have_and_no_sooner(
        retention_store) -> None:
    store, postgres_url = retention_store
    deleted_trail_bookkeeping(store)  # ARN exists; GONE_ARN, deleted, has a record left
    assert store.prune_bookkeeping(existing=(ARN,)) == (0, 0, False)
    assert_refused(postgres_url, f"DELETE FROM log_files WHERE trail_arn = '{GONE_ARN}'",
                   f"DELETE FROM digests WHERE trail_arn = '{GONE_ARN}'",
                   f"DELETE FROM outbox_claims WHERE trail_arn = '{GONE_ARN}'")
    assert store.prune((ARN,)) == 1
    assert_refused(postgres_url, f"DELETE FROM log_files WHERE trail_arn = '{ARN}'",
                   f"DELETE FROM digests WHERE trail_arn = '{ARN}'",
                   f"DELETE FROM outbox_claims WHERE trail_arn = '{ARN}'")

    assert store.prune_bookkeeping(existing=(ARN,)) == (1, 1, False)

    for table in ("log_files", "digests"):
        assert [arn for (arn,) in store.conn.execute(f"SELECT trail_arn FROM {table}")] == [ARN]
    assert store.claims() == [ARN]


def test_a_deleted_trails_rows_never_stored_leave_once_its_records_have(retention_store) -> None:
    store, postgres_url = retention_store
    unstored_bookkeeping(store)  # ARN exists; GONE_ARN, deleted, has a record left
    assert_refused(postgres_url, f"DELETE FROM log_files WHERE trail_arn = '{GONE_ARN}'",
                   f"DELETE FROM digests WHERE trail_arn = '{GONE_ARN}'")
    assert store.prune(()) == 1
    assert_refused(postgres_url, f"DELETE FROM log_files WHERE trail_arn = '{ARN}'",
                   f"DELETE FROM digests WHERE trail_arn = '{ARN}'")

    assert store.prune_bookkeeping(existing=(ARN,)) == (2, 1, False)

    for table in ("log_files", "digests"):
        assert {arn for (arn,) in store.conn.execute(f"SELECT trail_arn FROM {table}")} == {ARN}
    assert store.claims() == [ARN]


def test_what_a_deleted_trail_left_under_a_trail_made_again_leaves_once_its_records_have(
        retention_store) -> None:
    store, postgres_url = retention_store
    recreated_trail_bookkeeping(store)  # ARN deleted, made again; the old record 1 is left
    assert_refused(postgres_url, "DELETE FROM log_files WHERE last_seq = 1",
                   f"DELETE FROM digests WHERE end_time < {MADE_AGAIN.created}")
    assert store.prune_bookkeeping(existing={ARN: MADE_AGAIN}) == (0, 1, False)
    assert store.prune({ARN: MADE_AGAIN}) == 1
    assert_refused(postgres_url, "DELETE FROM log_files WHERE last_seq = 2",
                   f"DELETE FROM digests WHERE end_time >= {MADE_AGAIN.created}",
                   "DELETE FROM outbox_claims")

    assert store.prune_bookkeeping(existing={ARN: MADE_AGAIN}) == (2, 1, False)

    assert store.times("log_files") == ts(RECENT) and store.times("digests") == ts(RECENT)
    assert store.claims() == [ARN]


def test_a_dropped_connection_fails_its_transaction_and_reopens_after_it(
        postgres, store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("lost", b"x"))
    _terminate(postgres.admin_url, conn)
    # Inside the transaction: every statement fails, never runs on a new session...
    for _ in range(2):
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("after", b"y"))
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("COMMIT")
    assert not conn.in_transaction  # ...and the failed COMMIT ended it
    # Outside one: the next statement opens a new session, and nothing half-done remains.
    assert conn.execute("SELECT count(*) FROM secrets WHERE name IN ('lost', 'after')"
                        ).fetchone()[0] == 0
    conn.execute("BEGIN IMMEDIATE")
    _terminate(postgres.admin_url, conn)
    conn.execute("ROLLBACK")  # the server already ended it: nothing to undo, no error
    assert not conn.in_transaction
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("kept", b"z"))
    conn.execute("COMMIT")
    assert conn.execute("SELECT value FROM secrets WHERE name = 'kept'").fetchone()[0] == b"z"


def _heard_within(signal: PostgresSignal, seconds: float = 10.0) -> bool:
    """Look until a notification is heard (PostgreSQL passes it on asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if signal.raised_elsewhere():
            return True
        time.sleep(0.01)  # polling the signal, bounded by the deadline
    return False


def test_a_signal_raised_by_one_process_is_heard_once_by_each_other_and_not_by_itself(
        postgres) -> None:
    url = postgres.database()
    signals = [PostgresSignal(url, "test_changes") for _ in range(3)]
    stranger = PostgresSignal(url, "other_changes")
    try:
        assert not any(signal.raised_elsewhere() for signal in [*signals, stranger])
        assert signals[0].raise_signal()
        assert _heard_within(signals[1]) and _heard_within(signals[2])
        assert not signals[1].raised_elsewhere()  # once per raise
        assert not signals[0].raised_elsewhere()  # not its own
        assert not stranger.raised_elsewhere()  # another channel
        assert signals[1].raise_signal() and signals[2].raise_signal()
        assert _heard_within(signals[0])  # two raises since its last look: heard together
        assert not signals[0].raised_elsewhere()
        # what arrives during its own NOTIFY's round trip is kept for its next look
        assert signals[0].raise_signal() and signals[1].raise_signal()
        assert _heard_within(signals[1]) and _heard_within(signals[2])
    finally:
        for signal in [*signals, stranger]:
            signal.close()
    with pytest.raises(ValueError, match="channel"):
        PostgresSignal(url, "bad; DROP TABLE events")


def test_a_lost_listening_session_counts_as_heard_and_is_reopened(postgres) -> None:
    import psycopg

    url = postgres.database()
    now = [0.0]
    listener, raiser = (PostgresSignal(url, "test_changes", clock=lambda: now[0])
                        for _ in range(2))
    try:
        assert not listener.raised_elsewhere()
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            assert admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query = 'LISTEN test_changes' AND pid <> pg_backend_pid()"
            ).fetchone()[0] == 2
        # a raise while this process was not listening could be missed: unsure means heard
        assert _heard_within(listener)
        assert not listener.working  # as the health check then says
        assert not raiser.raise_signal()  # its session is gone too: the others are not told
        now[0] += 0.5  # sessions are reopened at most once per RECONNECT_SECONDS
        assert not raiser.raise_signal()
        assert listener.raised_elsewhere()  # still without a session, so still unsure
        now[0] += 1.0
        assert raiser.raise_signal()  # reopened; the listener, still closed, misses this
        assert listener.raised_elsewhere()  # reopened, and unsure: it may have missed some
        assert listener.working and not listener.raised_elsewhere()
        assert raiser.raise_signal()
        assert _heard_within(listener)
    finally:
        listener.close()
        raiser.close()


def test_write_transactions_of_two_connections_take_turns(postgres) -> None:
    """What keeps seqs in commit order across nodes: a second writer waits for the first."""
    url = postgres.database()
    first, second = PostgresConnection(url), PostgresConnection(url)
    try:
        migrate(first)
        first.execute("BEGIN IMMEDIATE")
        second.execute("PRAGMA busy_timeout = 0")  # the writer's never-waiting begin
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            second.execute("BEGIN IMMEDIATE")
        assert not second.in_transaction
        second.execute("PRAGMA busy_timeout = 200")
        with pytest.raises(sqlite3.OperationalError):  # waits 200 ms, then gives up
            second.execute("BEGIN IMMEDIATE")
        first.execute("COMMIT")
        second.execute("BEGIN IMMEDIATE")
        second.execute("COMMIT")
    finally:
        first.close()
        second.close()


def _holding_the_write_lock(url: str) -> psycopg.Connection:
    """A session holding the write lock in an open transaction, as a node's writer does."""
    holder = psycopg.connect(url, autocommit=True)
    holder.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
    return holder


def _sessions(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity")}


def test_a_writer_ends_a_lock_holder_stuck_waiting_for_its_client(postgres, caplog) -> None:
    """A node frozen mid-pipeline leaves its session waiting for the pipeline's end, reported
    active, so the server's idle-in-transaction timeout never frees the write lock: the next
    writer ends that session once it has waited for its client STUCK_HOLDER_MS."""
    url = postgres.database()
    writer = PostgresConnection(url)  # the default busy timeout, twice STUCK_HOLDER_MS
    migrate(writer)
    stuck = _holding_the_write_lock(url)
    stuck_pid = stuck.pgconn.backend_pid
    try:
        stuck.pgconn.enter_pipeline_mode()  # a statement sent, its pipeline never synced
        stuck.pgconn.send_query_params(b"SELECT 1", None)
        stuck.pgconn.flush()
        started = time.monotonic()
        writer.execute("BEGIN IMMEDIATE")  # old code: "lock timeout" after the busy timeout
        waited = time.monotonic() - started
        writer.execute("COMMIT")
        assert stuck_pid not in _sessions(url)
        assert waited >= STUCK_HOLDER_MS / 1000 * 0.9, waited  # not ended before its time
        assert any(f"ended PostgreSQL session {stuck_pid}" in message
                   for message in caplog.messages), caplog.messages
    finally:
        writer.close()
        stuck.close()


def test_a_writer_waits_for_a_lock_holder_that_works_however_long(postgres) -> None:
    """A holder busy on the server past STUCK_HOLDER_MS is not stuck: it is waited for, and
    its transaction commits."""
    url = postgres.database()
    writer = PostgresConnection(url)
    migrate(writer)
    holder = _holding_the_write_lock(url)
    outcome: list[object] = []

    def work() -> None:
        try:
            holder.execute("SELECT pg_sleep(%s)", (STUCK_HOLDER_MS / 1000 + 1,))
            holder.execute("COMMIT")
            outcome.append("committed")
        except psycopg.Error as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("COMMIT")
        worker.join(timeout=30)
        assert outcome == ["committed"]
    finally:
        worker.join(timeout=30)
        writer.close()
        holder.close()


def test_a_write_transaction_takes_the_last_seq_with_its_begin_until_it_appends(
        postgres) -> None:
    url = postgres.database()
    first, second = PostgresConnection(url), PostgresConnection(url)

    def event(n: int) -> EventRow:
        return EventRow("111122223333", "us-east-1", 1000 + n, f'{{"n":{n}}}')

    try:
        migrate(first)
        assert last_event_seq(first) == 0  # from now on its BEGIN reads it (the table exists)
        second.execute("BEGIN IMMEDIATE")
        append_events(second, [event(1), event(2)])
        second.execute("COMMIT")
        first.execute("BEGIN IMMEDIATE")
        assert last_event_seq(first) == 2  # read after the lock, so after the other's commit
        append_events(first, [event(3)])
        assert last_event_seq(first) == 3  # read again once this transaction appended
        first.execute("ROLLBACK")
        second.execute("BEGIN")  # a read transaction answers from the table
        assert last_event_seq(second) == 2
        second.execute("COMMIT")
        first.execute("BEGIN IMMEDIATE")
        append_events(first, [event(4)])
        first.execute("COMMIT")
        assert [row[0] for row in first.execute("SELECT seq FROM events ORDER BY seq")] == [
            1, 2, 3]
    finally:
        first.close()
        second.close()


PIPELINE, SYNC = "<pipeline>", "</pipeline>"  # what one round trip sends lies between


def test_a_write_transaction_takes_the_resource_versions_with_its_begin(store_conn) -> None:
    conn = store_conn

    def versions() -> dict[str, int]:
        return dict(conn.execute(RESOURCE_VERSIONS).fetchall())

    assert versions() == {}  # from now on BEGIN reads them
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    assert versions() == {}
    assert sent == []  # answered from BEGIN's round trip
    _docs(conn).put("thing", "k", {"v": 1})
    written = versions()  # read again once written, with the held write
    assert sent[0] == PIPELINE and sent[1].startswith("INSERT INTO resources")
    assert sent[2:] == [RESOURCE_VERSIONS, SYNC]
    first = _transaction_id(conn)
    assert written == {"thing": first}  # a kind's version: the last transaction that changed it
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    assert versions() == written
    _docs(conn).put("thing", "k", {"v": 2})  # an update
    _docs(conn).put("other", "k", {"v": 1})
    conn.execute("DELETE FROM resources WHERE kind = 'thing'")
    second = _transaction_id(conn)
    conn.execute("COMMIT")
    assert second != first and versions() == {"thing": second, "other": second}


def test_a_transactions_writes_to_a_kind_write_its_version_row_once(store_conn) -> None:
    """However many rows and statements: a day's expired idempotency records go in one
    statement, and a version row updated once per row made that O(N^2) in PostgreSQL."""
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    docs = _docs(conn)
    for i in range(40):
        docs.put("thing", f"k{i:02d}", {"v": i})
    assert docs.delete_below("thing", "k30", limit=10) == 10  # a chunk: the first ten keys
    assert docs.get("thing", "k09") is None and docs.get("thing", "k10") is not None
    assert docs.delete_below("thing", "k30") == 20
    assert docs.delete("thing", "k35")
    docs.put("thing", "k39", {"v": "again"})
    written = conn.execute("SELECT n_tup_ins + n_tup_upd FROM pg_stat_xact_user_tables "
                           "WHERE relname = 'resource_versions'").fetchone()[0]
    this_transaction = _transaction_id(conn)
    conn.execute("COMMIT")
    assert written == 1
    assert dict(conn.execute(RESOURCE_VERSIONS).fetchall()) == {"thing": this_transaction}


def test_an_upgrade_moves_every_kinds_version_past_its_old_counter(postgres) -> None:
    """Migration 0010 turns 0009's counters into transaction ids: a counter could be larger
    than the ids to come (one step per row), so every version starts at the upgrade's own."""
    conn = PostgresConnection(postgres.database())
    try:
        _migrate_to(conn, 9)
        conn.execute("BEGIN IMMEDIATE")
        _docs(conn).put("thing", "k", {"v": 1})
        conn.execute("UPDATE resource_versions SET version = 10000000")  # many rows ago
        conn.execute("COMMIT")
        migrate(conn)
        [(kind, upgraded)] = conn.execute(RESOURCE_VERSIONS).fetchall()
        assert kind == "thing" and upgraded < 10000000
        conn.execute("BEGIN IMMEDIATE")
        _docs(conn).delete("thing", "k")
        changed_by = _transaction_id(conn)
        conn.execute("COMMIT")
        assert upgraded < changed_by
        assert conn.execute(RESOURCE_VERSIONS).fetchall() == [("thing", changed_by)]
    finally:
        conn.close()


def test_lookup_keys_are_the_same_in_sql_and_the_upgrade_keys_older_rows(postgres) -> None:
    """Migration 0016's lookup_key() gives store/lookupkeys.py's keys, and it turns a store's
    text-keyed lookup rows into keyed ones that event history finds."""
    conn = PostgresConnection(postgres.database())
    try:
        _migrate_to(conn, 15)
        fill_text_keyed_store(conn)
        migrate(conn)
        for values in TRICKY_VALUES:
            assert conn.execute("SELECT lookup_key(?, ?, ?, ?)", values).fetchone()[0] == \
                lookup_key(*values), values
        assert_keyed_and_found(conn)
    finally:
        conn.close()


def _migrate_to(conn: PostgresConnection, version: int) -> None:
    """Apply the migrations up to ``version`` only, as an older server left the store."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in numbered_scripts("searchtrail.store.postgres"):
        if number <= version:
            conn.executescript(script)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    conn.execute("COMMIT")


def _transaction_id(conn: PostgresConnection) -> int:
    return conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]


def _sent_texts(conn: PostgresConnection) -> list[str]:
    """Every text the connection sends to PostgreSQL from now on (psycopg's execute, spied),
    with PIPELINE and SYNC around the statements sent together in pipeline mode."""
    sent: list[str] = []
    session = conn._conn
    original, original_pipeline = session.execute, session.pipeline

    def spy(query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(query))
        return original(query, *args, **kwargs)

    @contextlib.contextmanager
    def pipeline_spy():  # type: ignore[no-untyped-def]
        sent.append(PIPELINE)
        with original_pipeline() as pipeline:
            yield pipeline
        sent.append(SYNC)

    session.execute = spy  # type: ignore[method-assign]
    session.pipeline = pipeline_spy  # type: ignore[method-assign]
    return sent


def _learn_column_types(conn: PostgresConnection) -> None:
    """Rows appended and rolled back: the connection learns the tables' column types, which
    it reads once, so that the sends a test counts afterwards are the rows' alone."""
    conn.execute("BEGIN IMMEDIATE")
    append_events(conn, [_event(1, lookups=2), _event(2)])  # rows of two or more: spelled
    conn.execute("ROLLBACK")


def _event(seq: int, lookups: int = 0) -> EventRow:
    return EventRow("111122223333", "us-east-1", 1000 + seq, f'{{"n":{seq}}}',
                    lookup_values=tuple(("EventName", f"E{n}") for n in range(lookups)), seq=seq)


def _docs(conn: PostgresConnection, changes: ResourceChanges | None = None) -> SqliteResources:
    """The repository of one account and Region on ``conn`` (with ``changes``: the read cache)."""
    return SqliteResources(conn, "111122223333", "us-east-1", changes)


def _stored_seqs(conn: PostgresConnection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]


def test_a_savepoint_and_its_release_go_with_the_next_statement_in_one_round_trip(store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    insert = "INSERT INTO secrets (name, value) VALUES (?, ?)"
    conn.execute("SAVEPOINT operation")
    conn.execute(insert, ("kept", b"1"))  # with its SAVEPOINT, in a pipeline
    conn.execute("RELEASE operation")
    conn.execute("SAVEPOINT operation")  # the next call's
    conn.execute(insert, ("undone", b"2"))  # with the RELEASE and the SAVEPOINT
    conn.execute("ROLLBACK TO operation")  # not held: sent at once
    conn.execute("RELEASE operation")
    conn.execute(insert, ("also kept", b"3"))
    conn.execute("SAVEPOINT operation")
    conn.execute("RELEASE operation")
    conn.execute("COMMIT")  # parameterless like them: one simple query
    statement = insert.replace("?", "%s")
    assert sent == [PIPELINE, "SAVEPOINT operation", statement, SYNC,
                    PIPELINE, "RELEASE operation", "SAVEPOINT operation", statement, SYNC,
                    "ROLLBACK TO operation",
                    PIPELINE, "RELEASE operation", statement, SYNC,
                    "SAVEPOINT operation; RELEASE operation; COMMIT"]
    assert not conn.in_transaction
    assert sorted(row[0] for row in conn.execute("SELECT name FROM secrets WHERE name IN "
                                                 "('kept', 'undone', 'also kept')")) == [
        "also kept", "kept"]


def test_a_batchs_rows_go_with_its_commit_in_one_round_trip(store_conn) -> None:
    conn = store_conn
    batch = [_event(1, lookups=2), _event(2, lookups=1)]
    _learn_column_types(conn)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SAVEPOINT operation")  # a call's, before its batch's rows
    sent = _sent_texts(conn)
    conn.execute("RELEASE operation")
    changes = conn.total_changes
    append_events(conn, batch)
    assert sent == []  # held: nobody reads what they answer
    conn.execute("COMMIT")
    assert sent[0] == PIPELINE and sent[-2:] == ["COMMIT", SYNC]
    assert sent[1:3] == ["SAVEPOINT operation", "RELEASE operation"]
    assert [text.split(" (")[0] for text in sent[3:-2]] == [
        "INSERT INTO events", "INSERT INTO event_lookup"]
    assert not conn.in_transaction
    assert conn.total_changes == changes  # appended rows change no resource: not counted
    assert _stored_seqs(conn) == [1, 2]
    assert conn.execute("SELECT count(*) FROM event_lookup").fetchone()[0] == 3


def test_held_rows_are_sent_before_any_statement_that_could_see_them(store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    changes = conn.total_changes
    append_events(conn, [_event(1)])
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert sent[0] == PIPELINE and sent[-1] == SYNC and len(sent) == 4  # one round trip
    assert conn.total_changes == changes  # the read wrote nothing of its own
    del sent[:]
    append_events(conn, [_event(2)])
    conn.execute("SAVEPOINT operation")
    append_events(conn, [_event(3)])
    conn.execute("ROLLBACK TO operation")  # undoes the row held after its SAVEPOINT
    conn.execute("RELEASE operation")
    conn.execute("COMMIT")
    assert sent.count(PIPELINE) == 1  # rows and SAVEPOINT in order with the ROLLBACK TO
    assert _stored_seqs(conn) == [1, 2]


def test_a_rollback_drops_held_rows_unsent(store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    append_events(conn, [_event(1, lookups=1)])
    conn.execute("ROLLBACK")
    assert sent == ["ROLLBACK"]
    assert _stored_seqs(conn) == []


@pytest.mark.parametrize("sent", ["held", "sent ahead", "failure answered before COMMIT"])
def test_rows_that_cannot_be_stored_fail_the_commit_and_store_nothing(store_conn, sent) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    append_events(conn, [_event(1)])
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("doomed", b"x"))
    append_events(conn, [_event(2), _event(1)])  # seq 1 is taken
    if sent != "held":
        conn.send_ahead()  # the failure is not known yet
    if sent == "sent ahead":
        append_events(conn, [_event(3)])
    elif sent == "failure answered before COMMIT":  # COMMIT's own send then reads it
        readable, _, _ = select.select([conn._conn.fileno()], [], [], 10)
        assert readable, "PostgreSQL did not answer the rows sent ahead within 10 s"
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("COMMIT")
    assert not conn.in_transaction
    assert _stored_seqs(conn) == [1]
    assert conn.execute("SELECT count(*) FROM secrets WHERE name = 'doomed'").fetchone()[0] == 0
    conn.execute("BEGIN IMMEDIATE")  # the next transaction is unharmed
    append_events(conn, [_event(2)])
    conn.execute("COMMIT")
    assert _stored_seqs(conn) == [1, 2]


def test_a_documents_upsert_goes_with_the_next_statement_in_one_round_trip(store_conn) -> None:
    conn = store_conn
    docs = _docs(conn)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SAVEPOINT operation")
    sent = _sent_texts(conn)
    changes = conn.total_changes
    docs.put("aoss.idempotency", "token-1", {"answer": 1})  # an idempotency record: unread
    conn.execute("RELEASE operation")
    assert sent == []
    conn.execute("SAVEPOINT operation")  # the next call's
    assert sent == []
    assert docs.get("aoss.idempotency", "token-2") is None  # its first read: one round trip
    assert sent[0] == PIPELINE and sent[-1] == SYNC
    assert [text.split(" (")[0] for text in sent[1:-1]] == [
        "SAVEPOINT operation", "INSERT INTO resources", "RELEASE operation",
        "SAVEPOINT operation", "SELECT doc FROM resources WHERE account=%s AND region=%s AND kind=%s AND key=%s"]
    assert conn.total_changes == changes + 1
    del sent[:]
    docs.put("aoss.idempotency", "token-1", {"answer": 2})
    assert docs.get("aoss.idempotency", "token-1") == {"answer": 2}  # sent before the read
    assert sent[0] == PIPELINE and len(sent) == 4
    conn.execute("RELEASE operation")
    conn.execute("COMMIT")
    assert _docs(conn).get("aoss.idempotency", "token-1") == {"answer": 2}


def test_an_insert_and_a_delete_are_answered_at_once(store_conn) -> None:
    """Their callers read the answer: an insert's conflict, a delete's row count."""
    conn = store_conn
    docs = _docs(conn)
    conn.execute("BEGIN IMMEDIATE")
    docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    with pytest.raises(Conflict):
        docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    sent = _sent_texts(conn)
    assert docs.delete("aoss.security-policy", "network/a") is True
    assert docs.delete("aoss.security-policy", "network/a") is False
    assert [text.split(" ")[0] for text in sent] == ["DELETE", "DELETE"]
    conn.execute("COMMIT")


def test_retentions_lookup_deletions_go_with_the_next_statement_in_one_round_trip(
        store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    for value in ("ListCollections", "CreateCollection", "DeleteCollection"):
        key = lookup_key("111122223333", "us-east-1", "EventName", value)
        conn.execute(retention._DELETE_LOOKUP, (key, 0, 1, 0, 0))
        conn.execute(retention._DELETE_LOOKUP_AT, (key, 0, 0, 0))  # around held records
    assert sent == []
    conn.execute("DELETE FROM events WHERE seq > ? AND seq <= ?", (0, 0))
    assert sent[0] == PIPELINE and sent[-1] == SYNC
    assert [text.split(" ")[0] for text in sent[1:-1]] == ["DELETE"] * 7
    conn.execute("ROLLBACK")


def test_an_insert_of_a_key_just_read_as_absent_is_held(store_conn) -> None:
    """Read as absent in this transaction, with nothing written since, the key cannot
    conflict: the insert goes as an upsert, with the next statement."""
    conn = store_conn
    docs = _docs(conn, ResourceChanges())
    conn.execute("BEGIN IMMEDIATE")
    assert docs.get("aoss.security-policy", "network/a") is None
    sent = _sent_texts(conn)
    docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    assert sent == []
    docs.insert("aoss.security-policy", "network/b", {"name": "b"})  # never read: at once
    assert sent[0] == PIPELINE and len(sent) == 4
    assert sent[1].endswith("DO UPDATE SET doc = excluded.doc")
    assert not sent[2].endswith("DO UPDATE SET doc = excluded.doc")
    with pytest.raises(Conflict):  # read before the writes above: no longer trusted
        docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    conn.execute("ROLLBACK")


def test_a_creates_name_check_and_quota_count_are_one_round_trip_and_its_insert_is_held(
        store_conn) -> None:
    conn = store_conn
    docs = _docs(conn, ResourceChanges())
    conn.execute("BEGIN IMMEDIATE")
    docs.insert("aoss.security-policy", "network/a", {"name": "a"})
    sent = _sent_texts(conn)
    assert docs.get_and_count("aoss.security-policy", "network/b", "network/") == (None, 1)
    assert docs.get_and_count("aoss.security-policy", "network/a", "network/") == (
        {"name": "a"}, 1)
    assert len(sent) == 2 and all(text.startswith("SELECT (SELECT doc") for text in sent)
    docs.insert("aoss.security-policy", "network/b", {"name": "b"})  # read as absent: held
    assert len(sent) == 2
    assert docs.count("aoss.security-policy", "network/") == 2  # sent with the held upsert
    conn.execute("ROLLBACK")


def test_a_held_upsert_moves_the_connections_changes_at_once(store_conn) -> None:
    """A write made without the change counters (console sessions, signing keys) is seen by
    the transaction's read cache through total_changes, held or not."""
    conn = store_conn
    cached = _docs(conn, ResourceChanges())
    plain = _docs(conn)
    conn.execute("BEGIN IMMEDIATE")
    assert cached.get("console.session", "s1") is None
    changes = conn.total_changes
    plain.put("console.session", "s1", {"user": "u"})  # held
    assert conn.total_changes == changes + 1
    assert cached.get("console.session", "s1") == {"user": "u"}
    with pytest.raises(Conflict):  # not taken for absent: a plain insert, which conflicts
        cached.insert("console.session", "s1", {"user": "other"})
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    plain.put("console.session", "s1", {"user": "u"})
    conn.execute("COMMIT")
    assert conn.total_changes == changes + 2  # counted once, not again when sent


def test_a_held_upsert_that_cannot_be_stored_fails_the_commit_and_stores_nothing(
        store_conn) -> None:
    conn = store_conn
    docs = _docs(conn)
    conn.execute("BEGIN IMMEDIATE")
    docs.put("aoss.idempotency", "kept", {"n": 1})
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    docs.put("aoss.idempotency", "kept", {"n": 2})
    # a key past the primary key index's row limit (random text: no compression saves it)
    docs.put("aoss.idempotency", secrets.token_hex(8000), {"n": 3})
    append_events(conn, [_event(1)])
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("COMMIT")
    assert not conn.in_transaction
    assert docs.get("aoss.idempotency", "kept") == {"n": 1}
    assert _stored_seqs(conn) == []
    assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 1


def test_at_most_a_bounded_number_of_rows_statements_are_held_then_they_are_sent_ahead(
        store_conn) -> None:
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    for seq in range(1, MAX_HELD_WRITES):
        append_events(conn, [_event(seq)])
    assert sent == []
    append_events(conn, [_event(MAX_HELD_WRITES)])  # sent, their answers not waited for
    assert sent[0] == PIPELINE and len(sent) == MAX_HELD_WRITES + 1 and SYNC not in sent
    append_events(conn, [_event(MAX_HELD_WRITES + 1)])  # held again
    assert len(sent) == MAX_HELD_WRITES + 1
    conn.execute("COMMIT")  # it and the held row join them: their answers in its round trip
    assert sent[-2:] == ["COMMIT", SYNC] and _round_trips(sent) == 1
    assert len(sent) == MAX_HELD_WRITES + 4
    assert _stored_seqs(conn) == list(range(1, MAX_HELD_WRITES + 2))


def test_a_read_after_rows_sent_ahead_sees_them_and_takes_their_answers_in_its_round_trip(
        store_conn) -> None:
    conn = store_conn
    _learn_column_types(conn)
    conn.execute("BEGIN IMMEDIATE")
    sent = _sent_texts(conn)
    append_events(conn, [_event(1, lookups=2)])
    conn.send_ahead()
    assert sent[0] == PIPELINE and len(sent) == 3 and SYNC not in sent  # events, lookups
    conn.send_ahead()  # nothing held: nothing sent
    assert len(sent) == 3
    assert conn.execute("SELECT count(*) FROM event_lookup").fetchone()[0] == 2
    assert sent[-2:] == ["SELECT count(*) FROM event_lookup", SYNC] and _round_trips(sent) == 1
    append_events(conn, [_event(2)])
    conn.send_ahead()
    conn.execute("ROLLBACK")  # undoes every row of the transaction, those sent ahead too
    assert not conn.in_transaction and _stored_seqs(conn) == []
    conn.execute("BEGIN IMMEDIATE")  # the next transaction is unharmed
    append_events(conn, [_event(3)])
    conn.send_ahead()
    conn.execute("COMMIT")
    assert _stored_seqs(conn) == [3]


def test_rows_that_cannot_be_sent_ahead_end_the_transaction_and_store_nothing(
        store_conn) -> None:
    """Some of the held statements may not have gone: none of the transaction may stay."""
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("doomed", b"x"))
    append_events(conn, [_event(1)])
    append_events(conn, [EventRow("111122223333", "us-east-1", 1002, '{"n":"\x00"}', seq=2)])
    with pytest.raises(sqlite3.Error):  # PostgreSQL's text has no NUL: psycopg refuses it
        conn.send_ahead()
    assert not conn.in_transaction
    assert _stored_seqs(conn) == []
    assert conn.execute("SELECT count(*) FROM secrets WHERE name = 'doomed'").fetchone()[0] == 0
    conn.execute("BEGIN IMMEDIATE")
    append_events(conn, [_event(1)])
    conn.execute("COMMIT")
    assert _stored_seqs(conn) == [1]


def test_a_batchs_rows_go_to_postgresql_as_its_units_make_them(store_conn) -> None:
    """Every RECORDS_SENT_AHEAD records, the batch's rows are sent without waiting for their
    answers, so that PostgreSQL inserts them while the next units run; COMMIT reads them."""
    conn = store_conn
    writer = GroupCommitWriter(conn)
    units = 2 * RECORDS_SENT_AHEAD + 3
    sent = _sent_texts(conn)
    seen_by_the_last: list[str] = []

    def unit(n: int) -> Callable:
        def work(c: PostgresConnection) -> tuple[int, list[EventRow]]:
            if n == units - 1:
                seen_by_the_last.extend(sent)
            return n, [EventRow("111122223333", "us-east-1", 1000 + n, f'{{"n":{n}}}',
                                seq=writer.next_seq())]
        return work

    async def together() -> list[int]:
        return await asyncio.gather(*(writer.run(unit(n)) for n in range(units)))

    writer.start()
    try:
        results = asyncio.run(together())
    finally:
        writer.stop()
    assert results == list(range(units))
    assert writer.stats.commits == 1
    # two lots of rows sent before the batch ended, their answers not read yet
    rows_sent = [index for index, text in enumerate(seen_by_the_last)
                 if text.startswith("INSERT INTO events")]
    assert len(rows_sent) == 2 and SYNC not in seen_by_the_last[rows_sent[0]:]
    assert sent[-2:] == ["COMMIT", SYNC]
    assert _stored_seqs(conn) == list(range(1, units + 1))


def test_a_commit_that_postgresql_turns_into_a_rollback_fails(store_conn) -> None:
    """A statement failed inside the transaction and nothing rolled back to a savepoint:
    PostgreSQL answers COMMIT with ROLLBACK and no error. That must not count as stored."""
    conn = store_conn
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("doomed", b"x"))
    with pytest.raises(sqlite3.Error):
        conn.execute("SELECT no_such_column FROM secrets")
    with pytest.raises(sqlite3.OperationalError, match="rolled the transaction back"):
        conn.execute("COMMIT")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM secrets WHERE name = 'doomed'"
                        ).fetchone()[0] == 0
    conn.execute("BEGIN IMMEDIATE")  # the next transaction is unharmed
    conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", ("kept", b"y"))
    conn.execute("SAVEPOINT operation")
    conn.execute("RELEASE operation")
    conn.execute("COMMIT")
    assert conn.execute("SELECT count(*) FROM secrets WHERE name = 'kept'").fetchone()[0] == 1


def _refusal(call) -> dict | None:  # type: ignore[no-untyped-def]
    """None when ``call()`` succeeds, else the error response it got."""
    try:
        call()
    except ClientError as error:
        return error.response
    return None


def _health(server: ServerProcess) -> tuple[int, str]:
    """/_searchtrail/health's status code and status."""
    try:
        with urllib.request.urlopen(server.endpoint + "/_searchtrail/health", timeout=10) as got:
            return got.status, json.loads(got.read())["status"]
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())["status"]


def test_with_postgresql_down_both_apis_fail_closed_with_a_503_and_recover(tmp_path) -> None:
    """The AWS API and the read-only S3 API look callers' keys up in the store: with the
    store gone they answer 503 (never 500), and serve again once it is back, unrestarted."""
    own = start_postgres()  # its own server: this test crashes it
    server = ServerProcess(tmp_path / "data").use_postgres(own.database())
    try:
        server.start()
        made = searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(server.data_dir))
        assert made.returncode == 0, made.stderr
        key_id, secret = server.credentials()
        s3 = boto3_client("s3", region_name="us-east-1", endpoint_url=server.endpoint + "/_s3",
                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                          config=Config(retries={"total_max_attempts": 1}))
        aoss = server.client("opensearchserverless")
        listing = lambda: s3.list_objects_v2(Bucket=BUCKET)  # noqa: E731
        assert _refusal(listing) is None and _refusal(aoss.list_collections) is None
        assert _health(server) == (200, "ok")
        own.crash()
        try:  # each API's cached key expires within a second or so: then it asks the store
            s3_error = wait_for(lambda: _refusal(listing), seconds=30,
                                what="the S3 API refusing", step=0.1)
            aoss_error = wait_for(lambda: _refusal(aoss.list_collections), seconds=30,
                                  what="the AWS API refusing", step=0.1)
            # a load balancer sees it too, and so does whatever reads /metrics
            assert _health(server) == (503, "unavailable")
            assert server.metric("searchtrail_failed_closed_requests_total") >= 1
        finally:
            own.restart()
        # ...and sees the store back before any call has succeeded again
        wait_for(lambda: _health(server) == (200, "ok"), seconds=30, what="health ok again",
                 step=0.1)
        assert (s3_error["ResponseMetadata"]["HTTPStatusCode"], s3_error["Error"]["Code"]) == (
            503, "ServiceUnavailable"), s3_error
        assert (aoss_error["ResponseMetadata"]["HTTPStatusCode"],
                aoss_error["Error"]["Code"]) == (503, "ServiceUnavailableException"), aoss_error
        wait_for(lambda: _refusal(listing) is None, seconds=30, what="the S3 API serving again",
                 step=0.1)
        wait_for(lambda: _refusal(aoss.list_collections) is None, seconds=30,
                 what="the AWS API serving again", step=0.1)
    finally:
        server.stop()
        own.stop()


def test_a_first_start_on_postgresql_leaves_a_sqlite_installation_alone(tmp_path, postgres,
                                                                      monkeypatch) -> None:
    """It used to start a new installation in the data dir and replace the SQLite one's
    credentials file with its own root key, without a word."""
    import subprocess
    import sys

    monkeypatch.delenv("SEARCHTRAIL_TEST_STORE", raising=False)  # SQLite, in any sweep
    sqlite = ServerProcess(tmp_path / "data").start()
    sqlite.stop()
    before = (sqlite.data_dir / "credentials").read_bytes()
    ran = subprocess.run([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                          "--data-dir", str(sqlite.data_dir), "--database-url",
                          postgres.database()], capture_output=True, text=True, timeout=60)
    said = " ".join(ran.stderr.split())
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "holds a SQLite store (searchtrail.sqlite3) and its credentials" in said, said
    assert "Give this node a data dir of its own" in said and "Traceback" not in said
    assert (sqlite.data_dir / "credentials").read_bytes() == before


def test_a_role_that_cannot_create_the_schema_is_told_on_one_line(tmp_path, postgres) -> None:
    """It printed the server's message, then the statement it quoted and a caret."""
    import subprocess
    import sys

    url = postgres.database()
    role = "limited_" + secrets.token_hex(3)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    limited = url.replace("postgresql://searchtrail@", f"postgresql://{role}@", 1)
    assert limited != url
    ran = subprocess.run([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                          "--data-dir", str(tmp_path / "data"), "--database-url", limited],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    said = " ".join(ran.stderr.split())
    assert "permission denied for schema public (the role in the database URL needs that " \
           "privilege; for the first start's schema, CREATE on schema public" in said, said
    assert "LINE 1" not in ran.stderr and "^" not in ran.stderr and "Traceback" not in said


def test_every_node_delivers_to_the_store_the_first_one_recorded(tmp_path, postgres) -> None:
    """A node started without the others' --s3-endpoint-url used to take the delivery lease
    and put the trails' files in its own data dir, out of the bucket every validator reads."""
    import subprocess
    import sys

    url = postgres.database()
    first = ServerProcess(tmp_path / "first").use_postgres(url).start()  # the local folder
    elsewhere = f"http://127.0.0.1:{free_port()}"
    try:
        def serve(data_dir, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
            return subprocess.run([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                                   "--data-dir", str(data_dir), "--database-url", url, *args],
                                  capture_output=True, text=True, timeout=60)

        refused = serve(tmp_path / "second", "--s3-endpoint-url", elsewhere)
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (f"this store's trails deliver to the local bucket folder, and this node would "
                f"deliver to {elsewhere}") in said, said
        assert "Start it with no --s3-endpoint-url" in said
        first.stop()
        moved = ServerProcess(tmp_path / "second", args=[
            "--s3-endpoint-url", elsewhere, "--change-delivery-destination"]).use_postgres(url)
        moved.start()
        moved.stop()
        again = serve(tmp_path / "first")  # the old destination is now the odd one out
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"Start it with --s3-endpoint-url {elsewhere}," in " ".join(again.stderr.split())
    finally:
        first.stop()


def test_a_postgresql_that_hangs_costs_callers_an_error_not_the_node(tmp_path) -> None:
    """A server that stops answering without refusing (stopped, a dropped network path) used
    to hold the node's event loop for as long as it hung: no call, no health check, no
    SIGTERM was served. Now a round trip is cut after ROUND_TRIP_LIMIT_S: the call in it gets
    a 503, later ones get theirs at once while the server is reached in the background, and
    the node serves again once it answers."""
    own = start_postgres()  # its own server: this test stops it
    server = ServerProcess(tmp_path / "data").use_postgres(own.database())
    try:
        server.start()
        aoss = server.client("opensearchserverless")
        assert _refusal(aoss.list_collections) is None
        own.freeze()
        try:
            first = wait_for(lambda: _refusal(aoss.list_collections), seconds=60,
                             what="a call refused while PostgreSQL hangs", step=0.1)
            assert (first["ResponseMetadata"]["HTTPStatusCode"], first["Error"]["Code"]) == (
                503, "ServiceUnavailableException"), first
            for _ in range(3):  # answered, each within _health's and boto3's time-outs
                assert _health(server) == (503, "unavailable")
                later = _refusal(aoss.list_collections)
                assert later is not None and later["Error"]["Code"] == \
                    "ServiceUnavailableException", later
        finally:
            own.thaw()
        wait_for(lambda: _refusal(aoss.list_collections) is None, seconds=30,
                 what="calls served again", step=0.1)
        assert _health(server) == (200, "ok")
        own.freeze()  # and a node asked to stop while it hangs stops
        try:
            assert _refusal(aoss.list_collections) is not None
            server.process.terminate()
            server.process.wait(timeout=60)
        finally:
            own.thaw()
    finally:
        server.stop()
        own.stop()


def test_a_reader_opened_while_postgresql_is_unreachable_fails_as_the_store_being_down(
        ) -> None:
    """Readers are opened on first use, on any thread (a key lookup, a console page): one
    opened while the server is unreachable must fail like any store outage (StoreUnavailable,
    a 503 upstream), not with the driver's own error from its constructor."""
    unreachable = f"postgresql://someone@127.0.0.1:{free_port()}/nowhere"
    reader = PostgresConnection(unreachable, read_only=True)  # opens nothing yet
    try:
        with pytest.raises(StoreUnavailable, match="127.0.0.1"):
            SqliteResources(reader, "", "").get("access-key", "AKIAEXAMPLE")
        assert not reader.in_transaction
    finally:
        reader.close()


POLICY_KIND = "aoss.policy"


def _round_trips(sent: list[str]) -> int:
    """The round trips of ``_sent_texts``: a pipeline is one, as is each statement outside."""
    trips, inside = 0, False
    for text in sent:
        trips += not inside and text != SYNC
        inside = (inside or text == PIPELINE) and text != SYNC
    return trips


def _stored_then_begun(conn: PostgresConnection, kind: str, key: str
                       ) -> tuple[SqliteResources, ResourceChanges, list[str]]:
    """A repository with its read cache, ``key`` of ``kind`` stored as {"n": 1}, and a write
    transaction begun whose texts sent from then on are spied (``_sent_texts``)."""
    changes = ResourceChanges()
    docs = _docs(conn, changes)
    conn.execute("BEGIN IMMEDIATE")
    docs.put(kind, key, {"n": 1})
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    return docs, changes, _sent_texts(conn)


def test_a_batchs_token_records_are_read_ahead_in_one_round_trip_until_each_is_written(
        store_conn) -> None:
    conn = store_conn
    kind = "aoss.idempotency"
    docs, changes, sent = _stored_then_begun(conn, kind, "k1")
    scope = (docs.account, docs.region, kind)
    changes.read_ahead(conn, [(*scope, key) for key in ("k1", "k2", "k3")])
    assert len(sent) == 1 and sent[0].count("UNION ALL") == 3  # three probes padded to four
    assert docs.get_many(kind, ["k1", "k2"]) == {"k1": {"n": 1}}  # from the read ahead
    docs.put(kind, "k2", {"n": 2})  # held, and k2's read ahead forgotten
    assert docs.get_many(kind, ["k3", "k1"]) == {"k1": {"n": 1}}
    assert _round_trips(sent) == 1
    assert docs.get_many(kind, ["k2"]) == {"k2": {"n": 2}}  # read, with the held upsert
    assert _round_trips(sent) == 2
    assert docs.get_many(kind, ["k1", "k4"]) == {"k1": {"n": 1}}  # k4 was not read ahead
    assert _round_trips(sent) == 3
    docs.delete_below(kind, "k9")  # a range: every read ahead of the kind forgotten
    assert docs.get_many(kind, ["k3"]) == {}
    assert _round_trips(sent) == 5  # the delete waits for its count, then the read
    conn.execute("ROLLBACK")


def _policies_read_ahead(conn: PostgresConnection, keys: list[str], *, counted: bool = False
                         ) -> tuple[SqliteResources, ResourceChanges, list[str]]:
    """The policy network/a stored, a write transaction begun and the policies ``keys`` read
    ahead in it (``counted``: and the count of network policies), the texts sent spied."""
    docs, changes, sent = _stored_then_begun(conn, POLICY_KIND, "network/a")
    wanted: list = [(docs.account, docs.region, POLICY_KIND, key) for key in keys]
    if counted:
        wanted.append(KeysCounted(POLICY_KIND, "network/", docs.account, docs.region))
    changes.read_ahead(conn, wanted)
    return docs, changes, sent


def test_a_document_read_ahead_is_deleted_with_the_next_statement_and_its_answer_known(
        store_conn) -> None:
    conn, kind = store_conn, POLICY_KIND
    docs, changes, sent = _policies_read_ahead(conn, ["network/a", "network/b"])
    assert _round_trips(sent) == 1
    assert docs.delete(kind, "network/b") is False  # absent: nothing sent
    assert docs.delete(kind, "network/a") is True  # held: it removes exactly that row
    assert _round_trips(sent) == 1
    assert docs.get(kind, "network/a") is None  # read with the held delete
    assert _round_trips(sent) == 2 and sum("DELETE" in text for text in sent) == 1
    assert docs.delete(kind, "network/a") is False  # written since: asked, and gone
    assert _round_trips(sent) == 3
    conn.execute("COMMIT")
    assert docs.list(kind) == []


def test_a_create_finds_its_name_and_count_read_ahead_and_the_count_follows_its_writes(
        store_conn) -> None:
    conn, kind = store_conn, POLICY_KIND
    docs, changes, sent = _policies_read_ahead(conn, ["network/b", "network/c", "network/a"],
                                               counted=True)
    assert _round_trips(sent) == 1 and len(sent) == 1  # the documents and the count
    assert docs.get_and_count(kind, "network/b", "network/") == (None, 1)
    docs.insert(kind, "network/b", {"n": 2})  # held: the name was read ahead as free
    assert docs.get_and_count(kind, "network/c", "network/") == (None, 2)
    assert docs.delete(kind, "network/a") is True  # held, and one fewer
    assert docs.get_and_count(kind, "network/c", "network/") == (None, 1)
    assert _round_trips(sent) == 1  # nothing asked since the read ahead
    docs.put(kind, "network/c", {"n": 3})  # adds a document or replaces one: not known
    assert docs.get_and_count(kind, "network/d", "network/") == (None, 2)  # asked
    assert _round_trips(sent) == 2
    conn.execute("ROLLBACK")


def test_a_count_read_ahead_is_forgotten_when_part_of_the_transaction_rolls_back(
        store_conn) -> None:
    conn, kind = store_conn, POLICY_KIND
    docs, changes, sent = _policies_read_ahead(conn, ["network/b", "network/c"], counted=True)
    conn.execute("SAVEPOINT operation")
    docs.insert(kind, "network/b", {"n": 2})
    conn.execute("ROLLBACK TO operation")
    changes.rolled_back()  # as the gateway does for a failed operation
    assert docs.get_and_count(kind, "network/c", "network/") == (None, 1)  # asked, not 2
    assert "count(*)" in sent[-1]
    conn.execute("ROLLBACK")


def test_creates_of_one_batch_stop_at_the_quota_however_many_arrive_together(
        pg_server) -> None:
    """Creates that arrive together run in one batch, whose writer reads the quota's count
    ahead once: each create still counts the policies the batch created before it."""
    quota, stored, arriving = 50, 44, 16  # 50 encryption policies per account and Region
    clients = [pg_server.client("opensearchserverless") for _ in range(arriving)]

    def policy(name: str) -> str:
        return json.dumps({"Rules": [{"ResourceType": "collection",
                                      "Resource": [f"collection/{name}"]}],
                           "AWSOwnedKey": True})

    for index in range(stored):
        clients[0].create_security_policy(name=f"kept-{index}", type="encryption",
                                           policy=policy(f"kept-{index}"))
    barrier = threading.Barrier(arriving)

    def create(index: int) -> str:
        barrier.wait(timeout=30)
        try:
            clients[index].create_security_policy(name=f"late-{index}", type="encryption",
                                                  policy=policy(f"late-{index}"))
            return "created"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(arriving) as pool:
        answers = list(pool.map(create, range(arriving)))
    assert answers.count("created") == quota - stored, answers
    assert answers.count("ServiceQuotaExceededException") == arriving - (quota - stored)
    listed = clients[0].list_security_policies(type="encryption", maxResults=100)
    assert len(listed["securityPolicySummaries"]) == quota
    read_ahead = pg_server.metric("searchtrail_writer_units_read_ahead")
    assert read_ahead is not None and read_ahead > 0, read_ahead  # batches read ahead


def test_deletes_of_one_batch_remove_each_policy_once_and_find_it_gone_after(pg_server) -> None:
    """Deletes that arrive together run in one batch, whose policies (and tokens) the writer
    reads ahead in one statement: the first delete of each policy removes it, a second one in
    the same batch finds it gone."""
    pairs = 12
    clients = [pg_server.client("opensearchserverless") for _ in range(2 * pairs)]
    policy = json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": ["collection/d*"]}],
                          "AllowFromPublic": True}])
    for index in range(pairs):
        clients[0].create_security_policy(name=f"gone-{index}", type="network", policy=policy)
    barrier = threading.Barrier(len(clients))

    def delete(index: int) -> str:
        barrier.wait(timeout=30)
        try:
            clients[index].delete_security_policy(name=f"gone-{index // 2}", type="network")
            return "deleted"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(delete, range(len(clients))))
    for index in range(0, len(answers), 2):
        assert sorted(answers[index:index + 2]) == ["ResourceNotFoundException", "deleted"]
    assert clients[0].list_security_policies(type="network")["securityPolicySummaries"] == []
    read_ahead = pg_server.metric("searchtrail_writer_units_read_ahead")
    assert read_ahead is not None and read_ahead > 0, read_ahead  # batches read ahead


def test_calls_of_one_batch_sharing_a_token_make_one_policy_and_conflict_when_they_differ(
        pg_server) -> None:
    """Calls that arrive together run in one batch, whose token records the writer reads
    ahead in one statement: each call still sees the records written before it in the batch.
    Pairs of calls share a token (the first call of a burst commits alone; pairs of later
    ones meet in the next batches)."""
    pairs = 12
    clients = [pg_server.client("opensearchserverless") for _ in range(2 * pairs)]
    barrier = threading.Barrier(len(clients))
    policy = json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": ["collection/a*"]}],
                          "AllowFromPublic": True}])

    def together(round_name: str, described: Callable[[int], str]) -> list[list[dict | str]]:
        def create(index: int) -> dict | str:
            name = f"{round_name}-{index // 2}"  # the pair's policy and token
            barrier.wait(timeout=30)
            try:
                return clients[index].create_security_policy(
                    name=name, type="network", policy=policy, description=described(index),
                    clientToken=f"token-of-{name}")["securityPolicyDetail"]
            except ClientError as error:
                return error.response["Error"]["Message"]

        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(create, range(len(clients))))
        return [answers[index:index + 2] for index in range(0, len(answers), 2)]

    for pair in together("same", lambda index: "the same request"):
        assert all(isinstance(answer, dict) for answer in pair), pair
        assert pair[0] == pair[1]  # the second call answered with the first's response
    for index, pair in enumerate(together("differing", lambda index: f"request {index}")):
        made = [answer for answer in pair if isinstance(answer, dict)]
        refused = [answer for answer in pair if not isinstance(answer, dict)]
        assert len(made) == 1, pair  # the other is refused for its token, not for the name
        assert refused[0].startswith(f"The client token token-of-differing-{index} was "
                                     "already used"), refused
    listed = clients[0].list_security_policies(type="network", maxResults=100)
    assert len(listed["securityPolicySummaries"]) == 2 * pairs
    read_ahead = pg_server.metric("searchtrail_writer_units_read_ahead")
    assert read_ahead is not None and read_ahead > 0, read_ahead  # batches read ahead


def test_the_banner_of_a_server_given_its_store_by_flag_names_it_for_other_commands(
        tmp_path, postgres) -> None:
    """--database-url is the serve process's alone: the command the banner suggests (a root
    console password) carries it, or it would open an empty SQLite store in the data dir."""
    url = postgres.database()
    server = ServerProcess(tmp_path / "data", args=["--database-url", url])
    try:
        server.start()
        banner = next(line for line in server.log().splitlines()
                      if "set-console-password" in line)
    finally:
        server.stop()
    assert f"SEARCHTRAIL_DATABASE_URL='{url}' " in banner, banner
    lookup = searchtrail_cli("events", "lookup", "--data-dir", str(server.data_dir),
                             env={"SEARCHTRAIL_DATABASE_URL": url})
    assert lookup.returncode == 0, lookup.stderr
    assert not (server.data_dir / "searchtrail.sqlite3").exists()


def test_only_an_unstored_chain_end_of_a_trail_gone_to_another_bucket_may_be_dropped(
        retention_store) -> None:
    """As on SQLite (tests/unit/test_retention.py): delivery drops the digest it fixed for a
    bucket its trail has left, never stored; the store allows that and nothing more."""
    store, postgres_url = retention_store
    stored = RECENT - timedelta(hours=1)
    store.add_trail(ARN)
    store.add_digest(ARN, stored)
    store.add_digest(ARN, RECENT, delivered=False)
    store.add_log_file(ARN, None, 1)
    unstored = f"DELETE FROM digests WHERE end_time = {RECENT.timestamp()}"
    assert_refused(postgres_url, unstored)  # the trail still delivers to its bucket
    store.writer.run_blocking(lambda conn: (conn.execute(
        "UPDATE resources SET doc = ? WHERE key = ?",
        (json.dumps({"S3BucketName": "moved"}), ARN)) and None, []))
    assert_refused(postgres_url, f"DELETE FROM digests WHERE end_time = {stored.timestamp()}",
                   "UPDATE log_files SET sha256 = 'x'")
    with contextlib.closing(PostgresConnection(postgres_url)) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute(unstored)
        other.execute("UPDATE log_files SET bucket = 'moved', key = 'k' "
                      "WHERE delivered_at IS NULL")
        other.execute("COMMIT")
    assert store.times("digests") == ts(stored)
    assert store.conn.execute("SELECT bucket, key FROM log_files").fetchall() == [("moved", "k")]


def test_the_delivery_lease_is_announced_once_when_taken(postgres, caplog) -> None:
    """The holder pings its lease on every delivery pass; only the taking is news."""
    import logging

    from searchtrail.store.postgres.lease import DeliveryLease

    lease = DeliveryLease(postgres.database(), seconds=30)
    try:
        with caplog.at_level(logging.INFO, logger="searchtrail.delivery"):
            assert all(lease.held() for _ in range(3))
        announced = [r for r in caplog.records if "now delivers" in r.getMessage()]
        assert len(announced) == 1, [r.getMessage() for r in caplog.records]
    finally:
        lease.close()
