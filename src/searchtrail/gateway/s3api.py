"""A read-only S3 API over the local folder store, for ``aws s3`` and ``aws cloudtrail validate-logs``.

Mounted at a path prefix (``/_s3``): clients use ``AWS_ENDPOINT_URL_S3=http://host:port/_s3``
and sign the full path, prefix included. Path-style addressing only.

Served (GET / HEAD): ListBuckets (``/``), HeadBucket, GetBucketLocation (``?location``),
ListObjects v1 and v2 (prefix, delimiter, marker / continuation-token / start-after,
max-keys, encoding-type=url), GetObject and HeadObject (single byte ranges, ``response-*``
overrides). Every request is SigV4-verified with S3's rules (service ``s3``); only principals
of the bucket's owner account may read it, and only as their IAM policies allow
(s3:ListAllMyBuckets, s3:ListBucket, s3:GetBucketLocation, s3:GetObject). Any other method is
405 MethodNotAllowed, other sub-resources 501 NotImplemented. Errors use S3's XML error
document; nothing a client sends can cause a 500 or show a stack trace.

It shares the console's origin, so no answer may run script there: every one carries a CSP
sandbox and nosniff, whatever content type a ``response-content-type`` override asks for.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from searchtrail.arns import is_region
from searchtrail.audit.objectstore import (S3_MAX_LIST_KEYS, ObjectStoreError, ObjectSummary,
                                           StoredObject)
from searchtrail.audit.stores.local import BucketInfo, LocalFolderStore
from searchtrail.auth import sigv4
from searchtrail.gateway.http import (BodyCollector, BodyTimeout, BodyTooLarge, HeadersTooLarge,
                                      RawRequest, client_address, header, read_body,
                                      scope_peer)
from searchtrail.gateway.httpserver import scope_tls
from searchtrail.protocol.errors import ServiceError
from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.resources import SqliteResources

log = logging.getLogger("searchtrail.s3api")

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]
# (verified request, IAM action, resource ARN, the Region it is in, the request's own condition
# keys, the request) -> None, or raises ServiceError (AccessDenied) / StoreUnavailable: the
# caller's policies.
Permits = Callable[[sigv4.Verified, str, str, str, dict[str, str], RawRequest], None]

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
DEFAULT_PREFIX = "/_s3"
MAX_BUCKETS = 10000
MAX_REQUEST_BODY = 64 * 1024  # GET/HEAD carry no body; anything bigger is refused
STORE_PAGE = 1000
_HIGHEST = "\U0010ffff"
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_TOKEN_VERSION = b"1\n"
# On every answer: a log file served as HTML (a response-content-type override) must not run
# the script an attacker put in a recorded User-Agent on the console's origin.
_SAFE_HEADERS = [(b"content-security-policy", b"sandbox; default-src 'none'"),
                 (b"x-content-type-options", b"nosniff")]

# Query parameters naming S3 operations this API does not serve (GET on bucket or object).
_UNSUPPORTED_SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "logging", "metadataTable", "metrics",
    "notification", "object-lock", "ownershipControls", "partNumber", "policy",
    "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
    "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versioning",
    "versions", "website",
})
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


class S3Error(Exception):
    """An S3 error response: ``<Error><Code>code</Code><Message>...`` with ``status``."""

    def __init__(self, code: str, message: str, status: int, *,
                 headers: list[tuple[bytes, bytes]] | None = None, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or []
        self.fields = fields


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def access_denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied", 403)


def _refused(refusal: Exception) -> S3Error:
    """The S3 error for a request whose body was refused before it was read."""
    if isinstance(refusal, BodyTooLarge):
        return S3Error("MaxMessageLengthExceeded", "Your request was too big.", 400)
    if isinstance(refusal, BodyTimeout):
        return S3Error("RequestTimeout", "Your socket connection to the server was not read "
                       "from or written to within the timeout period.", 400)
    if isinstance(refusal, HeadersTooLarge):
        return S3Error("RequestHeaderSectionTooLarge", refusal.message, 400)
    return S3Error("InvalidRequest", str(getattr(refusal, "message", refusal)), 400)


def _s3_arn_head(verified: sigv4.Verified) -> str:
    """``arn:<partition>:s3:::``, in the partition of the caller's own ARN (the installation's,
    whatever Region a bucket names)."""
    arn = getattr(verified.credential.owner, "arn", "") or ""
    return f"arn:{arn.split(':')[1] if arn.count(':') >= 5 else 'aws'}:s3:::"


def _store_unavailable() -> S3Error:
    return S3Error("ServiceUnavailable", "The store that holds access keys and policies cannot "
                   "be read right now. Retry later.", 503)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3Error:
    extra = {}
    if name is not None:
        extra = {"ArgumentName": name, "ArgumentValue": value or ""}
    return S3Error("InvalidArgument", message, 400, **extra)


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    content_length: int | None = None  # HEAD: the length a GET would have


# --------------------------------------------------------------------------- XML


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


class _Xml:
    """A tiny builder over ElementTree (which does the escaping). ``encode`` url-encodes the
    values S3 encodes under ``encoding-type=url``; text XML 1.0 cannot hold is refused."""

    def __init__(self, root: str, *, namespace: bool = True, url_encode: bool = False) -> None:
        self.root = ET.Element(root, {"xmlns": S3_NAMESPACE} if namespace else {})
        self.url_encode = url_encode

    def add(self, parent: ET.Element | None, name: str, value: Any = None, *,
            encode: bool = False) -> ET.Element:
        element = ET.SubElement(self.root if parent is None else parent, name)
        if value is not None:
            text = value if isinstance(value, str) else str(value)
            if isinstance(value, bool):
                text = "true" if value else "false"
            if encode and self.url_encode:
                text = quote(text, safe="/~")
            if _XML_INVALID.search(text):
                raise invalid_argument("The response would contain characters XML 1.0 cannot "
                                       "hold; list with encoding-type=url.")
            element.text = text
        return element

    def render(self) -> bytes:
        return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                + ET.tostring(self.root, encoding="utf-8", xml_declaration=False))


def error_document(error: S3Error, request_id: str, host_id: str) -> bytes:
    xml = _Xml("Error", namespace=False)
    xml.add(None, "Code", error.code)
    xml.add(None, "Message", _xml_safe(error.message))
    for name, value in error.fields.items():
        xml.add(None, name, _xml_safe(value))
    xml.add(None, "RequestId", request_id)
    xml.add(None, "HostId", host_id)
    return xml.render()


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


# --------------------------------------------------------------------------- helpers


def _header_value(text: str) -> bytes:
    """A header value as bytes: ASCII as is, anything else RFC 2047 encoded (as S3 does)."""
    if text.isascii() and not _HEADER_UNSAFE.search(text):
        return text.encode("ascii")
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"=?UTF-8?B?{encoded}?=".encode("ascii")


def _encode_token(position: str) -> str:
    return base64.urlsafe_b64encode(_TOKEN_VERSION + position.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        if not raw.startswith(_TOKEN_VERSION):
            raise ValueError(token)
        return raw[len(_TOKEN_VERSION):].decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid_argument("The continuation token provided is incorrect",
                               "continuation-token", token) from None


def _max_keys(query: dict[str, str], name: str = "max-keys", limit: int = S3_MAX_LIST_KEYS) -> int:
    text = query.get(name)
    if text is None:
        return limit
    if not re.fullmatch(r"-?[0-9]{1,10}", text.strip()):
        raise invalid_argument(f"Provided {name} not an integer or within integer range",
                               name, text)
    value = int(text)
    if value < 0:
        raise invalid_argument(f"Argument {name} must be an integer between 0 and 2147483647",
                               name, text)
    return min(value, limit)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range; None: ignore the header (RFC 9110)."""
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    unsatisfiable = S3Error("InvalidRange", "The requested range is not satisfiable", 416,
                            headers=[(b"content-range", f"bytes */{size}".encode())],
                            RangeRequested=value, ActualObjectSize=str(size))
    if not match[1]:
        length = int(match[2])
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - length), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if match[2] and last < first:
        return None
    if first >= size:
        raise unsatisfiable
    return first, min(last, size - 1)


