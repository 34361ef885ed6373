"""AWS Signature Version 4 verification (Authorization header and pre-signed query forms).

Pure functions: no I/O, no clock and no key store of their own. The caller passes the
request as it came off the wire (``HttpRequest``), the time (``now``) and a credential
lookup; ``verify`` returns a ``Verified`` or raises ``SigV4Error`` (a ``ServiceError`` with
HTTP 403 and an AWS error code as ``__type``).

Conventions the caller must follow (see ``HttpRequest``):

- ``raw_path`` / ``query_string`` are the request target exactly as received, split at the
  first ``?``, *not* percent-decoded. A ``str`` holds the wire bytes one char per byte
  (latin-1, the ASGI/WSGI convention); chars above U+00FF are taken as UTF-8.
- ``headers`` keeps every header line in order, duplicates as separate pairs (never merged
  with ``", "``); names in any case; values as received (latin-1 decoded).
- ``body`` is the exact request body.

Choices where AWS is not explicit (pinned by tests/unit/test_sigv4.py):

- Every auth failure is HTTP 403.
- A request carrying both an Authorization header and ``X-Amz-Algorithm`` in the query is
  refused with ``IncompleteSignatureException`` (S3 refuses it too: "Only one auth
  mechanism allowed"); the verifier never picks "the valid one". So are repeated
  Authorization headers and repeated ``X-Amz-*`` auth parameters.
- ``x-amz-content-sha256``, when present and not ``UNSIGNED-PAYLOAD``, must equal the SHA-256
  of the body (``InvalidSignatureException``); ``UNSIGNED-PAYLOAD`` is not honoured: the
  body is always hashed, so unsigned payloads fail the signature check.
- A session token is checked against the credential (constant time) whether or not it is
  signed: the suite's ``post-sts-header-after`` adds it after signing. In pre-signed
  requests the token is first taken as signed and, only if that signature does not match,
  as added after signing (aws-c-auth's ``omit_session_token``); it is verified against the
  credential either way.
- A token sent with a long-term key (credential without token) is refused like a wrong one.
- The clock is compared at whole seconds; ``|now - X-Amz-Date| == max_skew`` is accepted.

S3 mode (``verify_s3``, or ``verify(..., s3=True)``) follows S3's own signing rules:

- the canonical URI is the path as sent: no dot-segment normalisation and no second round of
  encoding. A path whose escapes differ from "every byte but unreserved and '/' encoded once"
  (say a raw ``!`` or a lower-case ``%2b``) is also tried in that once-encoded form, so both a
  client that signs what it sends and one that signs the RFC 3986 form are accepted;
- the payload hash is the ``x-amz-content-sha256`` value itself (``UNSIGNED-PAYLOAD`` and
  ``STREAMING-*`` included). It is required with the Authorization header and defaults to
  ``UNSIGNED-PAYLOAD`` in pre-signed URLs; a hex value must match the body. With
  ``STREAMING-*`` only the seed signature is checked: ``Verified.payload_hash`` tells the
  caller, who must verify the chunks or refuse the body;
- ``verify_s3`` raises ``SigV4Error`` with S3's error codes and statuses
  (SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed, AccessDenied, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Callable, Collection, Protocol, Sequence
from urllib.parse import unquote_to_bytes

from searchtrail.protocol.errors import ServiceError

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_EXPIRES = 604800  # seconds: 7 days
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
EXPIRED_TOKEN = "ExpiredTokenException"
AUTH_ERROR_CODES = frozenset({MISSING_AUTHENTICATION_TOKEN, INCOMPLETE_SIGNATURE,
                              INVALID_SIGNATURE, UNRECOGNIZED_CLIENT, EXPIRED_TOKEN})

MISMATCH_MESSAGE = ("The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method. Consult "
                    "the service documentation for details.")
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"

_UTC = timezone.utc
_PRESIGN_SIGNATURE = "X-Amz-Signature"
_PRESIGN_TOKEN = "X-Amz-Security-Token"
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                   "X-Amz-SignedHeaders", _PRESIGN_SIGNATURE, _PRESIGN_TOKEN)
_PRESIGN_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", _PRESIGN_SIGNATURE, "X-Amz-Date",
                     "X-Amz-SignedHeaders")
_ALGORITHM_PARAM = b"X-Amz-Algorithm"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ENCODE = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))
_ENCODE_PATH = tuple("/" if b == 0x2F else _ENCODE[b] for b in range(256))
_SPACES = re.compile(r"[ \t\r\n]+")  # SP, HTAB and the CR/LF of obs-fold continuation lines
# The Signature parameter's value in an Authorization header: a hex run that is a whole item
# (group 1). Led by its literal name, which sre finds several times faster than a lookbehind;
# the character before it is checked apart (_signature_value).
_SIGNATURE_VALUE = re.compile(r"Signature=([0-9a-fA-F]+)[ \t]*(?:,|$)")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_DIGITS = re.compile(r"[0-9]{1,12}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CONTENT_SHA256_HEADER = "x-amz-content-sha256"
STREAMING_PREFIX = "STREAMING-"


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class HttpRequest:
    """One request as received. See the module docstring for the encoding conventions."""

    method: str
    raw_path: str  # as on the wire: percent-encoded, no query
    query_string: str  # raw, without '?'
    headers: Sequence[tuple[str, str]]  # in order, duplicates kept, names any case
    body: bytes


@dataclass(frozen=True)
class Authorization:
    """The parts of ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""

    access_key_id: str
    date: str  # YYYYMMDD, as claimed in the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    terminator: str = TERMINATOR

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


