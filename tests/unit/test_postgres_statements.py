"""The SQLite statements the store uses, as the PostgreSQL connection sends them."""

from __future__ import annotations

import pytest

from searchtrail.audit import delivery
from searchtrail.store.postgres.connection import _Statement


@pytest.mark.parametrize("sqlite, postgres", [
    ("SELECT doc FROM resources WHERE account=? AND key IN (?,?)",
     "SELECT doc FROM resources WHERE account=%s AND key IN (%s,%s)"),
    ("INSERT OR IGNORE INTO event_lookup (a, b) VALUES (?,?)",
     "INSERT INTO event_lookup (a, b) VALUES (%s,%s) ON CONFLICT DO NOTHING"),
    ("SELECT seq FROM outbox INDEXED BY outbox_by_group WHERE seq > ?",
     "SELECT seq FROM outbox WHERE seq > %s"),
    ("SELECT 1 WHERE name LIKE 'a%' AND x = ?", "SELECT 1 WHERE name LIKE 'a%%' AND x = %s"),
])
def test_statements_are_spelled_for_postgresql(sqlite: str, postgres: str) -> None:
    assert _Statement(sqlite).text == postgres


@pytest.mark.parametrize("rows", [2, 3, 150])
def test_a_multi_row_insert_is_one_text_whatever_its_row_count(rows: int) -> None:
    values = ",".join(["(?,?)"] * rows)
    statement = _Statement(f"INSERT OR IGNORE INTO event_lookup (seq, value) VALUES {values}")
    assert statement.text is None  # until the table's column types are known
    statement.spell_rows({"seq": "bigint", "value": "text", "unused": "text"})
    assert statement.text == ("INSERT INTO event_lookup (seq, value) SELECT * FROM "
                              "unnest(%b::bigint[], %b::text[]) ON CONFLICT DO NOTHING")
    flat = [value for row in range(rows) for value in (row, f"v{row}")]
    assert statement.parameters(flat) == [list(range(rows)), [f"v{row}" for row in range(rows)]]


def test_numbered_parameters_become_named_ones_and_may_repeat() -> None:
    statement = _Statement("SELECT ?2, ?1, ?2")
    assert statement.text == "SELECT %(p2)s, %(p1)s, %(p2)s"
    assert statement.parameters(("a", "b")) == {"p1": "a", "p2": "b"}


def test_a_log_files_records_are_joined_in_seq_order_as_bytes() -> None:
    statement = _Statement(delivery._FILE_RECORDS)
    assert "convert_to(string_agg(record, ',' ORDER BY seq), 'UTF8')" in statement.text
    assert "group_concat" not in statement.text and "INDEXED BY" not in statement.text
    assert statement.binary  # the bytes as they are, not hex
    assert not _Statement("SELECT record FROM events").binary


@pytest.mark.parametrize("sql, writes, ends", [
    ("INSERT INTO t VALUES (?)", True, False),
    ("  update t SET a = 1", True, False),
    ("DELETE FROM t", True, False),
    ("SELECT count(*) FROM t", False, False),
    ("COMMIT", False, True),
    ("ROLLBACK", False, True),
    ("ROLLBACK TO unit", False, False),  # a savepoint's: the transaction goes on
])
def test_writes_are_counted_and_a_transactions_end_is_known(sql: str, writes: bool,
                                                              ends: bool) -> None:
    statement = _Statement(sql)
    assert (statement.writes, statement.ends) == (writes, ends)
