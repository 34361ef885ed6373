"""A PostgreSQL connection with the sqlite3 surface the store code is written against: the
same SQL text (translated once per statement), the same transaction statements, and driver
errors raised as sqlite3's classes, so store/errors.py stays the one place translating them.

Every write transaction (``BEGIN IMMEDIATE``) takes one database-wide advisory lock until it
ends: writers on every node take turns exactly as SQLite's single writer does, so event seqs
are allocated and committed in one order, which range claims and eventIDs rely on
(README "Architecture"). Group commit keeps that turn short: one per batch of calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import threading
import time
from typing import Any, Iterator, Sequence

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from searchtrail.store.migrations import check_upgrade, numbered_scripts
from searchtrail.store.sqlite.resources import DELETE_READ_AHEAD, RESOURCE_VERSIONS

# The advisory lock every write transaction holds (any constant shared by all nodes).
WRITE_LOCK_KEY = 0x5EA4C47A11
DEFAULT_BUSY_TIMEOUT_MS = 10_000
# A session idle inside a transaction this long is ended by the server, and its locks freed:
# a node frozen mid-batch (SIGSTOP, a VM paused) must not hold every node's writes for longer
# than this. Shorter than the busy timeout, so the writers waiting behind it get their turn.
IDLE_IN_TRANSACTION_MS = 5_000
# A session waiting for its client this long inside a transaction is stuck: its node froze
# between the statements of one pipeline, where the idle timeout above does not apply (the
# server reports the session active). A writer waiting this long for the write lock ends such
# a holder, so a node frozen there holds the other nodes' writes about as long as an idle one.
STUCK_HOLDER_MS = IDLE_IN_TRANSACTION_MS
_END_STUCK_HOLDER = (
    "SELECT activity.pid, activity.client_addr, pg_terminate_backend(activity.pid) "
    "FROM pg_locks AS held JOIN pg_stat_activity AS activity ON activity.pid = held.pid "
    # a bigint advisory key shows as its high half (classid), low half (objid), objsubid 1
    "WHERE held.locktype = 'advisory' AND held.granted "
    f"AND held.classid = {WRITE_LOCK_KEY >> 32} AND held.objid = {WRITE_LOCK_KEY & 0xFFFFFFFF} "
    "AND held.objsubid = 1 "
    "AND activity.pid <> pg_backend_pid() AND activity.wait_event = 'ClientRead' "
    "AND activity.state <> 'idle' "
    f"AND activity.state_change < clock_timestamp() - interval '{STUCK_HOLDER_MS} milliseconds'")
_IDLE = TransactionStatus.IDLE

# A round trip that takes longer than this is cut (its socket shut down) and fails: a server
# that hangs instead of refusing (stopped, a dropped network path) must not hold the event loop
# that waits on it, nor a node's shutdown, for as long as it hangs. Above the longest wait that
# is normal: one step of the write lock's wait, which PostgreSQL itself ends at STUCK_HOLDER_MS.
ROUND_TRIP_LIMIT_S = STUCK_HOLDER_MS / 1000 + 3
CONNECT_TIMEOUT_S = 10
# Between attempts to reach a server that failed or hung, made in the background meanwhile.
RECONNECT_PAUSE_S = 0.5
log = logging.getLogger("searchtrail.store")

# SQLite functions and clauses that PostgreSQL spells otherwise, replaced as whole phrases.
_PHRASES = (
    # a log file's records joined in seq order, as bytes (audit/delivery.py); True: the
    # statement then returns bytes
    ("CAST(group_concat(record, ',') AS BLOB)",
     "convert_to(string_agg(record, ',' ORDER BY seq), 'UTF8')", True),
)
# The events' last seq (store/sqlite/events.py), which a write transaction's seqs follow: read
# with its BEGIN, in the same round trip, and answered from there until it appends events.
LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM events"
# Writes whose answer nobody reads, which fail only when the store does, and which a COMMIT
# (or any other statement) follows in the same transaction: a batch's appended rows
# (store/sqlite/events.py) and a document's upsert (ResourceRepository.put, and an insert of
# a key the transaction has just read as absent; any other insert's conflict and a delete's
# row count are read, so those are sent at once).
_UNREAD_WRITES = re.compile(
    r"^\s*INSERT(?: OR IGNORE)? INTO (events|event_lookup|outbox)\b"
    r"|^\s*INSERT INTO resources\b.*\bON CONFLICT\b.*\bDO UPDATE\b(?!.*\bRETURNING\b)",
    re.IGNORECASE | re.DOTALL)
# Retention's deletions of lookup rows, a value's range of keys (or a second of it) each
# (audit/retention.py): many a unit, their row counts unread, and they fail only when the
# store does. Held the same way, as is a document's DELETE once read ahead (DELETE_READ_AHEAD:
# exactly one row). Any other DELETE is sent at once, and refused at once.
_UNREAD_DELETES = re.compile(r"^DELETE FROM event_lookup WHERE value_key = \? "
                             r"AND event_time (?:BETWEEN|= \?)")
# Writes held at most before they are sent ahead (send_ahead: no waiting for their answers).
MAX_HELD_WRITES = 64
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_NUMBERED = re.compile(r"\?(\d+)")
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE\b", re.IGNORECASE)
_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_ENDS = re.compile(r"^\s*(COMMIT|ROLLBACK|END)\s*;?\s*$", re.IGNORECASE)
# Transaction control without results, which can share one simple query with another.
_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|COMMIT|END)\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\S+))?\s*$", re.IGNORECASE)
# A multi-row INSERT (store/sqlite/events.py appends a batch's rows so): two rows or more.
_ROWS = re.compile(r"^\s*INSERT(?P<ignore> OR IGNORE)? INTO (?P<table>\w+) \((?P<columns>[^)]*)\) "
                   r"VALUES (?P<row>\((?:\?,)*\?\))(?:,(?P=row))+\s*$", re.IGNORECASE)


class _Statement:
    """One SQLite statement's PostgreSQL text, and how its parameters are passed."""

    __slots__ = ("text", "numbered", "writes", "ends", "rolls_back", "pragma", "begins",
                 "rows_into", "_columns", "_ignore", "binary", "reads_last_seq", "reads_versions",
                 "appends_events", "unread", "one_document", "control", "marks")

    def __init__(self, sql: str) -> None:
        # what the connection answers itself: PRAGMA (name, value) and BEGIN [IMMEDIATE]
        pragma = _PRAGMA.match(sql)
        self.pragma = (pragma.group(1).lower(), pragma.group(2)) if pragma else None
        head = sql.lstrip()[:16].upper()
        self.begins = ("IMMEDIATE" in head) if head.startswith("BEGIN") else None
        text = sql
        # bytes come back as they are in binary format; as text they are hex, twice the size
        # and decoded on the client (most of a log file's read time)
        self.binary = False
        for sqlite_phrase, postgres_phrase, gives_bytes in _PHRASES:
            if sqlite_phrase in text:
                text = text.replace(sqlite_phrase, postgres_phrase)
                self.binary = self.binary or gives_bytes
        text = _INDEXED_BY.sub("", text)
        if _INSERT_OR_IGNORE.match(text):
            text = _INSERT_OR_IGNORE.sub("INSERT", text) + " ON CONFLICT DO NOTHING"
        text = text.replace("%", "%%")
        self.numbered = bool(_NUMBERED.search(text))
        if self.numbered:  # ?1 may appear several times: named parameters p1, p2, ...
            text = _NUMBERED.sub(lambda match: f"%(p{match.group(1)})s", text)
        else:
            text = text.replace("?", "%s")
        self.text = text
        self.writes = bool(_WRITES.match(sql))
        self.reads_last_seq = sql.strip() == LAST_SEQ
        self.reads_versions = sql.strip() == RESOURCE_VERSIONS
        unread = _UNREAD_WRITES.match(sql)
        deletes_read_ahead = sql == DELETE_READ_AHEAD
        self.unread = (unread is not None or deletes_read_ahead
                       or _UNREAD_DELETES.match(sql) is not None)
        appended = (unread.group(1) or "").lower() if unread else ""
        self.appends_events = appended == "events"
        # a document's upsert, or its delete once read ahead: exactly one row
        self.one_document = (unread is not None and not appended) or deletes_read_ahead
        ends = _ENDS.match(sql)  # COMMIT or ROLLBACK of the whole transaction
        self.ends = ends is not None
        self.rolls_back = ends is not None and ends.group(1).upper() == "ROLLBACK"
        control = _CONTROL.match(sql)
        self.control = control is not None
        # SAVEPOINT and RELEASE answer nothing and cannot fail in a transaction whose
        # statements have not: held, they go with the statement after them
        self.marks = control is not None and control.group(1).upper() in ("SAVEPOINT", "RELEASE")
        # A multi-row INSERT's text changes with its row count, and psycopg parses every such
        # text anew (a fifth of a call's CPU on the read mix): it is sent as one fixed text
        # instead, each column's values as one typed array, once the table's types are known.
        rows = _ROWS.match(sql)
        self.rows_into = rows.group("table") if rows else None
        if rows:
            self._columns = [name.strip() for name in rows.group("columns").split(",")]
            self._ignore = rows.group("ignore") is not None
            self.text = None  # until spell_rows

    def spell_rows(self, column_types: dict[str, str]) -> None:
        """A multi-row INSERT's text, given its table's column types (name -> SQL type)."""
        arrays = ", ".join(f"%b::{column_types[name]}[]" for name in self._columns)
        self.text = (f"INSERT INTO {self.rows_into} ({', '.join(self._columns)}) "
                     f"SELECT * FROM unnest({arrays})"
                     + (" ON CONFLICT DO NOTHING" if self._ignore else ""))

    def parameters(self, params: Sequence[Any]) -> Sequence[Any] | dict[str, Any]:
        if self.rows_into is not None:  # row after row -> one list per column
            width = len(self._columns)
            return [list(params[column::width]) for column in range(width)]
        if self.numbered:
            return {f"p{index}": value for index, value in enumerate(params, start=1)}
        return params