class Credential(Protocol):
    """What ``lookup`` returns. An optional ``expires_at`` (aware datetime) marks a temporary
    credential: from that instant on, requests fail with ``ExpiredTokenException``."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def secret_access_key(self) -> str: ...

    @property
    def session_token(self) -> str | None: ...

    @property
    def owner(self) -> Any: ...


@dataclass(frozen=True)
class StaticCredential:
    """A plain ``Credential`` (tests, fixed keys)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    owner: Any = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out."""

    access_key_id: str
    region: str
    service: str
    credential: Credential
    amz_date: datetime  # aware, UTC
    signed_headers: tuple[str, ...] = ()
    presigned: bool = False
    payload_hash: str = ""  # S3 mode: the x-amz-content-sha256 value that was signed


class SigV4Error(ServiceError):
    """An authentication failure: HTTP 403, ``code`` is the ``__type``.

    ``claimed_access_key_id`` is the key id the request *claimed* (None when it could not be
    parsed); it is not verified and must only be recorded as claimed. ``reason`` names the
    check that failed (``REASON_*``) where one code covers several checks; S3 mode maps it to
    S3's error codes.
    """

    def __init__(self, code: str, message: str, *,
                 claimed_access_key_id: str | None = None, reason: str | None = None,
                 status: int = 403) -> None:
        super().__init__(code, message, status=status)
        self.claimed_access_key_id = claimed_access_key_id
        self.reason = reason


REASON_SCOPE = "scope"  # credential scope: terminator, date, region or service
REASON_UNKNOWN_KEY = "unknown-key"
REASON_TOKEN = "token"
REASON_EXPIRED = "expired"  # X-Amz-Date too old (or a pre-signed URL past its expiry)
REASON_FUTURE = "future"  # X-Amz-Date too far ahead
REASON_MISMATCH = "mismatch"
REASON_CONTENT_SHA256 = "content-sha256"  # x-amz-content-sha256 differs from the body's hash
REASON_MISSING_CONTENT_SHA256 = "missing-content-sha256"  # S3 mode
REASON_BAD_CONTENT_SHA256 = "bad-content-sha256"  # S3 mode: neither a hash nor a known keyword
REASON_TWO_MECHANISMS = "two-mechanisms"


def _incomplete(message: str) -> SigV4Error:
    return SigV4Error(INCOMPLETE_SIGNATURE, message)


def _invalid(message: str, reason: str | None = None) -> SigV4Error:
    return SigV4Error(INVALID_SIGNATURE, message, reason=reason)


# --------------------------------------------------------------------------- encoding helpers


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _wire_bytes(text: str | bytes) -> bytes:
    """The bytes behind a wire string: one char per byte (latin-1), else UTF-8."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return _utf8(text)


def _uri_encode(data: bytes, table: tuple[str, ...] = _ENCODE) -> str:
    return "".join([table[b] for b in data])


