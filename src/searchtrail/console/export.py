"""Downloads of an event-history filter: CSV (cells guarded against formula injection) and
JSON ({"Records": [...]}), streamed page by page, with progress others can poll."""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson

from searchtrail.console.history import COLUMNS, EventRow

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


@dataclass
class Progress:
    events: int = 0
    done: bool = False
    failed: str = ""


class ExportTracker:
    """How far each running download has come, by (session, export id); bounded in size."""

    def __init__(self, max_entries: int = 200) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], Progress] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, session_key: str, export_id: str) -> Progress:
        with self._lock:
            progress = self._entries[(session_key, export_id)] = Progress()
            self._entries.move_to_end((session_key, export_id))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return progress

    def get(self, session_key: str, export_id: str) -> Progress | None:
        with self._lock:
            return self._entries.get((session_key, export_id))


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
            progress.events += len(records)
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    except Exception as exc:
        progress.failed = str(exc) or type(exc).__name__
        raise
    finally:
        progress.done = True
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
            progress.events += len(records)
    except Exception as exc:
        progress.failed = str(exc) or type(exc).__name__
        raise
    finally:
        progress.done = True
    yield b"]}"