class _Rows:
    """What a PRAGMA answers: a cursor-like row list."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self.rowcount = -1

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rows)


def _as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error:
    said = _one_line(exc)
    if isinstance(exc, (psycopg.IntegrityError, pg_errors.RaiseException)):
        return sqlite3.IntegrityError(said)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return sqlite3.OperationalError(said)  # server gone, lock timeout, disk full
    if isinstance(exc, psycopg.DataError):
        return sqlite3.DataError(said)
    return sqlite3.DatabaseError(said)


def _one_line(exc: psycopg.Error) -> str:
    """The driver's message on one line, for a log line, health's storeError or a command's
    error: the server's own sentence without the statement it quotes, or libpq's lines."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    said = primary or " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        said += (" (the role in the database URL needs that privilege; for the first start's "
                 "schema, CREATE on schema public, or to own the database)")
    return said


class _Turn:
    """The connection's lock, and since when its holder has been talking to the server: the
    watchdog cuts a turn longer than ROUND_TRIP_LIMIT_S (``since`` is None between turns)."""

    __slots__ = ("lock", "since", "_depth")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.since: float | None = None
        self._depth = 0

    def __enter__(self) -> None:
        self.lock.acquire()
        self._depth += 1
        if self._depth == 1:
            self.since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.since = None
        self.lock.release()


