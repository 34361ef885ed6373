"""JSON document repository over the resources table."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from searchtrail.store.api import KeysCounted
from searchtrail.store.errors import translated

MAX_CACHED_READS = 512  # a batch holds at most 256 calls
# The documents' text kept from one transaction to the next at most: a cache of large
# listings starts afresh instead (server memory stays bounded whatever the store holds).
MAX_KEPT_TEXT = 4 * 1024 * 1024
# Each kind's version, moved by every change to a resource row of it (triggers: migration 0009;
# on PostgreSQL 0010 makes it the id of the last transaction that changed the kind).
RESOURCE_VERSIONS = "SELECT kind, version FROM resource_versions"
_UNREAD = object()
_GET = "SELECT doc FROM resources WHERE account=? AND region=? AND kind=? AND key=?"
_INSERT = "INSERT INTO resources (account, region, kind, key, doc) VALUES (?,?,?,?,?)"
# A read ahead's document probes per statement, at most (and as many counts).
READ_AHEAD_CHUNK = 64
_PROBE = ("SELECT account, region, kind, key, doc FROM resources "
          "WHERE account=? AND region=? AND kind=? AND key=?")
_PUT = _INSERT + " ON CONFLICT (account, region, kind, key) DO UPDATE SET doc = excluded.doc"
# A document's DELETE once it was read ahead in the transaction and not written since: it
# removes exactly that row, so PostgreSQL sends it with the next statement
# (store/postgres/connection.py), as it does an upsert.
DELETE_READ_AHEAD = ("DELETE FROM resources WHERE (account, region, kind, key) = "
                     "(?, ?, ?, ?)")


class ResourceChanges:
    """Per-kind change counters of one database, bumped by every write made through
    repositories that carry it; caches of rarely changing kinds (trails) compare them.

    It also keeps the write transactions' reads: under concurrency a batch runs many calls
    that read the same documents (clients listing or polling the same collections), and
    within one transaction, until something is written or rolled back, a read's rows cannot
    change. Any write through a repository, any rollback and a change of the connection's
    ``total_changes`` (a write made some other way) forget them; the writer keeps them for
    its next transaction only while no kind's resource version has moved."""

    __slots__ = ("_generations", "_reads", "_reads_of", "_text", "_ahead", "_ahead_of",
                 "_counts")

    def __init__(self) -> None:
        self._generations: dict[str, int] = {}
        self._reads: dict[tuple, Any] = {}
        self._reads_of: tuple[int, int] = (0, -1)  # (id of the connection, its total_changes)
        self._text = 0  # characters of the documents in _reads
        # Documents read ahead for a batch's units: (account, region, kind, key) -> the doc's
        # text or None (absent), each valid until written; on the connection with this id.
        self._ahead: dict[tuple[str, str, str, str], str | None] = {}
        self._ahead_of = 0
        # Counts read ahead (KeysCounted, scoped) -> how many such keys the transaction has
        # now: kept right by the writes whose effect on it is known, forgotten by any other.
        self._counts: dict[KeysCounted, int] = {}

    def bump(self, kind: str | None = None) -> None:
        """A write to ``kind``; None (a rolled-back transaction) invalidates every kind."""
        key = "" if kind is None else kind  # "" is part of every generation
        self._generations[key] = self._generations.get(key, 0) + 1
        self.forget_reads()
        if kind is None:
            self.forget_ahead()

    def read_ahead(self, conn: sqlite3.Connection,
                   wanted: list[tuple[str, str, str, str] | KeysCounted]) -> None:
        """Read the documents ``wanted`` (account, region, kind, key) and the counts wanted
        (KeysCounted) in the open write transaction, READ_AHEAD_CHUNK of each to a statement:
        a batch's units then find what they read first without a round trip each (``ahead``,
        ``counted``). A document stays valid until a write to its key (``written``) or a
        rollback; a count while every write to its keys says what it adds or removes. All are
        forgotten as the next transaction begins."""
        self.forget_ahead()
        self._ahead_of = id(conn)
        scopes = dict.fromkeys(wanted)
        counts = [scope for scope in scopes if isinstance(scope, KeysCounted)]
        docs = [scope for scope in scopes if not isinstance(scope, KeysCounted)]
        for start in range(0, max(len(docs), len(counts)), READ_AHEAD_CHUNK):
            self._read_chunk(conn, docs[start:start + READ_AHEAD_CHUNK],
                             counts[start:start + READ_AHEAD_CHUNK])

    def _read_chunk(self, conn: sqlite3.Connection, docs: list[tuple[str, str, str, str]],
                    counts: list[KeysCounted]) -> None:
        """Documents and counts in one statement. The documents' probes are padded to a power
        of two (repeating the last), so PostgreSQL prepares a few statements, not one per
        batch size; a count's row has no account, and its place in ``counts`` as its key."""
        size = 1 << (len(docs) - 1).bit_length() if docs else 0
        probes = docs + docs[-1:] * (size - len(docs))
        texts = [_PROBE] * size
        params = [value for scope in probes for value in scope]
        for place, scope in enumerate(counts):
            where, bounds = _key_prefix(scope.prefix)
            texts.append(f"SELECT NULL, NULL, NULL, '{place}', CAST(count(*) AS TEXT) "
                         f"FROM resources WHERE account=? AND region=? AND kind=?{where}")
            params.extend((scope.account, scope.region, scope.kind, *bounds))
        found = {}
        for row in conn.execute(" UNION ALL ".join(texts), tuple(params)).fetchall():
            if row[0] is None:
                self._counts[counts[int(row[3])]] = int(row[4])
            else:
                found[tuple(row[:4])] = row[4]
        for scope in docs:
            self._ahead[scope] = found.get(scope)

    def _read_ahead_on(self, conn: sqlite3.Connection) -> bool:
        """Whether what is read ahead was read on ``conn``, in its open transaction."""
        return id(conn) == self._ahead_of and conn.in_transaction

    def counted(self, conn: sqlite3.Connection, account: str, region: str, kind: str,
                prefix: str) -> int | None:
        """How many documents of ``kind`` have a key starting with ``prefix`` now, from a count
        read ahead in this transaction; None unless it was and still holds."""
        if not self._counts or not self._read_ahead_on(conn):
            return None
        return self._counts.get(KeysCounted(kind, prefix, account, region))

    def ahead(self, conn: sqlite3.Connection, account: str, region: str, kind: str,
              keys: list[str]) -> dict[str, str] | None:
        """The texts of the documents ``keys`` read ahead in this transaction and not written
        since, the absent ones left out; None unless every key was."""
        if not self._ahead or not self._read_ahead_on(conn):
            return None
        found = {}
        for key in keys:
            doc = self._ahead.get((account, region, kind, key), _UNREAD)
            if doc is _UNREAD:
                return None
            if doc is not None:
                found[key] = doc
        return found

    def written(self, account: str, region: str, kind: str, key: str | None,
                added: int | None = None) -> None:
        """A write to the document ``key`` (None: to a range of the kind's keys): what was
        read ahead of it no longer holds. ``added`` is the documents it adds (1), removes (-1)
        or neither (0), when known: the counts read ahead that include the key move by it;
        unknown, they are forgotten."""
        if self._counts:
            for scope in [scope for scope in self._counts
                          if (scope.account, scope.region, scope.kind) == (account, region, kind)
                          and (key is None or key.startswith(scope.prefix))]:
                if added is None or key is None:
                    del self._counts[scope]
                else:
                    self._counts[scope] += added
        if not self._ahead:
            return
        if key is not None:
            self._ahead.pop((account, region, kind, key), None)
            return
        for scope in [scope for scope in self._ahead if scope[:3] == (account, region, kind)]:
            del self._ahead[scope]

    def forget_ahead(self) -> None:
        """A new transaction begins: what was read ahead in the last one may have changed."""
        self._ahead.clear()
        self._counts.clear()

    def rolled_back(self) -> None:
        """Part of the transaction was rolled back: its reads may have changed, and so may
        the counts read ahead, which its writes had moved. (A document read ahead is still
        valid: every write forgot the one it changed.)"""
        self.forget_reads()
        self._counts.clear()

    def generation(self, *kinds: str) -> tuple[int, ...]:
        found = self._generations
        return (found.get("", 0), *(found.get(kind, 0) for kind in kinds))

    def forget_reads(self) -> None:
        """Part of a transaction was rolled back, or something was written."""
        self._reads.clear()
        self._text = 0

    def keep_reads(self, conn: sqlite3.Connection) -> None:
        """A new transaction began on ``conn`` and no resource row has changed since the
        reads were made: they hold in it (a full or large cache starts afresh)."""
        if len(self._reads) >= MAX_CACHED_READS or self._text > MAX_KEPT_TEXT:
            self.forget_reads()
        self._reads_of = (id(conn), conn.total_changes)

    def found_nothing(self, conn: sqlite3.Connection, query: tuple) -> bool:
        """Whether the one-row read ``query`` found no row earlier in this transaction, with
        nothing written since: what it looked for is still absent."""
        if not conn.in_transaction or (id(conn), conn.total_changes) != self._reads_of:
            return False
        return self._reads.get(query, _UNREAD) is None

    def read(self, conn: sqlite3.Connection, query: tuple, fetch: Callable[[], Any]) -> Any:
        """``fetch()``'s rows, or what it returned for the same ``query`` earlier in this
        transaction with nothing written since. Rows only (tuples of texts and numbers):
        every caller parses its own documents, so none can change another's."""
        if not conn.in_transaction:
            return fetch()
        state = (id(conn), conn.total_changes)
        if state != self._reads_of:
            self.forget_reads()
            self._reads_of = state
        rows = self._reads.get(query, _UNREAD)
        if rows is _UNREAD:
            rows = fetch()
            self._keep(query, rows)
        return rows

    def remember(self, conn: sqlite3.Connection, query: tuple, rows: Any) -> None:
        """What ``query`` answers now, read as part of another statement in this transaction:
        kept as if it had been read itself."""
        if conn.in_transaction and (id(conn), conn.total_changes) == self._reads_of:
            self._keep(query, rows)

    def _keep(self, query: tuple, rows: Any) -> None:
        if len(self._reads) < MAX_CACHED_READS:
            self._reads[query] = rows
            self._text += _text_of(rows)


