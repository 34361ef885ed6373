"""Downloads of an event-history filter: CSV (cells guarded against formula injection) and
JSON ({"Records": [...]}), streamed page by page, with progress others can poll (from any
worker process or node serving the console, when there are several)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Protocol

import orjson

from searchtrail.console.history import COLUMNS, EventRow
from searchtrail.workers import replace_shared_file

log = logging.getLogger("searchtrail.console")

# Spreadsheet programs run a cell starting with one of these as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_COLUMNS = ("id", "time", "user", "name", "source", "rtype", "rname", "key", "region",
               "error", "ip", "readonly")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading quote defuses formula characters."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_header() -> list[str]:
    labels = {column.key: column.label for column in COLUMNS}
    return [labels[key] for key in CSV_COLUMNS]


# A running download's shared progress is rewritten at most this often (and when it ends).
SHARE_INTERVAL_SECONDS = 0.25
# A progress file still half-written after this long belongs to a worker that died.
ABANDONED_AFTER_SECONDS = 60
# The most downloads whose progress is kept, in memory and on a shared board.
KEPT_DOWNLOADS = 200
# Why a download ended early when its client went away (shown after "stopped after N events").
INTERRUPTED = ("the connection closed before the file was complete (the download was "
               "cancelled, or the network dropped). Download it again to get every event.")


class ProgressBoard(Protocol):
    """Where the processes serving one console keep downloads' progress for each other."""

    def put(self, name: str, state: bytes) -> None:
        """Create or replace the progress called ``name``. Raises OSError or sqlite3.Error."""

    def get(self, name: str) -> bytes | None:
        """The progress called ``name``; None if there is none. Raises as ``put``."""

    def prune(self, keep: int) -> None:
        """Keep only the ``keep`` newest. Raises as ``put``."""


class FolderBoard:
    """The worker processes of one server on SQLite: a small file each in a shared folder
    (SQLite's one writer is the batches' own; these writes stay off it)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, state: bytes) -> None:
        replace_shared_file(self._folder / f"{name}.json", state)

    def get(self, name: str) -> bytes | None:
        try:
            return (self._folder / f"{name}.json").read_bytes()
        except FileNotFoundError:
            return None

    def prune(self, keep: int) -> None:
        """Also removes a half-written file a worker left behind when it died."""
        files = sorted(self._folder.glob("*.json"), key=_modified, reverse=True)
        abandoned = [temporary for temporary in self._folder.glob("*.tmp")
                     if time.time() - _modified(temporary) > ABANDONED_AFTER_SECONDS]
        for stale in files[keep:] + abandoned:
            stale.unlink(missing_ok=True)


class StoreBoard:
    """Nodes (and their workers) on one PostgreSQL store: rows of ``console_exports``, written
    by single autocommit statements on a connection of this process's own, outside the
    batches' write transactions (no write lock taken)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 clock: Callable[[], float] = time.time) -> None:
        self._connect = connect
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def put(self, name: str, state: bytes) -> None:
        self._run("INSERT INTO console_exports (name, state, updated_at) VALUES (?, ?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
                  "updated_at = excluded.updated_at", (name, state.decode(), self._clock()))

    def get(self, name: str) -> bytes | None:
        row = self._run("SELECT state FROM console_exports WHERE name = ?", (name,)).fetchone()
        return row[0].encode() if row else None

    def prune(self, keep: int) -> None:
        self._run("DELETE FROM console_exports WHERE updated_at < (SELECT min(updated_at) FROM "
                  "(SELECT updated_at FROM console_exports ORDER BY updated_at DESC LIMIT ?) "
                  "AS newest)", (keep,))

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn.execute(sql, params)