class PostgresConnection:
    """The subset of sqlite3.Connection the store uses; one psycopg connection underneath.

    The session opens with the first statement, and one the server dropped (a restart, a
    crash) is opened again before the next statement outside a transaction; inside one, every
    statement fails until the caller's ROLLBACK, as the transaction is gone with the
    connection. So a store that cannot be reached fails the statement, where the store's
    error translation (store/errors.py) sees it, never the constructor.

    No statement waits on the server for longer than ROUND_TRIP_LIMIT_S: a watchdog thread
    cuts the connection under it. Once an attempt to connect has failed or a round trip has
    been cut, the server is reached again in the background, and statements fail at once
    until it answers: a hung server costs each caller nothing but its error (a 503)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self._url = url
        self._read_only = read_only
        self._statements: dict[str, _Statement] = {}
        self._busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS
        self._turn = _Turn()  # the loop and the commit helper take turns on it
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        # Reaching the server again after it failed or hung: in the background, its result kept
        # for the next statement (``_spare``); ``_unreachable`` says why statements fail till then.
        self._unreachable: str | None = None
        self._spare: psycopg.Connection | None = None
        self._reconnecting: threading.Thread | None = None
        self._began = False  # inside a transaction this object's BEGIN opened
        self._last_seq: int | None = None  # LAST_SEQ's answer while the write transaction holds
        # BEGIN reads the last seq once this connection has read it itself: the events table
        # then exists (a new store's migration begins before it does).
        self._seq_with_begin = False
        # RESOURCE_VERSIONS' rows (the writer reads them as it begins), read with BEGIN too and
        # answered from there until the transaction writes
        self._versions: list[tuple[Any, ...]] | None = None
        self._versions_with_begin = False
        self._column_types: dict[str, dict[str, str]] = {}  # table -> column -> SQL type
        # Statements of the open transaction not sent yet, in order, with their parameters:
        # SAVEPOINTs, their RELEASEs, documents' upserts and a batch's appended rows, which
        # answer nothing anyone reads. They go in the next statement's round trip (a call's
        # first read, COMMIT): a write call's savepoint pair, its idempotency record and a
        # batch's rows then cost no round trip of their own.
        self._held: list[tuple[_Statement, Any]] = []
        # Rows changed by the statements whose answers are read, and a document's held upsert
        # or delete (one row, counted as it is held: caches see the change). The held rows a
        # batch appends and retention's lookup deletions are not counted, whenever they are
        # sent: they change no resource, and counted mid-call they would make a read-only call
        # look as if it had written.
        self.total_changes = 0
        self._conn: psycopg.Connection | None = None
        # The pipeline held statements were sent ahead in (send_ahead), left open until the
        # next statement whose answer is read: their answers come in its round trip.
        self._ahead: psycopg.Pipeline | None = None

    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
            if self._read_only:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        return conn

    def _reconnect(self) -> psycopg.Connection:
        """A new session: at once while the server answers, else (after a failed attempt or a
        cut round trip) the one the background attempts made, or a failure right away."""
        conn, self._spare = self._spare, None
        if conn is None and self._unreachable is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                self._unreachable = str(exc)
        if conn is not None:
            self._watch()
            return conn
        self._reconnect_in_background()
        raise sqlite3.OperationalError(f"PostgreSQL cannot be reached ({self._unreachable}); "
                                       "reconnecting in the background")

    def _reconnect_in_background(self) -> None:
        if self._reconnecting is not None and self._reconnecting.is_alive():
            return

        def attempts() -> None:
            while not self._closed.is_set():
                try:
                    conn = self._connect()
                except sqlite3.Error as exc:
                    self._unreachable = str(exc)
                    self._closed.wait(RECONNECT_PAUSE_S)
                    continue
                with self._turn.lock:
                    if self._closed.is_set():
                        conn.close()
                    else:
                        self._spare, self._unreachable = conn, None
                        log.warning("PostgreSQL answers again")
                return

        self._reconnecting = threading.Thread(target=attempts, name="postgres-reconnect",
                                              daemon=True)
        self._reconnecting.start()

    def _watch(self) -> None:
        """Start the watchdog (once): it cuts a round trip longer than ROUND_TRIP_LIMIT_S."""
        if self._watchdog is not None:
            return

        def watch() -> None:
            while not self._closed.wait(ROUND_TRIP_LIMIT_S / 8):
                since, conn = self._turn.since, self._conn
                if since is None or conn is None or conn.closed:
                    continue
                if time.monotonic() - since > ROUND_TRIP_LIMIT_S and self._turn.since == since:
                    self._unreachable = f"no answer within {ROUND_TRIP_LIMIT_S:g} s"
                    log.warning("PostgreSQL did not answer within %g s: the connection is cut, "
                                "its statement fails, and the server is reached again in the "
                                "background", ROUND_TRIP_LIMIT_S)
                    _shut_down(conn)

        self._watchdog = threading.Thread(target=watch, name="postgres-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def in_transaction(self) -> bool:
        return self._began

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        statement = self._statements.get(sql)
        if statement is None:
            statement = self._statements[sql] = _Statement(sql)
        if statement.begins is not None:
            return self._begin(immediate=statement.begins)
        if statement.pragma is not None:
            return self._pragma(*statement.pragma)
        if statement.reads_last_seq and self._began and self._last_seq is not None:
            return _Rows([(self._last_seq,)])  # read with BEGIN, and no event appended since
        if statement.reads_versions and self._began and self._versions is not None:
            return _Rows(self._versions)  # read with BEGIN, and nothing written since
        if statement.appends_events or statement.ends:
            self._last_seq = None
        if statement.writes or statement.ends:
            self._versions = None
        with self._turn:
            if statement.marks and not params and self._began and self._usable():
                self._held.append((statement, None))
                return _Rows([])
            if not self._usable():
                self._held.clear()  # gone with the transaction
                self._ahead = None
                if not self._began:
                    self._conn = self._reconnect()
                else:  # the server ended the transaction with the connection: undone
                    self._began = not statement.ends
                    if statement.rolls_back:
                        return _Rows([])
                    raise sqlite3.OperationalError("the connection to PostgreSQL was lost "
                                                   "during this transaction")
            try:
                if statement.text is None:
                    statement.spell_rows(self._types_of(statement.rows_into))
                arguments = statement.parameters(params) if params else None
                if statement.unread and self._began:
                    self._held.append((statement, arguments))
                    if statement.one_document:  # one row, counted now: caches see the change
                        self.total_changes += 1
                    if len(self._held) >= MAX_HELD_WRITES:
                        self.send_ahead()
                    return _Rows([])
                if statement.rolls_back:
                    self._held.clear()  # the whole transaction is undone: nothing to send
                    self._drop_ahead()
                cursor = self._send(statement, arguments)
            except psycopg.Error as exc:
                self._held.clear()
                if statement.ends:  # a failed COMMIT rolls back: no transaction is left
                    self._rollback_quietly()  # (a held statement failed first: COMMIT never ran)
                    self._began = False
                    if statement.rolls_back and not self._usable():
                        return _Rows([])  # gone with its connection: nothing left to undo
                raise _as_sqlite_error(exc) from exc
            if statement.ends:
                self._began = False
                # COMMIT of a transaction in which a statement failed is a ROLLBACK, and
                # PostgreSQL answers it without an error: its calls must not count as stored
                if not statement.rolls_back and cursor.statusmessage == "ROLLBACK":
                    raise sqlite3.OperationalError("PostgreSQL rolled the transaction back at "
                                                   "COMMIT: one of its statements had failed")
        if statement.reads_last_seq:
            self._seq_with_begin = True
        if statement.reads_versions:
            self._versions_with_begin = True
        if statement.writes and cursor.rowcount > 0:
            self.total_changes += cursor.rowcount
        return cursor

    def send_ahead(self) -> None:
        """Send the held statements now without waiting for their answers: PostgreSQL runs
        them while this process goes on, and their answers (a failure fails the statement
        that reads them) come with the next statement whose answer is read."""
        with self._turn:
            if not self._held or not self._began or not self._usable():
                return
            held, self._held = self._held, []
            try:
                if self._ahead is None:
                    self._ahead = self._conn.pipeline()
                    self._ahead.__enter__()
                for statement, arguments in held:
                    self._conn.execute(statement.text, arguments, binary=statement.binary)
            except psycopg.Error as exc:
                # Some of them may not have gone: the transaction ends here, so that none of
                # its calls counts as stored (its writer sees it gone and fails the batch).
                self._rollback_quietly()
                self._began = False
                raise _as_sqlite_error(exc) from exc

    def _answers_ahead(self) -> None:
        """Wait for the answers of what was sent ahead; raises the first failure."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.__exit__(None, None, None)

    def _drop_ahead(self) -> None:
        """Before a ROLLBACK or a BEGIN: what was sent ahead is undone, its failures too."""
        try:
            self._answers_ahead()
        except psycopg.Error:
            pass

    def _send(self, statement: _Statement, arguments: Any) -> psycopg.Cursor:
        """Send the held statements, then ``statement``, in one round trip; its cursor."""
        held = self._held
        if self._ahead is None:
            if not held:
                return self._conn.execute(statement.text, arguments, binary=statement.binary)
            if statement.control and arguments is None and all(args is None for _, args in held):
                # parameterless: one simple query, its results in order
                self._held = []
                cursor = self._conn.execute("; ".join([*(done.text for done, _ in held),
                                                       statement.text]))
                for _ in held:
                    cursor.nextset()  # to this statement's own result
                return cursor
        self.send_ahead()  # the held, then this one, in one pipeline: its answer reads all
        try:
            cursor = self._conn.execute(statement.text, arguments, binary=statement.binary)
        except psycopg.Error:  # an answer that came in meanwhile failed, or this one
            self._drop_ahead()  # closed: the caller's ROLLBACK must not join it
            raise
        self._answers_ahead()
        return cursor

    def _types_of(self, table: str) -> dict[str, str]:
        types = self._column_types.get(table)
        if types is None:
            types = self._column_types[table] = dict(self._conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,)).fetchall())
        return types

    def _usable(self) -> bool:
        return self._conn is not None and not (self._conn.closed or self._conn.broken)

    def executescript(self, script: str) -> None:
        with self._turn.lock:  # no limit: a migration may take long on a large store
            if not self._usable():
                self._held.clear()
                self._conn = self._reconnect()
            try:
                self.send_ahead()
                self._answers_ahead()
                self._conn.execute(script)
            except psycopg.Error as exc:
                raise _as_sqlite_error(exc) from exc

    def _begin(self, *, immediate: bool) -> _Rows:
        with self._turn:
            if self._began:
                raise sqlite3.OperationalError("cannot start a transaction within a transaction")
            self._last_seq = self._versions = None
            self._held.clear()  # none outlives its transaction
            self._drop_ahead()
            if not self._usable():
                self._conn = self._reconnect()
            try:
                if not immediate:  # a read transaction: one snapshot, like SQLite's
                    self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    self._began = True
                    return _Rows([])
                # one round trip: no parameters, so the statements go as one simple query,
                # the events' last seq and the resource versions read once the lock is held
                # (once this connection has read them itself: their tables then exist)
                reads = ([LAST_SEQ] if self._seq_with_begin else []) + (
                    [RESOURCE_VERSIONS] if self._versions_with_begin else [])
                tail = "".join(f"; {sql}" for sql in reads)
                if self._busy_timeout_ms == 0:
                    results = self._conn.execute(
                        f"BEGIN; SELECT pg_try_advisory_xact_lock({WRITE_LOCK_KEY}){tail}")
                    results.nextset()  # past BEGIN's empty result, to the SELECT's
                    if not results.fetchone()[0]:
                        self._conn.execute("ROLLBACK")
                        raise sqlite3.OperationalError("database is locked")
                else:
                    results = self._wait_for_write_lock(tail)
                for sql in reads:
                    results.nextset()
                    if sql == LAST_SEQ:
                        self._last_seq = results.fetchone()[0]
                    else:
                        self._versions = results.fetchall()
            except psycopg.Error as exc:
                self._rollback_quietly()
                raise _as_sqlite_error(exc) from exc
            self._began = True
        return _Rows([])

    def _wait_for_write_lock(self, tail: str) -> psycopg.Cursor:
        """BEGIN and take the write lock, waiting at most the busy timeout, then run ``tail``;
        its results, at the lock's. Each STUCK_HOLDER_MS of waiting, a holder stuck waiting
        for its client is ended; a holder that works is waited for."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            self._turn.since = time.monotonic()  # each step is a round trip of its own
            wait_ms = max(1, min(STUCK_HOLDER_MS, int((deadline - time.monotonic()) * 1000)))
            try:
                results = self._conn.execute(
                    f"BEGIN; SET LOCAL lock_timeout = {wait_ms}; "
                    f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY}){tail}")
            except pg_errors.LockNotAvailable:
                self._rollback_quietly()
                self._end_stuck_holder()  # for the next writer too, when this one gives up
                if time.monotonic() >= deadline:
                    raise
                continue
            results.nextset()  # past BEGIN's and SET's empty results
            results.nextset()
            return results

    def _end_stuck_holder(self) -> None:
        try:
            ended = self._conn.execute(_END_STUCK_HOLDER).fetchall()
        except psycopg.Error as exc:  # e.g. not allowed to end another role's session
            log.warning("the write lock's holder has kept every writer waiting, and it could "
                        "not be ended: %s", exc)
            return
        for pid, client, _ in ended:
            log.warning("ended PostgreSQL session %s (client %s): it held the write lock "
                        "while waiting over %d ms for its client to finish sending (a node "
                        "frozen or cut off mid-transaction); its transaction is rolled back",
                        pid, client, STUCK_HOLDER_MS)

    def _rollback_quietly(self) -> None:
        self._drop_ahead()  # a ROLLBACK sent inside a failed pipeline would be refused
        if self._usable() and self._conn.info.transaction_status != _IDLE:
            try:
                self._conn.execute("ROLLBACK")
            except psycopg.Error:
                pass

    def _pragma(self, name: str, value: str | None) -> _Rows:
        if name == "busy_timeout":
            if value is not None:
                self._busy_timeout_ms = int(value)
            return _Rows([(self._busy_timeout_ms,)])
        raise sqlite3.OperationalError(f"PRAGMA {name} has no PostgreSQL meaning here")

    def close(self) -> None:
        self._closed.set()
        with self._turn.lock:
            for conn in (self._conn, self._spare):
                if conn is not None:
                    conn.close()


@contextlib.contextmanager
def cut_after(conn: psycopg.Connection, seconds: float = ROUND_TRIP_LIMIT_S) -> Iterator[None]:
    """Cut ``conn`` if what the block waits on it for takes longer than ``seconds`` (the block
    then fails with the driver's error): for sessions used now and then, outside
    PostgresConnection and its watchdog (the delivery lease's ping, a NOTIFY)."""
    timer = threading.Timer(seconds, _shut_down, (conn,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _shut_down(conn: psycopg.Connection) -> None:
    """End the connection's socket under whoever waits on it (its wait then fails, and the
    connection reads as broken); the descriptor itself stays psycopg's to close."""
    try:
        duplicate = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (OSError, psycopg.Error):
        return  # closed meanwhile
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()


def open_connection(url: str, *, read_only: bool = False) -> PostgresConnection:
    return PostgresConnection(url, read_only=read_only)


def durability_settings(conn: PostgresConnection) -> dict[str, object]:
    """What the server enforces, for health checks: a commit is durable only with both on."""
    settings = {}
    for name in ("fsync", "synchronous_commit"):
        settings[name] = conn.execute(f"SELECT current_setting('{name}')").fetchone()[0]
    return settings


def migrate(conn: PostgresConnection, upgrade: bool = True) -> int:
    """Apply every migration newer than the database's schema version, under the write lock
    (nodes starting together migrate once; refused without ``upgrade``); returns the
    version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        scripts = numbered_scripts("searchtrail.store.postgres")
        check_upgrade(version, scripts, upgrade)
        for number, script in scripts:
            if number > version:
                conn.executescript(script)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                version = number
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version
