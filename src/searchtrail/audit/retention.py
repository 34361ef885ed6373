"""Retention: records older than the event-history window leave the store once every trail
that takes them has them in a delivered log file, the oldest first, a few per writer unit; the
log-file and digest rows of that age follow, and a deleted trail's last ones with them."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from datetime import datetime
from typing import Callable, Collection, Iterable, Mapping

import orjson

from searchtrail.audit.delivery import (OWN_LOG_FILE, TrailStart, chain_ends, claimed_through,
                                        trail_chains)
from searchtrail.audit.record import lookup_values
from searchtrail.store.lookupkeys import lookup_key
from searchtrail.store.sqlite.events import last_event_seq
from searchtrail.store.sqlite.writer import GroupCommitWriter

log = logging.getLogger("searchtrail.retention")

# Records removed per pass, at most: the oldest expired ones (a pass a second by default).
PRUNE_BATCH = 2_000
# While calls are recorded too, a few units per this many seconds: removing a record costs about
# what recording it did (bench/README.md, "Retention"), so a backlog yields to a busy API and
# catches up when it is quiet.
BUSY_PAUSE_SECONDS = 1.0
# The units per pause beside a busy API: one while the oldest expired record is less than a day
# past the window, one more for each further day, up to this many (1,000 records a second): a
# backlog yields to the API and catches up in its quiet spells.
MAX_BUSY_UNITS = 10
# Once the oldest expired record is a day or more past the window, quiet spells have not been
# enough: the units per pause also keep pace with the records expiring now (those stored per
# second in the last this-many seconds before the window's edge), one unit more. An API busy
# around the clock faster than MAX_BUSY_UNITS removes would otherwise grow the store until its
# disk is full, where every call fails closed; so retention takes its share of the API's time
# instead, and the store stays about a day past the window.
KEEP_PACE_SPAN_SECONDS = 60
# Keeping pace counts the seconds since the last look, which a pass's own length and the delivery
# worker's tick stretch past BUSY_PAUSE_SECONDS, up to this many.
KEEP_PACE_MAX_PERIOD_SECONDS = 5.0
# Units a pass at most while keeping pace: 20,000 records, more than a node records in a
# second. Records stored out of time order (imported, or a clock stepped) can make the count by
# seqs a guess; a wild one must not keep the delivery worker, whose thread runs the passes, for
# long.
KEEP_PACE_MAX_UNITS = 200
# Records removed per writer unit. Each takes its lookup rows (~7, ~10 µs each to delete on a
# slow host) and outbox rows with it, so a unit holds the API's commits for ~10 ms; the API's
# batches take their turns between units.
PRUNE_UNIT = 100
# How often the store is asked whether records have expired, once it has caught up (default).
PRUNE_INTERVAL_SECONDS = 60.0
# A record's lookup rows sit in their attribute value's range of the primary key (its
# store/lookupkeys.py key), in time order, so a unit's rows of one value are deleted as one
# range: a seek, not a search per row. (An OR of whole keys also works on SQLite, as a
# multi-index OR, but PostgreSQL plans it as a scan.) On PostgreSQL these statements go in one
# round trip (store/postgres/connection.py).
_DELETE_LOOKUP = ("DELETE FROM event_lookup WHERE value_key = ? AND event_time BETWEEN ? AND ? "
                  "AND seq > ? AND seq <= ?")
# Around held records a run is often one record among others of the same second (a failing
# trail in one of two busy Regions): its rows are deleted a second at a time, so the seek
# reaches the run's seqs instead of stepping over every row of the value in its time span.
_DELETE_LOOKUP_AT = ("DELETE FROM event_lookup WHERE value_key = ? AND event_time = ? "
                     "AND seq > ? AND seq <= ?")
_MARK = "SELECT pruned_through FROM retention"
_OLDEST = ("SELECT seq, account, region, event_time, record FROM events WHERE seq > ? "
           "AND seq <= ? ORDER BY seq LIMIT ?")
_OLDEST_TIME = "SELECT event_time, seq FROM events WHERE seq > ? ORDER BY seq LIMIT 1"
# A trail's rows among records ?2 to ?3: the ones it takes (read from its oldest undelivered).
_TAKEN = "SELECT seq FROM outbox WHERE trail_arn = ? AND seq >= ? AND seq <= ?"
_TIME_FROM = "SELECT event_time FROM events WHERE seq >= ? ORDER BY seq LIMIT 1"
# The trails a table has rows for, by its index led by trail_arn: one seek each. (The outbox's
# rows may wait for a trail deleted since; so may its log-file and digest rows.)
_TRAILS_OF = {table: f"""WITH RECURSIVE trails(arn) AS (
    SELECT min(trail_arn) FROM {table}
    UNION ALL
    SELECT (SELECT min(trail_arn) FROM {table} WHERE trail_arn > trails.arn)
    FROM trails WHERE arn IS NOT NULL)
