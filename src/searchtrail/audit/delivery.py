"""The delivery worker: outbox rows → gzip log files → object store, then digests and notifications.

Every step is fixed in the database before it touches the store (a file's key and records, a
digest's bytes), so a retry — after an outage or a crash — rewrites the same object with the
same bytes, and every record lands in exactly one log file per trail.

Intervals and retry back-off run on a monotonic clock; times written down run on the wall clock
but never behind a chain's last digest, so a wall clock stepping back neither stalls delivery
nor leaves a delivered file outside every digest.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Generic, NamedTuple, TypeVar

import orjson

from searchtrail.audit.digest import DigestLogEntry, PreviousDigest, build_digest, digest_key
from searchtrail.audit.logfile import LogFile, log_file_key, log_file_of_joined, unique_suffix
from searchtrail.audit.notify import NotificationError, Notifier, delivery_message
from searchtrail.audit.objectstore import ObjectStore, ObjectStoreError
from searchtrail.audit.signing import SIGNATURE_ALGORITHM, SigningKeys
from searchtrail.store import kinds
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

if TYPE_CHECKING:  # retention reads a trail's claim mark from here
    from searchtrail.audit.retention import EventRetention

log = logging.getLogger("searchtrail.delivery")

MAX_RECORDS_PER_FILE = 20_000
MAX_BACKOFF_SECONDS = 30.0
# Objects stored (or notifications published) at once: S3 and SNS take tens of milliseconds a
# request, and an organization trail has a log file per (account, Region) each pass, so one at a
# time would leave delivery waiting on the network. Within boto3's pool of 10 connections; the
# gzip bodies held are bounded too.
UPLOADS_IN_FLIGHT = 8
UPLOAD_BYTES_IN_FLIGHT = 16 * 1024 * 1024
# A trail's outbox rows are claimed by seq range (migration 0006): every row up to the trail's
# mark in outbox_claims is in a log file, and a group's rows up to the last seq of its newest
# file too (the second guard covers stores upgraded with some groups claimed further).
_CLAIMED_THROUGH = "SELECT through_seq FROM outbox_claims WHERE trail_arn = ?"
# The UNIQUE (trail_arn, seq) index: one seek to the trail's newest row.
_NEWEST_ROW = "SELECT max(seq) FROM outbox WHERE trail_arn = ?"
# A group's claimed-through mark from its newest file (stores upgraded by 0006 can have a group
# claimed past its trail's mark).
_GROUP_MARK = ("SELECT max(last_seq) FROM log_files WHERE trail_arn = ? AND account = ? "
               "AND region = ?")
# The group's next log file: its trail's oldest rows above ?3, up to ?4, at most ?6 of them.
# Counted in SQL on the read-only connection, so a backlog never holds the writer.
_NEXT_FILE = (
    "SELECT count(*), min(seq), max(seq) FROM (SELECT seq FROM outbox INDEXED BY outbox_by_group "
    "WHERE account = ?1 AND region = ?2 AND seq > ?3 AND seq <= ?4 AND trail_arn = ?5 "
    "ORDER BY seq LIMIT ?6) AS next_rows")
# A log file's records (its group's rows of its trail within its range), joined with commas
# in seq order, with their count and newest and oldest event times: one SQLite step, so the
# worker neither releases the GIL once per row (each release lets the busy event loop take
# it, and the worker waits to get it back) nor touches each record in Python. The subquery's
# order is the index's, so no sort is needed and group_concat receives the rows in seq order.
# (PostgreSQL is told the order: its string_agg names seq, store/postgres/connection.py.)
_FILE_RECORDS = (
    "SELECT CAST(group_concat(record, ',') AS BLOB), count(*), max(event_time), "
    "min(event_time) FROM (SELECT e.record AS record, e.event_time AS event_time, o.seq AS seq "
    "FROM outbox AS o INDEXED BY outbox_by_group JOIN events AS e ON e.seq = o.seq "
    "WHERE o.account = ? AND o.region = ? AND o.seq BETWEEN ? AND ? AND o.trail_arn = ? "
    "ORDER BY o.seq) AS file_rows")
# The distinct (account, region) pairs of a table's rows within {scope}, read from an index on
# (..., account, region, ...) whose leading columns {scope} fixes: one seek per pair, where
# DISTINCT would read every row. Accounts are stepped through first (the next one above the
# last), then each one's regions.
_STEP_ACCOUNTS = """
  accounts(account) AS (
    SELECT min(account) FROM {table} WHERE {scope}
    UNION ALL
    SELECT (SELECT min(account) FROM {table} WHERE {scope} AND account > accounts.account)
    FROM accounts WHERE account IS NOT NULL)"""
_DISTINCT_PAIRS = "WITH RECURSIVE" + _STEP_ACCOUNTS + """,
  pairs(account, region) AS (
    SELECT account, (SELECT min(region) FROM {table} WHERE {scope}
                     AND account = accounts.account)
    FROM accounts WHERE account IS NOT NULL
    UNION ALL
    SELECT account, (SELECT min(region) FROM {table} WHERE {scope}
                     AND account = pairs.account AND region > pairs.region)
    FROM pairs WHERE region IS NOT NULL)
