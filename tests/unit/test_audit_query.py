"""Paging tokens: bound to their filter, refused when forged."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from searchtrail.audit.query import EventFilter, InvalidToken, PageTokens
from searchtrail.store.sqlite.events import StoredEvent

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def test_token_round_trip_and_binding() -> None:
    tokens = PageTokens(b"k" * 32)
    flt = EventFilter("1", "us-east-1", ("EventName", "X"), None, NOW)
    token = tokens.issue(flt, StoredEvent(7, 100, "{}"), until=200)
    assert tokens.read(flt, token) == {"f": flt.fingerprint(), "t": 100, "s": 7, "u": 200}
    with pytest.raises(InvalidToken):
        tokens.read(EventFilter("1", "us-east-1", ("EventName", "Y"), None, NOW), token)
    with pytest.raises(InvalidToken):
        PageTokens(b"j" * 32).read(flt, token)
    for garbage in ("", "!!!", token[:-2], "a" * 200):
        with pytest.raises(InvalidToken):
            tokens.read(flt, garbage)


def test_history_keeps_to_the_retention_window(tmp_path) -> None:
    from searchtrail.audit.query import EventHistory
    from searchtrail.store.sqlite.connection import migrate, open_connection
    from searchtrail.store.sqlite.events import EventRow, append_events

    conn = open_connection(tmp_path / "db.sqlite3")
    migrate(conn)
    day = 86400
    now = NOW.timestamp()
    conn.execute("BEGIN IMMEDIATE")
    append_events(conn, [EventRow("1", "us-east-1", int(now - age * day), f'{{"age":{age}}}')
                         for age in (91, 89, 1)])
    conn.execute("COMMIT")
    history = EventHistory(PageTokens(b"k" * 32), retention_days=90)
    page = history.page(conn, EventFilter("1", "us-east-1", None, None, None), limit=50,
                        token=None, now=NOW)
    assert [e.record for e in page.events] == ['{"age":1}', '{"age":89}']
    page = history.page(conn, EventFilter("1", "us-east-1", None,
                                          datetime(2020, 1, 1, tzinfo=timezone.utc), None),
                        limit=50, token=None, now=NOW)
    assert len(page.events) == 2  # an older StartTime is clamped, not an error