SELECT arn FROM trails WHERE arn IS NOT NULL"""
              for table in ("outbox", "log_files", "digests", "outbox_claims")}
# Delivery bookkeeping (migration 0012): a chain's log-file rows delivered (and notified) before
# ?4 except its newest file's, and its digest rows ended before ?4 except its newest, the oldest
# ?5 of each. The objects stay in their bucket; the rows only served delivery and the next
# digest. Found on the reader, deleted by the writer.
_CHAIN_FILES = ("FROM log_files WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
                "AND delivered_at < ?4 AND last_seq < ?6 AND notified_at IS NOT NULL "
                "ORDER BY delivered_at LIMIT ?5")
_CHAIN_DIGESTS = ("FROM digests WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
                  "AND end_time < ?4 AND delivered_at IS NOT NULL ORDER BY end_time LIMIT ?5")
# A deleted trail's, once it has no outbox rows left (migration 0013): every row made, or
# digest ended, before ?4, stored or not; no claim, upload or digest follows them any more.
_GONE_FILES = ("FROM log_files WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
               "AND created_at < ?4 ORDER BY id LIMIT ?5")
_GONE_DIGESTS = ("FROM digests WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
                 "AND end_time < ?4 ORDER BY end_time LIMIT ?5")
# The same for a deleted trail under the ARN of one that exists again (migration 0014): its log
# files hold records up to the new trail's RecordsAfterSeq (?6), its digests ended by the new
# trail's CreatedTime (?6).
_OLDER_FILES = ("FROM log_files WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
                "AND last_seq <= ?6 AND created_at < ?4 ORDER BY id LIMIT ?5")
_OLDER_DIGESTS = ("FROM digests WHERE trail_arn = ?1 AND account = ?2 AND region = ?3 "
                  "AND end_time < ?4 AND end_time <= ?6 ORDER BY end_time LIMIT ?5")
# A wall clock that moves this much further than the monotonic one between two looks has been
# stepped (a bad NTP step, a VM restored, a mistyped `date -s`): records it makes look expired
# are not removed for CLOCK_JUMP_HOLD_SECONDS, so a clock that comes back loses no history.
CLOCK_JUMP_SECONDS = 3_600.0
CLOCK_JUMP_HOLD_SECONDS = 86_400.0
# Temporary credentials leave the store this long after they expired (until then a call with
# one answers ExpiredToken, not an unknown key), this many per writer unit.
SESSION_GRACE_SECONDS = 86_400
SESSIONS_PER_UNIT = 500
# How often the log names a trail that keeps expired records in the store (those it takes from
# its oldest undelivered one on; the others are removed around them).
HELD_WARNING_SECONDS = 3_600.0
# Bookkeeping is looked at once an hour (a chain gains a digest row an hour, and a log-file row
# per delivery), and again at the next check while a chain has more than a unit's worth.
BOOKKEEPING_INTERVAL_SECONDS = 3_600.0
BOOKKEEPING_UNIT = 500
_OLDEST_UNCLAIMED = "SELECT min(seq) FROM outbox WHERE trail_arn = ? AND seq > ?"
_HAS_RECORDS_THROUGH = "SELECT 1 FROM outbox WHERE trail_arn = ? AND seq <= ? LIMIT 1"
_HAS_LOG_FILES = "SELECT 1 FROM log_files WHERE trail_arn = ? LIMIT 1"
_HAS_CLAIMS = "SELECT 1 FROM outbox_claims WHERE trail_arn = ?"
_OLDEST_UNDELIVERED = ("SELECT min(first_seq) FROM log_files WHERE trail_arn = ? "
                       f"AND delivered_at IS NULL AND {OWN_LOG_FILE}")


# Where a trail that is gone begins: all its rows are a deleted trail's.
_GONE = TrailStart(records_after=2**63 - 1, created=float("inf"))
# A bookkeeping DELETE's table, its rows' FROM clause and the clause's parameters.
_Statement = tuple[str, str, tuple]


class EventRetention:
    """Removes expired records in the background of the delivery worker's passes."""

    def __init__(self, retention_days: int, clock: Callable[[], datetime],
                 ticks: Callable[[], float] = time.monotonic,
                 interval_seconds: float = PRUNE_INTERVAL_SECONDS,
                 removed: Callable[[int], None] | None = None,
                 rows_removed: Callable[[str, int], None] | None = None,
                 overdue: Callable[[float], None] | None = None,
                 purge_sessions: Callable[[sqlite3.Connection, int, int], int] | None = None
                 ) -> None:
        """``removed`` is told how many records each pass removed, ``rows_removed`` how many
        rows of log_files and of digests (the /metrics counters), ``overdue`` after each look
        how long past the window the oldest record still stored is (0: none is).
        ``purge_sessions(conn, before_epoch, limit)`` deletes up to ``limit`` temporary
        credentials expired before then, with the bookkeeping (STS sessions are otherwise
        kept for good: a test suite assuming a role per test grows the store without end)."""
        self._days = retention_days
        self._keep_seconds = retention_days * 86_400
        self._interval = interval_seconds
        self._clock = clock
        self._ticks = ticks
        self._removed = removed
        self._rows_removed = rows_removed
        self._next_check: float | None = None
        self._next_bookkeeping: float | None = None
        self._last_look: float | None = None
        self._backlog_removed = 0  # since expired records were last found waiting
        self._overdue = overdue
        self._purge_sessions = purge_sessions
        self._last_times: tuple[float, float] | None = None  # (wall, monotonic) at the last look
        self._hold_until = float("-inf")  # monotonic: no removal before, after a clock jump
        self._held_warned: dict[str, float] = {}  # trail ARN -> ticks of its last warning
        # where removing around held records stopped, the trails holding records up to it and
        # the event time of the last record it removed
        self._around: tuple[int, dict[str, int], int | None] | None = None

    def run_due(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                trail_arns: Iterable[str] | Mapping[str, TrailStart],
                validating: Collection[str] = ()) -> int:
        """Remove expired records if it is time to look; returns how many. When more wait, the
        next pass looks again at once, or after BUSY_PAUSE_SECONDS if the API was busy. Expired
        log-file and digest rows go once an hour (``validating``: the trails writing digests).
        ``trail_arns``: the existing trails, or a mapping of each to where its own rows
        begin."""
        ticks = self._ticks()
        if self._next_check is not None and ticks < self._next_check:
            return 0
        self._next_check = ticks + self._interval  # a failed pass waits as long
        if self._clock_jumped(ticks):
            return 0
        trails = _with_starts(trail_arns)
        since = BUSY_PAUSE_SECONDS if self._last_look is None else ticks - self._last_look
        self._last_look = ticks
        try:
            removed, pause = self.prune_batch(
                conn, writer, trails,
                period=min(max(since, BUSY_PAUSE_SECONDS), KEEP_PACE_MAX_PERIOD_SECONDS))
            if self._next_bookkeeping is None or ticks >= self._next_bookkeeping:
                more = self.prune_bookkeeping(conn, writer, validating, trails)[2]
                more = self._purge_expired_sessions(writer) or more
                self._next_bookkeeping = ticks + (0 if more else BOOKKEEPING_INTERVAL_SECONDS)
        except sqlite3.IntegrityError as exc:
            # the store's trigger judged a row too young: its clock is behind this node's
            log.warning("expired records were not removed: the store refused (%s); is the "
                        "database server's clock a day or more behind this node's?", exc,
                        extra={"error": str(exc)})
            return 0
        if pause is not None:
            self._next_check = ticks + pause
        self._account(removed, caught_up=pause is None)
        return removed

    def _purge_expired_sessions(self, writer: GroupCommitWriter) -> bool:
        """Delete a unit's worth of temporary credentials expired a day ago or more (until
        then they answer ExpiredToken); whether more may wait."""
        if self._purge_sessions is None:
            return False
        before = int(self._clock().timestamp()) - SESSION_GRACE_SECONDS
        purge = self._purge_sessions
        purged = writer.run_blocking(lambda conn: (purge(conn, before, SESSIONS_PER_UNIT), []))
        if purged:
            log.info("removed %d temporary credentials expired a day or more ago", purged,
                     extra={"sessions": purged})
        return purged >= SESSIONS_PER_UNIT

    def _clock_jumped(self, ticks: float) -> bool:
        """Whether removal waits: the wall clock jumped ahead of the monotonic one since the
        last look (or did less than CLOCK_JUMP_HOLD_SECONDS ago)."""
        wall = self._clock().timestamp()
        last, self._last_times = self._last_times, (wall, ticks)
        if last is not None:
            ahead = (wall - last[0]) - (ticks - last[1])
            if ahead > CLOCK_JUMP_SECONDS:
                self._hold_until = ticks + CLOCK_JUMP_HOLD_SECONDS
                log.warning("the wall clock jumped %.1f days ahead; no record is removed for "
                            "%d hours, so that a clock set back meanwhile loses no history",
                            ahead / 86_400, CLOCK_JUMP_HOLD_SECONDS // 3_600,
                            extra={"jump_seconds": round(ahead)})
        return ticks < self._hold_until

    def _account(self, removed: int, *, caught_up: bool) -> None:
        """Count what a pass removed; a line in the log when a backlog starts and ends."""
        if removed and self._removed is not None:
            self._removed(removed)
        if removed and not self._backlog_removed:
            log.info("removing records older than %d days, the oldest first", self._days,
                     extra={"retention_days": self._days})
        self._backlog_removed += removed
        if caught_up and self._backlog_removed:
            log.info("removed %d records older than %d days; nothing more to remove for now",
                     self._backlog_removed, self._days,
                     extra={"records": self._backlog_removed, "retention_days": self._days})
            self._backlog_removed = 0

    def prune_batch(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                    trail_arns: Iterable[str] | Mapping[str, TrailStart],
                    period: float = BUSY_PAUSE_SECONDS) -> tuple[int, float | None]:
        """Remove up to PRUNE_BATCH of the oldest expired records (more while keeping pace),
        in units of ``writer`` of PRUNE_UNIT records each, read on ``conn`` (a reader).
        Returns the records removed and the seconds until the next look: 0 when more wait,
        BUSY_PAUSE_SECONDS when calls were recorded beside as many units as the backlog's
        lateness allows (the pass stops there; see MAX_BUSY_UNITS and
        KEEP_PACE_SPAN_SECONDS), None once caught up.

        A record stays while an existing trail that takes it has not delivered it: unclaimed,
        or in a log file not stored yet (a retry reads its records again). The mark stops below
        the oldest such record; the expired records above it that no undelivering trail takes
        leave around the ones that stay (``_prune_around``). ``trail_arns`` as in ``run_due``;
        ``period``: the seconds since the last pass began, for keeping pace."""
        mark = conn.execute(_MARK).fetchone()[0]
        cutoff = int(self._clock().timestamp()) - self._keep_seconds
        oldest = conn.execute(_OLDEST_TIME, (mark,)).fetchone()
        if oldest is None or oldest[0] >= cutoff:
            if self._overdue is not None:
                self._overdue(0.0)
            return 0, None  # the usual answer: one seek, no record read
        newest = last_event_seq(conn)
        top = bound = newest - 1  # the newest stays: seqs follow it
        holder = None  # the trail whose undelivered records set the bound
        held: dict[str, int] = {}  # each trail's oldest undelivered record below the newest
        for arn, start in _with_starts(trail_arns).items():
            undelivered = self._undelivered_from(conn, arn, start.records_after)
            if undelivered <= top:
                held[arn] = int(undelivered)
            if undelivered - 1 < bound:
                bound, holder = int(undelivered) - 1, arn
        outbox_trails = [arn for (arn,) in conn.execute(_TRAILS_OF["outbox"]).fetchall()]
        around_start = self._around_start(held, bound) if holder is not None else (bound, None)
        if oldest[1] > bound:
            # the oldest is held: removal is as late as the record it last removed around them
            # (none yet: judged not late, so a backlog yields to a busy API until one is found)
            oldest = (around_start[1] or cutoff, 0)
        days_late = (cutoff - oldest[0]) // 86_400
        busy_allowance = min(MAX_BUSY_UNITS, 1 + days_late)
        most = PRUNE_BATCH
        expiring = _expiring_units(conn, mark, newest, cutoff, period) if days_late >= 1 else 0
        if expiring:
            keeping_pace = min(1 + expiring, KEEP_PACE_MAX_UNITS)
            busy_allowance = max(busy_allowance, keeping_pace)
            most = max(most, keeping_pace * PRUNE_UNIT)  # a quiet API's pass no shorter
        removed, more, busy_units, young = 0, True, 0, False
        while more and removed < most and busy_units < busy_allowance:
            limit = min(PRUNE_UNIT, most - removed)
            unit_rows, young = _expired_rows(conn, mark, bound, limit, cutoff)
            more = len(unit_rows) == limit
            if not unit_rows:
                break
            through = unit_rows[-1][0]
            writer.run_blocking(_prune_unit([(mark, unit_rows)], outbox_trails, mark=through))
            mark, removed = through, removed + len(unit_rows)
            busy_units, newest = _busy(conn, busy_units, newest)
        if not more and not young and holder is not None:
            # the mark waits at a trail that has not delivered: the expired records above it
            # that no such trail takes leave around the ones that stay
            around, more, busy_units, newest = self._prune_around(
                conn, writer, held, around_start, top, cutoff, (most - removed, busy_allowance),
                (busy_units, newest), outbox_trails)
            removed += around
        if removed:
            log.debug("removed %d records older than the retention window", removed,
                      extra={"records": removed, "through_seq": mark})
        if not more:
            self._held(conn, mark, cutoff, holder)
            return removed, None
        return removed, BUSY_PAUSE_SECONDS if busy_units >= busy_allowance else 0.0

    def _prune_around(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                      held: dict[str, int], start: tuple[int, int | None], top: int,
                      cutoff: int, budget: tuple[int, int], busy: tuple[int, int],
                      outbox_trails: list[str]) -> tuple[int, bool, int, int]:
        """Remove the expired records in (``start``'s seq, ``top``] that no trail of ``held``
        (each one's oldest undelivered record) takes, a unit at a time, looking at up to
        ``budget``'s records while fewer than its busy units have gone (``busy``: those so
        far and the newest seq seen). Returns the records removed, whether more may wait, the
        busy units and the newest seq. ``start``: ``_around_start``'s, so each pass goes on
        where the last one stopped."""
        most, busy_allowance = budget
        busy_units, newest = busy
        after, removed_time = start
        removed = looked = 0
        more = True
        while more and looked < most and busy_units < busy_allowance:
            limit = min(PRUNE_UNIT, most - looked)
            rows, _ = _expired_rows(conn, after, top, limit, cutoff)
            more = len(rows) == limit
            if not rows:
                break
            looked += len(rows)
            first, last = rows[0][0], rows[-1][0]
            taken: set[int] = set()
            for arn, undelivered in held.items():
                if undelivered <= last:
                    taken.update(seq for (seq,) in conn.execute(
                        _TAKEN, (arn, max(first, undelivered), last)).fetchall())
            runs = _runs_around(after, rows, taken)
            if runs:
                writer.run_blocking(_prune_unit(runs, outbox_trails))
                removed += sum(len(run_rows) for _, run_rows in runs)
                removed_time = runs[-1][1][-1][3]
                busy_units, newest = _busy(conn, busy_units, newest)
            after = last
            self._around = (after, _held_through(held, after), removed_time)
        return removed, more, busy_units, newest

    def _around_start(self, held: dict[str, int], bound: int) -> tuple[int, int | None]:
        """Where removing around held records goes on, and the event time of the record it
        last removed there (None: none yet): where the last pass stopped, while the trails
        holding records up to there have not moved; else from ``bound``."""
        if self._around is not None:
            cursor, seen, removed_time = self._around
            if cursor > bound and _held_through(held, cursor) == seen:
                return cursor, removed_time
        return bound, None

    def _held(self, conn: sqlite3.Connection, mark: int, cutoff: int,
              holder: str | None) -> None:
        """After a pass that removed all it could: how long past the window the oldest record
        left is, to /metrics, and (once an hour) the trail that keeps it in the log."""
        oldest = conn.execute(_OLDEST_TIME, (mark,)).fetchone()
        overdue = max(0, cutoff - oldest[0]) if oldest is not None else 0
        if self._overdue is not None:
            self._overdue(float(overdue))
        if not overdue or holder is None:
            return
        ticks = self._ticks()
        warned = self._held_warned.get(holder)
        if warned is not None and ticks - warned < HELD_WARNING_SECONDS:
            return
        self._held_warned[holder] = ticks
        log.warning("records older than %d days that trail %s takes stay in the store (the "
                    "oldest %.1f days past): it has not delivered them (get-trail-status says "
                    "why); fix or delete it, and they go",
                    self._days, holder, overdue / 86_400,
                    extra={"trail": holder, "overdue_seconds": overdue})

    def prune_bookkeeping(self, conn: sqlite3.Connection, writer: GroupCommitWriter,
                          validating: Collection[str],
                          existing: Iterable[str] | Mapping[str, TrailStart] | None = None
                          ) -> tuple[int, int, bool]:
        """Remove the log-file and digest rows past the window, up to BOOKKEEPING_UNIT of each
        per chain (trail, account, region) in a writer unit of its own, read on ``conn``.
        Returns the log-file rows and digest rows removed, and whether a chain has more.

        A chain keeps its newest log file's row (its claimed-through mark) and its newest
        digest's (the next one's previous), and, while its trail writes digests (a trail in
        ``validating``), every file no digest lists yet. A trail not in ``existing`` (the
        trails there are, with where their own rows begin; None: every trail with rows) has
        been deleted: once it has no outbox rows left, all its rows past the window go, stored
        or not, and then its claim mark. So do the rows a deleted trail left under the ARN of
        one made again, once its records have left (a trail whose start is not known, 0, owns
        every row under its ARN)."""
        cutoff = int(self._clock().timestamp()) - self._keep_seconds
        starts = None if existing is None else _with_starts(existing)
        arns = {arn for table in ("log_files", "digests", "outbox_claims")
                for (arn,) in conn.execute(_TRAILS_OF[table]).fetchall()}
        files = digests = marks = 0
        more = False
        for arn in sorted(arns):
            start = None if starts is None else starts.get(arn, _GONE)
            # where a deleted trail's rows under this ARN end, once none of its records are
            # left to claim: nothing follows its newest rows any more
            older = (start if start is not None and start.records_after > 0
                     and conn.execute(_HAS_RECORDS_THROUGH,
                                      (arn, start.records_after)).fetchone() is None else None)
            gone = older is _GONE
            for account, region in sorted(trail_chains(conn, arn)):
                chain = (arn, account, region)
                if gone:
                    statements = self._gone_statements(chain, cutoff)
                else:
                    statements = self._chain_statements(conn, chain, cutoff, arn in validating)
                    if older is not None:
                        statements += self._older_statements(chain, cutoff, older)
                statements = [(table, rows_from, args) for table, rows_from, args in statements
                              if conn.execute(f"SELECT 1 {rows_from}", args).fetchone()]
                if not statements:
                    continue  # the usual answer: nothing of this chain has expired
                removed_files, removed_digests, full = writer.run_blocking(
                    _prune_bookkeeping_unit(statements))
                files, digests = files + removed_files, digests + removed_digests
                more = more or full
            if (gone and conn.execute(_HAS_LOG_FILES, (arn,)).fetchone() is None
                    and conn.execute(_HAS_CLAIMS, (arn,)).fetchone() is not None):
                marks += writer.run_blocking(_forget_claims_unit(arn))
        if files or digests or marks:
            log.debug("removed %d log-file, %d digest and %d claim-mark rows older than %d days",
                      files, digests, marks, self._days,
                      extra={"log_files": files, "digests": digests, "outbox_claims": marks})
            if self._rows_removed is not None:
                self._rows_removed("log_files", files)
                self._rows_removed("digests", digests)
                if marks:
                    self._rows_removed("outbox_claims", marks)
        return files, digests, more

    @staticmethod
    def _gone_statements(chain: tuple[str, str, str], cutoff: int) -> list[_Statement]:
        """A deleted trail's chain: every row made, or digest ended, before ``cutoff``."""
        return [("log_files", _GONE_FILES, (*chain, cutoff, BOOKKEEPING_UNIT)),
                ("digests", _GONE_DIGESTS, (*chain, cutoff, BOOKKEEPING_UNIT))]

    @staticmethod
    def _older_statements(chain: tuple[str, str, str], cutoff: int,
                          start: TrailStart) -> list[_Statement]:
        """An existing trail's chain: what a deleted trail of its ARN left before ``start``,
        made, or ended, before ``cutoff``."""
        return [("log_files", _OLDER_FILES,
                 (*chain, cutoff, BOOKKEEPING_UNIT, start.records_after)),
                ("digests", _OLDER_DIGESTS, (*chain, cutoff, BOOKKEEPING_UNIT, start.created))]

    @staticmethod
    def _chain_statements(conn: sqlite3.Connection, chain: tuple[str, str, str], cutoff: int,
                          validating: bool) -> list[_Statement]:
        """An existing trail's chain: its rows before ``cutoff`` but its newest ones, and, while
        it writes digests, the files no digest lists yet."""
        last_seq, last_end = chain_ends(conn, *chain)
        files_before: float = cutoff
        if validating:  # files delivered since its last digest ended wait
            files_before = 0 if last_end is None else min(cutoff, last_end)
        return [("log_files", _CHAIN_FILES,
                 (*chain, files_before, BOOKKEEPING_UNIT, last_seq or 0)),
                ("digests", _CHAIN_DIGESTS,
                 (*chain, min(cutoff, last_end or cutoff), BOOKKEEPING_UNIT))]

    @staticmethod
    def _undelivered_from(conn: sqlite3.Connection, arn: str, records_after: int) -> float:
        """The trail's oldest record not yet in a delivered log file (infinity: none). Records
        up to ``records_after`` were a deleted trail's under the same ARN (delivery.py)."""
        through = max(claimed_through(conn, arn) or 0, records_after)
        candidates = [conn.execute(_OLDEST_UNCLAIMED, (arn, through)).fetchone()[0],
                      conn.execute(_OLDEST_UNDELIVERED, (arn, records_after)).fetchone()[0]]
        return min((seq for seq in candidates if seq is not None), default=float("inf"))