SELECT account, region FROM pairs WHERE region IS NOT NULL ORDER BY account, region"""
# A trail's chains: the pairs it has log files or digests for, by their (trail_arn, account,
# region, ...) indexes.
_TRAIL_CHAINS = {table: _DISTINCT_PAIRS.format(table=table, scope="trail_arn = ?1")
                 for table in ("log_files", "digests")}
# Every pair the outbox has rows for, over all trails, by outbox_by_group (account, region, ...).
_OUTBOX_GROUPS = _DISTINCT_PAIRS.format(table="outbox INDEXED BY outbox_by_group", scope="TRUE")
_LAST_DIGEST_END = ("SELECT max(end_time) FROM digests WHERE trail_arn = ? AND account = ? "
                    "AND region = ?")
# The log files a chain's next digest lists: delivered from where its last one ended.
_FILES_TO_LIST = (
    "SELECT bucket, key, sha256, newest_event, oldest_event FROM log_files "
    "WHERE trail_arn = ? AND account = ? AND region = ? AND delivered_at >= ? "
    "AND delivered_at < ? ORDER BY id")
# A trail deleted and created again under its ARN starts afresh (records_after): the deleted
# one's log files hold only records up to its successor's RecordsAfterSeq, and its digests
# ended before its successor's CreatedTime. Its files and digests never stored stay so, until
# retention removes its rows (migration 0014).
OWN_LOG_FILE = "coalesce(last_seq, 1) > ?"
OWN_DIGEST = "end_time > ?"
# A log file of the chain delivered at or after its last digest's end: no digest covers it yet.
_UNCOVERED_FILE = ("SELECT 1 FROM log_files WHERE trail_arn = ? AND account = ? AND region = ? "
                   "AND delivered_at >= ? LIMIT 1")
# What a trail still has to store, for /metrics: its log files fixed and not yet stored (the
# log_files_pending index), its oldest row no file has claimed yet (the UNIQUE (trail_arn, seq)
# index) and the eventTime of the oldest record of either (by seq).
_WAITING_FILES = ("SELECT count(*), min(first_seq) FROM log_files WHERE trail_arn = ? "
                  f"AND delivered_at IS NULL AND {OWN_LOG_FILE}")
_OLDEST_UNCLAIMED = "SELECT min(seq) FROM outbox WHERE trail_arn = ? AND seq > ?"
_EVENT_TIME = "SELECT event_time FROM events WHERE seq = ?"


class Backlog(NamedTuple):
    """What a trail has recorded and not yet stored in its bucket."""

    lag_seconds: float  # the oldest such record's age (its eventTime); 0 when there is none
    waiting_log_files: int  # log files fixed and not yet stored (a failing bucket's sign)


NO_BACKLOG = Backlog(0.0, 0)


@dataclass
class _Backoff:
    """Retry back-off, in the worker's monotonic ticks."""

    failures: int = 0
    next_attempt: float = float("-inf")

    def failed(self, now: float) -> None:
        self.failures += 1
        self.next_attempt = now + min(MAX_BACKOFF_SECONDS, 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures = 0
        self.next_attempt = float("-inf")


Sent = TypeVar("Sent")


class _InFlight(Generic[Sent]):
    """Calls out (PUTs to the store, notifications) running on the worker's upload threads,
    settled in the order they were sent.

    What each call is for (``Sent``) is handed, in batches, to ``record_done`` once it has
    succeeded. After the first failure (an exception of type ``failures``) no more are sent:
    a retry repeats the same call."""

    def __init__(self, pool: ThreadPoolExecutor, record_done: Callable[[list[Sent]], None],
                 failures: type[Exception]) -> None:
        self._pool = pool
        self._record_done = record_done
        self._failures = failures
        self._sent: deque[tuple[Sent, int, Future[None]]] = deque()
        self._held_bytes = 0
        self.sent = 0  # calls started
        self.failure: tuple[Sent, Any] | None = None

    def send(self, what: Sent, call: Callable[[], None], held_bytes: int = 0) -> bool:
        """Start ``call`` (holding ``held_bytes`` until it ends); False once a call has failed
        (send nothing more)."""
        if self.failure is not None:
            return False
        self._sent.append((what, held_bytes, self._pool.submit(call)))
        self.sent += 1
        self._held_bytes += held_bytes
        if len(self._sent) >= UPLOADS_IN_FLIGHT or self._held_bytes >= UPLOAD_BYTES_IN_FLIGHT:
            self._settle(everything=False)
        return self.failure is None

    def finish(self) -> tuple[Sent, Any] | None:
        """Wait for every call still in flight; (what, exception) of the first failure."""
        self._settle(everything=True)
        return self.failure

    def _settle(self, *, everything: bool) -> None:
        """Wait for the oldest call (or all), taking every finished one after it too."""
        done: list[Sent] = []
        must_wait = True
        while self._sent and (must_wait or everything or self._sent[0][2].done()):
            what, size, future = self._sent.popleft()
            self._held_bytes -= size
            must_wait = False
            try:
                future.result()
            except self._failures as exc:
                self.failure = self.failure or (what, exc)
            else:
                done.append(what)
        if done:
            self._record_done(done)


@dataclass
class _SentLogFile:
    """A log file sent to the store: what its delivered mark needs."""

    file_id: int
    bucket: str
    key: str
    account: str
    region: str
    log_file: LogFile
    attempt: datetime


@dataclass
class _TrailState:
    last_assigned: float | None = None  # monotonic ticks of the last claim
    upload: _Backoff = field(default_factory=_Backoff)
    notify: _Backoff = field(default_factory=_Backoff)
    digest: _Backoff = field(default_factory=_Backoff)
    bucket: str | None = None  # where the back-offs were earned: see follow()

    def follow(self, trail: dict[str, Any]) -> None:
        """A trail sent to another bucket (UpdateTrail) is tried there at once: the back-offs
        earned by the old bucket do not apply to the new one."""
        if trail["S3BucketName"] != self.bucket:
            if self.bucket is not None:
                self.upload.succeeded()
                self.digest.succeeded()
            self.bucket = trail["S3BucketName"]


# Every account's trails (region '', the trail kind). The primary key starts with the account,
# so asking without one reads the whole table, every policy and idempotency record included, on
# every tick; this steps from one account to the next by seeks instead (a skip-scan). A partial
# index on the trails would cost more: every resources query with a bound kind would then be
# prepared again whenever its bindings change (BatchGetCollection +21% instructions).
_ALL_TRAILS = ("WITH RECURSIVE" + _STEP_ACCOUNTS.format(table="resources", scope="TRUE") + """
SELECT r.key, r.doc FROM accounts JOIN resources r
ON r.account = accounts.account AND r.region = '' AND r.kind = ?""")


class DeliveryWorker:
    def __init__(self, *, reader: Callable[[], sqlite3.Connection], writer: GroupCommitWriter,
                 store: ObjectStore, notifier: Notifier, signing_keys: Callable[[sqlite3.Connection], SigningKeys],
                 delivery_interval: float, digest_interval: float, org_id: str | None,
                 clock: Callable[[], datetime],
                 ticks: Callable[[], float] = time.monotonic,
                 leadership: Callable[[], bool] | None = None,
                 retention: EventRetention | None = None,
                 backlog: Callable[[dict[str, Backlog] | None], None] | None = None) -> None:
        self._reader_factory = reader
        self._reader: sqlite3.Connection | None = None
        self._writer = writer
        self._store = store
        self._notifier = notifier
        self._signing_keys = signing_keys
        self._delivery_interval = delivery_interval
        self._digest_interval = digest_interval
        self._org_id = org_id
        self._clock = clock
        self._ticks = ticks
        # Nodes sharing a store: only the node this says True on delivers (store/postgres)
        self._leadership = leadership
        # Expired records leave the store on the delivering node, once every trail has them
        self._retention = retention
        # Told after each pass every trail's backlog; None on a node that does not deliver
        self._backlog = backlog
        # by trail ARN and creation time: a trail made again under its ARN starts afresh
        self._states: dict[tuple[str, Any], _TrailState] = {}
        self._upload_pool = ThreadPoolExecutor(max_workers=UPLOADS_IN_FLIGHT,
                                               thread_name_prefix="searchtrail-upload")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="searchtrail-delivery", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._upload_pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        tick = max(0.2, min(1.0, self._delivery_interval / 2))
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep delivering: the next tick retries what failed
                log.exception("delivery pass failed")
            self._stop.wait(tick)

    # -- one pass ------------------------------------------------------------------------

    def run_once(self) -> None:
        if self._leadership is not None and not self._leadership():
            self._states.clear()  # back-offs and claim times start afresh on taking over
            if self._backlog is not None:
                self._backlog(None)  # the node that delivers tells them
            return
        now, ticks = self._clock(), self._ticks()
        every_trail = self._every_trail()
        idle: set[str] = set()
        for arn, trail in every_trail:
            if not (trail.get("IsLogging") or self._has_work(arn, trail)):
                idle.add(arn)
                continue
            state = self._states.setdefault((arn, created_at(trail)), _TrailState())
            state.follow(trail)
            if state.last_assigned is None or ticks - state.last_assigned >= self._delivery_interval:
                self._assign(arn, trail, now)
                state.last_assigned = ticks
            self._upload_pending(arn, trail, state)
            if trail.get("SnsTopicARN"):
                self._notify_pending(arn, trail, state)
            if trail.get("LogFileValidationEnabled"):
                self._write_digests(arn, trail, state)
        existing = {(arn, created_at(trail)) for arn, trail in every_trail}
        for gone in self._states.keys() - existing:  # deleted trails' back-offs and claim times
            del self._states[gone]
        if self._backlog is not None:
            measured = self._clock().timestamp()
            self._backlog({arn: NO_BACKLOG if arn in idle else trail_backlog(
                self._conn(), arn, trail, measured) for arn, trail in every_trail})
        if self._retention is not None and not self._stop.is_set():
            self._retention.run_due(
                self._conn(), self._writer,
                {arn: trail_start(trail) for arn, trail in every_trail},
                {arn for arn, trail in every_trail if trail.get("LogFileValidationEnabled")})

    def _conn(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = self._reader_factory()
        return self._reader

    def _every_trail(self) -> list[tuple[str, dict[str, Any]]]:
        """Every trail of every account, logging or not."""
        return [(arn, orjson.loads(text))
                for arn, text in self._conn().execute(_ALL_TRAILS, (kinds.TRAIL,)).fetchall()]

    def _has_work(self, arn: str, trail: dict[str, Any]) -> bool:
        """A stopped trail still delivers what it recorded, and closes its digest chains."""
        conn = self._conn()
        if self._unclaimed_bounds(arn) is not None:
            return True
        # Not delivered, or delivered and not notified: a file is notified only once delivered.
        if conn.execute("SELECT 1 FROM log_files WHERE trail_arn = ? AND notified_at IS NULL "
                        f"AND {OWN_LOG_FILE} LIMIT 1", (arn, records_after(trail))).fetchone():
            return True
        stopped = trail.get("StopLoggingTime")
        # A digest fixed but not stored yet (the final one's upload failed): keep retrying it.
        if trail.get("LogFileValidationEnabled") and conn.execute(
                f"SELECT 1 FROM digests WHERE trail_arn = ? AND delivered_at IS NULL "
                f"AND {OWN_DIGEST} LIMIT 1", (arn, created_at(trail))).fetchone():
            return True
        started = trail.get("StartLoggingTime")
        if trail.get("LogFileValidationEnabled") and stopped and started is not None:
            # Every chain the trail has files or digests for, and its home chain, a few index
            # seeks each: a stopped trail is asked this on every tick while it exists.
            for account, region in self._chains(arn, trail):
                end = own_digest_end(trail, conn.execute(
                    _LAST_DIGEST_END, (arn, account, region)).fetchone()[0])
                if self._closing_due(arn, account, region, _digest_start(started, end),
                                     _listed_from(started, end), stopped):
                    return True
        return False

    def _closing_due(self, arn: str, account: str, region: str, start: float,
                     listed_from: float, stopped: float) -> bool:
        """A stopped trail's chain still needs a final digest from ``start``.

        Its stop came after ``start``, or a log file was delivered since its last digest: a
        digest begun before the stop was seen can end after it while a file still waited for
        a retry."""
        return stopped > start or self._conn().execute(
            _UNCOVERED_FILE, (arn, account, region, listed_from)).fetchone() is not None

    # -- log files -----------------------------------------------------------------------

    def _unclaimed_bounds(self, arn: str) -> tuple[int, int] | None:
        """(mark, newest): the trail has unclaimed rows with seqs in (mark, newest]; or None.

        Two seeks. Rows committed after this read have larger seqs, so they wait for the next
        pass instead of being half-claimed by this one."""
        conn = self._conn()
        through = claimed_through(conn, arn) or 0
        newest = conn.execute(_NEWEST_ROW, (arn,)).fetchone()[0]
        return None if newest is None or newest <= through else (through, newest)

    def _assign(self, arn: str, trail: dict[str, Any], now: datetime) -> None:
        """Fix the next log files (key, range of records) before any upload.

        The backlog is counted and cut into files on the read-only connection; the writer unit
        only inserts one row per file and moves the trail's mark, so the API's commits wait
        for a few short INSERTs at most, however large the backlog.
        """
        bounds = self._unclaimed_bounds(arn)
        if bounds is None:
            return
        through, newest = bounds
        # Rows up to the trail's creation were routed to a deleted trail under the same ARN:
        # the mark moves over them, into no file.
        parts = self._next_files(arn, max(through, records_after(trail)), newest)
        if not self._stop.is_set():
            self._writer.run_blocking(self._claim_unit(arn, trail, through, newest, parts, now))

    def _next_files(self, arn: str, through: int,
                    newest: int) -> list[tuple[str, str, int, int, int]]:
        """The trail's next log files for its rows in (through, newest]: (account, region,
        records, first seq, last seq), each group's oldest rows first."""
        conn = self._conn()
        parts = []
        for account, region in conn.execute(_OUTBOX_GROUPS).fetchall():
            mark = conn.execute(_GROUP_MARK, (arn, account, region)).fetchone()[0]
            last = max(through, mark or 0)
            while not self._stop.is_set():
                count, first_seq, last_seq = conn.execute(
                    _NEXT_FILE, (account, region, last, newest, arn, MAX_RECORDS_PER_FILE)
                ).fetchone()
                if not count:
                    break
                parts.append((account, region, count, first_seq, last_seq))
                if count < MAX_RECORDS_PER_FILE:
                    break
                last = last_seq
        return parts

    def _claim_unit(self, arn: str, trail: dict[str, Any], through: int, newest: int,
                    parts: list[tuple[str, str, int, int, int]],
                    now: datetime) -> Callable[[sqlite3.Connection], tuple[None, list]]:
        """A writer unit claiming the trail's rows in (through, newest]: a log file per part
        (account, region, records, first seq, last seq), then the trail's mark."""
        bucket = trail["S3BucketName"]

        def unit(conn: sqlite3.Connection) -> tuple[None, list]:
            mark = claimed_through(conn, arn)
            if (mark or 0) != through:
                return None, []  # claimed since it was read: the next pass reads afresh
            for account, region, count, first_seq, last_seq in parts:
                key = self._log_file_key(arn, trail, account, region, now, first_seq)
                conn.execute(
                    "INSERT INTO log_files (trail_arn, account, region, bucket, key, created_at, "
                    "records, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (arn, account, region, bucket, key, now.timestamp(), count, first_seq,
                     last_seq))
            if mark is None:
                conn.execute("INSERT INTO outbox_claims (trail_arn, through_seq) VALUES (?, ?)",
                             (arn, newest))
            else:
                conn.execute("UPDATE outbox_claims SET through_seq = ? WHERE trail_arn = ?",
                             (newest, arn))
            return None, []

        return unit

    def _log_file_key(self, arn: str, trail: dict[str, Any], account: str, region: str,
                      created: datetime, first_seq: int) -> str:
        """A log file's key under the trail's present prefix (and organization): the same
        for the same file, whenever it is asked."""
        unique = unique_suffix(f"{arn}|{account}|{region}|{first_seq}".encode())
        return log_file_key(prefix=trail.get("S3KeyPrefix") or None,
                            org_id=self._org_id if trail.get("IsOrganizationTrail") else None,
                            account=account, region=region, delivered_at=created, unique=unique)

    def _follow_destination(self, arn: str, trail: dict[str, Any], pending: list[tuple]
                            ) -> list[tuple]:
        """Pending log files (id, bucket, key, account, region, first seq, last seq, created)
        go to the bucket the trail delivers to now: one fixed for a bucket the trail has left
        (UpdateTrail, say after that bucket was deleted) moves to the new one, under the
        trail's present prefix, else it would be retried against the old one for ever, its
        records delivered nowhere."""
        bucket = trail["S3BucketName"]
        moved = [(row[0], self._log_file_key(arn, trail, row[3], row[4], datetime.fromtimestamp(
            row[7], timezone.utc), row[5])) for row in pending if row[1] != bucket]
        if not moved:
            return pending

        def unit(conn: sqlite3.Connection) -> tuple[None, list]:
            for file_id, key in moved:
                conn.execute("UPDATE log_files SET bucket = ?, key = ? WHERE id = ? "
                             "AND delivered_at IS NULL", (bucket, key, file_id))
            return None, []

        self._writer.run_blocking(unit)
        keys = dict(moved)
        return [(row[0], bucket, keys[row[0]], *row[3:]) if row[0] in keys else row
                for row in pending]

    def _upload_pending(self, arn: str, trail: dict[str, Any], state: _TrailState) -> None:
        """Store the trail's fixed, undelivered log files, several at once, oldest first.

        Each file's records are read and compressed here while earlier ones are being stored;
        those stored are marked delivered together, and their notifications (if the trail has
        a topic) published while later files are stored. At the first failure no more are
        sent."""
        if self._ticks() < state.upload.next_attempt:
            return
        conn = self._conn()
        pending = self._follow_destination(arn, trail, conn.execute(
            "SELECT id, bucket, key, account, region, first_seq, last_seq, created_at "
            f"FROM log_files WHERE trail_arn = ? AND delivered_at IS NULL AND {OWN_LOG_FILE} "
            "ORDER BY id", (arn, records_after(trail))).fetchall())
        notices = (self._notifications(arn, trail) if pending and trail.get("SnsTopicARN")
                   and self._ticks() >= state.notify.next_attempt else None)

        def mark_stored(stored: list[_SentLogFile]) -> None:
            self._writer.run_blocking(self._delivered_unit(arn, trail, stored))
            if notices is not None:  # marked stored first: a crash never notifies a file unstored
                for sent in stored:
                    if not self._notify(notices, trail, sent.file_id, sent.bucket, sent.key):
                        break

        uploads: _InFlight[_SentLogFile] = _InFlight(self._upload_pool, mark_stored,
                                                     ObjectStoreError)
        for file_id, bucket, key, account, region, first_seq, last_seq, _ in pending:
            if self._stop.is_set():
                break
            log_file = log_file_of_joined(*conn.execute(
                _FILE_RECORDS, (account, region, first_seq, last_seq, arn)).fetchone())
            sent = _SentLogFile(file_id, bucket, key, account, region, log_file, self._clock())
            if not uploads.send(sent, self._put(bucket, key, log_file.body), len(log_file.body)):
                break
        failure = uploads.finish()
        if notices is not None:
            self._notifications_done(arn, trail, state, notices)
        if failure is not None:
            failed, exc = failure
            log.warning("log file delivery failed", extra={"trail": arn, "key": failed.key,
                                                           "code": exc.code})
            state.upload.failed(self._ticks())
            self._update_status(arn, trail, {
                "LatestDeliveryAttemptTime": failed.attempt.timestamp(),
                "LatestDeliveryError": exc.code})
        elif pending:
            state.upload.succeeded()

    @staticmethod
    def _delivered_unit(arn: str, trail: dict[str, Any], stored: list["_SentLogFile"]
                        ) -> Callable[[sqlite3.Connection], tuple[None, list]]:
        notifies = bool(trail.get("SnsTopicARN"))  # else a file counts as notified at once
        latest = max(sent.attempt for sent in stored).timestamp()

        def mark(conn: sqlite3.Connection) -> tuple[None, list]:
            for sent in stored:
                attempt = sent.attempt.timestamp()
                conn.execute(
                    "UPDATE log_files SET delivered_at = ?, notified_at = ?, sha256 = ?, "
                    "newest_event = ?, oldest_event = ? WHERE id = ? AND delivered_at IS NULL",
                    (_delivery_time(conn, arn, trail, sent.account, sent.region, attempt),
                     None if notifies else attempt, sent.log_file.sha256,
                     int(sent.log_file.newest_event_time.timestamp()),
                     int(sent.log_file.oldest_event_time.timestamp()), sent.file_id))
            _merge_status(conn, arn, trail, {"LatestDeliveryTime": latest,
                                             "LatestDeliveryAttemptTime": latest,
                                             "LatestDeliveryError": None})
            return None, []

        return mark

    def _put(self, bucket: str, key: str, body: bytes,
             metadata: dict[str, str] | None = None) -> Callable[[], None]:
        return functools.partial(self._store.put_object, bucket, key, body,
                                 content_type="application/json", metadata=metadata)

    def _notify_pending(self, arn: str, trail: dict[str, Any], state: _TrailState) -> None:
        """Publish a notification for each delivered file not yet notified, several at once
        (files stored in an earlier pass: a failed or interrupted notification's retry)."""
        if self._ticks() < state.notify.next_attempt:
            return
        pending = self._conn().execute(
            "SELECT id, bucket, key FROM log_files WHERE trail_arn = ? AND delivered_at IS NOT NULL "
            f"AND notified_at IS NULL AND {OWN_LOG_FILE} ORDER BY id",
            (arn, records_after(trail))).fetchall()
        if not pending:
            return
        notices = self._notifications(arn, trail)
        for file_id, bucket, key in pending:
            if not self._notify(notices, trail, file_id, bucket, key):
                break
        self._notifications_done(arn, trail, state, notices)

    def _notifications(self, arn: str, trail: dict[str, Any]) -> _InFlight[tuple[int, float]]:
        """Notifications in flight on the upload threads, each marked once published."""
        return _InFlight(
            self._upload_pool,
            lambda notified: self._writer.run_blocking(self._notified_unit(arn, trail, notified)),
            NotificationError)

    def _notify(self, notices: _InFlight[tuple[int, float]], trail: dict[str, Any],
                file_id: int, bucket: str, key: str) -> bool:
        """Publish a stored file's notification; False once one has failed (send no more)."""
        publish = functools.partial(self._notifier.publish, trail["SnsTopicARN"],
                                    delivery_message(bucket, [key]))
        return notices.send((file_id, self._clock().timestamp()), publish)

    def _notifications_done(self, arn: str, trail: dict[str, Any], state: _TrailState,
                            notices: _InFlight[tuple[int, float]]) -> None:
        """Wait for the notifications in flight; a failure backs the trail's off and shows in
        its status."""
        failure = notices.finish()
        if failure is not None:
            (_, attempt), exc = failure
            log.warning("notification failed", extra={"trail": arn, "code": exc.code,
                                                      "detail": str(exc)})
            state.notify.failed(self._ticks())
            self._update_status(arn, trail, {"LatestNotificationAttemptTime": attempt,
                                             "LatestNotificationError": exc.code})
        elif notices.sent:
            state.notify.succeeded()

    @staticmethod
    def _notified_unit(arn: str, trail: dict[str, Any], notified: list[tuple[int, float]]
                       ) -> Callable[[sqlite3.Connection], tuple[None, list]]:
        latest = max(attempt for _, attempt in notified)

        def mark(conn: sqlite3.Connection) -> tuple[None, list]:
            for file_id, attempt in notified:
                conn.execute("UPDATE log_files SET notified_at = ? WHERE id = ?", (attempt, file_id))
            _merge_status(conn, arn, trail, {"LatestNotificationTime": latest,
                                             "LatestNotificationAttemptTime": latest,
                                             "LatestNotificationError": None})
            return None, []

        return mark

    # -- digests -------------------------------------------------------------------------

    def _write_digests(self, arn: str, trail: dict[str, Any], state: _TrailState) -> None:
        if self._ticks() < state.digest.next_attempt:
            return
        now = self._clock()
        if self._upload_pending_digests(arn, trail, state):
            for account, region in self._chains(arn, trail):
                self._next_digest(arn, trail, account, region, now)
            self._upload_pending_digests(arn, trail, state)

    def _chains(self, arn: str, trail: dict[str, Any]) -> list[tuple[str, str]]:
        """Every (account, region) the trail has delivered for, plus its own home region; not
        those only a deleted trail under its ARN delivered for (two seeks a chain), nor, once
        a multi-region trail has become single-region, another region whose delivered files
        its digests all cover (that region has no trail any more)."""
        owner, home = arn.split(":")[4], trail["HomeRegion"]
        everywhere = bool(trail.get("IsMultiRegionTrail"))
        conn = self._conn()
        own = set()
        for account, region in trail_chains(conn, arn):
            last_seq, last_end = chain_ends(conn, arn, account, region)
            if not ((last_seq or 1) > records_after(trail)
                    or own_digest_end(trail, last_end) is not None):
                continue
            if everywhere or region == home or conn.execute(
                    _UNCOVERED_FILE, (arn, account, region, last_end or 0)).fetchone():
                own.add((account, region))
        return sorted({(owner, home), *own})

    def _next_digest(self, arn: str, trail: dict[str, Any], account: str, region: str,
                     now: datetime) -> None:
        conn = self._conn()
        started = trail.get("StartLoggingTime")
        stopped = trail.get("StopLoggingTime")
        if started is None:
            return
        last = conn.execute(
            "SELECT id, bucket, key, end_time, sha256, signature FROM digests WHERE trail_arn = ? "
            "AND account = ? AND region = ? ORDER BY end_time DESC LIMIT 1",
            (arn, account, region)).fetchone()
        stored_end = None if last is None else last[3]
        last_end = own_digest_end(trail, stored_end)
        if last_end is None:
            last = None  # none, or a deleted trail's under the same ARN: the chain begins anew
        start = _digest_start(started, last_end)
        listed_from = _listed_from(started, last_end)
        enabled = trail.get("ValidationEnabledTime")
        if enabled is not None and enabled > start:
            # Validation was turned off, then on: a chain begins anew where it came back on
            # (previous* null, as AWS's), and files delivered while it was off are in no digest.
            start = listed_from = enabled
        # The chain goes on from its last digest only when this one begins where that one ended.
        continues = last is not None and start == last_end
        previous = PreviousDigest(bucket=last[1], key=last[2], sha256=last[4],
                                  signature=last[5]) if continues else None
        end = now.timestamp()
        if trail.get("IsLogging"):
            if end - start < self._digest_interval:
                return
        # A stopped trail: the final digest of a chain closed by StopLogging, once everything
        # recorded before the stop is delivered, so it covers every last file.
        elif stopped is None or self._undelivered(arn, trail) or \
                not self._closing_due(arn, account, region, start, listed_from, stopped):
            return
        if end <= start or (stored_end is not None and int(end) <= int(stored_end)):
            # Wait for the wall clock to pass the chain's last digest (it stepped back), into a
            # later second: a digest's key carries its end to the second, and the store refuses
            # a second digest under one key (the whole pass would fail until the second turned).
            return
        start_at = datetime.fromtimestamp(start, timezone.utc)
        end_at = datetime.fromtimestamp(end, timezone.utc)
        bucket = trail["S3BucketName"]
        key = digest_key(prefix=trail.get("S3KeyPrefix") or None,
                         org_id=self._org_id if trail.get("IsOrganizationTrail") else None,
                         account=account, region=region, trail_name=trail["Name"],
                         home_region=trail["HomeRegion"], end=end_at)

        # A new signing key's RSA material is made before the unit: a unit holds the writer,
        # and with it every API call's commit, for as long as it runs.
        prepared = self._signing_keys(conn).prepare(account, region, end_at)

        def unit(conn: sqlite3.Connection) -> tuple[None, list]:
            if conn.execute(_LAST_DIGEST_END, (arn, account, region)).fetchone()[0] != stored_end:
                return None, []  # another node's worker went on with the chain meanwhile
            # The files, read under the write lock: none can be marked delivered inside this
            # window after the read (a mark dates its file from the chain's end, in its unit).
            files = conn.execute(_FILES_TO_LIST, (arn, account, region, listed_from,
                                                  end)).fetchall()
            entries = [DigestLogEntry(bucket=b, key=k, sha256=h, newest_event_time=_utc(n),
                                      oldest_event_time=_utc(o)) for b, k, h, n, o in files]
            signing_key = self._signing_keys(conn).current(account, region, end_at,
                                                           prepared=prepared)
            digest = build_digest(account=account, bucket=bucket, key=key, start=start_at,
                                  end=end_at, log_files=entries, previous=previous,
                                  signing_key=signing_key)
            conn.execute(
                "INSERT INTO digests (trail_arn, account, region, bucket, key, start_time, end_time, "
                "previous_id, sha256, signature, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (arn, account, region, bucket, key, start, end, last[0] if previous else None,
                 digest.sha256, digest.signature, digest.body))
            return None, []

        self._writer.run_blocking(unit)

    def _undelivered(self, arn: str, trail: dict[str, Any]) -> bool:
        if self._unclaimed_bounds(arn) is not None:
            return True
        return self._conn().execute(
            "SELECT 1 FROM log_files WHERE trail_arn = ? AND delivered_at IS NULL "
            f"AND {OWN_LOG_FILE} LIMIT 1", (arn, records_after(trail))).fetchone() is not None

    def _upload_pending_digests(self, arn: str, trail: dict[str, Any], state: _TrailState) -> bool:
        """Upload digests fixed but not yet stored, several at once; False when the store is
        failing."""
        pending = self._drop_left_behind(trail, self._conn().execute(
            "SELECT id, bucket, key, signature, body FROM digests "
            f"WHERE trail_arn = ? AND delivered_at IS NULL AND {OWN_DIGEST} ORDER BY id",
            (arn, created_at(trail))).fetchall())
        uploads: _InFlight[int] = _InFlight(
            self._upload_pool,
            lambda stored: self._writer.run_blocking(
                self._digests_stored_unit(arn, trail, stored)),
            ObjectStoreError)
        for digest_id, bucket, key, signature, body in pending:
            put = self._put(bucket, key, bytes(body), {
                "signature": signature, "signature-algorithm": SIGNATURE_ALGORITHM})
            if not uploads.send(digest_id, put, len(body)):
                break
        failure = uploads.finish()
        if failure is not None:
            state.digest.failed(self._ticks())
            self._update_status(arn, trail, {"LatestDigestDeliveryError": failure[1].code})
            return False
        if pending:
            state.digest.succeeded()
        return True

    def _drop_left_behind(self, trail: dict[str, Any], pending: list[tuple]) -> list[tuple]:
        """Pending digests (id, bucket, key, signature, body) fixed for a
        bucket the trail has left are dropped, never having been stored: each names its own
        bucket in its signed body, so it is made again for the new one by the chain's next
        digest (from the last one stored, listing the same files). Kept, it would be retried
        against the old bucket for ever and hold back every later digest."""
        bucket = trail["S3BucketName"]
        left = {row[0] for row in pending if row[1] != bucket}
        if not left:
            return pending

        def unit(conn: sqlite3.Connection) -> tuple[None, list]:
            for digest_id in left:
                conn.execute("DELETE FROM digests WHERE id = ? AND delivered_at IS NULL",
                             (digest_id,))
            return None, []

        self._writer.run_blocking(unit)
        return [row for row in pending if row[0] not in left]

    def _digests_stored_unit(self, arn: str, trail: dict[str, Any], stored: list[int]
                             ) -> Callable[[sqlite3.Connection], tuple[None, list]]:
        stored_at = self._clock().timestamp()

        def mark(conn: sqlite3.Connection) -> tuple[None, list]:
            for digest_id in stored:  # (the PostgreSQL connection has no executemany)
                conn.execute("UPDATE digests SET delivered_at = ? WHERE id = ?",
                             (stored_at, digest_id))
            _merge_status(conn, arn, trail, {"LatestDigestDeliveryTime": stored_at,
                                             "LatestDigestDeliveryError": None})
            return None, []

        return mark

    def _update_status(self, arn: str, trail: dict[str, Any], changes: dict[str, Any]) -> None:
        self._writer.run_blocking(lambda conn: (_merge_status(conn, arn, trail, changes), []))


