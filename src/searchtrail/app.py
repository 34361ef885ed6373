"""build_app(settings): the only place where the server's objects are created and wired."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Iterator

from searchtrail.audit.delivery import DeliveryWorker
from searchtrail.audit.notify import Notifier
from searchtrail.audit.objectstore import ObjectStore
from searchtrail.audit.query import EventHistory, PageTokens
from searchtrail.audit.record import CONSOLE_ENRICHERS, RecordBuilder
from searchtrail.audit.retention import EventRetention
from searchtrail.audit.routing import TrailRouter
from searchtrail.audit.signing import SpareKeyMaterial
from searchtrail.audit.stores.local import LocalFolderStore
from searchtrail.auth.authorizer import Authorizer
from searchtrail.auth.credentials import ChangeSignal, CredentialResolver
from searchtrail.auth.identities import AccessKey, Identities
from searchtrail.auth.password_threads import PasswordThreads
from searchtrail.config import Settings
from searchtrail.console.export import ExportTracker, FolderBoard, ProgressBoard, StoreBoard
from searchtrail.console.pages_auth import AuthPages
from searchtrail.console.pages_collections import CollectionPages
from searchtrail.console.pages_events import EventPages
from searchtrail.console.pages_policies import PolicyPages
from searchtrail.console.pages_trails import TrailPages
from searchtrail.console.passwords import PasswordCheck
from searchtrail.console.ratelimit import Limit, SignInThrottle
from searchtrail.console.readers import ThreadConnections
from searchtrail.console.reading import HistoryReader
from searchtrail.console.regions import console_regions
from searchtrail.console.sessions import SessionStore
from searchtrail.console.signin import SignInService
from searchtrail.console.templating import console_templates
from searchtrail.console.ui import CONSOLE_USER_AGENT, Ui
from searchtrail.console.web import console_app
from searchtrail.durable import replace_file
from searchtrail.gateway.asgi import EdgeRouter, loopback_name, web_app
from searchtrail.gateway.s3api import PolicyPermits, ReadOnlyS3Api
from searchtrail.gateway.aws import AwsCallHandler, ConsoleCalls, utc_now
from searchtrail.gateway.metrics import Metrics
from searchtrail.installation import (durability_settings, event_id_codec, object_store,
                                      open_database, open_reader, open_side_connection,
                                      organization_id, server_secret, signing_keys_in)
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.services.aoss.provider import OpenSearchServerlessProvider
from searchtrail.services.cloudtrail.provider import CloudTrailProvider
from searchtrail.services.iam.provider import IamProvider
from searchtrail.services.organizations.provider import OrganizationsProvider
from searchtrail.services.sts.provider import StsProvider
from searchtrail.services.registry import ServiceRegistry
from searchtrail.store.capacity import CapacityWatcher, filesystem_capacity
from searchtrail.store.sqlite.connection import checkpoint
from searchtrail.store.sqlite.resources import ResourceChanges, SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter
from searchtrail.workers import FileSignal

SERVICES = ("opensearchserverless", "cloudtrail", "iam", "sts", "organizations")
# The PostgreSQL channel on which nodes and workers tell each other that a key changed.
KEY_CHANGES_CHANNEL = "searchtrail_key_changes"
# Console sign-in throttling: failures allowed per user and per source address, per window.
SIGN_IN_FAILURES_PER_USER = 5
SIGN_IN_FAILURES_PER_ADDRESS = 50
SIGN_IN_WINDOW_SECONDS = 300


@dataclass
class Searchtrail:
    """The wired server: an ASGI callable plus the parts start-up and tests need."""

    settings: Settings
    asgi: Any
    writer: GroupCommitWriter
    delivery: DeliveryWorker
    connection: sqlite3.Connection
    registry: ServiceRegistry
    catalog: ServiceCatalog
    aws_calls: AwsCallHandler  # served by the HTTP protocol directly (gateway/direct.py)
    s3_apis: tuple[ReadOnlyS3Api, ...] = ()  # their GET and HEAD too

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)


def build_console(settings: Settings, *, calls: ConsoleCalls, history: EventHistory,
                  writer: GroupCommitWriter, store: ObjectStore, connect: Any,
                  password_threads: PasswordThreads, several_workers: bool = False) -> Any:
    """The web console (mounted at /console): pages over the same unit of work as the API.
    ``several_workers``: the server has several worker processes."""
    reads = ThreadConnections(connect)
    sessions = SessionStore(reads, writer, utc_now)
    exports = ExportTracker(board=export_progress_board(settings, several_workers))
    ui = Ui(templates=console_templates(), calls=calls, sessions=sessions,
            regions=console_regions(settings.default_region),
            default_region=settings.default_region, user_agent=CONSOLE_USER_AGENT)
    throttle = SignInThrottle(
        per_user=Limit(SIGN_IN_FAILURES_PER_USER, SIGN_IN_WINDOW_SECONDS),
        per_address=Limit(SIGN_IN_FAILURES_PER_ADDRESS, SIGN_IN_WINDOW_SECONDS))
    signin = SignInService(reads=reads, calls=calls, sessions=sessions, throttle=throttle,
                           passwords=PasswordCheck(password_threads))
    return console_app(ui, [
        AuthPages(ui, signin),
        EventPages(ui, HistoryReader(ui, history, reads, utc_now), exports, utc_now),
        CollectionPages(ui),
        PolicyPages(ui),
        TrailPages(ui, store, reads, utc_now),
    ])


def export_progress_board(settings: Settings, several_workers: bool) -> ProgressBoard | None:
    """Where console downloads' progress is kept for every process serving the console: the
    store on PostgreSQL (nodes and their workers), a folder for the workers of one server on
    SQLite; a lone process keeps it in memory."""
    if settings.database_url is not None:
        return StoreBoard(lambda: open_side_connection(settings))
    return FolderBoard(settings.exports_folder) if several_workers else None


def key_change_signal(settings: Settings, several_workers: bool) -> ChangeSignal | None:
    """How the processes sharing this store tell each other that a key changed: every node and
    worker on a PostgreSQL store through it, the workers of one server on SQLite through a file
    in the data folder; a lone process needs none."""
    if settings.database_url is not None:
        from searchtrail.store.postgres.notify import PostgresSignal  # psycopg only if used

        return PostgresSignal(settings.database_url, KEY_CHANGES_CHANNEL)
    return FileSignal(settings.credential_changes_path) if several_workers else None


# How long /_searchtrail/health waits for the store to answer its read before saying it is
# unavailable (a PostgreSQL host that drops packets would otherwise hold it ~10 s).
HEALTH_STORE_SECONDS = 2.0
# Health answers 503 once this many commits in a row failed, for this long after the last,
# then the store's read again decides: with no calls coming (a load balancer stopped them)
# nothing else would ever clear it.
HEALTH_FAILED_COMMITS = 3
HEALTH_FAILED_COMMIT_SECONDS = 30.0


def build_app(settings: Settings, *, worker: int = 0) -> Searchtrail:
    """The server of one process; ``worker`` is its index among ``settings.workers``."""
    conn = open_database(settings)
    catalog = ServiceCatalog.load(SERVICES)
    store = object_store(settings)

    def read_only_connection() -> sqlite3.Connection:
        return open_reader(settings)

    # Worker processes of one server (`serve --workers`) share its store and its data folder.
    several_workers = settings.workers > 1
    on_postgres = settings.database_url is not None
    key_changes = key_change_signal(settings, several_workers)
    credentials = CredentialResolver(read_only_connection, signal=key_changes)
    # a new signing key is made inside a unit of work, on the event loop: its RSA material
    # is made ahead, on a thread
    key_material = SpareKeyMaterial()
    # scrypt runs (IAM login profiles, console sign-ins) on two threads of their own
    password_threads = PasswordThreads()
    organization = organization_id(conn)
    registry = ServiceRegistry(
        [catalog.service(name) for name in SERVICES],
        {
            "opensearchserverless": OpenSearchServerlessProvider(
                create_seconds=settings.collection_create_seconds,
                delete_seconds=settings.collection_delete_seconds),
            "cloudtrail": CloudTrailProvider(
                bucket_exists=store.bucket_exists,
                signing_keys=lambda repo: signing_keys_in(repo, key_material.take),
                key_prefix_problem=store.key_prefix_problem),
            "iam": IamProvider(changed=credentials.forget, password_threads=password_threads),
            "sts": StsProvider(organization_id=organization),
            "organizations": OrganizationsProvider(organization),
        },
    )
    delivers = worker == 0  # the first worker delivers
    # Several nodes share a PostgreSQL store: one of them delivers (the lease).
    lease = None
    if settings.database_url is not None and delivers:
        from searchtrail.store.postgres.lease import DeliveryLease  # psycopg only if used

        lease = DeliveryLease(settings.database_url, settings.delivery_lease_seconds)
    # Lets the trail router cache trails between writes of them, and the write transactions
    # keep their reads; another process's writes never bump these counters, so the writer
    # drops a kind's at a BEGIN that finds that kind's resource version moved.
    changes = ResourceChanges()
    metrics = Metrics(settings.metrics_folder if several_workers else None)
    writer = GroupCommitWriter(
        conn, changes=changes,
        # the workers take turns on the SQLite file through this lock, in arrival order,
        # instead of SQLite's busy handler, which sleeps 1-100 ms between tries
        turn_lock=settings.write_turn_path if several_workers and not on_postgres else None,
        on_commit=metrics.writer_committed)
    event_ids = event_id_codec(conn)
    history = EventHistory(PageTokens(server_secret(conn, "page-token")), settings.retention_days,
                           event_ids)
    authorizer = Authorizer(registry.resource_condition_keys, registry.resource_grant,
                            organization_id=organization)
    aws = AwsCallHandler(settings=settings, catalog=catalog, registry=registry,
                         credentials=credentials, writer=writer,
                         records=RecordBuilder(event_ids=event_ids),
                         trails=TrailRouter(changes),
                         history=history, metrics=metrics,
                         clock=utc_now, changes=changes, authorizer=authorizer)
    delivery = DeliveryWorker(
        reader=read_only_connection, writer=writer, store=store,
        notifier=Notifier(sns_endpoint_url=settings.sns_endpoint_url,
                          webhooks=settings.notification_webhooks),
        signing_keys=lambda unit_conn: signing_keys_in(SqliteResources(unit_conn, "", ""),
                                                       key_material.take),
        delivery_interval=settings.delivery_interval, digest_interval=settings.digest_interval,
        org_id=organization, clock=utc_now,
        leadership=lease.held if lease is not None else None,
        retention=EventRetention(settings.retention_days, utc_now,
                                 interval_seconds=settings.retention_check_seconds,
                                 removed=metrics.records_removed,
                                 rows_removed=metrics.delivery_rows_removed,
                                 overdue=metrics.retention_overdue,
                                 purge_sessions=lambda unit_conn, before, limit: Identities(
                                     SqliteResources(unit_conn, "", "")
                                 ).purge_expired_sessions(before, limit))
        if settings.retention_check_seconds > 0 else None,
        backlog=metrics.delivery_backlog)
    capacity = CapacityWatcher(lambda: filesystem_capacity(settings.data_dir),
                               warning_ratio=settings.capacity_warning_ratio,
                               interval=settings.capacity_check_seconds,
                               publish=metrics.store_capacity,
                               path=str(settings.data_dir))
    s3 = (ReadOnlyS3Api(store, credentials, utc_now, timedelta(seconds=settings.clock_skew_seconds),
                        permits=PolicyPermits(authorizer,
                                              ThreadConnections(read_only_connection).get,
                                              utc_now, frozenset(settings.trusted_proxies)))
          if isinstance(store, LocalFolderStore) else None)

    # Read once, from the writer's own connection: health runs on the event loop, and the
    # connection may be busy on the commit thread (waiting for another node's write turn).
    durability = durability_settings(settings, conn)

    def read_store() -> None:
        """One read on a connection of its own: raises when the store cannot answer."""
        probe = read_only_connection()
        try:
            probe.execute("SELECT 1").fetchone()
        finally:
            probe.close()

    # The store read in flight, which health checks meanwhile wait for too: a store that
    # does not answer holds one thread, however often a load balancer asks.
    reading: asyncio.Future | None = None

    async def health() -> dict[str, Any]:
        """A load balancer's view: 503 while the store cannot answer (calls then fail closed),
        found by a read of its own, so the answer follows the store back up with no calls."""
        nonlocal reading
        if reading is None or reading.done():
            reading = asyncio.ensure_future(asyncio.to_thread(read_store))
            reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            await asyncio.wait_for(asyncio.shield(reading), HEALTH_STORE_SECONDS)
            store_error = None
        except sqlite3.Error as exc:
            store_error = str(exc)
        except TimeoutError:
            store_error = f"no answer within {HEALTH_STORE_SECONDS:g} s"
        failing = writer.stats.failing(HEALTH_FAILED_COMMIT_SECONDS, HEALTH_FAILED_COMMITS)
        if store_error is None and failing is not None:
            # read fine, but commits fail one after another (a read-only file, a full disk):
            # calls fail closed, so say so until one succeeds or the failures stop
            store_error = f"commits are failing: {failing}"
        return {"status": "ok" if store_error is None else "unavailable",
                **({"storeError": store_error} if store_error is not None else {}),
                "store": "postgresql" if on_postgres else "sqlite",
                "worker": worker, "workers": settings.workers, "pid": os.getpid(),
                **durability,
                **({"delivering": lease.holding} if lease is not None else {}),
                **({"keyChangeSignal": "working" if key_changes.working else "lost"}
                   if key_changes is not None else {}),
                "commits": writer.stats.commits, "failedCommits": writer.stats.failed_commits,
                "capacity": capacity.report()}

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        writer.start()
        key_material.start()
        if delivers:
            delivery.start()
        capacity.start()
        try:
            yield
        finally:
            capacity.stop()
            # Off the loop: the worker may be waiting for a transaction the loop's batch holds.
            await asyncio.to_thread(delivery.stop)
            if lease is not None:
                lease.close()  # another node takes the trails over on its next pass
            await writer.drain()  # every accepted call gets its record before exit
            writer.stop()
            if not on_postgres:
                checkpoint(conn)  # the file alone then holds every commit (a copy of it)
            if key_changes is not None:
                key_changes.close()

    console = build_console(settings, calls=ConsoleCalls(aws, catalog,
                                                         RecordBuilder(CONSOLE_ENRICHERS,
                                                                       event_ids)),
                            history=history, writer=writer, store=store,
                            connect=read_only_connection, password_threads=password_threads,
                            several_workers=several_workers)
    web = web_app(health=health, metrics=metrics, lifespan=lifespan, console=console,
                  query_service=catalog.service("sts"))
    # Behind a declared proxy (--trusted-proxies) the Host is the public name it forwards
    edge = EdgeRouter(aws, web, s3,
                      loopback_only=not settings.trusted_proxies and loopback_name(settings.host))
    return Searchtrail(settings, edge, writer, delivery, conn, registry,
                       catalog, aws, (s3,) if s3 is not None else ())


class WouldReplaceInstallation(Exception):
    """A first start on PostgreSQL in a data dir that holds another installation's SQLite
    store: its new root key would replace that one's credentials file."""