@dataclass
class _Listing:
    contents: list[ObjectSummary]
    prefixes: list[str]
    truncated: bool
    last: str | None  # the last key or common prefix returned (NextMarker, next token)


# --------------------------------------------------------------------------- permissions


class PolicyPermits:
    """``Permits`` from the caller's IAM policies (the API's authorizer), read on the
    read-only connection ``reading()`` gives the thread a request runs on."""

    def __init__(self, authorizer: Any, reading: Callable[[], Any],
                 clock: Callable[[], datetime],
                 trusted_proxies: frozenset[str] = frozenset()) -> None:
        self._authorizer = authorizer
        self._reading = reading
        self._clock = clock
        self._trusted_proxies = trusted_proxies  # as the API's: X-Forwarded-For through them

    def __call__(self, verified: sigv4.Verified, action: str, resource: str, region: str,
                 keys: dict[str, str], request: RawRequest) -> None:
        source_ip = client_address(request.peer, request.headers, self._trusted_proxies)
        self._authorizer.require(
            SqliteResources(self._reading(), "", ""), verified.credential.owner, action,
            resource, self._clock(), region=region, source_ip=source_ip or None,
            secure_transport=request.tls is not None,
            user_agent=header(request.headers, b"user-agent") or None, extra=keys)


# --------------------------------------------------------------------------- the API


