"""A read-only S3 client for `trail validate`: signed GETs and ListObjectsV2 over keep-alive
connections, with S3Store's timeouts, retries and error codes; it starts in milliseconds
where a boto3 client takes ~0.3 s."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from searchtrail.audit.objectstore import (S3_ATTEMPTS, S3_MAX_LIST_KEYS, S3_STATUS_CODES,
                                           S3_TIMEOUT_SECONDS, ObjectNotFound, ObjectStoreError,
                                           ObjectSummary, StoredObject)

if TYPE_CHECKING:
    import http.client
    import ssl

    from searchtrail.audit.validation import ObjectReader

S3_MAX_BACKOFF_SECONDS = 20.0
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_QUERY_SAFE = "-_.~"  # RFC 3986 unreserved, as SigV4 encodes
# answers worth another attempt (botocore's "standard" mode: transient and throttling)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "SlowDown", "Throttling",
                          "ThrottlingException", "RequestThrottled", "TooManyRequestsException",
                          "InternalError", "ServiceUnavailable"})
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})

Credentials = tuple[str, str, "str | None"]  # access key id, secret access key, session token


class CredentialsUnavailable(Exception):
    """The AWS credential chain gave nothing usable (the text says why)."""


def _xml_name(tag: str) -> str:
    return tag.rpartition("}")[2]  # without the S3 namespace, which some stores leave out


def _answer_date(value: str | None, *, http_date: bool) -> datetime:
    """A Last-Modified (HTTP date) or LastModified (ISO 8601) value, in UTC. An unreadable one
    is the epoch: the validator checks bytes and never shows these dates."""
    from email.utils import parsedate_to_datetime

    try:
        parsed = (parsedate_to_datetime(value) if http_date else datetime.fromisoformat(value)
                  ) if value else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None:
        return datetime.fromtimestamp(0, timezone.utc)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


class S3Reader:
    """GetObject and ListObjectsV2 on an S3-compatible endpoint, for the validator.

    Path-style requests signed with SigV4 (the project's own canonicalisation,
    :mod:`searchtrail.auth.sigv4`), sent over one keep-alive HTTP connection per thread.
    Timeouts, attempts and error codes are S3Store's: an S3 ``<Error>`` code, ``NoSuchKey``
    as :class:`ObjectNotFound`, ``ServiceUnavailable`` when the endpoint cannot be reached,
    ``AccessDenied`` without credentials. ``credentials()`` is called for every request (it
    may refresh them) and may raise :class:`CredentialsUnavailable`."""

    def __init__(self, endpoint_url: str, *, region: str, credentials: Callable[[], Credentials],
                 ssl_context: ssl.SSLContext | None = None,
                 timeout: float = S3_TIMEOUT_SECONDS, attempts: int = S3_ATTEMPTS) -> None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(endpoint_url)
            port = parts.port
        except ValueError as exc:
            raise ObjectStoreError("InvalidArgument", f"Cannot set up an S3 client for "
                                   f"{endpoint_url!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ObjectStoreError("InvalidArgument", f"Cannot set up an S3 client for "
                                   f"{endpoint_url!r}: not an http(s) URL")
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = credentials
        self._https = parts.scheme == "https"
        self._ssl_context = ssl_context
        self._hostname = parts.hostname
        self._port = port
        self._timeout = timeout
        self._attempts = max(1, attempts)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        default_port = 443 if self._https else 80
        self._host_header = host if port in (None, default_port) else f"{host}:{port}"
        self._base_path = parts.path.rstrip("/")
        self._local = threading.local()

    # -- ObjectReader -----------------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> StoredObject:
        from urllib.parse import quote

        what = f"GetObject {bucket}/{key}"
        path = f"{self._base_path}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
        try:
            response, body = self._request(what, path, "")
        except ObjectStoreError as exc:
            if exc.code in ("NoSuchKey", "NotFound"):
                raise ObjectNotFound(bucket, key) from None
            raise
        metadata = {name[11:].lower(): value for name, value in response.getheaders()
                    if name.lower().startswith("x-amz-meta-")}
        length = response.getheader("Content-Length")
        return StoredObject(
            key=key, body=body, size=int(length) if length and length.isdigit() else len(body),
            last_modified=_answer_date(response.getheader("Last-Modified"), http_date=True),
            etag=response.getheader("ETag") or "",
            content_type=response.getheader("Content-Type") or "binary/octet-stream",
            metadata=metadata)

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = S3_MAX_LIST_KEYS) -> tuple[list[ObjectSummary], bool]:
        from urllib.parse import quote, unquote_plus
        from xml.etree import ElementTree

        if max_keys < 0:
            raise ObjectStoreError("InvalidArgument", "max_keys must not be negative.")
        # keys come URL-encoded (as boto3 asks for them): XML cannot carry every key
        params = [("list-type", "2"), ("encoding-type", "url"),
                  ("max-keys", str(min(max_keys, S3_MAX_LIST_KEYS))), ("prefix", prefix)]
        if start_after:
            params.append(("start-after", start_after))
        query = "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in params)
        what = f"ListObjectsV2 {bucket}"
        _, body = self._request(what, f"{self._base_path}/{quote(bucket, safe='')}", query)
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            raise ObjectStoreError("InternalError", f"{what}: unreadable answer ({exc})") from None
        children = {_xml_name(child.tag): child.text or "" for child in root
                    if _xml_name(child.tag) in ("IsTruncated", "EncodingType")}
        url_encoded = children.get("EncodingType") == "url"
        page = []
        for entry in root:
            if _xml_name(entry.tag) != "Contents":
                continue
            fields = {_xml_name(child.tag): child.text or "" for child in entry}
            key = fields.get("Key", "")
            page.append(ObjectSummary(
                key=unquote_plus(key) if url_encoded else key,
                size=int(fields["Size"]) if fields.get("Size", "").isdigit() else 0,
                last_modified=_answer_date(fields.get("LastModified"), http_date=False),
                etag=fields.get("ETag", "")))
        return page, children.get("IsTruncated") == "true"

    # -- HTTP -------------------------------------------------------------------------

    def _request(self, what: str, path: str, query: str
                 ) -> tuple[http.client.HTTPResponse, bytes]:
        """A signed GET, with S3Store's attempts; a 2xx answer and its body, else raises."""
        import http.client
        import ssl

        attempt = 0
        while True:
            attempt += 1
            try:
                headers = self._signed_headers(path, query)
            except CredentialsUnavailable as exc:
                raise ObjectStoreError("AccessDenied", f"No usable AWS credentials for {what} "
                                       f"({exc}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                                       "or a profile.") from None
            try:
                response, body = self._send(path, query, headers)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                # a certificate that failed verification fails again
                if attempt >= self._attempts or isinstance(exc, ssl.SSLCertVerificationError):
                    raise ObjectStoreError("ServiceUnavailable", f"The S3 endpoint "
                                           f"{self.endpoint_url} could not be reached for "
                                           f"{what}: {str(exc) or repr(exc)}") from None
            else:
                if 200 <= response.status < 300:
                    return response, body
                code, message = self._error_of(response.status, body)
                retry = response.status in _RETRY_STATUSES or code in _RETRY_CODES
                if attempt >= self._attempts or not retry:
                    raise ObjectStoreError(code, f"{what}: {message}")
            # exponential backoff with full jitter, as botocore's
            time.sleep(min(S3_MAX_BACKOFF_SECONDS, random.random() * 2 ** (attempt - 1)))

    def _signed_headers(self, path: str, query: str) -> list[tuple[str, str]]:
        from searchtrail.auth import sigv4

        access_key, secret_key, token = self._credentials()
        amz_date = time.strftime(sigv4.AMZ_DATE_FORMAT, time.gmtime())
        headers = [("host", self._host_header), ("x-amz-content-sha256", _EMPTY_SHA256),
                   ("x-amz-date", amz_date)]
        if token:
            headers.append(("x-amz-security-token", token))
        names = [name for name, _ in headers]  # already in sorted order
        canonical = sigv4.canonical_request(sigv4.HttpRequest("GET", path, query, headers, b""),
                                            names, s3=True, payload_hash=_EMPTY_SHA256)
        scope = f"{amz_date[:8]}/{self.region}/s3/{sigv4.TERMINATOR}"
        signature = sigv4.signature(
            sigv4.signing_key(secret_key, amz_date[:8], self.region, "s3"),
            sigv4.string_to_sign(amz_date, scope, canonical))
        headers.append(("authorization", f"{sigv4.ALGORITHM} Credential={access_key}/{scope}, "
                                         f"SignedHeaders={';'.join(names)}, "
                                         f"Signature={signature}"))
        return headers

    def _send(self, path: str, query: str, headers: list[tuple[str, str]]
              ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        connection.putrequest("GET", f"{path}?{query}" if query else path, skip_host=True,
                              skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response, response.read()  # a closing server's connection reopens by itself

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        if self._https:
            return http.client.HTTPSConnection(self._hostname, self._port, timeout=self._timeout,
                                               context=self._ssl_context)
        return http.client.HTTPConnection(self._hostname, self._port, timeout=self._timeout)

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    @staticmethod
    def _error_of(status: int, body: bytes) -> tuple[str, str]:
        """(code, message) of an error answer: its S3 ``<Error>`` body, else the status."""
        from xml.etree import ElementTree

        code = message = ""
        if body.lstrip().startswith(b"<"):
            try:
                fields = {_xml_name(child.tag): child.text or ""
                          for child in ElementTree.fromstring(body)}
            except ElementTree.ParseError:
                fields = {}
            code, message = fields.get("Code", ""), fields.get("Message", "")
        return (code or S3_STATUS_CODES.get(status, "InternalError"),
                message or f"HTTP {status}")


class _AwsCredentialChain:
    """botocore's credential chain (profiles, shared files, roles, ...) and its CA bundle
    setting, resolved on first use and shared by every thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._session: Any = None
        self._credentials: Any = None

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import botocore.session

                self._session = botocore.session.Session()
            return self._session

    def __call__(self) -> Credentials:
        from botocore.exceptions import BotoCoreError

        try:
            with self._lock:
                if self._credentials is None:
                    self._credentials = self.session().get_credentials()
                credentials = self._credentials
            if credentials is None:
                raise CredentialsUnavailable("Unable to locate credentials")
            frozen = credentials.get_frozen_credentials()  # refreshed when they expire
        except BotoCoreError as exc:
            raise CredentialsUnavailable(str(exc)) from None
        return frozen.access_key, frozen.secret_key, frozen.token

    def ssl_context(self, endpoint_url: str) -> ssl.SSLContext:
        """Verification as botocore's: the configured ``ca_bundle`` (AWS_CA_BUNDLE or the
        profile's), else botocore's default bundle."""
        import ssl

        from botocore.exceptions import BotoCoreError
        from botocore.httpsession import get_cert_path

        try:
            bundle = self.session().get_config_variable("ca_bundle")
            return ssl.create_default_context(cafile=get_cert_path(bundle or True))
        except (BotoCoreError, OSError, ValueError) as exc:
            raise ObjectStoreError("InvalidArgument", f"Cannot set up an S3 client for "
                                   f"{endpoint_url!r}: {exc}") from None


def open_s3_reader(endpoint_url: str, *, region: str) -> ObjectReader:
    """The validator's reader for the S3-compatible endpoint trails deliver to.

    Credentials come from the standard AWS chain, as S3Store's do. Its first link, the
    environment's ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (with
    ``AWS_SESSION_TOKEN``), is read here directly for plain-HTTP endpoints; anything else
    goes through botocore's resolver, which also gives an https endpoint its CA bundle. With
    a proxy set in the environment, S3Store (boto3) reads, as it did before."""
    if any(name.lower() in _PROXY_VARIABLES for name in os.environ):
        from searchtrail.audit.stores.s3 import S3Store

        return S3Store(endpoint_url, region=region)
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    https = endpoint_url.lower().startswith("https:")
    if access_key and secret_key and not https and "AWS_CREDENTIAL_EXPIRATION" not in os.environ:
        token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
        static: Credentials = (access_key, secret_key, token or None)
        return S3Reader(endpoint_url, region=region, credentials=lambda: static)
    chain = _AwsCredentialChain()
    return S3Reader(endpoint_url, region=region, credentials=chain,
                    ssl_context=chain.ssl_context(endpoint_url) if https else None)
