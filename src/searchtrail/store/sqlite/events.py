"""Event rows: appended in the writer's transaction, queried newest first for event history."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Callable

import orjson

from searchtrail.store.errors import translated
from searchtrail.store.lookupkeys import lookup_key

EVENT_CHUNK = 150  # rows per multi-row INSERT (5 parameters each, well under SQLite's limit)
LOOKUP_CHUNK = 150


@dataclass(frozen=True)
class EventRow:
    """One CloudTrail record as stored: the exact JSON text plus what lookups filter on."""

    account: str
    region: str
    event_time: int  # epoch seconds, the record's eventTime
    record: str
    lookup_values: tuple[tuple[str, str], ...] = field(default=())
    # (trail ARN, account folder) for every trail whose log files must carry this record
    deliveries: tuple[tuple[str, str], ...] = field(default=())
    # given by the writer when the record's eventID encodes it (audit/eventid.py); else the
    # next free one at insert, and the eventID needs an EventId lookup row
    seq: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event_time: int
    record: str


def last_event_seq(conn: sqlite3.Connection) -> int:
    with translated():
        return conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]


def append_events(conn: sqlite3.Connection, rows: list[EventRow]) -> None:
    """Insert rows with explicit seq values so the lookup rows can refer to them: their own,
    or (rows without one) the next ones after every seq in the store and in ``rows``."""
    if not rows:
        return
    with translated():
        last = None
        event_params: list[object] = []
        lookup_params: list[object] = []
        outbox_params: list[object] = []
        for row in rows:
            seq = row.seq
            if seq is None:
                if last is None:
                    last = max(last_event_seq(conn),
                               max((r.seq for r in rows if r.seq is not None), default=0))
                last += 1
                seq = last
            event_params.extend((seq, row.account, row.region, row.event_time, row.record))
            for attr, value in row.lookup_values:
                lookup_params.extend((lookup_key(row.account, row.region, attr, value),
                                      row.event_time, seq))
            for trail_arn, folder_account in row.deliveries:
                outbox_params.extend((trail_arn, folder_account, row.region, seq))
        _insert_chunked(conn, "events", "(seq, account, region, event_time, record)", 5,
                        event_params, EVENT_CHUNK)
        _insert_chunked(conn, "event_lookup", "(value_key, event_time, seq)", 3, lookup_params,
                        LOOKUP_CHUNK)
        _insert_chunked(conn, "outbox", "(trail_arn, account, region, seq)", 4, outbox_params,
                        LOOKUP_CHUNK)


def _insert_chunked(conn: sqlite3.Connection, table: str, columns: str, width: int,
                    params: list[object], chunk_rows: int) -> None:
    placeholder = "(" + ",".join("?" * width) + ")"
    step = chunk_rows * width
    for start in range(0, len(params), step):
        chunk = params[start:start + step]
        values = ",".join([placeholder] * (len(chunk) // width))
        # OR IGNORE only on the lookup side: one event may name the same resource twice.
        verb = "INSERT OR IGNORE" if table == "event_lookup" else "INSERT"
        conn.execute(f"{verb} INTO {table} {columns} VALUES {values}", chunk)


def query_events(conn: sqlite3.Connection, *, account: str, region: str, start: int, end: int,
                 attribute: tuple[str, str] | None, before: tuple[int, int] | None,
                 limit: int, event_seq: int | None = None,
                 carries: Callable[[str], bool] | None = None) -> list[StoredEvent]:
    """Newest first (event_time, then seq), within [start, end], after the cursor `before`.

    With an ``attribute``, the records its lookup rows name; ``carries(record)`` says whether
    a record found so does carry it (see ``_found_by_key``)."""
    # (end + 1, 0) sorts after every row of the range: the first page has no cursor.
    cursor_time, cursor_seq = before if before else (end + 1, 0)
    # The cursor also bounds event_time, so a later page seeks straight to its first row
    # instead of stepping back over every row of the pages before it.
    end = min(end, cursor_time)
    with translated():
        if attribute is None:
            rows = conn.execute(
                "SELECT seq, event_time, record FROM events "
                "WHERE account=? AND region=? AND event_time >= ? AND event_time <= ? "
                "AND (event_time, seq) < (?, ?) "
                "ORDER BY event_time DESC, seq DESC LIMIT ?",
                (account, region, start, end, cursor_time, cursor_seq, limit),
            ).fetchall()
        else:
            attr, value = attribute
            rows = _found_by_key(conn, lookup_key(account, region, attr, value), account, region,
                                 start, end, (cursor_time, cursor_seq), limit, carries)
            if event_seq is not None:  # an EventId that names its row (audit/eventid.py)
                rows = _with_named_event(conn, rows, value, event_seq, account, region, start,
                                         end, (cursor_time, cursor_seq), limit)
    return [StoredEvent(seq, event_time, record) for seq, event_time, record in rows]


# A key's lookup rows newest first from a cursor, with their records.
_BY_KEY = ("SELECT e.seq, e.event_time, e.record, e.account, e.region FROM ("
           "  SELECT seq, event_time FROM event_lookup "
           "  WHERE value_key=? AND event_time >= ? AND event_time <= ? "
           "  AND (event_time, seq) < (?, ?) ORDER BY event_time DESC, seq DESC LIMIT ?"
           ") AS hit JOIN events AS e ON e.seq = hit.seq "
           "ORDER BY hit.event_time DESC, hit.seq DESC")


def _found_by_key(conn: sqlite3.Connection, key: int, account: str, region: str, start: int,
                  end: int, cursor: tuple[int, int], limit: int,
                  carries: Callable[[str], bool] | None) -> list[tuple[int, int, str]]:
    """Up to ``limit`` records of ``key``'s lookup rows in the account's Region history that
    ``carries`` accepts. Another value whose key is the same (~2^-64) would bring records that
    do not carry this one: they are skipped and as many more read in their place."""
    found: list[tuple[int, int, str]] = []
    while len(found) < limit:
        wanted = limit - len(found)
        rows = conn.execute(_BY_KEY, (key, start, min(end, cursor[0]), *cursor, wanted)
                            ).fetchall()
        for seq, event_time, record, row_account, row_region in rows:
            if (row_account == account and row_region == region
                    and (carries is None or carries(record))):
                found.append((seq, event_time, record))
        if len(rows) < wanted:
            break
        cursor = (rows[-1][1], rows[-1][0])
    return found


def _with_named_event(conn: sqlite3.Connection, rows: list, event_id: str, seq: int,
                      account: str, region: str, start: int, end: int,
                      cursor: tuple[int, int], limit: int) -> list:
    """``rows`` (found by lookup rows) plus the row ``seq`` when it is in the query's scope and
    its record carries ``event_id`` (an ID made up by a caller decodes to some seq too)."""
    if not 0 < seq < 1 << 63 or any(row[0] == seq for row in rows):
        return rows
    found = conn.execute(
        "SELECT seq, event_time, record FROM events WHERE seq=? AND account=? AND region=? "
        "AND event_time >= ? AND event_time <= ? AND (event_time, seq) < (?, ?)",
        (seq, account, region, start, end, *cursor)).fetchone()
    if found is None or orjson.loads(found[2]).get("eventID") != event_id:
        return rows
    return sorted([*rows, found], key=lambda row: (row[1], row[0]), reverse=True)[:limit]

