"""Opening SQLite connections with the durability settings, and applying numbered migrations."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from searchtrail.store.lookupkeys import lookup_key
from searchtrail.store.migrations import check_upgrade, numbered_scripts

BUSY_TIMEOUT_MS = 10_000
# The store holds secret access keys, password hashes and the digests' signing keys.
OWNER_ONLY = 0o600

log = logging.getLogger("searchtrail.store")


def open_connection(path: Path | str, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are always explicit (BEGIN IMMEDIATE)."""
    if not read_only:
        _owner_only(Path(path))
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit survives power loss, not only a process kill (NORMAL would not).
    conn.execute("PRAGMA synchronous = FULL")
    # Deleted rows (access keys, session credentials, expired records) are overwritten in
    # the file, whatever the SQLite build's default (Debian's is ON, upstream's OFF).
    conn.execute("PRAGMA secure_delete = ON")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def open_for_reading(path: Path) -> sqlite3.Connection:
    """A connection that never writes, also to a store this process may not write (an
    auditor's read-only copy). A WAL store needs its shared-memory file, which SQLite makes
    beside it; where it cannot, a store with no write-ahead log left is opened immutable (as
    on read-only media), and one with a log is refused: its last commits are only there."""
    try:
        conn = open_connection(path, read_only=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
        unwritable = exc
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        raise sqlite3.OperationalError(
            f"{unwritable}: its write-ahead log {wal.name} holds commits that only a process "
            "allowed to write beside it can read; copy the store with `sqlite3 "
            f"{Path(path).name} .backup COPY` and use the copy, or give write access") from None
    conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro&immutable=1", uri=True,
                           isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _owner_only(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives the -wal and -shm
    files it makes the database's mode), and take group and other access away from an older
    store's files."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, OWNER_ONLY))
        return
    except FileExistsError:
        pass
    except OSError as exc:  # told in one line by whoever opens the store, as its other errors
        raise sqlite3.OperationalError(
            f"cannot create {path}: {exc.strerror or exc} (the data directory must be "
            "writable by this user)") from None
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = name.stat().st_mode & 0o777
            if mode & ~OWNER_ONLY:
                os.chmod(name, mode & OWNER_ONLY)
                log.warning("made %s readable by its owner only (it was %o): it holds secret "
                            "keys", name, mode)
        except FileNotFoundError:
            pass
        except OSError as exc:  # another user's file, a read-only filesystem: told, not fatal
            log.warning("could not make %s readable by its owner only: %s", name,
                        exc.strerror or exc)


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the write-ahead log into the database file and empty it (a stopping server's last
    write): the file alone then holds every commit, for whoever copies it. Best effort: another
    process reading or writing the store (a worker still running) may keep part of the log."""
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("the write-ahead log was not copied into the store at stop: %s", exc)
        return
    if busy:
        log.info("the write-ahead log stays: another process still uses the store")


def durability_settings(conn: sqlite3.Connection) -> dict[str, object]:
    """What the connection enforces, for health checks and the durability tests."""
    return {
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
    }


def migrate(conn: sqlite3.Connection, upgrade: bool = True) -> int:
    """Apply every migration newer than the database's user_version (refused without
    ``upgrade``); returns the version."""
    conn.create_function("lookup_key", 4, lookup_key, deterministic=True)  # 0015's
    # Only an upgrade writes: a check takes no write lock, so it works on a read-only store.
    conn.execute("BEGIN IMMEDIATE" if upgrade else "BEGIN")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        scripts = numbered_scripts("searchtrail.store.sqlite")
        check_upgrade(version, scripts, upgrade)
        for number, script in scripts:
            if number > version:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                version = number
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def _statements(script: str) -> list[str]:
    """Split a script on complete statements (triggers contain inner semicolons)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    return statements