def _trimall(value: str) -> str:
    # The common case, without a regex pass: no control character (so no HTAB, CR or LF) and
    # no run of spaces. Anything else, non-ASCII text included, takes the regex.
    if value.isprintable() and "  " not in value:
        return value.strip(" ")
    return _SPACES.sub(" ", value).strip(" ")


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    mapped: dict[str, list[str]] = {}
    for name, value in headers:
        mapped.setdefault(name.lower(), []).append(value)
    return mapped


def _parse_query(query: str | bytes) -> list[tuple[bytes, bytes]]:
    """Decoded (name, value) byte pairs, in order; empty '&&' members are dropped."""
    if not query:
        return []
    pairs = []
    for member in _wire_bytes(query).split(b"&"):
        if member:
            name, _, value = member.partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _normalize_path(path: str) -> str:
    """Remove '.', '..' and empty segments (RFC 3986 5.2.4 plus AWS's '//' rule)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


@lru_cache(maxsize=256)  # an API's calls share a few paths (aoss's are all '/')
def canonical_uri(raw_path: str, *, normalize_path: bool = True) -> str:
    """The canonical URI: normalised (unless S3-style), then URI-encoded once more."""
    path = raw_path or "/"
    if normalize_path:
        path = _normalize_path(path)
    return _uri_encode(_wire_bytes(path), _ENCODE_PATH)


def s3_canonical_uris(raw_path: str) -> tuple[str, ...]:
    """S3's canonical URI candidates: the path exactly as sent, then (only when different) each
    '/'-separated segment percent-decoded and encoded once (unreserved chars kept; an encoded
    ``%2F`` stays encoded). No dot-segment or empty-segment normalisation."""
    exact = raw_path or "/"
    wire = _wire_bytes(exact)
    once = "/".join([_uri_encode(unquote_to_bytes(segment)) for segment in wire.split(b"/")])
    if once == exact:
        return (exact,)
    return (exact, once)


def _canonical_query(pairs: list[tuple[bytes, bytes]], exclude: Collection[str]) -> str:
    encoded = []
    for name, value in pairs:
        key = _uri_encode(name)
        if key in exclude:
            continue
        encoded.append((key, _uri_encode(value)))
    encoded.sort()
    return "&".join([f"{key}={value}" for key, value in encoded])


def canonical_query_string(query_string: str, *, exclude: Collection[str] = ()) -> str:
    """Decode each name and value, re-encode (RFC 3986 unreserved kept), sort by name, value."""
    return _canonical_query(_parse_query(query_string), exclude)


def _canonical(method: str, raw_path: str, pairs: list[tuple[bytes, bytes]],
               headers: dict[str, list[str]], signed_headers: Sequence[str],
               normalize_path: bool, payload_hash: str, exclude: Collection[str],
               uri: str | None = None) -> str:
    if uri is None:
        uri = canonical_uri(raw_path, normalize_path=normalize_path)
    lines = [method, uri, _canonical_query(pairs, exclude)]
    for name in signed_headers:
        values = headers.get(name)
        if values is None:
            raise _incomplete(f"Signed header '{name}' is not present in the request.")
        if len(values) == 1:
            lines.append(f"{name}:{_trimall(values[0])}")
        else:
            lines.append(f"{name}:{','.join([_trimall(v) for v in values])}")
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def _presign_exclusions(pairs: list[tuple[bytes, bytes]]) -> tuple[str, ...]:
    if any(name == _ALGORITHM_PARAM for name, _ in pairs):
        return (_PRESIGN_SIGNATURE,)
    return ()


def payload_hash_of(req: HttpRequest) -> str:
    """``x-amz-content-sha256`` when present and not UNSIGNED-PAYLOAD, else SHA-256(body)."""
    declared = _header_map(req.headers).get("x-amz-content-sha256")
    if declared is not None:
        value = ",".join([_trimall(v) for v in declared])
        if value != UNSIGNED_PAYLOAD:
            return value
    return hashlib.sha256(req.body).hexdigest()


def canonical_request(req: HttpRequest, signed_headers: Sequence[str], *,
                      normalize_path: bool = True, payload_hash: str | None = None,
                      exclude_query: Collection[str] | None = None, s3: bool = False) -> str:
    """The SigV4 canonical request.

    ``signed_headers`` are lower-case names in the order of ``SignedHeaders``. ``exclude_query``
    names query parameters left out (default: ``X-Amz-Signature`` when the query carries
    ``X-Amz-Algorithm``, i.e. a pre-signed request; nothing otherwise). ``s3`` applies S3's
    rules: the path exactly as sent, the ``x-amz-content-sha256`` value as payload hash
    (``UNSIGNED-PAYLOAD`` when absent).
    """
    pairs = _parse_query(req.query_string)
    if exclude_query is None:
        exclude_query = _presign_exclusions(pairs)
    headers = _header_map(req.headers)
    uri = None
    if s3:
        uri = req.raw_path or "/"
        if payload_hash is None:
            declared = headers.get(CONTENT_SHA256_HEADER)
            payload_hash = (UNSIGNED_PAYLOAD if declared is None
                            else ",".join([_trimall(v) for v in declared]))
    if payload_hash is None:
        payload_hash = payload_hash_of(req)
    return _canonical(req.method, req.raw_path, pairs, headers, signed_headers,
                      normalize_path, payload_hash, exclude_query, uri)


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(_utf8(canonical_request)).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over date, region, service, 'aws4_request'; cached (LRU)."""
    key = hmac.new(_utf8("AWS4" + secret), _utf8(date), hashlib.sha256).digest()
    key = hmac.new(key, _utf8(region), hashlib.sha256).digest()
    key = hmac.new(key, _utf8(service), hashlib.sha256).digest()
    return hmac.new(key, TERMINATOR.encode(), hashlib.sha256).digest()


