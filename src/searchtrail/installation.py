"""A data directory's database, server secrets, object store and signing keys, opened without
the server (so commands such as `trail validate` start fast)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from typing import TYPE_CHECKING, Any, Callable

from searchtrail.audit.eventid import EventIdCodec
from searchtrail.audit.objectstore import ObjectStore
from searchtrail.audit.signing import SigningKeys
from searchtrail.config import Settings
from searchtrail.store.api import ResourceRepository
from searchtrail.store.sqlite import connection as sqlite_store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


def _store(settings: Settings) -> tuple[Any, Any]:
    """The store's connection module (both offer open_connection, migrate and
    durability_settings) and where the store is: PostgreSQL when ``database_url`` is set (its
    connection has sqlite3's surface), else the SQLite file in the data dir."""
    if settings.database_url:
        from searchtrail.store.postgres import connection as postgres  # psycopg only if used

        return postgres, settings.database_url
    return sqlite_store, settings.database_path


def open_database(settings: Settings, upgrade: bool = True,
                  read_only: bool = False) -> sqlite3.Connection:
    """The store's connection for writes, its schema brought up to date (or, without
    ``upgrade``, refused unless it is). ``read_only``: a connection that never writes, on a
    SQLite store whose files or folder may not be writable (a PostgreSQL store's connection
    is the usual one: its role decides what it may write)."""
    if read_only and not settings.database_url:
        conn = sqlite_store.open_for_reading(settings.database_path)
        try:
            sqlite_store.migrate(conn, upgrade=False)
        except BaseException:
            conn.close()
            raise
        return conn
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new one: ours alone
    except OSError as exc:  # told as the store's error: the commands' one way to report it
        reason = ("it is a file, not a directory" if isinstance(exc, FileExistsError)
                  else exc.strerror or str(exc))
        raise sqlite3.OperationalError(
            f"cannot make the data directory {settings.data_dir}: {reason}") from None
    module, where = _store(settings)
    conn = module.open_connection(where)
    try:
        module.migrate(conn, upgrade)
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(settings: Settings) -> sqlite3.Connection:
    """A read-only connection to the same store (one per reading thread)."""
    module, where = _store(settings)
    return module.open_connection(where, read_only=True)


def open_side_connection(settings: Settings) -> sqlite3.Connection:
    """A read-write connection to the store beside the writer's, for single-statement writes
    outside its batches (on PostgreSQL; SQLite's one writer is the batches')."""
    module, where = _store(settings)
    return module.open_connection(where)


def durability_settings(settings: Settings, conn: sqlite3.Connection) -> dict[str, object]:
    """What the store enforces for a commit to survive power loss, for the health check."""
    return _store(settings)[0].durability_settings(conn)


def event_id_codec(conn: sqlite3.Connection) -> EventIdCodec:
    """eventIDs carry their row's seq under this installation's key (audit/eventid.py): it
    lives beside the events it decodes and never changes."""
    return EventIdCodec(server_secret(conn, "event-id"))


def server_secret(conn: sqlite3.Connection, name: str) -> bytes:
    row = conn.execute("SELECT value FROM secrets WHERE name=?", (name,)).fetchone()
    if row is not None:  # read without a write lock: a read-only store has its secrets
        return bytes(row[0])
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM secrets WHERE name=?", (name,)).fetchone()
        if row is None:
            value = secrets.token_bytes(32)
            conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (name, value))
        else:
            value = row[0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return bytes(value)


def organization_id(conn: sqlite3.Connection) -> str:
    """This installation's organization id (o-…), stable across restarts."""
    return "o-" + hashlib.sha256(server_secret(conn, "organization")).hexdigest()[:10]


def object_store(settings: Settings) -> ObjectStore:
    if settings.s3_endpoint_url:
        from searchtrail.audit.stores.s3 import S3Store  # boto3 only when S3 is used

        return S3Store(settings.s3_endpoint_url, region=settings.default_region,
                       connect_timeout=settings.s3_timeout_seconds,
                       read_timeout=settings.s3_timeout_seconds)
    from searchtrail.audit.stores.local import LocalFolderStore

    return LocalFolderStore(settings.data_dir)


def signing_keys_in(repo: ResourceRepository,
                    material: Callable[[], RSAPrivateKey] | None = None) -> SigningKeys:
    return SigningKeys(repo.scoped, material=material)
