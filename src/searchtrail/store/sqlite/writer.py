"""The group-commit writer: one thread owns the write connection and commits units in batches.

Every request's unit of work (state change plus its CloudTrail record) runs inside one
shared transaction, each in its own savepoint; one COMMIT (one fsync) answers the batch.
A unit marked ``read_only`` writes nothing itself, so it runs without a savepoint.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.events import EventRow, append_events
from searchtrail.store.sqlite.resources import ResourceChanges

log = logging.getLogger("searchtrail.store")

# A unit returns (result, event rows); the rows are inserted with the batch, before COMMIT.
Unit = Callable[[sqlite3.Connection], tuple[Any, list[EventRow]]]


@dataclass
class _Pending:
    unit: Unit
    loop: asyncio.AbstractEventLoop | None
    future: Any  # asyncio.Future or concurrent.futures.Future


@dataclass
class WriterStats:
    units: int = 0
    commits: int = 0
    failed_commits: int = 0
    max_batch: int = 0


class GroupCommitWriter:
    def __init__(self, conn: sqlite3.Connection, *, max_batch: int = 256,
                 changes: ResourceChanges | None = None) -> None:
        self._conn = conn
        self._changes = changes  # told when writes roll back, so caches of them are dropped
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="searchtrail-writer", daemon=True)
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued unit, then end the thread."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join()

    async def run(self, unit: Unit) -> Any:
        """Run a unit in the next batch; returns once its batch has committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._enqueue(_Pending(unit, loop, future))
        return await future

    def run_blocking(self, unit: Unit) -> Any:
        """The same for callers outside an event loop (start-up, CLI-style tasks)."""
        import concurrent.futures

        future: concurrent.futures.Future = concurrent.futures.Future()
        self._enqueue(_Pending(unit, None, future))
        return future.result()

    def _enqueue(self, pending: _Pending) -> None:
        with self._wakeup:
            if self._stopping:
                raise StoreUnavailable("the server is shutting down")
            self._queue.append(pending)
            self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._stopping:
                    self._wakeup.wait()
                if not self._queue and self._stopping:
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
            outcomes = self._commit_batch(batch)
            self._deliver(batch, outcomes)

    def _commit_batch(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            rows: list[EventRow] = []
            for pending in batch:
                guarded = not getattr(pending.unit, "read_only", False)
                if guarded:
                    conn.execute("SAVEPOINT unit")
                changes_before = conn.total_changes
                try:
                    result, unit_rows = pending.unit(conn)
                except BaseException as exc:  # a unit's failure must not sink its batch
                    if guarded:
                        conn.execute("ROLLBACK TO unit")
                        conn.execute("RELEASE unit")
                        self._rolled_back()
                    elif conn.total_changes != changes_before:
                        # a read-only unit wrote, then failed: only the whole batch can undo it
                        raise StoreUnavailable("a read-only unit wrote and failed") from exc
                    outcomes.append((False, exc))
                    continue
                if guarded:
                    conn.execute("RELEASE unit")
                rows.extend(unit_rows)
                outcomes.append((True, result))
            append_events(conn, rows)
            conn.execute("COMMIT")
        except Exception as exc:
            log.error("batch of %d failed to commit: %s", len(batch), exc)
            self.stats.failed_commits += 1
            self._rolled_back()
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            failure = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))
            return [(False, failure)] * len(batch)
        self.stats.units += len(batch)
        self.stats.commits += 1
        self.stats.max_batch = max(self.stats.max_batch, len(batch))
        return outcomes

    def _rolled_back(self) -> None:
        if self._changes is not None:
            self._changes.bump(None)

    def _deliver(self, batch: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, bool, Any]]] = {}
        for pending, (ok, value) in zip(batch, outcomes):
            if pending.loop is None:
                if ok:
                    pending.future.set_result(value)
                else:
                    pending.future.set_exception(value)
            else:
                by_loop.setdefault(pending.loop, []).append((pending.future, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the loop closed while we were committing
                pass


def _settle(items: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in items:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