@lru_cache(maxsize=4096)
def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after absorbing a signing key's inner and outer pads (RFC 2104)."""
    if len(key) > 64:  # longer than SHA-256's block: hashed first (kSigning is 32 bytes)
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def signature(key: bytes, string_to_sign: str) -> str:
    # HMAC from the key's cached pad states: hmac.digest() releases the GIL around OpenSSL's
    # one-shot HMAC, and on a busy server getting it back costs ~40 µs per request.
    inner, outer = _hmac_pads(key)
    inner = inner.copy()
    inner.update(_utf8(string_to_sign))
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


# --------------------------------------------------------------------------- parsing


def _parse_credential(value: str) -> tuple[str, str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5:
        raise _incomplete("Credential must have exactly 5 slash-delimited elements, e.g. "
                          f"keyid/date/region/service/term, got '{value}'")
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if any(not name for name in names):
        raise _incomplete(f"Invalid SignedHeaders '{value}': header names must not be empty.")
    return names


def _split_scheme(value: str) -> tuple[str, str]:
    """The leading scheme token (up to the first SP/HTAB) and the rest."""
    text = value.strip(" \t")
    ends = [at for at in (text.find(" "), text.find("\t")) if at >= 0]
    end = min(ends) if ends else len(text)
    return text[:end], text[end:]


def _tokenize_parameters(rest: str, value: str) -> list[tuple[str, str]]:
    """``item *(OWS "," OWS item)``; item = key "=" value, no whitespace inside an item."""
    items: list[tuple[str, str]] = []
    if not rest.strip(" \t"):
        return items
    for raw in rest.split(","):
        item = raw.strip(" \t")
        key, equals, val = item.partition("=")
        if not equals:
            raise _incomplete(f"'{item}' not a valid key=value pair (missing equal-sign) in "
                              f"Authorization header: '{value}'.")
        if not key or " " in item or "\t" in item:
            raise _incomplete(f"'{item}' not a valid key=value pair in Authorization "
                              f"header: '{value}'.")
        items.append((key, val))
    return items


def parse_authorization(value: str) -> Authorization:
    """Parse an ``AWS4-HMAC-SHA256`` Authorization header value (IncompleteSignature on error).

    Grammar: OWS scheme 1*WSP param *(OWS "," OWS param) OWS with the params Credential,
    SignedHeaders and Signature in any order, each exactly once.
    """
    # A client's headers differ only in their signatures: the rest is parsed once. A hex run
    # holds no separator, so the header with it blanked parses the same; any error is raised
    # by parsing the header as sent, so that its message quotes it.
    signed = _signature_value(value)
    if signed is not None:
        try:
            template = _parse_authorization_template(
                f"{value[:signed.start(1)]}0{value[signed.end(1):]}")
        except SigV4Error:
            pass
        else:
            return Authorization(template.access_key_id, template.date, template.region,
                                 template.service, template.signed_headers, signed.group(1),
                                 template.terminator)
    return _parse_authorization(value)


def _signature_value(value: str) -> re.Match[str] | None:
    """The first ``Signature=<hex>`` item that follows a space, a tab or a comma."""
    found = _SIGNATURE_VALUE.search(value)
    while found is not None and (found.start() == 0 or value[found.start() - 1] not in " \t,"):
        found = _SIGNATURE_VALUE.search(value, found.start() + 1)
    return found


@lru_cache(maxsize=256)
def _parse_authorization_template(value: str) -> Authorization:
    return _parse_authorization(value)


def _parse_authorization(value: str) -> Authorization:
    scheme, rest = _split_scheme(value)
    if scheme != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{scheme}'. Authorization={value}")
    params: dict[str, str] = {}
    for key, val in _tokenize_parameters(rest, value):
        if key not in ("Credential", "SignedHeaders", "Signature"):
            raise _incomplete(f"Unknown parameter '{key}' in Authorization header: '{value}'.")
        if key in params:
            raise _incomplete(f"Duplicate '{key}' parameter in Authorization header: '{value}'.")
        params[key] = val
    missing = [f"Authorization header requires '{key}' parameter."
               for key in ("Credential", "Signature", "SignedHeaders") if not params.get(key)]
    if missing:
        raise _incomplete(" ".join(missing) + f" Authorization={value}")
    access_key_id, date, region, service, terminator = _parse_credential(params["Credential"])
    return Authorization(access_key_id, date, region, service,
                         _parse_signed_headers(params["SignedHeaders"]), params["Signature"],
                         terminator)


@lru_cache(maxsize=64)  # the calls of one second share their X-Amz-Date
def _parse_amz_date(text: str) -> datetime:
    if _AMZ_DATE.fullmatch(text):
        try:  # by position: strptime costs several times more on every request
            return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
                            int(text[11:13]), int(text[13:15]), tzinfo=_UTC)
        except ValueError:
            pass
    raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
                      "See http://en.wikipedia.org/wiki/ISO_8601")