class TrailStart(NamedTuple):
    """Where an existing trail's own rows begin: what lies before was a deleted trail's under
    the same ARN (0: from the start)."""

    records_after: int = 0  # its records are those after this store seq (records_after)
    created: float = 0.0  # its digests end after this time (created_at)


def trail_start(trail: dict[str, Any]) -> TrailStart:
    return TrailStart(records_after(trail), created_at(trail))


def trail_backlog(conn: sqlite3.Connection, arn: str, trail: dict[str, Any],
                  now: float) -> Backlog:
    """The trail's log files waiting for their upload, and the age at ``now`` (Unix time) of
    the oldest record it has not stored yet: the first of such a file's, or of its rows no file
    has claimed. ``trail`` is its stored document."""
    after = records_after(trail)
    files, first_in_files = conn.execute(_WAITING_FILES, (arn, after)).fetchone()
    first_unclaimed = conn.execute(
        _OLDEST_UNCLAIMED, (arn, max(claimed_through(conn, arn) or 0, after))).fetchone()[0]
    oldest = min((seq for seq in (first_in_files, first_unclaimed) if seq is not None),
                 default=None)
    found = None if oldest is None else conn.execute(_EVENT_TIME, (oldest,)).fetchone()
    return Backlog(max(0.0, now - found[0]) if found else 0.0, files)


