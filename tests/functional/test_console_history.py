"""The console's pure pieces: the event-history filter, CSV cell guarding, chart binning and
the failed sign-in throttle, downloads' progress shared between processes (on a store or
folder of its own, no server), and how a download's streams end."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
from starlette.datastructures import QueryParams

from searchtrail.audit.query import LOOKUP_ATTRIBUTES
from searchtrail.console.chart import OTHER, build_chart
from searchtrail.console import export
from searchtrail.console.export import ExportTracker, FolderBoard, StoreBoard, csv_cell
from searchtrail.console.history import ATTRIBUTE_LABELS, DEFAULT_COLUMNS, parse_filter
from searchtrail.console.ratelimit import Limit, SignInThrottle
from searchtrail.store.sqlite.connection import migrate, open_connection

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


def test_every_lookup_attribute_has_a_console_label() -> None:
    assert set(ATTRIBUTE_LABELS) == set(LOOKUP_ATTRIBUTES)


def test_the_default_filter_is_write_events_of_the_last_day() -> None:
    flt = parse_filter(QueryParams(""), NOW)
    assert flt.attribute == ("ReadOnly", "false") and not flt.errors
    assert (flt.start, flt.end) == (NOW - timedelta(days=1), NOW)
    assert flt.columns == DEFAULT_COLUMNS
    assert flt.lookup_params() == {
        "StartTime": int((NOW - timedelta(days=1)).timestamp()), "EndTime": int(NOW.timestamp()),
        "MaxResults": 50, "LookupAttributes": [{"AttributeKey": "ReadOnly",
                                                "AttributeValue": "false"}]}


def test_a_filter_survives_its_own_query_string() -> None:
    flt = parse_filter(QueryParams("attr=EventName&value=CreateCollection&range=7d&cols=id"
                                   "&cols=name"), NOW)
    again = parse_filter(QueryParams(flt.query()), NOW + timedelta(minutes=5))
    assert again == flt  # pinned to the same window, so page tokens stay valid
    assert again.columns == ("name", "id")
    custom = parse_filter(QueryParams("attr=&range=custom&start=2026-11-29T10:00"
                                      "&end=2026-11-29T11:30:15"), NOW)
    assert custom.attribute is None and not custom.errors
    assert parse_filter(QueryParams(custom.query()), NOW) == custom


def test_bad_ranges_are_reported_not_raised() -> None:
    def errors(query: str) -> dict[str, str]:
        return parse_filter(QueryParams(query), NOW).errors

    assert "end" in errors("range=custom&start=2026-11-29T10:00&end=2026-11-29T09:00")
    assert "end" in errors("range=custom&start=2026-08-01T00:00&end=2026-11-29T00:00")
    assert "start" in errors("range=custom&start=2026-01-01T00:00&end=2026-01-02T00:00")
    assert "start" in errors("range=custom&start=yesterday&end=2026-11-29T00:00")
    assert "value" in errors("attr=EventName&value=")
    assert "attr" in errors("attr=Nope&value=x")
    assert "range" in errors("range=5y")
    # an offset that moves a date past year 1 or 9999 (OverflowError, once a 500)
    assert "start" in errors("range=custom&start=0001-01-01T00:00:00%2B01:00"
                             "&end=0001-01-02T00:00")
    assert "end" in errors("range=custom&start=2026-11-29T00:00&end=9999-12-31T23:59:59-01:00")


@pytest.mark.parametrize("at", ["%C2%B2", "9" * 5000, "-5", "1e9", ""])
def test_a_pinned_end_that_is_no_small_number_is_ignored(at: str) -> None:
    flt = parse_filter(QueryParams(f"range=1h&at={at}"), NOW)
    assert not flt.errors and flt.end == NOW


def test_a_typed_date_makes_the_range_absolute() -> None:
    shown = "&shown_start=2026-11-29T12:00:00&shown_end=2026-11-30T12:00:00"
    typed = parse_filter(QueryParams("range=1d&start=2026-11-30T08:00&end=2026-11-30T12:00:00"
                                     + shown), NOW)
    assert typed.range_key == "custom" and not typed.errors
    assert typed.start == datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    # the dates as shown, and a preset chosen: the preset
    untouched = parse_filter(QueryParams("range=7d&start=2026-11-29T12:00&end=2026-11-30T12:00"
                                         + shown), NOW)
    assert untouched.range_key == "7d" and untouched.start == NOW - timedelta(days=7)


def test_csv_cells_never_start_a_formula() -> None:
    for value in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\nx"):
        assert csv_cell(value) == "'" + value
    for value in ("root", "CreateCollection", "arn:aws:aoss:us-east-1:1:collection/x", ""):
        assert csv_cell(value) == value


def _store_board(path: Path, clock: list[float]) -> StoreBoard:
    """A StoreBoard on a SQLite store (the server uses it on PostgreSQL, same SQL)."""
    return StoreBoard(lambda: open_connection(path), clock=lambda: clock[0])


@pytest.mark.parametrize("kind", ["folder", "store"])
def test_processes_share_a_downloads_progress_through_their_board(
        kind, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if kind == "folder":  # the workers of one server on SQLite
        boards = [FolderBoard(tmp_path), FolderBoard(tmp_path)]
    else:  # the nodes (and workers) on one PostgreSQL store
        migrate(open_connection(tmp_path / "store.db"))
        clock = [1000.0]
        boards = [_store_board(tmp_path / "store.db", clock) for _ in range(2)]
    serving, polled = ExportTracker(board=boards[0]), ExportTracker(board=boards[1])
    progress = serving.start("session-1", "export-1")
    started = polled.get("session-1", "export-1")
    assert started is not None and (started.events, started.done) == (0, False)
    monkeypatch.setattr(export, "SHARE_INTERVAL_SECONDS", 0.0)
    progress.advance(50)
    assert polled.get("session-1", "export-1").events == 50
    monkeypatch.setattr(export, "SHARE_INTERVAL_SECONDS", 3600.0)
    progress.advance(50)  # within the interval: not written yet
    assert polled.get("session-1", "export-1").events == 50
    progress.finish()  # an end is always written
    ended = polled.get("session-1", "export-1")
    assert (ended.events, ended.done, ended.failed) == (100, True, "")
    assert polled.get("session-2", "export-1") is None  # another session's poll finds nothing
    failing = serving.start("session-1", "export-2")
    failing.fail("the store is unavailable")
    failing.finish()
    assert polled.get("session-1", "export-2").failed == "the store is unavailable"
    assert ExportTracker().get("session-1", "export-1") is None  # one process: memory only


def test_progress_kept_in_the_store_is_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "store.db"
    migrate(open_connection(db))
    clock = [1000.0]
    tracker = ExportTracker(max_entries=3, board=_store_board(db, clock))
    for n in range(10):
        clock[0] += 1
        tracker.start("session", f"export-{n}")
    assert open_connection(db).execute("SELECT count(*) FROM console_exports").fetchone()[0] == 3
    assert tracker.get("session", "export-9") is not None


def test_shared_progress_files_are_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    abandoned, fresh = tmp_path / "dead.1234.tmp", tmp_path / "live.1234.tmp"
    abandoned.write_bytes(b"{")  # left by a worker that died while writing
    fresh.write_bytes(b"{")  # another worker writing right now
    old = time.time() - export.ABANDONED_AFTER_SECONDS - 1
    os.utime(abandoned, (old, old))
    tracker = ExportTracker(max_entries=3, board=FolderBoard(tmp_path))
    for n in range(10):
        tracker.start("session", f"export-{n}")
    assert len(list(tmp_path.glob("*.json"))) == 3
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == ["live.1234.tmp"]


def _record(n: int) -> dict:
    return {"eventID": f"id-{n}", "eventTime": "2026-11-30T12:00:00Z", "eventName": "Get",
            "eventSource": "aoss.amazonaws.com", "awsRegion": "us-east-1", "readOnly": True,
            "userIdentity": {"type": "Root"}, "sourceIPAddress": "127.0.0.1"}


async def _pages(count: int, *, failing_after: int | None = None,
                 gate: asyncio.Event | None = None) -> AsyncIterator[list[dict]]:
    """``count`` pages of two records; the page after ``failing_after`` raises, and with a
    ``gate`` every page after the first waits for it."""
    for page in range(count):
        if page and gate is not None:
            await gate.wait()
        if page == failing_after:
            raise RuntimeError("the store is unavailable")
        yield [_record(2 * page), _record(2 * page + 1)]


STREAMS = {"csv": export.csv_stream, "json": export.json_stream}


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_a_download_that_ran_to_its_end_is_complete(fmt: str) -> None:
    async def whole() -> bytes:
        progress = export.Progress()
        body = b"".join([chunk async for chunk in STREAMS[fmt](_pages(3), progress)])
        assert (progress.done, progress.failed, progress.events) == (True, "", 6)
        return body

    body = asyncio.run(whole())
    if fmt == "json":
        assert [r["eventID"] for r in json.loads(body)["Records"]] == [f"id-{n}" for n in range(6)]
    else:
        assert body.decode().count("\r\n") == 7  # the header and six rows


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_a_download_whose_pages_fail_says_why(fmt: str) -> None:
    async def failing() -> export.Progress:
        progress = export.Progress()
        with pytest.raises(RuntimeError):
            async for _ in STREAMS[fmt](_pages(3, failing_after=1), progress):
                pass
        return progress

    progress = asyncio.run(failing())
    assert (progress.done, progress.failed, progress.events) == (
        True, "the store is unavailable", 2)


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_a_download_closed_by_its_server_is_not_complete(fmt: str) -> None:
    """The client went away between two chunks: the server closes the stream."""
    async def closed() -> export.Progress:
        progress = export.Progress()
        stream = STREAMS[fmt](_pages(5), progress)
        for _ in range(3):
            await stream.__anext__()
        await stream.aclose()
        return progress

    progress = asyncio.run(closed())
    assert (progress.done, progress.failed) == (True, export.INTERRUPTED)
    assert 0 < progress.events < 10


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_a_download_cancelled_while_reading_a_page_is_not_complete(fmt: str) -> None:
    """The client went away while the stream waited for the store: the server cancels it."""
    async def cancelled() -> export.Progress:
        progress = export.Progress()
        stream = STREAMS[fmt](_pages(5, gate=asyncio.Event()), progress)

        async def drain() -> None:
            async for _ in stream:
                pass

        task = asyncio.create_task(drain())
        for _ in range(100):  # until it waits on the gate, after the first page
            if progress.events:
                break
            await asyncio.sleep(0)
        assert progress.events == 2 and not progress.done
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return progress

    progress = asyncio.run(cancelled())
    assert (progress.done, progress.failed, progress.events) == (True, export.INTERRUPTED, 2)


def test_chart_bins_and_series() -> None:
    start, end = NOW - timedelta(hours=1), NOW
    names = ["A"] * 5 + ["B"] * 4 + ["C", "D", "E", "F", "G", "H"]
    records = [{"eventTime": (end - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventName": name} for i, name in enumerate(names)]
    chart = build_chart(records, start, end, "name")
    assert chart.step == 300 and len(chart.bins) == 12
    assert chart.total == len(records)
    assert [s.label for s in chart.series][:2] == ["A", "B"]
    assert chart.series[-1].label == OTHER and sum(s.total for s in chart.series) == len(records)
    assert sum(sum(bin_counts.values()) for bin_counts in chart.counts) == len(records)
    assert max(bar.y + bar.height for bar in chart.bars) <= chart.height + 1e-6
    errors = build_chart([{"eventTime": "2026-11-30T11:59:00Z", "eventName": "X",
                           "errorCode": "AccessDeniedException"}], start, end, "error")
    assert [s.label for s in errors.series] == ["AccessDeniedException"]
    assert build_chart([], start, end, "name").bars == []


def _retry_after(throttle: SignInThrottle, conn, account: str, user: str,  # type: ignore[no-untyped-def]
                 address: str) -> float:
    """The wait an attempt is told, its admission (if any) given back at once."""
    wait, admission = throttle.admit(throttle.windows(conn, account, user, address))
    if admission is not None:
        admission.done()
    return wait


def test_the_throttle_waits_out_its_window_and_a_success_clears_the_user(tmp_path) -> None:
    conn = open_connection(tmp_path / "store.sqlite3")
    migrate(conn)
    now = [1_000.0]
    throttle = SignInThrottle(per_user=Limit(3, 60), per_address=Limit(4, 60),
                              clock=lambda: now[0])
    for _ in range(3):
        assert _retry_after(throttle, conn, "111122223333", "Dave", "10.0.0.1") == 0
        throttle.failed(conn, "111122223333", "Dave", "10.0.0.1")
        now[0] += 1
    assert _retry_after(throttle, conn, "111122223333", "dave", "10.0.0.2") == 57  # names fold
    assert _retry_after(throttle, conn, "111122223333", "erin", "10.0.0.1") == 0
    throttle.failed(conn, "111122223333", "erin", "10.0.0.1")  # the address's fourth
    assert _retry_after(throttle, conn, "111122223333", "frank", "10.0.0.1") == 57
    now[0] = 1_061.0  # the first failure has left the window
    assert _retry_after(throttle, conn, "111122223333", "dave", "10.0.0.3") == 0
    throttle.succeeded(conn, "111122223333", "DAVE")
    now[0] = 1_030.0
    assert _retry_after(throttle, conn, "111122223333", "dave", "10.0.0.3") == 0
    now[0] = 1_200.0  # a later failure prunes every row past the window
    throttle.failed(conn, "111122223333", "grace", "10.0.0.4")
    assert conn.execute("SELECT key FROM signin_failures ORDER BY key").fetchall() == [
        ("address:10.0.0.4",), ("user:111122223333/grace",)]


def test_attempts_being_checked_count_until_they_end(tmp_path) -> None:
    """Guesses sent together: each admitted one counts until it ends, so they cannot all
    pass before any failure is stored; the one they keep out waits (no seconds to tell)."""
    conn = open_connection(tmp_path / "store.sqlite3")
    migrate(conn)
    throttle = SignInThrottle(per_user=Limit(3, 60), per_address=Limit(50, 60),
                              clock=lambda: 1_000.0)
    throttle.failed(conn, "111122223333", "dave", "10.0.0.1")
    admitted = [throttle.admit(throttle.windows(conn, "111122223333", "dave", f"10.0.0.{n}"))
                for n in range(2, 5)]
    assert [wait for wait, _ in admitted] == [0, 0, 0]
    assert [admission is None for _, admission in admitted] == [False, False, True]
    admitted[0][1].done()
    wait, again = throttle.admit(throttle.windows(conn, "111122223333", "dave", "10.0.0.5"))
    assert wait == 0 and again is not None  # the one that ended made room
    for _ in range(3):  # no account to store them in: kept in memory, counted alike
        throttle.remember_failure("999999999999", None, "10.9.9.9")
    windows = throttle.windows(conn, "999999999999", None, "10.9.9.10")
    assert [window.key for window in windows] == ["address:10.9.9.10",
                                                  "user:999999999999/:root"]
    assert throttle.admit(windows)[1] is None  # the root of that account: 3 of 3
    # an IAM user named Root is not the root: its own count
    assert throttle.admit(throttle.windows(conn, "999999999999", "Root", "10.9.9.11"))[1]