@contextlib.contextmanager
def _start_transaction(settings: Settings) -> Iterator[Any]:
    """One write transaction on the store for a start-up check, committed unless it raises."""
    conn = open_database(settings)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def ensure_default_account(settings: Settings) -> tuple[str, AccessKey | None]:
    """First start: create the default account and its root key, write the credentials file."""
    with _start_transaction(settings) as conn:
        if settings.database_url is None:
            # a write of the file's header, committed below: a store SQLite opened read-only
            # (its file's mode, an immutable flag) refuses it here, before anything is served
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute(f"PRAGMA user_version = {int(version)}")
        identities = Identities(SqliteResources(conn, "", ""))
        identities.upgrade()  # documents written by earlier versions, to this layout
        account = identities.default_account()
        key = None
        if account is None and settings.database_url and settings.database_path.exists():
            raise WouldReplaceInstallation(
                f"{settings.data_dir} holds a SQLite store ({settings.database_path.name}) "
                "and its credentials; this empty PostgreSQL store would start a new "
                "installation there, with a new account whose key replaces them. Give this "
                "node a data dir of its own (--data-dir), or move the SQLite store and its "
                "credentials away first (searchtrail does not copy an installation's history "
                "from SQLite to PostgreSQL).")
        if account is None:
            now = datetime.now(timezone.utc)
            account = identities.create_account(now, make_default=True)
            key = identities.create_access_key(account, None, now)
            # Durably before the commit: a power cut in between leaves a key the store never
            # had, which the next start replaces, never a stored key whose secret is lost.
            write_credentials_file(settings, key)
    return account, key