def _date_from_headers(headers: dict[str, list[str]], authorization: str) -> tuple[str, datetime]:
    amz = headers.get("x-amz-date")
    if amz is not None:
        text = ",".join([v.strip(" \t") for v in amz])
        return text, _parse_amz_date(text)
    http_date = headers.get("date")
    if http_date is None:
        raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or "
                          f"a 'Date' header. Authorization={authorization}")
    text = ",".join([v.strip(" \t") for v in http_date])
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        raise _incomplete(f"Date header must be an RFC 1123 date. Got '{text}'.")
    when = _aware(when).replace(microsecond=0)
    return when.strftime(AMZ_DATE_FORMAT), when


@dataclass(frozen=True)
class _Presigned:
    authorization: Authorization
    amz_date_text: str
    expires: timedelta | None
    token: str | None


def _from_query(pairs: list[tuple[bytes, bytes]]) -> _Presigned:
    found: dict[str, str] = {}
    wanted = {name.encode(): name for name in _PRESIGN_PARAMS}
    for raw_name, raw_value in pairs:
        name = wanted.get(raw_name)
        if name is None:
            continue
        if name in found:
            raise _incomplete(f"Only one '{name}' query parameter is allowed.")
        found[name] = raw_value.decode("utf-8", "replace")
    missing = [f"AWS query-string parameters must include '{name}'."
               for name in _PRESIGN_REQUIRED if not found.get(name)]
    if missing:
        raise _incomplete(" ".join(missing) + " Re-examine the query-string parameters.")
    if found["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{found['X-Amz-Algorithm']}'.")
    access_key_id, date, region, service, terminator = _parse_credential(found["X-Amz-Credential"])
    authorization = Authorization(access_key_id, date, region, service,
                                  _parse_signed_headers(found["X-Amz-SignedHeaders"]),
                                  found[_PRESIGN_SIGNATURE], terminator)
    expires = None
    if "X-Amz-Expires" in found:
        text = found["X-Amz-Expires"]
        if text.startswith("-") and _DIGITS.fullmatch(text[1:]):
            raise _incomplete("X-Amz-Expires must be non-negative")
        if not _DIGITS.fullmatch(text):
            raise _incomplete(f"X-Amz-Expires should be a number, got '{text}'")
        if int(text) > MAX_PRESIGN_EXPIRES:
            raise _incomplete("X-Amz-Expires must be less than a week (in seconds) that is "
                              f"{MAX_PRESIGN_EXPIRES}")
        expires = timedelta(seconds=int(text))
    return _Presigned(authorization, found["X-Amz-Date"], expires, found.get(_PRESIGN_TOKEN))


