"""Lookup rows keyed by one integer (store/lookupkeys.py): the key, migration 0015 from the
texts, and LookupEvents leaving out a record found by another value's key."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from searchtrail.audit.query import EventFilter, EventHistory, PageTokens
from searchtrail.audit.record import lookup_values
from searchtrail.store.lookupkeys import lookup_key
from searchtrail.store.sqlite.connection import migrate, open_connection
from searchtrail.store.sqlite.events import EventRow, append_events
from tests.unit.test_delivery import _migrate_to

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
ACCOUNT, OTHER = "111122223333", "444455556666"
# values a length-prefixed text must keep apart, and non-ASCII ones
TRICKY_VALUES = [("111122223333", "us-east-1", "Username", ""),
                 ("111122223333", "us-east-1", "Username", "jöhn:1"),
                 ("111122223333", "us-east-1", "Username", "9:us-east-1"),
                 ("111122223333", "us-east-", "1Username", "x"),
                 ("", "", "EventName", "🔍 " + "long" * 300),
                 ("111122223333", "eu-west-3", "ResourceName", "arn:aws:aoss:eu-west-3:1:c/a")]


def test_keys_are_signed_64_bit_and_distinct_for_distinct_tuples() -> None:
    keys = [lookup_key(*values) for values in TRICKY_VALUES]
    assert len(set(keys)) == len(keys)
    assert all(-2**63 <= key < 2**63 for key in keys)
    assert lookup_key(*TRICKY_VALUES[1]) == lookup_key(*TRICKY_VALUES[1])  # a pure function
    # pinned: stores written by one version are read by the next
    assert lookup_key("111122223333", "us-east-1", "EventName", "ListCollections") == \
        _sha256_key("12:1111222233339:us-east-19:EventNameListCollections")


def _sha256_key(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def event(seq: int, account: str, user: str, name: str = "ListCollections") -> dict[str, Any]:
    return {"eventID": f"e{seq}", "eventName": name, "eventSource": "aoss.amazonaws.com",
            "readOnly": True, "userIdentity": {"type": "IAMUser", "userName": user,
                                               "accountId": account},
            "resources": [{"type": "AWS::OpenSearchServerless::Collection",
                           "ARN": f"arn:aws:aoss:us-east-1:{account}:collection/c{seq % 2}"}]}


# (seq, account, event time, record) of a store an older server left
OLD_EVENTS = [(1, ACCOUNT, 1764500000, event(1, ACCOUNT, "jöhn")),
              (2, OTHER, 1764500001, event(2, OTHER, "jöhn")),
              (3, ACCOUNT, 1764500002, event(3, ACCOUNT, "ann", "CreateCollection")),
              (4, ACCOUNT, 1764500003, event(4, ACCOUNT, "jöhn"))]


def fill_text_keyed_store(conn: Any) -> None:
    """OLD_EVENTS with their lookup rows as the four texts, as before migration 0015 (SQLite)
    or 0016 (PostgreSQL)."""
    conn.execute("BEGIN IMMEDIATE")
    for seq, account, event_time, record in OLD_EVENTS:
        conn.execute("INSERT INTO events (seq, account, region, event_time, record) "
                     "VALUES (?, ?, 'us-east-1', ?, ?)",
                     (seq, account, event_time, orjson.dumps(record).decode()))
        for attr, value in lookup_values(record):
            conn.execute("INSERT INTO event_lookup (account, region, attr, value, event_time, "
                         "seq) VALUES (?, 'us-east-1', ?, ?, ?, ?)",
                         (account, attr, value, event_time, seq))
    conn.execute("COMMIT")


def assert_keyed_and_found(conn: Any) -> None:
    """After the upgrade: every row keyed as store/lookupkeys.py keys it, none lost or added,
    and event history finds each account's records by their values."""
    expected = sorted((lookup_key(account, "us-east-1", attr, value), event_time, seq)
                      for seq, account, event_time, record in OLD_EVENTS
                      for attr, value in lookup_values(record))
    assert sorted(conn.execute("SELECT value_key, event_time, seq FROM event_lookup")
                  .fetchall()) == expected
    history = EventHistory(PageTokens(b"k" * 32), retention_days=3650)

    def found(account: str, attribute: tuple[str, str]) -> list[int]:
        page = history.page(conn, EventFilter(account, "us-east-1", attribute, None, None),
                            limit=50, token=None, now=NOW)
        return [e.seq for e in page.events]

    assert found(ACCOUNT, ("Username", "jöhn")) == [4, 1]
    assert found(OTHER, ("Username", "jöhn")) == [2]
    assert found(ACCOUNT, ("EventName", "CreateCollection")) == [3]
    assert found(ACCOUNT, ("EventId", "e3")) == [3]  # the old random-id rows still work
    assert found(ACCOUNT, ("ResourceName", f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/c0")
                 ) == [4]


def test_migration_0015_keys_the_rows_of_an_older_store_and_history_still_finds_them(
        tmp_path) -> None:
    conn = open_connection(tmp_path / "db.sqlite3")
    _migrate_to(conn, 14)
    fill_text_keyed_store(conn)
    migrate(conn)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert_keyed_and_found(conn)
    # still append-only above retention's mark
    for sql in ("DELETE FROM event_lookup", "UPDATE event_lookup SET event_time = 0"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()


def test_a_record_another_values_key_finds_is_left_out_and_the_page_stays_full(
        tmp_path) -> None:
    """Two values sharing a key (~2^-64, forced here by writing the other value's rows, and
    another account's, under this key): history shows only this account's records that carry
    the value, still ``limit`` a page, and its paging loses none."""
    conn = open_connection(tmp_path / "db.sqlite3")
    migrate(conn)
    now = int(NOW.timestamp())
    conn.execute("BEGIN IMMEDIATE")
    rows = []
    for seq in range(1, 13):  # ann and bob alternate; bob's rows are written under ann's key
        user = "ann" if seq % 2 else "bob"
        record = event(seq, ACCOUNT, user)
        rows.append(EventRow(ACCOUNT, "us-east-1", now - 100 + seq, orjson.dumps(record).decode(),
                             lookup_values=(("Username", user),), seq=seq))
    rows.append(EventRow(OTHER, "us-east-1", now - 80, orjson.dumps(event(13, OTHER, "ann"))
                         .decode(), seq=13))  # another account's ann, the newest
    append_events(conn, rows)
    ann = lookup_key(ACCOUNT, "us-east-1", "Username", "ann")
    for seq in [*range(2, 13, 2), 13]:
        conn.execute("INSERT INTO event_lookup (value_key, event_time, seq) VALUES (?, ?, ?)",
                     (ann, now - 100 + seq if seq < 13 else now - 80, seq))
    conn.execute("COMMIT")
    history = EventHistory(PageTokens(b"k" * 32), retention_days=90)
    flt = EventFilter(ACCOUNT, "us-east-1", ("Username", "ann"), None, None)
    seen, token = [], None
    for _ in range(10):
        page = history.page(conn, flt, limit=2, token=token, now=NOW)
        assert len(page.events) == 2 or page.next_token is None
        seen += [e.seq for e in page.events]
        token = page.next_token
        if token is None:
            break
    assert seen == [11, 9, 7, 5, 3, 1]
    conn.close()