def _text_of(rows: Any) -> int:
    """The characters of the texts in a read's rows (a list of rows, one row or None)."""
    if rows is None:
        return 0
    if isinstance(rows, tuple):
        rows = (rows,)
    return sum(len(value) for row in rows for value in row if isinstance(value, str))


class SqliteResources:
    """ResourceRepository bound to one connection and one (account, region) scope."""

    __slots__ = ("_conn", "account", "region", "_changes")

    def __init__(self, conn: sqlite3.Connection, account: str, region: str,
                 changes: ResourceChanges | None = None) -> None:
        self._conn = conn
        self.account = account
        self.region = region
        self._changes = changes

    def scoped(self, account_id: str, region: str) -> "SqliteResources":
        return SqliteResources(self._conn, account_id, region, self._changes)

    def _changed(self, kind: str, key: str | None = None, added: int | None = None) -> None:
        """A write to the document ``key`` of ``kind`` (None: to a range of its keys) that
        adds ``added`` documents (1), removes one (-1), or None: not known."""
        if self._changes is not None:
            self._changes.bump(kind)
            self._changes.written(self.account, self.region, kind, key, added)

    def _read(self, sql: str, params: tuple, *, one: bool = False) -> Any:
        """A read's rows (``one``: its first row or None). Repositories of the write
        transaction (those carrying ResourceChanges) reuse what the same read returned
        earlier in it."""
        conn = self._conn

        def fetch() -> Any:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if one else cursor.fetchall()

        with translated():
            if self._changes is None:
                return fetch()
            return self._changes.read(conn, (sql, params), fetch)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self._read(_GET, (self.account, self.region, kind, key), one=True)
        return orjson.loads(row[0]) if row else None

    def get_many(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        if self._changes is not None:  # read ahead for the batch (the writer's read_ahead)
            texts = self._changes.ahead(self._conn, self.account, self.region, kind, keys)
            if texts is not None:
                return {key: orjson.loads(doc) for key, doc in texts.items()}
        if getattr(self._conn, "dialect", None) == "postgresql":
            return self._get_each(kind, keys)
        marks = ",".join("?" * len(keys))
        rows = self._read(
            "SELECT key, doc FROM resources WHERE account=? AND region=? AND kind=? "
            f"AND key IN ({marks})", (self.account, self.region, kind, *keys))
        return {key: orjson.loads(doc) for key, doc in rows}

    def _get_each(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """get_many on PostgreSQL: one unique probe per key, in one statement. While a new
        store's statistics are young, PostgreSQL plans ``key IN (...)`` as a read of every
        document of the kind (measured: 0.44 ms a call and growing, under the bench's load)."""
        probe = "SELECT key, doc FROM resources WHERE account=? AND region=? AND kind=? AND key=?"
        params = tuple(value for key in keys for value in (self.account, self.region, kind, key))
        rows = self._read(" UNION ALL ".join([probe] * len(keys)), params)
        return {key: orjson.loads(doc) for key, doc in rows}

    def insert(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        scope = (self.account, self.region, kind, key)
        # A key this transaction has just read as absent cannot conflict (no other writer
        # runs meanwhile): written as an upsert, which PostgreSQL sends with the next
        # statement instead of waiting for an answer that can only be success.
        absent = self._changes is not None and (
            self._changes.found_nothing(self._conn, (_GET, scope))
            or self._changes.ahead(self._conn, *scope[:3], [key]) == {})
        self._changed(kind, key, 1)  # one more, or it fails and its unit is rolled back
        with translated():
            self._conn.execute(_PUT if absent else _INSERT,
                               (*scope, orjson.dumps(doc).decode()))

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self._changed(kind, key)
        with translated():
            self._conn.execute(_PUT, (self.account, self.region, kind, key,
                                      orjson.dumps(doc).decode()))

    def delete(self, kind: str, key: str) -> bool:
        if self._changes is not None:  # read ahead for the batch: its row count is known
            texts = self._changes.ahead(self._conn, self.account, self.region, kind, [key])
            if texts is not None:
                if key not in texts:
                    return False  # absent, and not written since: nothing to delete
                self._changed(kind, key, -1)
                with translated():
                    self._conn.execute(DELETE_READ_AHEAD, (self.account, self.region, kind, key))
                return True
        return self._delete(kind, "key = ?", (key,), key) > 0

    def delete_below(self, kind: str, key: str, limit: int | None = None) -> int:
        if limit is None:
            return self._delete(kind, "key < ?", (key,))
        return self._delete(
            kind, "key IN (SELECT key FROM resources WHERE account=? AND region=? AND kind=? "
                  "AND key < ? ORDER BY key LIMIT ?)",
            (self.account, self.region, kind, key, limit))

    def _delete(self, kind: str, condition: str, params: tuple, key: str | None = None) -> int:
        self._changed(kind, key)
        with translated():
            return self._conn.execute(
                f"DELETE FROM resources WHERE account=? AND region=? AND kind=? AND {condition}",
                (self.account, self.region, kind, *params),
            ).rowcount

    def list(self, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        where, bounds = _key_prefix(prefix)
        rows = self._read(
            f"SELECT doc FROM resources WHERE account=? AND region=? AND kind=?{where} "
            "ORDER BY key", (self.account, self.region, kind, *bounds))
        return [orjson.loads(row[0]) for row in rows]

    def count(self, kind: str, prefix: str = "") -> int:
        return self._read(*self._count_query(kind, prefix), one=True)[0]

    def _count_query(self, kind: str, prefix: str) -> tuple[str, tuple]:
        where, bounds = _key_prefix(prefix)
        return (f"SELECT count(*) FROM resources WHERE account=? AND region=? AND kind=?{where}",
                (self.account, self.region, kind, *bounds))

    def get_and_count(self, kind: str, key: str, prefix: str) -> tuple[dict[str, Any] | None, int]:
        if self._changes is not None:  # both read ahead for the batch: no round trip
            count = self._changes.counted(self._conn, self.account, self.region, kind, prefix)
            texts = None if count is None else self._changes.ahead(
                self._conn, self.account, self.region, kind, [key])
            if texts is not None:
                text = texts.get(key)
                return (None if text is None else orjson.loads(text)), count
        get_params = (self.account, self.region, kind, key)
        count_sql, count_params = self._count_query(kind, prefix)
        doc, count = self._read(f"SELECT ({_GET}), ({count_sql})", (*get_params, *count_params),
                                one=True)
        if self._changes is not None:  # as get and count would have read them
            self._changes.remember(self._conn, (_GET, get_params), None if doc is None else (doc,))
            self._changes.remember(self._conn, (count_sql, count_params), (count,))
        return (None if doc is None else orjson.loads(doc)), count


def _key_prefix(prefix: str) -> tuple[str, tuple[str, ...]]:
    """(SQL condition, its parameters) for keys starting with ``prefix``: one range of the
    primary key, from ``prefix`` up to the first text past every key that starts with it, in
    SQLite's binary order of UTF-8 text (code point order)."""
    if not prefix:
        return "", ()
    stem = prefix.rstrip("\U0010ffff")  # nothing sorts past U+10FFFF: carry to the left
    if not stem:
        return " AND key >= ?", (prefix,)
    past = ord(stem[-1]) + 1
    if 0xD800 <= past <= 0xDFFF:
        past = 0xE000  # surrogates are not text
    return " AND key >= ? AND key < ?", (prefix, stem[:-1] + chr(past))