def _with_starts(trail_arns: Iterable[str] | Mapping[str, TrailStart]
                 ) -> Mapping[str, TrailStart]:
    """Each existing trail's ARN and where its own rows begin (from the start when only the
    ARNs are given)."""
    if isinstance(trail_arns, Mapping):
        return trail_arns
    return dict.fromkeys(trail_arns, TrailStart())


def _expiring_units(conn: sqlite3.Connection, mark: int, newest: int, cutoff: int,
                    period: float) -> int:
    """The units per ``period`` seconds that remove records as fast as they expire now: those
    stored per second in the KEEP_PACE_SPAN_SECONDS before ``cutoff``, counted by seqs."""
    first = _seq_stored_from(conn, mark + 1, newest + 1, cutoff - KEEP_PACE_SPAN_SECONDS)
    edge = _seq_stored_from(conn, first, newest + 1, cutoff)
    per_second = (edge - first) / KEEP_PACE_SPAN_SECONDS
    return math.ceil(per_second * period / PRUNE_UNIT)


def _seq_stored_from(conn: sqlite3.Connection, low: int, high: int, moment: int) -> int:
    """The least seq in [low, high] from which records were stored at ``moment`` or later,
    by bisection: seqs follow event times, near enough (a batch's calls share a commit)."""
    while low < high:
        middle = (low + high) // 2
        row = conn.execute(_TIME_FROM, (middle,)).fetchone()
        if row is None or row[0] >= moment:
            high = middle
        else:
            low = middle + 1
    return low


