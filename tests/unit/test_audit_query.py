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


def test_an_event_id_finds_the_row_it_names_and_a_made_up_one_finds_nothing(tmp_path) -> None:
    from searchtrail.audit.eventid import EventIdCodec
    from searchtrail.audit.query import EventHistory
    from searchtrail.store.sqlite.connection import migrate, open_connection
    from searchtrail.store.sqlite.events import EventRow, append_events

    conn = open_connection(tmp_path / "db.sqlite3")
    migrate(conn)
    codec = EventIdCodec(b"k" * 32)
    now = int(NOW.timestamp())
    named = codec.encode(5)
    legacy = "0b9f3c1e-6a2d-4f1b-8c3e-5d7a9b1c2e4f"  # an earlier random id: a lookup row
    conn.execute("BEGIN IMMEDIATE")
    append_events(conn, [
        EventRow("1", "us-east-1", now - 60, f'{{"eventID":"{legacy}"}}',
                 lookup_values=(("EventId", legacy),)),
        EventRow("1", "us-east-1", now - 30, f'{{"eventID":"{named}"}}', seq=5),
        EventRow("2", "us-east-1", now - 30, '{"eventID":"other account"}'),
    ])
    conn.execute("COMMIT")
    assert conn.execute("SELECT count(*) FROM event_lookup").fetchone()[0] == 1
    # rows without a seq of their own come after every seq given
    assert [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")] == [5, 6, 7]
    history = EventHistory(PageTokens(b"k" * 32), retention_days=90, event_ids=codec)

    def found(event_id: str, account: str = "1", start=None) -> list[str]:
        page = history.page(conn, EventFilter(account, "us-east-1", ("EventId", event_id),
                                              start, None), limit=50, token=None, now=NOW)
        return [e.record for e in page.events]

    assert found(named) == [f'{{"eventID":"{named}"}}']
    assert found(named.upper()) == found(legacy.upper()) == []  # exact values, either way
    assert found(legacy) == [f'{{"eventID":"{legacy}"}}']
    assert found(codec.encode(5)) == []  # names seq 5 too, but row 5 does not carry it
    assert found(codec.encode(7)) == []  # row 7 is another account's
    assert found(named, account="2") == []
    assert found(named, start=datetime.fromtimestamp(now - 10, timezone.utc)) == []
    assert found(EventIdCodec(b"j" * 32).encode(5)) == []