# --------------------------------------------------------------------------- verification


def _aware(when: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return when.replace(tzinfo=_UTC) if when.tzinfo is None else when.astimezone(_UTC)


def _stamp(when: datetime) -> str:
    return when.strftime(AMZ_DATE_FORMAT)


def _window(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def _check_time(amz_date: datetime, now: datetime, max_skew: timedelta,
                expires: timedelta | None) -> None:
    now = now.replace(microsecond=0)
    late = max_skew if expires is None else expires
    if amz_date < now - late:
        raise _invalid(f"Signature expired: {_stamp(amz_date)} is now earlier than "
                       f"{_stamp(now - late)} ({_stamp(now)} - {_window(late)})", REASON_EXPIRED)
    if amz_date > now + max_skew:
        raise _invalid(f"Signature not yet current: {_stamp(amz_date)} is still later than "
                       f"{_stamp(now + max_skew)} ({_stamp(now)} + {_window(max_skew)})",
                       REASON_FUTURE)


def _tokens_equal(sent: str | None, expected: str | None) -> bool:
    if expected is None:
        return sent is None
    if sent is None:
        return False
    return hmac.compare_digest(_utf8(sent), _utf8(expected))


def verify(req: HttpRequest, *, lookup: Callable[[str], Credential | None], now: datetime,
           max_skew: timedelta = timedelta(minutes=5), service: str | None,
           region_check: Callable[[str], Any] | None = None,
           normalize_path: bool = True, s3: bool = False) -> Verified:
    """Check a request's SigV4 signature; return who signed it or raise ``SigV4Error``.

    Order: authentication present → well-formed (Incomplete) → credential scope (Invalid) →
    access key known (UnrecognizedClient) → session token (UnrecognizedClient, then
    ExpiredToken) → time window (Invalid) → payload hash and signature (Invalid).
    ``service`` None / ``region_check`` None accept any; ``normalize_path`` False is the
    S3 rule (only for test suites: aoss always normalises). ``s3`` True applies S3's signing
    rules (see the module docstring; ``normalize_path`` is then ignored) but keeps these
    error codes: ``verify_s3`` translates them to S3's.
    """
    now = _aware(now)
    headers = _header_map(req.headers)
    pairs = _parse_query(req.query_string)
    auth_headers = headers.get("authorization")
    presigned = any(name == _ALGORITHM_PARAM for name, _ in pairs)
    if auth_headers is None and not presigned:
        raise SigV4Error(MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")
    if auth_headers is not None and presigned:
        raise SigV4Error(INCOMPLETE_SIGNATURE, "Only one auth mechanism allowed; only the "
                         "X-Amz-Algorithm query parameter or the Authorization header should "
                         "be specified.", reason=REASON_TWO_MECHANISMS)
    if presigned:
        query_auth = _from_query(pairs)
        auth = query_auth.authorization
        amz_date_text = query_auth.amz_date_text
        amz_date = _parse_amz_date(amz_date_text)
        expires = query_auth.expires
        token = query_auth.token
        if token is None and "x-amz-security-token" in headers:
            token = ",".join(headers["x-amz-security-token"])
        exclude: tuple[str, ...] = (_PRESIGN_SIGNATURE,)
    else:
        if len(auth_headers) != 1:
            raise _incomplete("Only one Authorization header is allowed.")
        auth = parse_authorization(auth_headers[0])
        amz_date_text, amz_date = _date_from_headers(headers, auth_headers[0])
        expires = None
        token_values = headers.get("x-amz-security-token")
        token = None if token_values is None else ",".join(token_values)
        exclude = ()
    try:
        return _verify_parsed(req, headers, pairs, auth, amz_date_text, amz_date, expires, token,
                              exclude, presigned, lookup=lookup, now=now, max_skew=max_skew,
                              service=service, region_check=region_check,
                              normalize_path=normalize_path, s3=s3)
    except SigV4Error as error:
        error.claimed_access_key_id = auth.access_key_id
        raise


def _verify_parsed(req: HttpRequest, headers: dict[str, list[str]],
                   pairs: list[tuple[bytes, bytes]], auth: Authorization, amz_date_text: str,
                   amz_date: datetime, expires: timedelta | None, token: str | None,
                   exclude: tuple[str, ...], presigned: bool, *,
                   lookup: Callable[[str], Credential | None], now: datetime,
                   max_skew: timedelta, service: str | None,
                   region_check: Callable[[str], Any] | None, normalize_path: bool,
                   s3: bool = False) -> Verified:
    if "host" not in auth.signed_headers:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                          "Authorization.")
    if "x-amz-target" in headers and "x-amz-target" not in auth.signed_headers:
        # It names the operation, and reads and deletes take the same body (GetAccessPolicy,
        # DeleteAccessPolicy): unsigned, a URL presigned to read could be sent to delete.
        # Every SDK signs it.
        raise _incomplete("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization: "
                          "it names the operation.")
    for name in auth.signed_headers:
        if name not in headers:
            raise _incomplete(f"Signed header '{name}' is not present in the request.")

    if auth.terminator != TERMINATOR:
        raise _invalid("Credential should be scoped with a valid terminator: 'aws4_request', "
                       f"not '{auth.terminator}'.", REASON_SCOPE)
    if auth.date != amz_date_text[:8]:
        raise _invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                       f"of date from HTTP: '{auth.date}' != '{amz_date_text[:8]}', from "
                       f"'{amz_date_text}'.", REASON_SCOPE)
    if region_check is not None and not region_check(auth.region):
        raise _invalid(f"Credential should be scoped to a valid region, not '{auth.region}'.",
                       REASON_SCOPE)
    if service is not None and auth.service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.",
                       REASON_SCOPE)

    credential = lookup(auth.access_key_id)
    if credential is None:
        raise SigV4Error(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE, reason=REASON_UNKNOWN_KEY)
    if not _tokens_equal(token, credential.session_token):
        raise SigV4Error(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE, reason=REASON_TOKEN)
    expires_at = getattr(credential, "expires_at", None)
    if expires_at is not None and now >= _aware(expires_at):
        raise SigV4Error(EXPIRED_TOKEN, EXPIRED_TOKEN_MESSAGE)

    _check_time(amz_date, now, max_skew, expires)

    if s3:
        payload_hash = _s3_payload_hash(req, headers, presigned)
        uris: tuple[str | None, ...] = s3_canonical_uris(req.raw_path)
    else:
        payload_hash = hashlib.sha256(req.body).hexdigest()
        declared = headers.get(CONTENT_SHA256_HEADER)
        if declared is not None:
            value = ",".join([_trimall(v) for v in declared])
            if value != UNSIGNED_PAYLOAD and value != payload_hash:
                raise _invalid("The provided 'x-amz-content-sha256' header does not match "
                               "what was computed.", REASON_CONTENT_SHA256)
        uris = (None,)

    key = signing_key(credential.secret_access_key, auth.date, auth.region, auth.service)
    provided = _utf8(auth.signature)
    candidates = [exclude]
    if presigned and any(name == _PRESIGN_TOKEN.encode() for name, _ in pairs):
        candidates.append(exclude + (_PRESIGN_TOKEN,))  # token appended after signing
    for uri in uris:
        for excluded in candidates:
            creq = _canonical(req.method, req.raw_path, pairs, headers, auth.signed_headers,
                              normalize_path, payload_hash, excluded, uri)
            expected = signature(key, string_to_sign(amz_date_text, auth.scope, creq))
            if hmac.compare_digest(expected.encode("ascii"), provided):
                return Verified(access_key_id=auth.access_key_id, region=auth.region,
                                service=auth.service, credential=credential,
                                amz_date=amz_date, signed_headers=auth.signed_headers,
                                presigned=presigned, payload_hash=payload_hash if s3 else "")
    raise _invalid(MISMATCH_MESSAGE, REASON_MISMATCH)


