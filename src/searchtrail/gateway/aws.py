"""Signed AWS calls: the handler chain from raw bytes to a committed record and a response.

read body → resolve operation → verify SigV4 → parse → validate → unit of work (provider +
record, one transaction) → serialize. Every failure after authentication is recorded.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import orjson

from searchtrail.audit.record import RecordBuilder, event_row
from searchtrail.audit.routing import TrailRouter
from searchtrail.auth import sigv4
from searchtrail.auth.credentials import CredentialResolver
from searchtrail.config import Settings
from searchtrail.gateway.context import RequestContext
from searchtrail.gateway.http import BodyTooLarge, header, read_body
from searchtrail.gateway.metrics import Metrics
from searchtrail.gateway.tls import SCOPE_KEY as TLS_SCOPE_KEY
from searchtrail.protocol import parser, serializer, validate
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import InternalError, ServiceError, UnknownOperationError
from searchtrail.services.call import Call
from searchtrail.services.registry import ServiceRegistry
from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

log = logging.getLogger("searchtrail.gateway")

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_JSON_ERROR_CONTENT_TYPE = b"application/x-amz-json-1.1"
DRAIN_FACTOR = 16  # oversized bodies up to 16x the cap are read and dropped before the 413


class AwsCallHandler:
    """Serves every signed AWS call; the only place a call's steps are put in order."""

    def __init__(self, *, settings: Settings, catalog: ServiceCatalog, registry: ServiceRegistry,
                 credentials: CredentialResolver, writer: GroupCommitWriter,
                 records: RecordBuilder, trails: TrailRouter, history: Any, metrics: Metrics,
                 clock: Callable[[], datetime]) -> None:
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
        self._max_skew = timedelta(seconds=settings.clock_skew_seconds)
        self._trusted_proxies = frozenset(settings.trusted_proxies)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        headers = scope["headers"]
        ctx = RequestContext(
            request_id=str(uuid.uuid4()),
            source_ip=self._source_ip(scope, headers),
            user_agent=header(headers, b"user-agent"),
            host=header(headers, b"host"),
            tls=_tls_details(scope),
        )
        service_model = None
        try:
            ctx.body = await read_body(receive, headers, self._settings.max_body_bytes,
                                         drain_factor=DRAIN_FACTOR)
            operation = self._resolve(headers)
            service_model = operation.service_model
            ctx.operation = operation
            ctx.service_name = service_model.service_name
            ctx.event_source = f"{service_model.endpoint_prefix}.amazonaws.com"
            ctx.read_only = self._catalog.is_read_only(operation.name)
            self._authenticate(ctx, scope, headers, service_model.signing_name)
        except BodyTooLarge:
            await _send(send, 413, [(b"content-type", _JSON_ERROR_CONTENT_TYPE),
                                    (b"x-amzn-requestid", ctx.request_id.encode())],
                        orjson.dumps({"__type": "RequestEntityTooLargeException",
                                      "message": "Request body must be at most "
                                                 f"{self._settings.max_body_bytes} bytes."}))
            return
        except ServiceError as error:
            self._metrics.rejected(error.code)
            log.info("request refused", extra={"request_id": ctx.request_id, "code": error.code,
                                                "source_ip": ctx.source_ip,
                                                "detail": error.message})
            await self._send_error(send, service_model, error, ctx.request_id)
            return

        try:
            self._parse(ctx)
        except ServiceError as error:
            ctx.error = error
        try:
            await self._writer.run(self._unit(ctx))
        except StoreUnavailable as exc:
            log.error("event store unavailable", extra={"request_id": ctx.request_id,
                                                         "detail": str(exc)})
            await self._send_error(send, service_model, ServiceError(
                "ServiceUnavailableException",
                "The audit store cannot record this call right now; nothing was changed. "
                "Retry later.", status=503), ctx.request_id)
            return
        except Exception:
            log.exception("unit of work failed", extra={"request_id": ctx.request_id})
            await self._send_error(send, service_model, InternalError(ctx.request_id),
                                   ctx.request_id)
            return
        self._metrics.call(ctx.service_name, ctx.operation_name, ctx.error.code if ctx.error else "")
        if ctx.error is not None:
            await self._send_error(send, service_model, ctx.error, ctx.request_id)
            return
        await _send(send, 200, serializer.success_headers(service_model, ctx.request_id),
                    orjson.dumps(ctx.output_wire or {}))

    def _resolve(self, headers: list) -> Any:
        target = header(headers, b"x-amz-target")
        operation = self._catalog.resolve(target) if target else None
        if operation is None:
            raise UnknownOperationError(
                f"Unknown operation {target!r}." if target else
                "The request names no operation: send an X-Amz-Target header.")
        content_type = header(headers, b"content-type").split(";", 1)[0].strip()
        expected = self._catalog.content_type(operation.service_model)
        if content_type != expected:
            raise UnknownOperationError(
                f"Unsupported content type {content_type!r} for {operation.name}: "
                f"send {expected}.")
        return operation

    def _authenticate(self, ctx: RequestContext, scope: dict, headers: list,
                      signing_name: str) -> None:
        request = sigv4.HttpRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers],
            body=ctx.body,
        )
        verified = sigv4.verify(request, lookup=self._credentials.lookup, now=self._clock(),
                                max_skew=self._max_skew, service=signing_name,
                                region_check=_REGION.match)
        ctx.region = verified.region
        ctx.principal = verified.credential.owner

    def _parse(self, ctx: RequestContext) -> None:
        operation = ctx.operation
        params = parser.parse_request(operation, ctx.body)
        try:
            ctx.wire_params = orjson.loads(ctx.body) if ctx.body.strip() else {}
        except orjson.JSONDecodeError:  # parse_request already refused it
            ctx.wire_params = None
        violations = validate.find_violations(operation, params)
        if violations:
            raise (self._registry.violation_error(operation, violations)
                   or validate.violations_error(violations))
        ctx.params = params

    def _unit(self, ctx: RequestContext) -> Callable[[sqlite3.Connection], tuple[Any, list]]:
        handler = self._registry.handler(ctx.operation)

        def unit(conn: sqlite3.Connection) -> tuple[Any, list]:
            now = self._clock()
            if ctx.error is None:
                call = Call(account_id=ctx.principal.account_id, region=ctx.region, now=now,
                            request_id=ctx.request_id, operation=ctx.operation_name,
                            resources=SqliteResources(conn, ctx.principal.account_id, ctx.region),
                            settings=self._settings, principal=ctx.principal,
                            events=self._history.bind(conn))
                conn.execute("SAVEPOINT operation")
                try:
                    result = handler(call, ctx.params)
                    ctx.output_wire = serializer.to_wire(ctx.operation, result)
                    conn.execute("RELEASE operation")
                except StoreUnavailable:
                    raise  # fail closed: no record, no change, a 503
                except ServiceError as error:
                    conn.execute("ROLLBACK TO operation")
                    conn.execute("RELEASE operation")
                    ctx.error = error
                except Exception:
                    log.exception("operation failed", extra={"request_id": ctx.request_id})
                    conn.execute("ROLLBACK TO operation")
                    conn.execute("RELEASE operation")
                    ctx.error = InternalError(ctx.request_id)
                ctx.referenced_resources = call.referenced_resources
            ctx.event_time = now
            record = self._records.build(ctx)
            deliveries = self._trails.deliveries(conn, ctx.principal.account_id, ctx.region, record)
            return None, [event_row(ctx, record, deliveries)]

        return unit

    async def _send_error(self, send: Send, service_model: Any, error: ServiceError,
                          request_id: str) -> None:
        if service_model is None:
            body = orjson.dumps({"__type": error.code, "message": error.message, **error.fields})
            headers = [(b"content-type", _JSON_ERROR_CONTENT_TYPE),
                       (b"x-amzn-requestid", request_id.encode()),
                       (b"x-amzn-errortype", error.code.encode())]
            await _send(send, error.status or 400, headers, body)
            return
        status, headers, body = serializer.error_response(service_model, error, request_id)
        await _send(send, status, headers, body)

    def _source_ip(self, scope: dict, headers: list) -> str:
        peer = (scope.get("client") or ("",))[0] or ""
        if peer not in self._trusted_proxies:
            return peer
        forwarded = header(headers, b"x-forwarded-for")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):  # the nearest hop that is not one of our proxies
            if hop not in self._trusted_proxies:
                return hop
        return peer


def _tls_details(scope: dict) -> dict[str, str] | None:
    if scope.get("scheme") != "https":
        return None
    return dict((scope.get("extensions") or {}).get(TLS_SCOPE_KEY) or {})


async def _send(send: Send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