def records_after(trail: dict[str, Any]) -> int:
    """The store seq after which the trail's own records begin: those before it under its ARN
    were a deleted trail's of the same name (0 for trails created before this was kept)."""
    return trail.get("RecordsAfterSeq") or 0


def created_at(trail: dict[str, Any]) -> float:
    """When the trail was created: digests that ended before it are a deleted trail's under
    the same ARN."""
    return trail.get("CreatedTime") or 0


def own_digest_end(trail: dict[str, Any], end: float | None) -> float | None:
    """A chain's last digest's end, if that digest is the trail's own: None when the chain has
    none, or only a deleted trail's under the same ARN (it ended before this one was created)."""
    return end if end is not None and end > created_at(trail) else None


def _delivery_time(conn: sqlite3.Connection, arn: str, trail: dict[str, Any], account: str,
                   region: str, attempt: float) -> float:
    """When a file counts as delivered: the attempt's wall-clock time, but never before the
    point its chain's next digest lists files from. A wall clock stepped back (or another
    node's, ahead of this one) would otherwise date the file before that digest's window, and
    no digest would list it.

    Read inside the unit that marks the file, under the write lock, so no digest can end
    between this read and the mark, whichever node writes the chain's digests."""
    last_end = conn.execute(_LAST_DIGEST_END, (arn, account, region)).fetchone()[0]
    floor = last_end if last_end is not None else trail.get("StartLoggingTime")
    return attempt if floor is None else max(attempt, floor)