def _s3_payload_hash(req: HttpRequest, headers: dict[str, list[str]], presigned: bool) -> str:
    declared = headers.get(CONTENT_SHA256_HEADER)
    if declared is None:
        if presigned:
            return UNSIGNED_PAYLOAD
        raise SigV4Error(INVALID_SIGNATURE, "Missing required header for this request: "
                         "x-amz-content-sha256", reason=REASON_MISSING_CONTENT_SHA256)
    value = ",".join([_trimall(v) for v in declared])
    if value == UNSIGNED_PAYLOAD or value.startswith(STREAMING_PREFIX):
        return value
    if not _SHA256_HEX.fullmatch(value):
        raise SigV4Error(INVALID_SIGNATURE, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                         "STREAMING-..., or a valid sha256 value.",
                         reason=REASON_BAD_CONTENT_SHA256)
    if value != hashlib.sha256(req.body).hexdigest():
        raise _invalid("The provided 'x-amz-content-sha256' header does not match what was "
                       "computed.", REASON_CONTENT_SHA256)
    return value


# --------------------------------------------------------------------------- S3 mode

S3_SERVICE = "s3"
S3_SIGNATURE_MISMATCH_MESSAGE = ("The request signature we calculated does not match the "
                                 "signature you provided. Check your key and signing method.")


