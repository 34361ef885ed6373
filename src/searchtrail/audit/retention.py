"""Retention: records older than the event-history window leave the store once every trail
that takes them has them in a delivered log file; the oldest first, a batch per writer unit."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import datetime
from typing import Callable, Iterable

import orjson

from searchtrail.audit.record import lookup_values
from searchtrail.store.sqlite.writer import GroupCommitWriter

log = logging.getLogger("searchtrail.retention")

# Records removed per pass, at most: the oldest expired ones.
PRUNE_BATCH = 2_000
# Records removed per writer unit. Each takes its lookup rows (~8, at ~8 us each to delete from
# their scattered index pages on a slow host) and outbox rows with it, so a unit holds the
# API's commits for under ~10 ms; the API's batches take their turns between units.
PRUNE_UNIT = 100
# How often the store is asked whether records have expired, once it has caught up (default).
PRUNE_INTERVAL_SECONDS = 60.0
# Lookup rows deleted per statement (six parameters each), by their whole primary key.
_LOOKUP_CHUNK = 50
_LOOKUP_KEY = "(account = ? AND region = ? AND attr = ? AND value = ? AND event_time = ? AND seq = ?)"
_DELETE_LOOKUP = "DELETE FROM event_lookup WHERE " + " OR ".join([_LOOKUP_KEY] * _LOOKUP_CHUNK)
_MARK = "SELECT pruned_through FROM retention"
_OLDEST = ("SELECT seq, account, region, event_time, record FROM events WHERE seq > ? "
           "AND seq <= ? ORDER BY seq LIMIT ?")
_OLDEST_TIME = "SELECT event_time FROM events WHERE seq > ? ORDER BY seq LIMIT 1"
_NEWEST = "SELECT coalesce(max(seq), 0) FROM events"
# The trails whose outbox rows may wait, by the UNIQUE (trail_arn, seq) index: one seek each.
_OUTBOX_TRAILS = """WITH RECURSIVE trails(arn) AS (
    SELECT min(trail_arn) FROM outbox
    UNION ALL
    SELECT (SELECT min(trail_arn) FROM outbox WHERE trail_arn > trails.arn)
    FROM trails WHERE arn IS NOT NULL)
SELECT arn FROM trails WHERE arn IS NOT NULL"""
_CLAIMED_THROUGH = "SELECT through_seq FROM outbox_claims WHERE trail_arn = ?"
_OLDEST_UNCLAIMED = "SELECT min(seq) FROM outbox WHERE trail_arn = ? AND seq > ?"
_OLDEST_UNDELIVERED = ("SELECT min(first_seq) FROM log_files WHERE trail_arn = ? "
                       "AND delivered_at IS NULL")


class EventRetention:
    """Removes expired records in the background of the delivery worker's passes."""

    def __init__(self, retention_days: int, clock: Callable[[], datetime],
                 ticks: Callable[[], float] = time.monotonic,
                 interval_seconds: float = PRUNE_INTERVAL_SECONDS) -> None:
        self._keep_seconds = retention_days * 86_400
        self._interval = interval_seconds
        self._clock = clock
        self._ticks = ticks
        self._next_check: float | None = None

    def run_due(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                trail_arns: Iterable[str]) -> int:
        """Prune one batch if it is time to look; returns the records removed. A full batch
        means more may wait, so the next pass looks again at once."""
        ticks = self._ticks()
        if self._next_check is not None and ticks < self._next_check:
            return 0
        self._next_check = ticks + self._interval  # a failed batch waits as long
        try:
            removed = self.prune_batch(conn, writer, trail_arns)
        except sqlite3.IntegrityError as exc:
            # the store's trigger judged a record too young: its clock is behind this node's
            log.warning("expired records were not removed: the store refused (%s); is the "
                        "database server's clock a day or more behind this node's?", exc,
                        extra={"error": str(exc)})
            return 0
        if removed >= PRUNE_BATCH:
            self._next_check = ticks
        return removed

    def prune_batch(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                    trail_arns: Iterable[str]) -> int:
        """Remove up to PRUNE_BATCH of the oldest expired records, read on ``conn`` (a reader),
        in units of ``writer`` of PRUNE_UNIT records each. A record stays while an existing
        trail has not delivered it: unclaimed, or in a log file not stored yet (a retry reads
        its records again)."""
        mark = conn.execute(_MARK).fetchone()[0]
        cutoff = int(self._clock().timestamp()) - self._keep_seconds
        oldest = conn.execute(_OLDEST_TIME, (mark,)).fetchone()
        if oldest is None or oldest[0] >= cutoff:
            return 0  # the usual answer: one seek, no record read
        bound = conn.execute(_NEWEST).fetchone()[0] - 1  # the newest stays: seqs follow it
        for arn in trail_arns:
            bound = min(bound, self._undelivered_from(conn, arn) - 1)
        if bound <= mark:
            return 0
        expired = []
        for row in conn.execute(_OLDEST, (mark, bound, PRUNE_BATCH)).fetchall():
            if row[3] >= cutoff:
                break  # a later record may be older (a clock stepped back): it waits its turn
            expired.append(row)
        if not expired:
            return 0
        outbox_trails = [arn for (arn,) in conn.execute(_OUTBOX_TRAILS).fetchall()]
        for start in range(0, len(expired), PRUNE_UNIT):
            unit_rows = expired[start:start + PRUNE_UNIT]
            through = unit_rows[-1][0]
            lookup_keys = [(account, region, attr, value, event_time, seq)
                           for seq, account, region, event_time, record in unit_rows
                           for attr, value in dict.fromkeys(lookup_values(orjson.loads(record)))]
            writer.run_blocking(_prune_unit(mark, through, lookup_keys, outbox_trails))
            mark = through
        log.info("removed %d records older than the retention window", len(expired),
                 extra={"records": len(expired), "through_seq": mark})
        return len(expired)

    @staticmethod
    def _undelivered_from(conn: sqlite3.Connection, arn: str) -> float:
        """The trail's oldest record not yet in a delivered log file (infinity: none)."""
        through = (conn.execute(_CLAIMED_THROUGH, (arn,)).fetchone() or (0,))[0]
        candidates = [conn.execute(_OLDEST_UNCLAIMED, (arn, through)).fetchone()[0],
                      conn.execute(_OLDEST_UNDELIVERED, (arn,)).fetchone()[0]]
        return min((seq for seq in candidates if seq is not None), default=float("inf"))


def _prune_unit(mark: int, through: int, lookup_keys: list[tuple], outbox_trails: list[str]
                ) -> Callable[[sqlite3.Connection], tuple[None, list]]:
    """A writer unit moving the mark to ``through`` and deleting what lies at or below it:
    outbox rows first (they refer to the records), then lookup rows, then the records."""

    def unit(conn: sqlite3.Connection) -> tuple[None, list]:
        # another node may have pruned further since the read; the mark never goes back
        conn.execute("UPDATE retention SET pruned_through = ? WHERE pruned_through < ?",
                     (through, through))
        for arn in outbox_trails:
            conn.execute("DELETE FROM outbox WHERE trail_arn = ? AND seq > ? AND seq <= ?",
                         (arn, mark, through))
        for start in range(0, len(lookup_keys), _LOOKUP_CHUNK):
            chunk = lookup_keys[start:start + _LOOKUP_CHUNK]
            chunk += [chunk[-1]] * (_LOOKUP_CHUNK - len(chunk))  # one statement text for all
            conn.execute(_DELETE_LOOKUP, [value for key in chunk for value in key])
        conn.execute("DELETE FROM events WHERE seq > ? AND seq <= ?", (mark, through))
        return None, []

    return unit
