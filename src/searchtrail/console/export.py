"""Downloads of an event-history filter: CSV (cells guarded against formula injection) and
JSON ({"Records": [...]}), streamed page by page, with progress others can poll (from any
worker process of the server, when it has several)."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator

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


# A running download's progress file is rewritten at most this often (and when it ends).
SHARE_INTERVAL_SECONDS = 0.25
# A progress file still half-written after this long belongs to a worker that died.
ABANDONED_AFTER_SECONDS = 60


class Progress:
    """How far one download has come. With a ``path``, it is also written there, for the
    progress polls that reach another worker process of the server."""

    def __init__(self, path: Path | None = None, *, events: int = 0, done: bool = False,
                 failed: str = "") -> None:
        self.events, self.done, self.failed = events, done, failed
        self._path = path
        self._shared_at = -SHARE_INTERVAL_SECONDS

    def advance(self, events: int) -> None:
        self.events += events
        self.share(final=False)

    def fail(self, why: str) -> None:
        self.failed = why
        self.share(final=True)

    def finish(self) -> None:
        self.done = True
        self.share(final=True)

    def share(self, *, final: bool) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if not final and now - self._shared_at < SHARE_INTERVAL_SECONDS:
            return
        self._shared_at = now
        try:
            replace_shared_file(self._path, orjson.dumps(
                {"events": self.events, "done": self.done, "failed": self.failed}))
        except OSError as exc:  # a progress bar must never stop the download itself
            log.warning("cannot share a download's progress: %s", exc)

    @classmethod
    def shared_at(cls, path: Path) -> "Progress | None":
        """The progress another worker process shares at ``path``, or None."""
        try:
            state = orjson.loads(path.read_bytes())
            return cls(events=int(state["events"]), done=bool(state["done"]),
                       failed=str(state["failed"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


class ExportTracker:
    """How far each running download has come, by (session, export id); bounded in size.

    With a ``folder`` (the server runs several worker processes), each download's progress is
    also kept in a file there, so a poll answered by any worker finds it."""

    def __init__(self, max_entries: int = 200, folder: Path | None = None) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], Progress] = OrderedDict()
        self._lock = threading.Lock()
        self._folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def start(self, session_key: str, export_id: str) -> Progress:
        path = self._shared_path(session_key, export_id)
        with self._lock:
            progress = self._entries[(session_key, export_id)] = Progress(path)
            self._entries.move_to_end((session_key, export_id))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        if path is not None:
            progress.share(final=True)  # polls elsewhere see it start, not "preparing"
            self._prune_shared()
        return progress

    def get(self, session_key: str, export_id: str) -> Progress | None:
        with self._lock:
            progress = self._entries.get((session_key, export_id))
        if progress is not None:
            return progress
        path = self._shared_path(session_key, export_id)
        return Progress.shared_at(path) if path is not None else None

    def _shared_path(self, session_key: str, export_id: str) -> Path | None:
        if self._folder is None:
            return None
        # named by a digest: the session key is a secret, the export id comes from the client
        name = hashlib.sha256(f"{session_key}\0{export_id}".encode()).hexdigest()
        return self._folder / f"{name}.json"

    def _prune_shared(self) -> None:
        """Keep the newest ``max_entries`` progress files (every worker prunes the folder),
        and no half-written one a worker left behind when it died."""
        assert self._folder is not None
        try:
            files = sorted(self._folder.glob("*.json"), key=_modified, reverse=True)
            abandoned = [temporary for temporary in self._folder.glob("*.tmp")
                         if time.time() - _modified(temporary) > ABANDONED_AFTER_SECONDS]
        except OSError:
            return
        for stale in files[self._max:] + abandoned:
            stale.unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # removed meanwhile by another worker


async def csv_stream(pages: AsyncIterator[list[dict[str, Any]]],
                     progress: Progress) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header())
    try:
        async for records in pages:
            for record in records:
                row = EventRow(record)
                writer.writerow([csv_cell(row.cell(key)) for key in CSV_COLUMNS])
            progress.advance(len(records))
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    except Exception as exc:
        progress.fail(str(exc) or type(exc).__name__)
        raise
    finally:
        progress.finish()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


async def json_stream(pages: AsyncIterator[list[dict[str, Any]]],
                      progress: Progress) -> AsyncIterator[bytes]:
    yield b'{"Records":['
    first = True
    try:
        async for records in pages:
            if records:
                chunk = b",".join(orjson.dumps(record) for record in records)
                yield chunk if first else b"," + chunk
                first = False
            progress.advance(len(records))
    except Exception as exc:
        progress.fail(str(exc) or type(exc).__name__)
        raise
    finally:
        progress.finish()
    yield b"]}"