def verify_s3(req: HttpRequest, *, lookup: Callable[[str], Credential | None], now: datetime,
              max_skew: timedelta = timedelta(minutes=15),
              region_check: Callable[[str], Any] | None = None) -> Verified:
    """``verify`` with S3's signing rules and S3's error codes (service name ``s3``).

    Raises ``SigV4Error`` whose ``code``/``status``/``message`` are what S3 answers:
    AccessDenied (403: no authentication, expired pre-signed URL), SignatureDoesNotMatch (403),
    InvalidAccessKeyId (403), RequestTimeTooSkewed (403), InvalidToken / ExpiredToken (400),
    AuthorizationHeaderMalformed / AuthorizationQueryParametersError (400),
    XAmzContentSHA256Mismatch (400), InvalidRequest / InvalidArgument (400).
    """
    try:
        return verify(req, lookup=lookup, now=now, max_skew=max_skew, service=S3_SERVICE,
                      region_check=region_check, s3=True)
    except SigV4Error as error:
        presigned = any(name == _ALGORITHM_PARAM for name, _ in _parse_query(req.query_string))
        raise _to_s3_error(error, presigned) from None


def _to_s3_error(error: SigV4Error, presigned: bool) -> SigV4Error:
    malformed = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
    reason, code = error.reason, error.code
    if code == MISSING_AUTHENTICATION_TOKEN:
        mapped = ("AccessDenied", "Access Denied", 403)
    elif reason == REASON_TWO_MECHANISMS:
        mapped = ("InvalidArgument", error.message, 400)
    elif code == INCOMPLETE_SIGNATURE or reason == REASON_SCOPE:
        mapped = (malformed, error.message, 400)
    elif reason == REASON_UNKNOWN_KEY:
        mapped = ("InvalidAccessKeyId",
                  "The AWS Access Key Id you provided does not exist in our records.", 403)
    elif reason == REASON_TOKEN:
        mapped = ("InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    elif code == EXPIRED_TOKEN:
        mapped = ("ExpiredToken", "The provided token has expired.", 400)
    elif reason == REASON_EXPIRED and presigned:
        mapped = ("AccessDenied", "Request has expired", 403)
    elif reason == REASON_FUTURE and presigned:
        mapped = ("AccessDenied", "Request is not valid yet", 403)
    elif reason in (REASON_EXPIRED, REASON_FUTURE):
        mapped = ("RequestTimeTooSkewed", "The difference between the request time and the "
                  "current time is too large.", 403)
    elif reason == REASON_CONTENT_SHA256:
        mapped = ("XAmzContentSHA256Mismatch", error.message, 400)
    elif reason == REASON_MISSING_CONTENT_SHA256:
        mapped = ("InvalidRequest", error.message, 400)
    elif reason == REASON_BAD_CONTENT_SHA256:
        mapped = ("InvalidArgument", error.message, 400)
    else:  # REASON_MISMATCH and anything not singled out above
        mapped = ("SignatureDoesNotMatch", S3_SIGNATURE_MISMATCH_MESSAGE, 403)
    s3_code, message, status = mapped
    return SigV4Error(s3_code, message, claimed_access_key_id=error.claimed_access_key_id,
                      reason=reason or code, status=status)