def _digest_start(started: float, last_end: float | None) -> float:
    """Where a chain's next digest begins: its last digest's end, unless logging (re)started
    after it or it has none, when the chain begins anew at StartLoggingTime."""
    return started if last_end is None or started > last_end else last_end


def _listed_from(started: float, last_end: float | None) -> float:
    """Where a chain's next digest starts listing delivered files: its last digest's end.

    Usually where the digest begins; after logging restarted, the new chain's first digest
    begins at StartLoggingTime but also lists files delivered between the old chain's last
    digest and the restart (a stop and a start within one tick leave the old chain unclosed)."""
    return started if last_end is None else last_end


def _utc(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


def _merge_status(conn: sqlite3.Connection, arn: str, trail: dict[str, Any],
                  changes: dict[str, Any]) -> None:
    """Merge ``changes`` into the status of ``trail`` (its document as the pass read it), unless
    it was deleted or created again since: an upload that ends after DeleteTrail must not
    leave a status behind, nor give its outcome to a new trail under the same ARN."""
    repo = SqliteResources(conn, arn.split(":")[4], "")
    current = repo.get(kinds.TRAIL, arn)
    if current is None or created_at(current) != created_at(trail):
        return
    status = repo.get(kinds.TRAIL_STATUS, arn) or {}
    for name, value in changes.items():
        if value is None:
            status.pop(name, None)
        else:
            status[name] = value
    repo.put(kinds.TRAIL_STATUS, arn, status)


def trail_chains(conn: sqlite3.Connection, arn: str) -> set[tuple[str, str]]:
    """The (account, region) pairs a trail has log files or digests for."""
    return {(account, region) for table in ("log_files", "digests")
            for account, region in conn.execute(_TRAIL_CHAINS[table], (arn,))}


def chain_ends(conn: sqlite3.Connection, arn: str, account: str,
               region: str) -> tuple[int | None, float | None]:
    """A chain's newest log file's last seq and its newest digest's end time (None: none)."""
    return (conn.execute(_GROUP_MARK, (arn, account, region)).fetchone()[0],
            conn.execute(_LAST_DIGEST_END, (arn, account, region)).fetchone()[0])


def claimed_through(conn: sqlite3.Connection, arn: str) -> int | None:
    """The trail's mark in outbox_claims; None before its first claim."""
    row = conn.execute(_CLAIMED_THROUGH, (arn,)).fetchone()
    return row[0] if row else None


# Outbox rows no log file has claimed yet, over every trail, as a scalar subquery: a full read,
# for tests, benchmarks and tools watching a backlog drain (the worker asks per trail, by
# seeks). Count it in the same statement as the files still undelivered: between two reads, a
# claim could move rows from one count to the other and both would read zero.
UNCLAIMED_RECORDS = (
    "(SELECT count(*) FROM outbox AS o LEFT JOIN outbox_claims AS c USING (trail_arn) "
    "WHERE o.seq > coalesce(c.through_seq, 0) AND o.seq > coalesce("
    "(SELECT max(last_seq) FROM log_files AS f WHERE f.trail_arn = o.trail_arn "
    "AND f.account = o.account AND f.region = o.region), 0))")


def unclaimed_records(conn: sqlite3.Connection) -> int:
    return conn.execute(f"SELECT {UNCLAIMED_RECORDS}").fetchone()[0]