def _lookup_spans(rows: list[tuple]) -> dict[int, tuple[int, int]]:
    """The lookup rows of these records (seq, account, region, event time, record): for each
    key (account, Region, attribute and value), the first and last event time among them."""
    spans: dict[int, tuple[int, int]] = {}
    for _, account, region, event_time, record in rows:
        for attr, value in lookup_values(orjson.loads(record)):
            key = lookup_key(account, region, attr, value)
            first, last = spans.get(key, (event_time, event_time))
            spans[key] = (min(first, event_time), max(last, event_time))
    return spans


def _lookup_seconds(rows: list[tuple]) -> set[tuple[int, int]]:
    """The lookup rows of these records (seq, account, region, event time, record): each key
    (account, Region, attribute and value) with each event time it has among them."""
    return {(lookup_key(account, region, attr, value), event_time)
            for _, account, region, event_time, record in rows
            for attr, value in lookup_values(orjson.loads(record))}


def _prune_unit(ranges: list[tuple[int, list[tuple]]], outbox_trails: list[str],
                mark: int | None = None) -> Callable[[sqlite3.Connection], tuple[None, list]]:
    """A writer unit deleting each range's records: (after, rows), the rows being every record
    stored in (after, the last row's seq]. Outbox rows first (they refer to the records), then
    lookup rows, then the records. ``mark``: first moved to there (None: the ranges lie above
    the mark, around records a trail holds; the store lets expired ones go there, and their
    lookup rows go a second at a time)."""
    if mark is None:
        lookups = [(after, rows[-1][0], _DELETE_LOOKUP_AT, list(_lookup_seconds(rows)))
                   for after, rows in ranges]
    else:
        lookups = [(after, rows[-1][0], _DELETE_LOOKUP,
                    [(key, *span) for key, span in _lookup_spans(rows).items()])
                   for after, rows in ranges]

    def unit(conn: sqlite3.Connection) -> tuple[None, list]:
        if mark is not None:
            # another node may have pruned further since the read; the mark never goes back
            conn.execute("UPDATE retention SET pruned_through = ? WHERE pruned_through < ?",
                         (mark, mark))
        for after, through, statement, keys in lookups:
            for arn in outbox_trails:
                conn.execute("DELETE FROM outbox WHERE trail_arn = ? AND seq > ? AND seq <= ?",
                             (arn, after, through))
            for key in keys:
                conn.execute(statement, (*key, after, through))
            conn.execute("DELETE FROM events WHERE seq > ? AND seq <= ?", (after, through))
        return None, []

    return unit


