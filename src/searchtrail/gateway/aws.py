"""Signed AWS calls: the handler chain from raw bytes to a committed record and a response.

read body → resolve operation → verify SigV4 → parse → validate → unit of work (authorize,
provider, record — one transaction) → serialize. Every failure after authentication is
recorded; the wire format (awsJson or query) is the codec's business.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable, Protocol

import orjson

from searchtrail.arns import is_region
from searchtrail.audit.record import EventIds, RecordBuilder, event_row, shared_copy
from searchtrail.audit.routing import TrailRouter
from searchtrail.auth import sigv4
from searchtrail.auth.credentials import CredentialResolver
from searchtrail.config import Settings
from searchtrail.gateway.codecs import JsonCodec, QueryCodec, codec_for
from searchtrail.gateway.context import RequestContext
from searchtrail.gateway.http import (BodyCollector, BodyTooLarge, RawRequest, client_address,
                                      header, read_body, scope_peer)
from searchtrail.gateway.metrics import Metrics
from searchtrail.gateway.httpserver import scope_tls
from searchtrail.protocol import validate
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import InternalError, ServiceError
from searchtrail.services.call import Call
from searchtrail.services.registry import ServiceRegistry
from searchtrail.store.api import KeysCounted, StoreUnavailable
from searchtrail.store.sqlite.resources import ResourceChanges, SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

log = logging.getLogger("searchtrail.gateway")

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]

DRAIN_FACTOR = 16  # oversized bodies up to 16x the cap are read and dropped before the 413
GLOBAL_SERVICE_REGION = "us-east-1"  # where AWS records global services' (IAM's) events
GLOBAL_SERVICES = frozenset({"iam", "organizations"})
# Read-only calls that still write: STS's issue credentials (CloudTrail marks them readOnly).
READS_THAT_WRITE = frozenset({"sts"})


def store_unavailable(ctx: RequestContext, exc: StoreUnavailable) -> ServiceError:
    """The answer when the store can neither record a call nor look up its key: fail closed."""
    log.error("event store unavailable", extra={"request_id": ctx.request_id,
                                                 "detail": str(exc)})
    return ServiceError("ServiceUnavailableException", "The audit store cannot record this "
                        "call right now; nothing was changed. Retry later.", status=503)


class Authorizer(Protocol):
    def check(self, repo: SqliteResources, ctx: RequestContext, now: datetime) -> None:
        """Raise ServiceError (AccessDeniedException) when the caller may not do this."""


class AwsCallHandler:
    """Serves every AWS API call; the only place a call's steps are put in order."""

    def __init__(self, *, settings: Settings, catalog: ServiceCatalog, registry: ServiceRegistry,
                 credentials: CredentialResolver, writer: GroupCommitWriter,
                 records: RecordBuilder, trails: TrailRouter, history: Any, metrics: Metrics,
                 clock: Callable[[], datetime], authorizer: Authorizer | None = None,
                 changes: ResourceChanges | None = None) -> None:
        self._settings = settings
        self._catalog = catalog
        self._registry = registry
        self._credentials = credentials
        self._writer = writer
        self._records = records
        self._trails = trails
        self._history = history
        self._metrics = metrics
        self._clock = clock
        self._authorizer = authorizer
        self._changes = changes
        self._request_ids = EventIds()
        self._json = JsonCodec(catalog)
        self._query = QueryCodec(catalog)
        self._max_skew = timedelta(seconds=settings.clock_skew_seconds)
        self._trusted_proxies = frozenset(settings.trusted_proxies)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        """The ASGI way in (the HTTP protocol serves most calls directly: ``respond``)."""
        request = RawRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=scope["headers"], peer=scope_peer(scope),
            tls=scope_tls(scope))
        refusal = None
        try:
            request.body = await read_body(receive, request.headers,
                                           self._settings.max_body_bytes,
                                           drain_factor=DRAIN_FACTOR)
        except (BodyTooLarge, ServiceError) as refused:
            refusal = refused
        await _send(send, *(await self.respond(request, refusal)))

    def body_collector(self, headers: list) -> BodyCollector:
        """The body limits of a call (raises HeadersTooLarge / BodyTooLarge at once)."""
        return BodyCollector(headers, self._settings.max_body_bytes, DRAIN_FACTOR)

    async def respond(self, request: RawRequest, refusal: Exception | None = None
                      ) -> tuple[int, list, bytes]:
        """Status, headers and body for one call; ``refusal`` is why its body was not read
        (BodyTooLarge, or a ServiceError such as 408 or 431)."""
        headers = request.headers
        ctx = RequestContext(
            request_id=self._request_ids.next(),
            source_ip=self._source_ip(request.peer, headers),
            user_agent=header(headers, b"user-agent"),
            host=header(headers, b"host"),
            tls=request.tls,
        )
        codec = codec_for(headers, self._json, self._query)
        service_model = None
        try:
            if refusal is not None:
                raise refusal
            ctx.body = request.body
            operation = codec.resolve(headers, ctx.body)
            service_model = operation.service_model
            ctx.operation = operation
            ctx.service_name = service_model.service_name
            ctx.event_source = f"{service_model.endpoint_prefix}.amazonaws.com"
            ctx.read_only = self._catalog.is_read_only(operation)
            self._authenticate(ctx, request, operation)
        except StoreUnavailable as exc:  # the key could not be looked up: nothing was done
            return codec.error(service_model, self.fail_closed(ctx, exc), ctx.request_id)
        except (BodyTooLarge, ServiceError) as refused:
            error = refused if isinstance(refused, ServiceError) else ServiceError(
                "RequestEntityTooLargeException",
                f"Request body must be at most {self._settings.max_body_bytes} bytes.", status=413)
            self._metrics.rejected(error.code)
            log.info("request refused", extra={"request_id": ctx.request_id, "code": error.code,
                                                "source_ip": ctx.source_ip,
                                                "detail": error.message})
            return codec.error(service_model, error, ctx.request_id)

        try:
            await self.execute(ctx, codec)
        except StoreUnavailable as exc:
            return codec.error(service_model, self.fail_closed(ctx, exc), ctx.request_id)
        except Exception:
            log.exception("unit of work failed", extra={"request_id": ctx.request_id})
            return codec.error(service_model, InternalError(ctx.request_id), ctx.request_id)
        if ctx.error is not None:
            return codec.error(service_model, ctx.error, ctx.request_id)
        headers_out, body = codec.success(ctx.operation, ctx.result, ctx.output_wire or {},
                                          ctx.request_id)
        return 200, headers_out, body

    async def execute(self, ctx: RequestContext, codec: JsonCodec | QueryCodec,
                      records: RecordBuilder | None = None) -> None:
        """The steps after authentication, shared by signed calls and the console: parse,
        validate, the provider's preparation (off the loop), then the unit of work
        (authorize, provider, record) in the next commit.

        Fills ``ctx.result`` or ``ctx.error``; raises StoreUnavailable when nothing could be
        recorded (and so nothing changed). ``records`` builds the record (default: the API's).
        """
        try:
            self._parse(ctx, codec)
        except ServiceError as error:
            ctx.error = error
            ctx.wire_params = codec.request_wire(ctx.operation, ctx.body)
        else:
            preparer = self._registry.preparer(ctx.operation)
            if preparer is not None:
                ctx.prepared = await preparer(ctx.params or {})
        await self._writer.run(self._unit(ctx, codec, records or self._records))
        self._metrics.call(ctx.service_name, ctx.operation_name, ctx.error.code if ctx.error else "")

    def fail_closed(self, ctx: RequestContext, exc: StoreUnavailable) -> ServiceError:
        """A call the store could not record (or whose key it could not look up): counted
        for /metrics, and answered 503."""
        self._metrics.failed_closed()
        return store_unavailable(ctx, exc)

    def new_request_id(self) -> str:
        return self._request_ids.next()

    async def write_record(self, ctx: RequestContext, records: RecordBuilder, *, account: str,
                           also: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Record an event that is no API call (a console sign-in) into ``account``'s history:
        built by ``records`` from ``ctx``, routed to trails, committed like a call's record;
        ``also(conn)`` runs in the same transaction."""

        def unit(conn: sqlite3.Connection) -> tuple[Any, list]:
            if also is not None:
                also(conn)
            ctx.event_time = self._clock()
            return None, self._rows(conn, ctx, records, account=account)

        await self._writer.run(unit)

    def _authenticate(self, ctx: RequestContext, request: RawRequest, operation: Any) -> None:
        if operation.auth_type == "none" or "smithy.api#noAuth" in (operation.auth or ()):
            # Unsigned by design (AssumeRoleWithWebIdentity): the provider authenticates the
            # token it carries and names the principal.
            ctx.region = self._settings.default_region
            return
        signed = sigv4.HttpRequest(
            method=request.method, raw_path=request.raw_path,
            query_string=request.query_string,
            headers=[(name.decode("latin-1"), value.decode("latin-1"))
                     for name, value in request.headers],
            body=ctx.body,
        )
        verified = sigv4.verify(signed, lookup=self._credentials.lookup, now=self._clock(),
                                max_skew=self._max_skew,
                                service=operation.service_model.signing_name,
                                region_check=is_region)
        ctx.region = (GLOBAL_SERVICE_REGION if ctx.service_name in GLOBAL_SERVICES
                      else verified.region)
        ctx.principal = verified.credential.owner

    def _parse(self, ctx: RequestContext, codec: JsonCodec | QueryCodec) -> None:
        operation = ctx.operation
        params, ctx.wire_params = codec.parse(operation, ctx.body)
        violations = validate.find_violations(operation, params)
        if violations:
            raise (self._registry.violation_error(operation, violations)
                   or codec.violations_error(operation, violations))
        ctx.params = params

    def _unit(self, ctx: RequestContext, codec: JsonCodec | QueryCodec,
              records: RecordBuilder) -> Callable[[sqlite3.Connection], tuple[Any, list]]:
        handler = self._registry.handler(ctx.operation)
        # A read writes nothing, so it needs no savepoint (the writer checks that it did not).
        # A write's one savepoint spans its operation and its record: a failed operation is
        # rolled back to it and still recorded, and a unit that fails leaves no write behind,
        # so the writer adds no savepoint of its own.
        guarded = not ctx.read_only or ctx.service_name in READS_THAT_WRITE

        def unit(conn: sqlite3.Connection) -> tuple[Any, list]:
            now = self._clock()
            account = ctx.principal.account_id if ctx.principal else ""
            call = Call(account_id=account, region=ctx.region, now=now,
                        request_id=ctx.request_id, operation=ctx.operation_name,
                        resources=SqliteResources(conn, account, ctx.region, self._changes),
                        settings=self._settings, principal=ctx.principal,
                        events=self._history.bind(conn), prepared=ctx.prepared,
                        next_seq=self._writer.next_seq, source_ip=ctx.source_ip,
                        secure_transport=ctx.tls is not None, user_agent=ctx.user_agent)
            if guarded:
                conn.execute("SAVEPOINT operation")
            try:
                rows = self._operate_and_record(conn, ctx, codec, records, handler, call, now,
                                                guarded)
            except BaseException:
                if guarded:
                    conn.execute("ROLLBACK TO operation")
                    conn.execute("RELEASE operation")
                raise  # the writer drops what was cached since (the trails read for the record)
            if guarded:
                conn.execute("RELEASE operation")
            return None, rows

        unit.read_only = not guarded  # type: ignore[attr-defined]
        unit.undoes_itself = guarded  # type: ignore[attr-defined]
        read_ahead = self._registry.read_ahead(ctx.operation) if self._writer.reads_ahead else None
        wanted = read_ahead(ctx.params, self._clock()) if (
            read_ahead is not None and ctx.error is None and ctx.principal) else None
        if wanted:  # the writer may read a batch's in one statement
            account = ctx.principal.account_id  # type: ignore[union-attr]
            unit.reads_ahead = [  # type: ignore[attr-defined]
                scope._replace(account=account, region=ctx.region)
                if isinstance(scope, KeysCounted) else (account, ctx.region, *scope)
                for scope in wanted]
        return unit

    def _operate_and_record(self, conn: sqlite3.Connection, ctx: RequestContext,
                            codec: JsonCodec | QueryCodec, records: RecordBuilder,
                            handler: Callable, call: Call, now: datetime,
                            guarded: bool) -> list:
        """Run the operation (a failure is rolled back to the unit's savepoint and becomes the
        call's error), then return the call's record rows."""
        if ctx.error is None:
            written_before = conn.total_changes
            recipients = self._registry.record_recipients(ctx.service_name, ctx.operation)
            if recipients is not None:  # before authorization: refusals are shared too
                call.shared_with_accounts.extend(recipients(call, ctx.params))
            try:
                if self._authorizer is not None and ctx.principal is not None:
                    self._authorizer.check(call.resources, ctx, now)
                ctx.result = handler(call, ctx.params)
                ctx.output_wire = codec.output_wire(ctx.operation, ctx.result)
            except StoreUnavailable:
                raise  # fail closed: no record, no change, a 503
            except ServiceError as error:
                self._undo(conn, guarded, written_before)
                ctx.error = error
            except Exception:
                log.exception("operation failed", extra={"request_id": ctx.request_id})
                self._undo(conn, guarded, written_before)
                ctx.error = InternalError(ctx.request_id)
            ctx.referenced_resources = call.referenced_resources
            if ctx.principal is None and call.principal is not None:
                ctx.principal = call.principal  # an unsigned call, authenticated by its provider
        if ctx.error is not None:
            ctx.error_code = codec.client_code(ctx.operation.service_model, ctx.error.code)
        if ctx.principal is None:
            return []  # nobody was authenticated: the log and metrics have it, as on AWS
        ctx.event_time = now
        return self._rows(conn, ctx, records, account=ctx.principal.account_id,
                          shared_with=call.shared_with_accounts)

    def _undo(self, conn: sqlite3.Connection, guarded: bool, written_before: int) -> None:
        if guarded:
            # kept open (emptied) until the record is made. Trails are routed after the
            # operation and its writes bumped their kinds, so only the reads since go (and
            # the counts read ahead, which its writes moved).
            conn.execute("ROLLBACK TO operation")
            if self._changes is not None:
                self._changes.rolled_back()
        elif conn.total_changes != written_before:
            # a read that wrote, then failed: only failing its whole batch undoes the writes
            raise StoreUnavailable("a read-only call wrote, then failed, without a savepoint")

    def _rows(self, conn: sqlite3.Connection, ctx: RequestContext, records: RecordBuilder, *,
              account: str, shared_with: Iterable[str] = ()) -> list:
        """The record of ``ctx`` for ``account`` (plus a copy per other account it is shared
        with), each with the trails that must deliver it."""
        # Each row's seq is taken now: its eventID encodes it (audit/eventid.py).
        seq = records.row_seq(self._writer.next_seq())
        record = records.build(ctx, seq)
        # Copies first: making one stamps the sharedEventID on the original too.
        copies = []
        for other in dict.fromkeys(shared_with):
            if other != account:
                copy_seq = records.row_seq(self._writer.next_seq())
                copies.append((other, copy_seq, shared_copy(record, other, records, copy_seq)))
        rows = [event_row(ctx, record, self._trails.deliveries(conn, account, ctx.region, record,
                                                               ctx.event_time),
                          account=account, seq=seq)]
        rows += [event_row(ctx, copy, self._trails.deliveries(conn, other, ctx.region, copy,
                                                              ctx.event_time),
                           account=other, seq=copy_seq) for other, copy_seq, copy in copies]
        return rows

    def _source_ip(self, peer: str, headers: list) -> str:
        return client_address(peer, headers, self._trusted_proxies)


class ConsoleCalls:
    """The console's way in: run operation X with wire parameters P as principal Y, through
    the same steps as a signed call after its authentication (validated, authorized, recorded).
    """

    def __init__(self, handler: AwsCallHandler, catalog: ServiceCatalog,
                 records: RecordBuilder) -> None:
        self._handler = handler
        self._catalog = catalog
        self._records = records  # the console's chain: marks records as made from the console
        self._json = JsonCodec(catalog)

    def caller(self, scope: dict) -> tuple[str, str, dict[str, str] | None]:
        """The browser request's source address (trusted proxies applied), Host and TLS."""
        headers = scope.get("headers") or []
        return (self._handler._source_ip(scope_peer(scope), headers), header(headers, b"host"),
                scope_tls(scope))

    async def write_record(self, ctx: RequestContext, records: RecordBuilder, *, account: str,
                           also: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Record a console event that is no API call (ConsoleLogin); see AwsCallHandler."""
        await self._handler.write_record(ctx, records, account=account, also=also)

    async def invoke(self, principal: Any, service: str, operation: str, params: dict[str, Any],
                     *, region: str, scope: dict, user_agent: str) -> RequestContext:
        """``params`` as an SDK would send them (awsJson wire members); ``scope`` is the
        browser request's, for the source address, Host and TLS details. Returns the filled
        context: ``result``/``output_wire`` on success, ``error`` otherwise."""
        service_model = self._catalog.service(service)
        if self._catalog.is_query(service_model):
            raise ValueError(f"{service} speaks the query protocol; the console calls JSON APIs")
        source_ip, host, tls = self.caller(scope)
        ctx = RequestContext(request_id=self._handler.new_request_id(), source_ip=source_ip,
                             user_agent=user_agent, host=host, tls=tls)
        ctx.operation = service_model.operation_model(operation)
        ctx.service_name = service
        ctx.event_source = f"{service_model.endpoint_prefix}.amazonaws.com"
        ctx.read_only = self._catalog.is_read_only(ctx.operation)
        ctx.region = GLOBAL_SERVICE_REGION if service in GLOBAL_SERVICES else region
        ctx.principal = principal
        ctx.body = orjson.dumps(params)
        try:
            await self._handler.execute(ctx, self._json, self._records)
        except StoreUnavailable as exc:
            ctx.error = self._handler.fail_closed(ctx, exc)
        except Exception:
            log.exception("unit of work failed", extra={"request_id": ctx.request_id})
            ctx.error = InternalError(ctx.request_id)
        return ctx


async def _send(send: Send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