class ReadOnlyS3Api:
    """The read-only S3 API under ``prefix``: an ASGI callable, and a ``CallHandler`` that the
    HTTP protocol calls for GET and HEAD without the ASGI cycle (gateway/direct.py)."""

    def __init__(self, store: LocalFolderStore, credentials: Any,
                 clock: Callable[[], datetime], max_skew: timedelta | float = 300, *,
                 permits: Permits | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self._store = store
        self._lookup = credentials.lookup
        self._permits = permits
        self._clock = clock
        self._max_skew = max_skew if isinstance(max_skew, timedelta) else timedelta(seconds=max_skew)
        self._prefix = prefix.rstrip("/")

    def serves(self, path: str) -> bool:
        """Whether a (percent-decoded) request path is under this API's prefix."""
        return path == self._prefix or path.startswith(self._prefix + "/")

    def body_collector(self, headers: list) -> BodyCollector:
        """The body limits of a request (raises HeadersTooLarge / BodyTooLarge at once)."""
        return BodyCollector(headers, MAX_REQUEST_BODY)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        """The ASGI path (the HTTP protocol serves GET and HEAD itself, see ``respond``)."""
        if scope["type"] != "http":
            return
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        request = RawRequest(method=scope["method"],
                             raw_path=raw_path.decode("latin-1").split("?", 1)[0],
                             query_string=scope.get("query_string", b"").decode("latin-1"),
                             headers=scope["headers"], peer=scope_peer(scope),
                             tls=scope_tls(scope))
        refusal: Exception | None = None
        if request.method in ("GET", "HEAD"):
            try:
                request.body = await read_body(receive, scope["headers"], MAX_REQUEST_BODY)
            except (BodyTooLarge, ServiceError) as refused:
                refusal = refused
        status, headers, body, length = await self.respond(request, refusal)
        if refusal is not None or request.method not in ("GET", "HEAD"):
            # The request body was not read (a write, or too big): close the connection, or
            # the unread bytes would be taken for the next request (clients that sent
            # "Expect: 100-continue" never send them, others already have).
            headers.append((b"connection", b"close"))
        headers.append((b"content-length", str(len(body) if length is None else length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, request: RawRequest, refusal: Exception | None = None
                      ) -> tuple[int, list, bytes, int | None]:
        """Status, headers (no content-length), body and, for HEAD, the content-length a GET
        would have. ``refusal`` is why the body was not read (BodyTooLarge, BodyTimeout,
        HeadersTooLarge)."""
        request_id = secrets.token_hex(8).upper()
        host_id = base64.b64encode(secrets.token_bytes(48)).decode("ascii")
        try:
            try:
                if request.method not in ("GET", "HEAD"):
                    raise S3Error("MethodNotAllowed", "The specified method is not allowed "
                                  "against this resource.", 405,
                                  headers=[(b"allow", b"GET, HEAD")], Method=request.method,
                                  ResourceType=self._resource_type(request))
                if refusal is not None:
                    raise _refused(refusal)
                response = await asyncio.to_thread(self._handle, request)
            except S3Error as error:
                log.info("s3 request refused", extra={"request_id": request_id,
                                                       "code": error.code,
                                                       "detail": error.message})
                response = self._error_response(error, request_id, host_id)
        except Exception:
            log.exception("s3 request failed", extra={"request_id": request_id})
            response = self._error_response(
                S3Error("InternalError", "We encountered an internal error. Please try again.",
                        500), request_id, host_id)
        headers = [*response.headers, *_SAFE_HEADERS,
                   (b"x-amz-request-id", request_id.encode()), (b"x-amz-id-2", host_id.encode())]
        if request.method == "HEAD":
            length = len(response.body) if response.content_length is None \
                else response.content_length
            return response.status, headers, b"", length
        return response.status, headers, response.body, None

    # ------------------------------------------------------------------ plumbing

    def _resource_type(self, request: RawRequest) -> str:
        try:
            _, key = self._target(request)
        except S3Error:
            return "OBJECT"
        return "OBJECT" if key else "BUCKET"

    @staticmethod
    def _error_response(error: S3Error, request_id: str, host_id: str) -> Response:
        body = error_document(error, request_id, host_id)
        return Response(error.status, [(b"content-type", b"application/xml"), *error.headers],
                        body)

    def _target(self, request: RawRequest) -> tuple[str, str]:
        """(bucket, key) from the raw path, percent-decoded as UTF-8; '' when absent."""
        path = request.raw_path
        if path == self._prefix:
            path = "/"
        elif path.startswith(self._prefix + "/"):
            path = path[len(self._prefix):]
        else:
            raise S3Error("InvalidURI", f"Couldn't parse the specified URI: S3 is served under "
                          f"{self._prefix}/.", 400)
        bucket_raw, _, key_raw = path[1:].partition("/")
        try:
            bucket = unquote_to_bytes(bucket_raw).decode("utf-8")
            key = unquote_to_bytes(key_raw).decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("InvalidURI", "Couldn't parse the specified URI: not UTF-8.",
                          400) from None
        return bucket, key

    def _authenticate(self, request: RawRequest) -> Any:
        authorization = header(request.headers, b"authorization")
        query = request.query_string
        if authorization.startswith("AWS ") or ("AWSAccessKeyId=" in query
                                                 and "Signature=" in query):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is "
                          "not supported. Please use AWS4-HMAC-SHA256.", 400)
        signed = sigv4.HttpRequest(
            method=request.method,
            raw_path=request.raw_path,
            query_string=query,
            headers=[(name.decode("latin-1"), value.decode("latin-1"))
                     for name, value in request.headers],
            body=request.body,
        )
        try:
            verified = sigv4.verify_s3(signed, lookup=self._lookup, now=self._clock(),
                                       max_skew=self._max_skew, region_check=is_region)
        except sigv4.SigV4Error as error:
            extra = {}
            if error.claimed_access_key_id and error.code in ("SignatureDoesNotMatch",
                                                              "InvalidAccessKeyId"):
                extra["AWSAccessKeyId"] = error.claimed_access_key_id
            raise S3Error(error.code, error.message, error.status or 403, **extra) from None
        except StoreUnavailable as exc:  # the key could not be looked up: fail closed
            log.error("event store unavailable", extra={"detail": str(exc)})
            raise _store_unavailable() from None
        return verified

    def _permit(self, verified: sigv4.Verified, action: str, resource: str, region: str,
                request: RawRequest, keys: dict[str, str] | None = None) -> None:
        """AccessDenied unless the caller's policies allow ``action`` on ``resource``, asked
        in ``region`` (aws:RequestedRegion: the bucket's, where S3 serves it)."""
        if self._permits is None:
            return
        try:
            self._permits(verified, action, resource, region, keys or {}, request)
        except ServiceError as refused:
            raise S3Error("AccessDenied", refused.message, 403) from None
        except StoreUnavailable as exc:  # the policies could not be read: fail closed
            log.error("event store unavailable", extra={"detail": str(exc)})
            raise _store_unavailable() from None

    @staticmethod
    def _query(request: RawRequest) -> dict[str, str]:
        raw = request.query_string
        try:
            pairs = parse_qsl(raw.encode("latin-1").decode("utf-8"), keep_blank_values=True,
                              errors="strict")
        except UnicodeError:
            raise invalid_argument("The query string is not valid UTF-8.") from None
        query: dict[str, str] = {}
        for name, value in pairs:
            query.setdefault(name, value)
        return query

    # ------------------------------------------------------------------ routing

    def _handle(self, request: RawRequest) -> Response:
        bucket, key = self._target(request)
        verified = self._authenticate(request)
        account = getattr(verified.credential.owner, "account_id", None)
        query = self._query(request)
        head = request.method == "HEAD"
        if not bucket:
            if key:
                raise S3Error("InvalidURI", "Couldn't parse the specified URI: empty bucket "
                              "name.", 400)
            # no resource type: AWS's examples grant it on arn:aws:s3:::*
            self._permit(verified, "s3:ListAllMyBuckets", f"{_s3_arn_head(verified)}*",
                         verified.region, request)
            return self._list_buckets(account, query)
        info = self._authorize(bucket, account)
        bucket_arn = f"{_s3_arn_head(verified)}{bucket}"
        if not key:
            unsupported = sorted(_UNSUPPORTED_SUBRESOURCES & set(query))
            if unsupported:
                raise self._not_implemented(unsupported[0])
            if "location" in query and not head:
                self._permit(verified, "s3:GetBucketLocation", bucket_arn, info.region, request)
                return self._bucket_location(info)
            # HeadBucket and the listings: s3:ListBucket, with the listing's own keys
            self._permit(verified, "s3:ListBucket", bucket_arn, info.region, request, {
                f"s3:{name}": query[name] for name in ("prefix", "delimiter", "max-keys")
                if name in query})
            if head:
                return Response(200, [(b"x-amz-bucket-region", info.region.encode()),
                                      (b"x-amz-access-point-alias", b"false")])
            list_type = query.get("list-type")
            if list_type == "2":
                return self._list_objects_v2(info, query)
            if list_type is not None:
                raise invalid_argument("Invalid List Type specified in Request", "list-type",
                                       list_type)
            return self._list_objects_v1(info, query)
        unsupported = sorted((_UNSUPPORTED_SUBRESOURCES - {"partNumber"}) & set(query))
        if unsupported:
            raise self._not_implemented(unsupported[0])
        self._permit(verified, "s3:GetObject", f"{bucket_arn}/{key}", info.region, request)
        return self._get_object(request, info, key, query, head)

    @staticmethod
    def _not_implemented(name: str) -> S3Error:
        return S3Error("NotImplemented", f"A header or query you provided implies "
                       f"functionality that is not implemented: ?{name} (this S3 API is "
                       "read-only and serves listing and reading objects only).", 501)

    def _authorize(self, bucket: str, account: str | None) -> BucketInfo:
        info = self._store.bucket(bucket)
        if info is None:
            raise no_such_bucket(bucket)
        if account is None or info.owner_account != account:
            raise access_denied()
        return info

    def _store_call(self, action: Callable[[], Any], bucket: str, key: str = "") -> Any:
        try:
            return action()
        except ObjectStoreError as error:
            if error.code == "NoSuchKey":
                raise no_such_key(key) from None
            if error.code == "NoSuchBucket":
                raise no_such_bucket(bucket) from None
            if error.code in ("InvalidArgument", "KeyTooLong") and key:
                raise no_such_key(key) from None  # no such key can exist in this store
            if error.code == "InvalidArgument":
                raise invalid_argument(error.message) from None
            if error.code == "ServiceUnavailable":
                log.error("object store unavailable: %s", error.message)
                raise S3Error("ServiceUnavailable", "Please reduce your request rate.",
                              503) from None
            log.error("object store failed: %s", error)
            raise S3Error("InternalError", "We encountered an internal error. Please try "
                          "again.", 500) from None

    # ------------------------------------------------------------------ buckets

    def _owner(self, xml: _Xml, parent: ET.Element | None, account: str) -> None:
        owner = xml.add(parent, "Owner")
        xml.add(owner, "ID", account)
        xml.add(owner, "DisplayName", account)

    def _list_buckets(self, account: str | None, query: dict[str, str]) -> Response:
        if account is None:
            raise access_denied()
        prefix = query.get("prefix", "")
        region = query.get("bucket-region")
        limit = _max_keys(query, "max-buckets", MAX_BUCKETS)
        after = _decode_token(query["continuation-token"]) if "continuation-token" in query else ""
        if limit == 0:
            raise invalid_argument("Argument max-buckets must be an integer between 1 and "
                                   "10000", "max-buckets", query.get("max-buckets"))
        buckets = [info for info in self._store_call(self._store.buckets, "")
                   if info.owner_account == account and info.name.startswith(prefix)
                   and info.name > after and (region is None or info.region == region)]
        page, more = buckets[:limit], len(buckets) > limit
        xml = _Xml("ListAllMyBucketsResult")
        self._owner(xml, None, account)
        listed = xml.add(None, "Buckets")
        for info in page:
            entry = xml.add(listed, "Bucket")
            xml.add(entry, "Name", info.name)
            xml.add(entry, "CreationDate", _iso(info.created))
            xml.add(entry, "BucketRegion", info.region)
        if more:
            xml.add(None, "ContinuationToken", _encode_token(page[-1].name))
        if "prefix" in query:
            xml.add(None, "Prefix", prefix)
        return self._xml(xml)

    def _bucket_location(self, info: BucketInfo) -> Response:
        xml = _Xml("LocationConstraint")
        if info.region != "us-east-1":
            xml.root.text = info.region
        return self._xml(xml)

    @staticmethod
    def _xml(xml: _Xml) -> Response:
        return Response(200, [(b"content-type", b"application/xml")], xml.render())

    # ------------------------------------------------------------------ listing

    @staticmethod
    def _encoding(query: dict[str, str]) -> bool:
        encoding = query.get("encoding-type")
        if encoding is None:
            return False
        if encoding.lower() != "url":
            raise invalid_argument("Invalid Encoding Method specified in Request",
                                   "encoding-type", encoding)
        return True

    def _list(self, bucket: str, prefix: str, delimiter: str, after: str,
              max_keys: int) -> _Listing:
        """Keys and common prefixes after ``after``, S3 style: a common prefix counts once
        toward ``max_keys``, and one at or before ``after`` was already returned."""
        contents: list[ObjectSummary] = []
        prefixes: list[str] = []
        if max_keys == 0:
            return _Listing(contents, prefixes, False, None)
        cursor = after
        last_prefix: str | None = None
        last: str | None = None  # entries come in increasing byte order, keys and prefixes alike
        while True:
            page, more = self._store_call(
                lambda: self._store.list_objects(bucket, prefix=prefix, start_after=cursor,
                                                 max_keys=STORE_PAGE), bucket)
            for summary in page:
                common = None
                if delimiter:
                    at = summary.key.find(delimiter, len(prefix))
                    if at >= 0:
                        common = summary.key[:at + len(delimiter)]
                if common is not None and (common == last_prefix or common <= after):
                    continue
                if len(contents) + len(prefixes) >= max_keys:
                    return _Listing(contents, prefixes, True, last)
                if common is not None:
                    prefixes.append(common)
                    last = last_prefix = common
                else:
                    contents.append(summary)
                    last = summary.key
            if not more or not page:
                return _Listing(contents, prefixes, False, None)
            cursor = page[-1].key
            if (last_prefix is not None and cursor.startswith(last_prefix)
                    and cursor < last_prefix + _HIGHEST):
                cursor = last_prefix + _HIGHEST  # skip the rest of that common prefix

    def _contents(self, xml: _Xml, listing: _Listing, owner: str | None) -> None:
        for summary in listing.contents:
            entry = xml.add(None, "Contents")
            xml.add(entry, "Key", summary.key, encode=True)
            xml.add(entry, "LastModified", _iso(summary.last_modified))
            xml.add(entry, "ETag", summary.etag)
            xml.add(entry, "Size", summary.size)
            if owner is not None:
                self._owner(xml, entry, owner)
            xml.add(entry, "StorageClass", "STANDARD")
        for common in listing.prefixes:
            entry = xml.add(None, "CommonPrefixes")
            xml.add(entry, "Prefix", common, encode=True)

    def _list_objects_v1(self, info: BucketInfo, query: dict[str, str]) -> Response:
        url = self._encoding(query)
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        marker = query.get("marker", "")
        max_keys = _max_keys(query)
        listing = self._list(info.name, prefix, delimiter, marker, max_keys)
        xml = _Xml("ListBucketResult", url_encode=url)
        xml.add(None, "Name", info.name)
        xml.add(None, "Prefix", prefix, encode=True)
        xml.add(None, "Marker", marker, encode=True)
        xml.add(None, "MaxKeys", max_keys)
        if delimiter:
            xml.add(None, "Delimiter", delimiter, encode=True)
        xml.add(None, "IsTruncated", listing.truncated)
        if listing.truncated and listing.last is not None:
            xml.add(None, "NextMarker", listing.last, encode=True)
        if url:
            xml.add(None, "EncodingType", "url")
        self._contents(xml, listing, info.owner_account)
        return self._xml(xml)

    def _list_objects_v2(self, info: BucketInfo, query: dict[str, str]) -> Response:
        url = self._encoding(query)
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        start_after = query.get("start-after", "")
        token = query.get("continuation-token")
        if token is not None and not token:
            raise invalid_argument("The continuation token provided is incorrect",
                                   "continuation-token", token)
        after = _decode_token(token) if token else start_after
        max_keys = _max_keys(query)
        fetch_owner = query.get("fetch-owner", "").lower() == "true"
        listing = self._list(info.name, prefix, delimiter, after, max_keys)
        xml = _Xml("ListBucketResult", url_encode=url)
        xml.add(None, "Name", info.name)
        xml.add(None, "Prefix", prefix, encode=True)
        xml.add(None, "MaxKeys", max_keys)
        xml.add(None, "KeyCount", len(listing.contents) + len(listing.prefixes))
        if delimiter:
            xml.add(None, "Delimiter", delimiter, encode=True)
        xml.add(None, "IsTruncated", listing.truncated)
        if token:
            xml.add(None, "ContinuationToken", token)
        if listing.truncated and listing.last is not None:
            xml.add(None, "NextContinuationToken", _encode_token(listing.last))
        if start_after:
            xml.add(None, "StartAfter", start_after, encode=True)
        if url:
            xml.add(None, "EncodingType", "url")
        self._contents(xml, listing, info.owner_account if fetch_owner else None)
        return self._xml(xml)

    # ------------------------------------------------------------------ objects

    def _get_object(self, request: RawRequest, info: BucketInfo, key: str, query: dict[str, str],
                    head: bool) -> Response:
        for name in ("versionId",):
            if name in query and query[name] != "null":
                raise S3Error("NoSuchVersion", "The specified version does not exist.", 404,
                              Key=key, VersionId=query[name])
        if "partNumber" in query:
            if query["partNumber"] != "1":
                raise S3Error("InvalidPartNumber", "The requested partnumber is not "
                              "satisfiable", 416, PartNumberRequested=query["partNumber"])
        overrides = []
        for param, override in _RESPONSE_OVERRIDES.items():
            if param in query:
                if _HEADER_UNSAFE.search(query[param]):
                    raise invalid_argument(f"{param} must not contain control characters.",
                                           param, query[param])
                overrides.append((override, query[param]))
        fetch = self._store.head_object if head else self._store.get_object
        stored: StoredObject = self._store_call(lambda: fetch(info.name, key), info.name, key)
        headers = [(b"last-modified", _http_date(stored.last_modified).encode()),
                   (b"etag", stored.etag.encode("ascii", "replace")),
                   (b"accept-ranges", b"bytes"),
                   (b"content-type", _header_value(stored.content_type))]
        for name in sorted(stored.metadata):
            headers.append((f"x-amz-meta-{name}".encode("ascii", "replace"),
                            _header_value(stored.metadata[name])))
        overridden = {header for header, _ in overrides}
        headers = [(n, v) for n, v in headers if n.decode() not in overridden]
        headers.extend((header.encode(), _header_value(value)) for header, value in overrides)
        status, body = 200, stored.body
        length = stored.size
        requested = header(request.headers, b"range")
        if requested:
            span = _parse_range(requested, stored.size)
            if span is not None:
                first, last = span
                status = 206
                length = last - first + 1
                body = stored.body[first:last + 1] if not head else b""
                headers.append((b"content-range",
                                f"bytes {first}-{last}/{stored.size}".encode()))
        return Response(status, headers, b"" if head else body,
                        content_length=length if head else None)