DESTINATION = "delivery-destination"  # the secrets row naming where a shared store's trails go


def delivery_destination_conflict(settings: Settings, change: bool = False) -> str | None:
    """On a store that nodes share (PostgreSQL), where its trails deliver is the store's, not
    a node's: the first node records its S3 endpoint (or the local folder), and a node started
    with another one is refused: holding the delivery lease, it would take the trails' files
    out of the store every other node and the validators read. Returns that recorded
    destination, or None when this node agrees (or ``change`` records its own instead)."""
    if not settings.database_url:
        return None
    mine = (settings.s3_endpoint_url or "the local bucket folder").encode()
    with _start_transaction(settings) as conn:
        row = conn.execute("SELECT value FROM secrets WHERE name = ?", (DESTINATION,)).fetchone()
        recorded = bytes(row[0]) if row is not None else None
        if recorded == mine:
            return None  # the usual start: nothing to write
        if recorded is not None and not change:
            return recorded.decode()
        conn.execute("DELETE FROM secrets WHERE name = ?", (DESTINATION,))
        conn.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (DESTINATION, mine))
    return None


def write_credentials_file(settings: Settings, key: AccessKey) -> None:
    path = settings.credentials_path
    text = ("[default]\n"
            f"aws_access_key_id = {key.access_key_id}\n"
            f"aws_secret_access_key = {key.secret_access_key}\n")
    replace_file(os.fsencode(path.parent), os.fsencode(path.name), text.encode(), mode=0o600)
