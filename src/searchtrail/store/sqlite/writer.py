"""The group-commit writer: the event loop runs units in one open transaction; a helper
thread commits it.

Every request's unit of work (state change plus its CloudTrail record) runs on the event
loop, inside the shared transaction, each in its own savepoint; the batch's event rows are
inserted at the end of the loop's turn and one COMMIT (one fsync) on the helper thread
answers the batch. Units arriving during that COMMIT form the next batch. A lone caller's
BEGIN runs on the loop when it cannot wait (nothing holds or waits for the transaction);
otherwise BEGIN runs on the helper too, and calls arriving during that hop join the batch.
Running units on the loop, not on a writer thread, saves the GIL hand-offs every SQLite call
made between the two (measured: bench/README.md "Where the time goes").

Other threads (the delivery worker) run their units one at a time with ``run_blocking``;
they and the loop's batches take turns on the transaction in arrival order. A unit marked
``read_only`` writes nothing itself, and one marked ``undoes_itself`` leaves no write behind when
it fails, so neither runs in a savepoint of the writer's.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.events import EventRow, append_events, last_event_seq
from searchtrail.store.sqlite.resources import RESOURCE_VERSIONS, ResourceChanges

# On PostgreSQL a batch's rows go this many records at a time as its units make them, so
# that the server inserts them while the loop runs the next units (bench/README.md).
RECORDS_SENT_AHEAD = 16

log = logging.getLogger("searchtrail.store")

# A unit returns (result, event rows); the rows are inserted with the batch, before COMMIT.
Unit = Callable[[sqlite3.Connection], tuple[Any, list[EventRow]]]


@dataclass
class WriterStats:
    units: int = 0
    commits: int = 0
    units_read_ahead: int = 0  # units whose first reads a batch's read ahead answered
    failed_commits: int = 0
    max_batch: int = 0
    # the last failed commit's error and monotonic time, and how many failed in a row, until
    # a commit succeeds again
    last_failure: str | None = None
    last_failure_at: float = 0.0
    failures_in_a_row: int = 0

    def failing(self, within: float, in_a_row: int) -> str | None:
        """The last commit's error if at least ``in_a_row`` commits failed one after another,
        the last less than ``within`` seconds ago (a single failure, such as a node's first
        commit after a freeze lost its session, says nothing of the next)."""
        if self.failures_in_a_row < in_a_row or time.monotonic() - self.last_failure_at > within:
            return None
        return self.last_failure


class _Batch(Enum):
    IDLE = "no transaction"
    BEGINNING = "BEGIN IMMEDIATE on the helper thread"
    OPEN = "units run on the loop; the flush is scheduled"
    COMMITTING = "COMMIT on the helper thread"


class _Turns:
    """A first-come, first-served lock on the write transaction. A plain Lock would let the
    delivery worker, taking it file after file, starve the loop's next batch.

    With a ``lock_path``, a turn also holds an exclusive flock on that file, which other
    processes writing the same store (the server's other workers) take too: they then wait
    in the kernel's queue, not in SQLite's busy handler."""

    def __init__(self, lock_path: Path | None = None) -> None:
        self._changed = threading.Condition()
        self._issued = 0
        self._serving = 0
        self._lock_fd = (os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                         if lock_path is not None else None)

    def acquire(self) -> None:
        with self._changed:
            ticket = self._issued
            self._issued += 1
            while ticket != self._serving:
                self._changed.wait()
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            except BaseException:
                self._next()
                raise

    def acquire_if_free(self) -> bool:
        with self._changed:
            if self._issued != self._serving:
                return False
            if self._lock_fd is not None:
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
            self._issued += 1
            return True

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._next()

    def _next(self) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()


# A helper job's outcome, handed to its callback on the loop: (failure or None, result).
Then = Callable[[BaseException | None, Any], None]


class _Helper:
    """The one thread that runs the loop's BEGIN (when it may wait) and COMMIT. Each job's
    outcome goes back to the loop in one ``call_soon_threadsafe``: ``run_in_executor``'s two
    chained futures cost ~100 µs more CPU per hop (bench/README.md, "The helper thread")."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, Callable[[], Any], Then]
                                      | None] = queue.SimpleQueue()
        # A daemon, so a process that never stops the writer can still exit; an unanswered
        # batch's COMMIT is then lost like one cut short by a crash.
        self._thread = threading.Thread(target=self._serve, name="searchtrail-commit",
                                        daemon=True)
        self._thread.start()

    def submit(self, loop: asyncio.AbstractEventLoop, job: Callable[[], Any],
               then: Then) -> None:
        """Run ``job`` on the helper thread, then ``then(failure, result)`` on ``loop``."""
        self._jobs.put((loop, job, then))

    def stop(self) -> None:
        """Finish the jobs submitted so far, then end the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            loop, job, then = item
            try:
                outcome: tuple[BaseException | None, Any] = (None, job())
            except BaseException as exc:  # handed to the loop, which fails the batch's calls
                outcome = (exc, None)
            try:
                loop.call_soon_threadsafe(then, *outcome)
            except RuntimeError:  # the loop closed meanwhile: no call waits for this job
                pass


class GroupCommitWriter:
    def __init__(self, conn: sqlite3.Connection, *, max_batch: int = 256,
                 changes: ResourceChanges | None = None,
                 turn_lock: Path | None = None,
                 on_commit: Callable[[WriterStats], None] | None = None) -> None:
        self._conn = conn
        self._busy_timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self._changes = changes  # told when writes roll back, so caches of them are dropped
        # On PostgreSQL every read is a round trip: what a batch's queued units read first
        # (their token records) is read for all of them in one statement (_read_ahead). Units
        # need say so (``reads_ahead``) only when this is true.
        self.reads_ahead = changes is not None and getattr(conn, "dialect", "") == "postgresql"
        # A connection that can send statements without waiting for their answers
        # (PostgresConnection.send_ahead) gets a batch's rows as they are made.
        self._sends_ahead = getattr(conn, "send_ahead", None)
        # Each kind's resource version as the last write transaction began: other processes
        # and nodes write between our transactions, and caches of a kind outlive one only
        # while its version has not moved since (see _begin_write).
        self._resource_versions: dict[str, int] = {}
        self._max_batch = max_batch
        self._turns = _Turns(turn_lock)  # turn_lock: other processes write this store too
        self._committer: _Helper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._state = _Batch.IDLE
        self._queued: deque[tuple[Unit, asyncio.Future]] = deque()
        self._batch: list[tuple[asyncio.Future, bool, Any]] = []
        self._rows: list[EventRow] = []
        self._idle: asyncio.Event | None = None
        self._stopping = False
        self._last_seq: int | None = None  # the open transaction's last allocated event seq
        self._last_batch = 1  # calls in the loop's last committed batch
        self.stats = WriterStats()
        self._on_commit = on_commit  # told the stats after each commit and failed one (metrics)

    def start(self) -> None:
        """Accept units (again, after a stop)."""
        self._stopping = False

    async def drain(self) -> None:
        """Refuse new units and return once every accepted one has committed or failed."""
        self._stopping = True
        while self._state is not _Batch.IDLE or self._queued:
            self._idle = asyncio.Event()
            await self._idle.wait()

    def stop(self) -> None:
        """Refuse new units and end the helper thread; on the loop, ``drain`` first."""
        self._stopping = True
        if self._committer is not None:
            self._committer.stop()
            self._committer = None
        if self._state is _Batch.IDLE:
            return
        # The loop went away mid-batch: units that ran keep their records; none was answered.
        log.warning("writer stopped with a batch in flight (%s)", self._state.value)
        try:
            if self._state is _Batch.OPEN:
                append_events(self._conn, self._rows)
                self._conn.execute("COMMIT")
            elif self._conn.in_transaction:  # opened for units that never ran
                self._conn.execute("ROLLBACK")
        except Exception as exc:
            self._roll_back(exc, len(self._batch))
        finally:
            if self._state is _Batch.OPEN or self._conn.in_transaction:
                self._turns.release()
        self._queued.clear()
        self._batch, self._rows = [], []
        self._state = _Batch.IDLE

    async def run(self, unit: Unit) -> Any:
        """Run a unit in the next batch; returns once its batch has committed."""
        if self._stopping:
            raise StoreUnavailable("the server is shutting down")
        loop = asyncio.get_running_loop()
        if not self._bind(loop):  # a second event loop (tests): it waits its turn on a thread
            return await asyncio.to_thread(self.run_blocking, unit)
        future = loop.create_future()
        if self._state is _Batch.IDLE and self._lone_caller_begins():
            self._opened()
        if self._state is _Batch.OPEN and len(self._batch) < self._max_batch:
            self._execute(unit, future)
        else:
            self._queued.append((unit, future))
            if self._state is _Batch.IDLE:
                self._begin()
        return await future

    def run_blocking(self, unit: Unit) -> Any:
        """Run a unit alone in its own transaction, for threads other than the loop's
        (the delivery worker, start-up, tests); returns once it has committed."""
        if self._stopping:
            raise StoreUnavailable("the server is shutting down")
        if (self._loop is not None and threading.get_ident() == self._loop_thread
                and self._loop.is_running()):
            raise RuntimeError("run_blocking on the event loop would wait for itself; "
                               "await run() instead")
        conn = self._conn
        self._turns.acquire()
        try:
            self._begin_write()
            ok, value, rows = self._apply(unit)
            append_events(conn, rows)
            conn.execute("COMMIT")
        except Exception as exc:
            raise self._roll_back(exc, 1) from exc
        finally:
            self._turns.release()
        self._count(1)
        if ok:
            return value
        raise value

    def _begin_write(self, *, waiting: bool = True) -> None:
        """Open the write transaction (the caller holds the turn); its seqs start afresh.
        Not ``waiting``: fail at once, without the busy timeout, if another process writes."""
        conn = self._conn
        if waiting:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        self._last_seq = None
        if self._changes is not None:
            self._changes.forget_ahead()
            # Every change to a resource row moves its kind's version (triggers, whoever
            # writes): a kind whose version has not moved since the last transaction began has
            # nothing stale cached. Our own writes move them too, so the kinds a transaction
            # wrote are read afresh in the next.
            versions = dict(self._conn.execute(RESOURCE_VERSIONS).fetchall())
            moved = [kind for kind in versions.keys() | self._resource_versions.keys()
                     if versions.get(kind) != self._resource_versions.get(kind)]
            for kind in moved:
                self._changes.bump(kind)  # also forgets the reads
            if not moved:
                self._changes.keep_reads(self._conn)
            self._resource_versions = versions

    def next_seq(self) -> int:
        """The store sequence of a new event row; only inside a unit, whose transaction holds
        the write lock. A unit that fails leaves a gap; a batch that rolls back hands its
        numbers out again, to events with other IDs (see audit/eventid.py)."""
        if self._last_seq is None:
            self._last_seq = last_event_seq(self._conn)
        self._last_seq += 1
        return self._last_seq

    def _bind(self, loop: asyncio.AbstractEventLoop) -> bool:
        if loop is self._loop:
            return True
        if self._state is not _Batch.IDLE or self._queued:
            return False
        self._loop, self._loop_thread = loop, threading.get_ident()
        return True

    # The loop's batches: IDLE -> BEGINNING -> OPEN -> COMMITTING -> OPEN (units arrived
    # meanwhile) or IDLE. Only the loop thread changes the state.

    def _begin(self) -> None:
        assert self._loop is not None
        self._state = _Batch.BEGINNING
        self._helper().submit(self._loop, self._open_transaction, self._begun)

    def _helper(self) -> _Helper:
        """The helper thread, made on first use."""
        if self._committer is None:
            self._committer = _Helper()
        return self._committer

    def _lone_caller_begins(self) -> bool:
        """Open the transaction on the loop for a lone caller (the last batch held one call
        and nothing is queued), saving it the thread hop; True if it did. Under concurrency
        the hop stays: calls arriving meanwhile join the batch, which costs less CPU per call.

        Never waits: the writer's turn must be free and the database's write lock too (no
        busy timeout); otherwise the helper thread begins, as before, waiting out the busy
        timeout and reporting any failure."""
        if self._last_batch != 1 or self._queued:
            return False
        try:
            return self._open_transaction(unless_waited_for=True, waiting=False)
        except sqlite3.Error:
            return False

    def _open_transaction(self, *, unless_waited_for: bool = False,
                          waiting: bool = True) -> bool:
        if unless_waited_for:
            if not self._turns.acquire_if_free():
                return False
        else:
            self._turns.acquire()
        try:
            self._begin_write(waiting=waiting)  # waiting, it is not on the loop
        except BaseException:
            self._turns.release()
            raise
        return True

    def _begun(self, failure: BaseException | None, _opened: bool) -> None:
        if self._state is not _Batch.BEGINNING:  # stopped meanwhile
            return
        if failure is not None:
            broken = self._roll_back(failure, len(self._queued))
            while self._queued:
                _settle(self._queued.popleft()[1], False, broken)
            self._next_batch()
            return
        self._opened()

    def _opened(self) -> None:
        assert self._loop is not None
        self._state = _Batch.OPEN
        self._loop.call_soon(self._flush)  # after the units this turn of the loop brings
        self._read_ahead()
        while self._queued and self._state is _Batch.OPEN and len(self._batch) < self._max_batch:
            unit, future = self._queued.popleft()
            self._execute(unit, future)

    def _read_ahead(self) -> None:
        """Read what the queued units of the batch read first (a unit's ``reads_ahead``:
        documents, and counts) in one statement, when two or more say. A failure only costs
        the units their own reads: the statement runs in a savepoint of its own."""
        if not self.reads_ahead:
            return
        units = [unit for unit, _ in itertools.islice(self._queued, self._max_batch)
                 if getattr(unit, "reads_ahead", None)]
        if len(units) < 2:
            return
        conn = self._conn
        try:
            conn.execute("SAVEPOINT read_ahead")
            self._changes.read_ahead(conn, [scope for unit in units  # type: ignore[union-attr]
                                            for scope in unit.reads_ahead])
            conn.execute("RELEASE read_ahead")
            self.stats.units_read_ahead += len(units)
        except sqlite3.Error as exc:
            log.warning("reading ahead for a batch failed: %s", exc)
            self._changes.forget_ahead()  # type: ignore[union-attr]
            try:
                conn.execute("ROLLBACK TO read_ahead")
                conn.execute("RELEASE read_ahead")
            except sqlite3.Error:
                pass  # the transaction is gone: the units' own statements fail the batch

    def _execute(self, unit: Unit, future: asyncio.Future) -> None:
        try:
            ok, value, rows = self._apply(unit)
            self._rows.extend(rows)
            if self._sends_ahead is not None and len(self._rows) >= RECORDS_SENT_AHEAD:
                append_events(self._conn, self._rows)
                self._rows = []
                self._sends_ahead()
        except Exception as exc:  # the transaction broke: the whole batch fails
            self._abort(exc, future)
            return
        self._batch.append((future, ok, value))

    def _flush(self) -> None:
        if self._state is not _Batch.OPEN:  # a stale flush of an aborted batch
            return
        assert self._loop is not None
        try:
            append_events(self._conn, self._rows)
        except Exception as exc:
            self._abort(exc, None)
            return
        batch, self._batch, self._rows = self._batch, [], []
        self._state = _Batch.COMMITTING
        self._helper().submit(self._loop, functools.partial(self._commit, len(batch)),
                              functools.partial(self._committed, batch))

    def _commit(self, size: int) -> bool:
        """COMMIT, then open the next transaction at once if units queued meanwhile and no
        other thread waits for its turn (the batch is answered only after this returns)."""
        try:
            self._conn.execute("COMMIT")
        except Exception as exc:
            raise self._roll_back(exc, size) from exc
        finally:
            self._turns.release()
        if not self._queued:
            return False
        try:
            return self._open_transaction(unless_waited_for=True)
        except Exception:  # the loop's own BEGIN retries it and fails the units if it must
            return False

    def _committed(self, batch: list[tuple[asyncio.Future, bool, Any]],
                   failure: BaseException | None, reopened: bool) -> None:
        if self._state is not _Batch.COMMITTING:  # stopped meanwhile
            return
        if failure is None:
            self._count(len(batch))
            self._last_batch = len(batch)
            for future, ok, value in batch:
                _settle(future, ok, value)
            if reopened:
                self._opened()
                return
        else:
            for future, _, _ in batch:
                _settle(future, False, failure)
        self._next_batch()

    def _abort(self, exc: Exception, also: asyncio.Future | None) -> None:
        """The open transaction broke: roll it back and fail every unit in it."""
        broken = self._roll_back(exc, len(self._batch) + (also is not None))
        self._turns.release()
        for future, _, _ in self._batch:
            _settle(future, False, broken)
        if also is not None:
            _settle(also, False, broken)
        self._batch, self._rows = [], []
        self._next_batch()

    def _next_batch(self) -> None:
        """After a batch has ended: begin the next one if units wait, else rest (and wake
        a drain)."""
        self._state = _Batch.IDLE
        if self._queued:
            self._begin()
        elif self._idle is not None:
            self._idle.set()

    # Shared by both paths.

    def _apply(self, unit: Unit) -> tuple[bool, Any, list[EventRow]]:
        """Run one unit in the open transaction: (True, result, rows), or (False, its
        exception, []) with its writes undone. Raises when the transaction itself broke."""
        conn = self._conn
        read_only = getattr(unit, "read_only", False)
        guarded = not (read_only or getattr(unit, "undoes_itself", False))
        if guarded:
            conn.execute("SAVEPOINT unit")
        changes_before = conn.total_changes
        try:
            result, rows = unit(conn)
        except BaseException as exc:  # a unit's failure must not sink its batch
            if guarded:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
            elif read_only and conn.total_changes != changes_before:
                # a read-only unit wrote, then failed: only the whole transaction can undo it
                raise StoreUnavailable("a read-only unit wrote and failed") from exc
            if not read_only:  # its writes were undone: so is what was cached since
                self._invalidate_caches()
            self._still_open(exc)
            return False, exc, []
        if guarded:
            conn.execute("RELEASE unit")
        self._still_open(None)
        return True, result, rows

    def _still_open(self, cause: BaseException | None) -> None:
        """Fail the batch if the store ended its transaction during a unit (SQLite rolls the
        whole transaction back on an I/O error): later statements would each commit alone."""
        if not self._conn.in_transaction:
            raise StoreUnavailable("the store ended the transaction during a unit") from cause

    def _roll_back(self, exc: BaseException, size: int) -> StoreUnavailable:
        """Undo the open transaction after ``exc``; returns the failure its units get."""
        log.error("batch of %d failed to commit: %s", size, exc)
        self.stats.failed_commits += 1
        self.stats.last_failure, self.stats.last_failure_at = str(exc), time.monotonic()
        self.stats.failures_in_a_row += 1
        if self._on_commit is not None:
            self._on_commit(self.stats)  # the failure, for /metrics
        self._invalidate_caches()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))

    def _invalidate_caches(self) -> None:
        if self._changes is not None:
            self._changes.bump(None)

    def _count(self, size: int) -> None:
        self.stats.units += size
        self.stats.commits += 1
        self.stats.last_failure, self.stats.failures_in_a_row = None, 0
        self.stats.max_batch = max(self.stats.max_batch, size)
        if self._on_commit is not None:
            self._on_commit(self.stats)


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():  # the caller went away
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