def _expired_rows(conn: sqlite3.Connection, after: int, through: int, limit: int,
                  cutoff: int) -> tuple[list[tuple], bool]:
    """Up to ``limit`` records stored in (after, through], in seq order, up to the first not
    expired by ``cutoff`` (a later record may be older, a clock stepped back: it waits), and
    whether one such stopped them."""
    rows = []
    for row in conn.execute(_OLDEST, (after, through, limit)).fetchall():
        if row[3] >= cutoff:
            return rows, True
        rows.append(row)
    return rows, False


def _busy(conn: sqlite3.Connection, busy_units: int, newest: int) -> tuple[int, int]:
    """After a unit: the busy units so far (one more if calls were recorded since the last
    unit, on any worker or node; this process's writer sees only its own commits) and the
    newest seq."""
    latest = last_event_seq(conn)
    return busy_units + (latest > newest), latest


def _held_through(held: dict[str, int], seq: int) -> dict[str, int]:
    """The trails holding records at or below ``seq``, each with its oldest undelivered."""
    return {arn: undelivered for arn, undelivered in held.items() if undelivered <= seq}


def _runs_around(after: int, rows: list[tuple], taken: set[int]
                 ) -> list[tuple[int, list[tuple]]]:
    """The runs of consecutive ``rows`` (every record stored after ``after``, in seq order)
    whose seqs are not in ``taken``, each with the seq just before it."""
    runs: list[tuple[int, list[tuple]]] = []
    current: list[tuple] | None = None
    previous = after
    for row in rows:
        if row[0] in taken:
            current = None
        else:
            if current is None:
                current = []
                runs.append((previous, current))
            current.append(row)
        previous = row[0]
    return runs