class Progress:
    """How far one download has come. With a ``board``, it is also kept there under ``name``,
    for the progress polls that reach another process (worker or node)."""

    def __init__(self, board: ProgressBoard | None = None, name: str = "", *, events: int = 0,
                 done: bool = False, failed: str = "") -> None:
        self.events, self.done, self.failed = events, done, failed
        self._board = board
        self._name = name
        self._shared_at = -SHARE_INTERVAL_SECONDS

    def advance(self, events: int) -> None:
        self.events += events
        self.share(final=False)

    def fail(self, why: str) -> None:
        """Record why it failed; ``finish()``, which always follows, shares it."""
        self.failed = why

    def finish(self) -> None:
        self.done = True
        self.share(final=True)

    def share(self, *, final: bool) -> None:
        if self._board is None:
            return
        now = time.monotonic()
        if not final and now - self._shared_at < SHARE_INTERVAL_SECONDS:
            return
        self._shared_at = now
        try:
            self._board.put(self._name, orjson.dumps(
                {"events": self.events, "done": self.done, "failed": self.failed}))
        except (OSError, sqlite3.Error) as exc:  # a progress bar must never stop the download
            log.warning("cannot share a download's progress: %s", exc)

    @classmethod
    def shared_on(cls, board: ProgressBoard, name: str) -> "Progress | None":
        """The progress another process keeps on ``board`` under ``name``, or None."""
        try:
            shared = board.get(name)
            if shared is None:
                return None
            state = orjson.loads(shared)
            return cls(events=int(state["events"]), done=bool(state["done"]),
                       failed=str(state["failed"]))
        except (OSError, sqlite3.Error, ValueError, KeyError, TypeError):
            return None


class ExportTracker:
    """How far each running download has come, by (session, export id); bounded in size.

    With a ``board`` (the console is served by several processes: workers, or nodes on one
    PostgreSQL store), each download's progress is also kept there, so a poll answered by any
    of them finds it."""

    def __init__(self, max_entries: int = KEPT_DOWNLOADS,
                 board: ProgressBoard | None = None) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], Progress] = OrderedDict()
        self._lock = threading.Lock()
        self._board = board

    def start(self, session_key: str, export_id: str) -> Progress:
        progress = Progress(self._board, _shared_name(session_key, export_id))
        with self._lock:
            self._entries[(session_key, export_id)] = progress
            self._entries.move_to_end((session_key, export_id))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        if self._board is not None:
            progress.share(final=True)  # polls elsewhere see it start, not "preparing"
            try:
                self._board.prune(self._max)
            except (OSError, sqlite3.Error) as exc:
                log.warning("cannot prune the downloads' shared progress: %s", exc)
        return progress

    def get(self, session_key: str, export_id: str) -> Progress | None:
        with self._lock:
            progress = self._entries.get((session_key, export_id))
        if progress is not None or self._board is None:
            return progress
        return Progress.shared_on(self._board, _shared_name(session_key, export_id))


def _shared_name(session_key: str, export_id: str) -> str:
    # a digest: the session key is a secret, the export id comes from the client
    return hashlib.sha256(f"{session_key}\0{export_id}".encode()).hexdigest()


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # removed meanwhile by another worker


@contextlib.contextmanager
def _reported(progress: Progress) -> Iterator[None]:
    """Ends ``progress`` when the stream inside ends: complete, failed with its error, or
    interrupted when the client went away (the server closed or cancelled the stream)."""
    try:
        yield
    except Exception as exc:
        progress.fail(str(exc) or type(exc).__name__)
        raise
    except BaseException:  # GeneratorExit or a cancellation: not a complete file
        progress.fail(INTERRUPTED)
        raise
    finally:
        progress.finish()


async def csv_stream(pages: AsyncIterator[list[dict[str, Any]]],
                     progress: Progress) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header())
    with _reported(progress):
        async for records in pages:
            for record in records:
                row = EventRow(record)
                writer.writerow([csv_cell(row.cell(key)) for key in CSV_COLUMNS])
            progress.advance(len(records))
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():  # the header alone: no page came
            yield buffer.getvalue().encode("utf-8")


async def json_stream(pages: AsyncIterator[list[dict[str, Any]]],
                      progress: Progress) -> AsyncIterator[bytes]:
    first = True
    with _reported(progress):
        yield b'{"Records":['
        async for records in pages:
            if records:
                chunk = b",".join(orjson.dumps(record) for record in records)
                yield chunk if first else b"," + chunk
                first = False
            progress.advance(len(records))
        yield b"]}"