def _forget_claims_unit(arn: str) -> Callable[[sqlite3.Connection], tuple[int, list]]:
    """A writer unit deleting a deleted trail's claim mark (the store's trigger checks again
    that the trail, its outbox rows and its log-file rows are gone)."""

    def unit(conn: sqlite3.Connection) -> tuple[int, list]:
        return conn.execute("DELETE FROM outbox_claims WHERE trail_arn = ?", (arn,)).rowcount, []

    return unit


def _prune_bookkeeping_unit(statements: list[_Statement]
                            ) -> Callable[[sqlite3.Connection], tuple[tuple[int, int, bool], list]]:
    """A writer unit deleting a chain's expired log-file and digest rows (the statements'
    bounds were read before it; the store's triggers check each row again). Returns the
    log-file and digest rows removed, and whether a statement removed as many as it may."""

    def unit(conn: sqlite3.Connection) -> tuple[tuple[int, int, bool], list]:
        removed = {"log_files": 0, "digests": 0}
        full = False
        for table, rows_from, args in statements:
            count = conn.execute(f"DELETE FROM {table} WHERE id IN (SELECT id {rows_from})",
                                 args).rowcount
            removed[table] += count
            full = full or count >= BOOKKEEPING_UNIT
        return (removed["log_files"], removed["digests"], full), []

    return unit
