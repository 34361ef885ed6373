"""Trail integrity validation: the algorithm of ``aws cloudtrail validate-logs``, plus a tail check.

This mirrors awscli 1.46.3 ``customizations/cloudtrail/validation.py`` step by step, with the
same outcome strings and the same output lines, reading through an :class:`ObjectReader`
(any :class:`ObjectStore`, or :class:`S3Reader`) instead of S3 clients (cloudtrail-spec 5.3):

1. list digest keys under ``[prefix/]AWSLogs/[org/]<acct>/CloudTrail-Digest/<sourceRegion>``
   after the marker = the key a digest ending at ``start - 1 min`` would have; keep the keys
   matching the trail's digest key pattern, read the date from the key by position, stop at
   the first key dated after ``end + 1 h``, skip keys dated before ``start``;
2. fetch the public keys for ``[start, end + 2 h]`` once (empty: fatal
   :class:`NoPublicKeysFound`);
3. walk newest -> oldest, following ``previousDigestS3Bucket/Object``; each digest is
   gunzipped and parsed, its metadata signature checked with the key of its fingerprint
   (DER PKCS#1 ``RSAPublicKey``), its location compared with where it was read; a missing
   digest is "not found"; a null link with an older digest listed is a reported gap;
4. for every valid digest, every log file: gunzip one member, SHA-256, compare;
5. a second pass for ``_backfill`` digests (public keys fetched per digest).

The CLI reads one object at a time; here the reads overlap (the outcome and the order of the
lines are the same): the digests the walk will reach next are fetched ahead of it, and each
valid digest's log files are fetched and hashed by a thread pool while the walk goes on. The
results go into the report in the CLI's order, and a fatal store error is raised for the
first file, in that order, that had one.

On top, what the CLI cannot see (reliability plan T8): when the trail was logging and the
newest digest found ends more than ``2 x digest_interval`` before ``min(end, now)`` (or,
when the caller knows it, before the newest digest it delivered), the report carries
``INVALID: newest digest missing: expected a digest ending after <t>`` (``ending at <t>, the
newest delivered`` when the caller knows it).

Fatal conditions raise, as they make the CLI exit 255: :class:`NoPublicKeysFound`, store
errors other than ``NoSuchKey`` (:class:`ObjectStoreError`), and ``ValueError`` for a bad
time range.

:func:`open_s3_reader` gives the reader for an S3-compatible endpoint: signed GETs over plain
keep-alive connections, one per thread, which start in milliseconds where a boto3 S3 client
takes a few hundred (imports, service model, endpoint rules).
"""

from __future__ import annotations

import binascii
import hashlib
import io
import json
import re
import threading
import zlib
from bisect import bisect_left
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from searchtrail.audit.digest import digest_key, digest_prefix
from searchtrail.audit.objectstore import (
    ObjectStoreError,
    ObjectSummary,
    StoredObject,
)

DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DISPLAY_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
VALID = "valid"
# Objects read and checked at a time. A remote store's round trips overlap (zlib and SHA-256
# release the GIL meanwhile); reading a local folder is CPU-bound, and more threads than
# two only contend for the GIL (measured: 44 ms for 165 files with 2, 71 ms with 8).
REMOTE_FETCH_THREADS = 8
LOCAL_FETCH_THREADS = 2
# Digests fetched ahead of the walk (each is held in memory until the walk reaches it).
DIGEST_PREFETCH = 32
# Log files being checked ahead of the report; past this, the walk waits for the oldest.
PENDING_LOG_CHECKS = 256

_KEY_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_DIGEST_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")

PublicKeySource = Callable[[datetime, datetime], list[tuple[str, bytes]]]
Progress = Callable[[str, int, int], None]

REQUIRED_DIGEST_KEYS = (
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
)

# DigestInfo prefixes python-rsa recognises when it verifies (rsa.pkcs1.HASH_ASN1): the CLI
# accepts a PKCS#1 v1.5 signature over any of these hashes, so the mirror does too.
_DIGEST_INFO = {
    "md5": bytes.fromhex("3020300c06082a864886f70d020505000410"),
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
    "sha3_256": bytes.fromhex("3031300d060960864801650304020805000420"),
    "sha3_384": bytes.fromhex("3041300d060960864801650304020905000430"),
    "sha3_512": bytes.fromhex("3051300d060960864801650304020a05000440"),
}


class NoPublicKeysFound(RuntimeError):
    """ListPublicKeys answered nothing for the range: the CLI aborts."""


def format_date(value: datetime) -> str:
    return value.strftime(DATE_FORMAT)


def format_display_date(value: datetime) -> str:
    return value.strftime(DISPLAY_DATE_FORMAT)


def normalize_date(value: datetime) -> datetime:
    """As the CLI does: the wall-clock fields, labelled UTC (no conversion)."""
    return value.replace(tzinfo=timezone.utc)


def parse_date(value: Any) -> datetime:
    """dateutil's ``parse``, as the CLI's; the two forms CloudTrail writes (key dates and
    digest times, UTC) are read directly, as dateutil reads them, for speed."""
    if isinstance(value, str):
        match = _KEY_DATE.fullmatch(value) or _DIGEST_TIME.fullmatch(value)
        if match:
            try:
                return datetime(*map(int, match.groups()), tzinfo=timezone.utc)
            except ValueError:
                pass  # a field out of range: dateutil decides, and words the error
    from dateutil import parser as date_parser  # only for the unusual forms

    try:
        return date_parser.parse(value)
    except ValueError:
        raise ValueError(f"Unable to parse date value: {value}") from None


def is_backfill_digest_key(key: str) -> bool:
    return key.endswith("_backfill.json.gz")


def extract_digest_key_date(key: str) -> str:
    return key[-33:-17] if is_backfill_digest_key(key) else key[-24:-8]


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(timezone.utc)


# -- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FileResult:
    """One line of the CLI's per-file output.

    ``kind`` is ``digest``, ``log`` or ``gap`` (a reported chain gap, never counted);
    ``status`` is ``valid`` or ``INVALID: ...`` exactly as the CLI prints it (for a gap: the
    whole message)."""

    kind: str
    uri: str
    status: str
    backfill: bool = False

    @property
    def valid(self) -> bool:
        return self.status == VALID

    @property
    def is_error(self) -> bool:
        return self.kind == "gap" or not self.valid

    def line(self) -> str:
        mark = "(backfill) " if self.backfill else ""
        if self.kind == "gap":
            return f"{mark}{self.status}"
        if self.kind == "log":
            return f"Log file\t{self.uri}\t{self.status}"
        return f"{mark}Digest file\t{self.uri}\t{self.status}"


@dataclass
class ValidationReport:
    trail_arn: str
    start: datetime
    end: datetime
    results: list[FileResult] = field(default_factory=list)  # in the CLI's output order
    found_start: datetime | None = None
    found_end: datetime | None = None

    def _count(self, kind: str, backfill: bool, valid: bool | None) -> int:
        return sum(1 for r in self.results if r.kind == kind and r.backfill == backfill
                   and (valid is None or r.valid == valid))

    @property
    def digests_valid(self) -> int:
        return self._count("digest", False, True)

    @property
    def digests_total(self) -> int:
        return self._count("digest", False, None)

    @property
    def backfill_digests_valid(self) -> int:
        return self._count("digest", True, True)

    @property
    def backfill_digests_total(self) -> int:
        return self._count("digest", True, None)

    @property
    def logs_valid(self) -> int:
        return sum(1 for r in self.results if r.kind == "log" and r.valid)

    @property
    def logs_total(self) -> int:
        return sum(1 for r in self.results if r.kind == "log")

    @property
    def gaps(self) -> list[FileResult]:
        return [r for r in self.results if r.kind == "gap"]

    @property
    def invalid(self) -> list[FileResult]:
        return [r for r in self.results if r.kind != "gap" and not r.valid]

    @property
    def ok(self) -> bool:
        """Exit code 0 (True) or 1 (False), as the CLI decides it."""
        return not self.invalid

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def status_of(self, uri: str) -> list[str]:
        return [r.status for r in self.results if r.uri == uri]

    def render_text(self, verbose: bool) -> tuple[str, str]:
        """(stdout, stderr) exactly as the CLI writes them."""
        out, err = io.StringIO(), io.StringIO()
        out.write(f"Validating log files for trail {self.trail_arn} between "
                  f"{format_display_date(self.start)} and {format_display_date(self.end)}\n\n")
        double_spaced = True
        for result in self.results:
            message = result.line()
            if result.is_error:
                err.write(f"{message}\n\n" if double_spaced else f"\n{message}\n\n")
                double_spaced = True
            elif verbose:
                double_spaced = False
                out.write(f"{message}\n")
        if not double_spaced:
            out.write("\n")
        out.write(f"Results requested for {format_display_date(self.start)} to "
                  f"{format_display_date(self.end)}\n")
        if not self.digests_total + self.backfill_digests_total:
            out.write("No digests found\n")
            return out.getvalue(), err.getvalue()
        if not self.found_start or not self.found_end:
            out.write("No valid digests found in range\n")
        else:
            out.write(f"Results found for {format_display_date(self.found_start)} to "
                      f"{format_display_date(self.found_end)}:\n")
        for valid, total, name in (
            (self.digests_valid, self.digests_total, "digest"),
            (self.backfill_digests_valid, self.backfill_digests_total, "backfill digest"),
            (self.logs_valid, self.logs_total, "log"),
        ):
            if total > 0:
                out.write(f"\n{valid}/{total} {name} files valid")
                if valid < total:
                    out.write(f", {total - valid}/{total} {name} files INVALID")
        out.write("\n")
        return out.getvalue(), err.getvalue()

    def render(self, verbose: bool) -> tuple[list[str], list[str]]:
        """(stdout lines, stderr lines); each line was followed by a newline."""
        stdout, stderr = self.render_text(verbose)
        return stdout.splitlines(), stderr.splitlines()


# -- the walk ----------------------------------------------------------------------------

class _DigestError(ValueError):
    """A digest failed; ``status`` is the text after the tab (``INVALID: ...``)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class _DigestMissing(Exception):
    pass


def load_pkcs1_public_key(der: bytes) -> rsa.RSAPublicKey:
    """A DER PKCS#1 ``RSAPublicKey`` only (an X.509 SubjectPublicKeyInfo is refused, as the
    CLI's ``rsa.PublicKey.load_pkcs1(..., 'DER')`` refuses it)."""
    key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    if key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1) != der:
        raise ValueError("not a DER PKCS#1 RSAPublicKey")
    return key


def verify_pkcs1_signature(key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    """RSA PKCS#1 v1.5 verification with the hash named in the signature (python-rsa's rule)."""
    if len(signature) != (key.key_size + 7) // 8:
        return False
    try:
        recovered = key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return False
    for name, prefix in _DIGEST_INFO.items():
        if recovered.startswith(prefix):
            return recovered == prefix + hashlib.new(name, message).digest()
    return False


def _string_to_sign(data: dict[str, Any], inflated: bytes) -> bytes:
    previous = data["previousDigestSignature"]
    if previous is None:
        previous = "null"
    return (f"{data['digestEndTime']}\n{data['digestS3Bucket']}/{data['digestS3Object']}\n"
            f"{hashlib.sha256(inflated).hexdigest()}\n{previous}").encode()


class ObjectReader(Protocol):
    """What the validator reads through: any ObjectStore, or S3Reader. Thread-safe; failures
    are ObjectStoreErrors (``NoSuchKey``: :class:`ObjectNotFound`)."""

    def get_object(self, bucket: str, key: str) -> StoredObject: ...

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = 1000) -> tuple[list[ObjectSummary], bool]: ...


class _Validator:
    def __init__(self, *, store: ObjectReader, bucket: str, prefix: str | None,
                 org_id: str | None, account: str, trail_name: str, home_region: str,
                 source_region: str, start: datetime, end: datetime,
                 public_keys: PublicKeySource, report: ValidationReport,
                 progress: Progress | None, fetch_threads: int) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix
        self.org_id = org_id
        self.account = account
        self.trail_name = trail_name
        self.home_region = home_region
        self.source_region = source_region
        self.start = start
        self.end = end
        self.public_key_source = public_keys
        self.report = report
        self.progress = progress
        self._cache: dict[tuple[str, str | None, datetime, datetime], dict[str, list[str]]] = {}
        self._loaded_keys: dict[bytes, rsa.RSAPublicKey | None] = {}  # DER -> key (None: unusable)
        self.digests_seen = 0
        self.digests_listed = 0
        self.logs_done = 0
        self.logs_known = 0
        self._progress_lock = threading.Lock()
        self._fetch_threads = max(1, fetch_threads)
        self._fetchers: ThreadPoolExecutor | None = None
        self._prefetched: dict[tuple[str, str], Future[StoredObject]] = {}
        # results not yet in the report, in the CLI's order; a log file's is a Future
        self._output: deque[FileResult | Future[FileResult]] = deque()
        self._fatal: BaseException | None = None  # the first log file's fatal error

    def close(self) -> None:
        if self._fetchers is not None:
            self._fetchers.shutdown(cancel_futures=True)

    def _submit(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._fetchers is None:
            self._fetchers = ThreadPoolExecutor(self._fetch_threads,
                                                thread_name_prefix="validate")
        return self._fetchers.submit(work, *args)

    def settle(self, pending: int = 0) -> None:
        """Move results into the report in order: the finished ones at the head, and more,
        waiting for them, until at most ``pending`` are left. A fatal error of a log file is
        raised here (and again on every later call), for the first such file in the CLI's
        order, which is where the CLI's one-at-a-time walk would have stopped."""
        if self._fatal is not None:
            raise self._fatal
        output = self._output
        while output and (len(output) > pending or not isinstance(output[0], Future)
                          or output[0].done()):
            item = output.popleft()
            if isinstance(item, Future):
                try:
                    item = item.result()
                except BaseException as exc:
                    self._fatal = exc
                    raise
            self.report.results.append(item)

    # listing ---------------------------------------------------------------------------
    def key_regex(self) -> re.Pattern[str]:
        account = re.escape(self.account)
        source = re.escape(self.source_region)
        home = re.escape(self.home_region)
        name = re.escape(self.trail_name)
        org = f"{self.org_id}/" if self.org_id else ""
        pattern = (f"AWSLogs/{org}{account}/CloudTrail\\-Digest/{source}/\\d+/\\d+/\\d+/"
                   f"{account}_CloudTrail\\-Digest_{source}_{name}_{home}_.+(?:_backfill)?"
                   f"\\.json\\.gz")
        if self.prefix:
            pattern = re.escape(self.prefix) + "/" + pattern
        return re.compile("^" + pattern + "$")

    def list_all(self, bucket: str, start: datetime, end: datetime) -> dict[str, list[str]]:
        standard: list[str] = []
        backfill: list[str] = []
        marker = digest_key(prefix=self.prefix, org_id=self.org_id, account=self.account,
                            region=self.source_region, trail_name=self.trail_name,
                            home_region=self.home_region, end=start - timedelta(minutes=1))
        list_prefix = digest_prefix(prefix=self.prefix, org_id=self.org_id,
                                    account=self.account, region=self.source_region)
        target_start = format_date(normalize_date(start))
        target_end = format_date(normalize_date(end + timedelta(hours=1)))
        regex = self.key_regex()
        after = marker
        done = False
        while not done:
            page, truncated = self.store.list_objects(bucket, prefix=list_prefix,
                                                      start_after=after)
            for summary in page:
                key = summary.key
                if not (key and regex.match(key)):
                    continue
                extracted = extract_digest_key_date(key)
                if extracted > target_end:
                    done = True
                    break
                if extracted < target_start:
                    continue
                (backfill if is_backfill_digest_key(key) else standard).append(key)
            if not truncated or not page:
                break
            after = page[-1].key
        return {"standard": standard, "backfill": backfill}

    def load_digest_keys(self, bucket: str, start: datetime, end: datetime,
                         backfill: bool) -> list[str]:
        cache_key = (bucket, self.prefix, start, end)
        if cache_key not in self._cache:
            self._cache[cache_key] = self.list_all(bucket, start, end)
        return self._cache[cache_key]["backfill" if backfill else "standard"]

    def load_public_keys(self, start: datetime, end: datetime) -> dict[str, bytes]:
        keys = dict(self.public_key_source(start, end))
        if not keys:
            raise NoPublicKeysFound(f"No public keys found between {format_display_date(start)} "
                                    f"and {format_display_date(end)}")
        return keys

    # chain -----------------------------------------------------------------------------
    @staticmethod
    def last_digest(digests: list[str], before_key: str | None = None
                    ) -> tuple[str | None, datetime | None]:
        if not digests:
            return None, None
        if before_key is None:
            key = digests.pop()
            return key, normalize_date(parse_date(extract_digest_key_date(key)))
        before = parse_date(extract_digest_key_date(before_key))
        while digests:
            key = digests.pop()
            date = normalize_date(parse_date(extract_digest_key_date(key)))
            if date < before:
                return key, date
        return None, None

    def find_next(self, digests: list[str], bucket: str, last_key: str,
                  last_start: datetime | None, *, on: str, backfill: bool,
                  status: str = "") -> tuple[str | None, datetime | None]:
        next_key, next_end = self.last_digest(digests, last_key)
        if on == "gap":
            if next_key:
                assert next_end is not None and last_start is not None
                self._output.append(FileResult(
                    "gap", "", "No log files were delivered by CloudTrail between "
                    f"{format_display_date(next_end)} and {format_display_date(last_start)}",
                    backfill))
        else:
            self._output.append(FileResult("digest", f"s3://{bucket}/{last_key}", status,
                                           backfill))
        return next_key, next_end

    def prefetch_digests(self, bucket: str, digests: list[str], key: str) -> None:
        """Start reading the listed digests just older than ``key`` (``digests`` is in key
        order, which is time order): the walk's next steps while the chain is intact."""
        below = bisect_left(digests, key)
        for older in digests[max(0, below - DIGEST_PREFETCH):below]:
            if (bucket, older) not in self._prefetched:
                self._prefetched[(bucket, older)] = self._submit(self.store.get_object,
                                                                 bucket, older)

    def fetch_digest(self, bucket: str, key: str) -> tuple[Any, bytes]:
        prefetched = self._prefetched.pop((bucket, key), None)
        try:
            stored = (prefetched.result() if prefetched is not None
                      else self.store.get_object(bucket, key))
        except ObjectStoreError as exc:
            if exc.code == "NoSuchKey":
                raise _DigestMissing() from None
            raise
        try:
            inflated = zlib.decompress(stored.body, zlib.MAX_WBITS | 16)
            data = json.loads(inflated.decode())
        except (ValueError, zlib.error):
            raise _DigestError("INVALID: invalid format") from None
        metadata = stored.metadata
        if "signature" not in metadata or "signature-algorithm" not in metadata:
            raise _DigestError("INVALID: signature verification failed")
        data["_signature"] = metadata["signature"]
        data["_signature_algorithm"] = metadata["signature-algorithm"]
        if is_backfill_digest_key(key):
            if "backfill-generation-timestamp" in metadata:
                data["_backfill_generation_timestamp"] = metadata["backfill-generation-timestamp"]
            else:
                raise _DigestError("INVALID: invalid format")
        return data, inflated

    def load_and_validate(self, public_keys: dict[str, bytes], bucket: str, key: str,
                          backfill: bool) -> tuple[Any, datetime]:
        data, inflated = self.fetch_digest(bucket, key)
        for required in REQUIRED_DIGEST_KEYS:
            if required not in data:
                raise _DigestError("INVALID: invalid format")
        if data["digestS3Bucket"] != bucket or data["digestS3Object"] != key:
            raise _DigestError("INVALID: has been moved from its original location")
        fingerprint = data["digestPublicKeyFingerprint"]
        if fingerprint not in public_keys and backfill:
            stamp = normalize_date(parse_date(data["_backfill_generation_timestamp"]))
            public_keys.update(self.load_public_keys(stamp - timedelta(hours=1),
                                                     stamp + timedelta(hours=1)))
        if fingerprint not in public_keys:
            raise _DigestError(f"INVALID: public key not found in region {self.home_region} "
                               f"for fingerprint {fingerprint}")
        public_key = self.public_key(public_keys[fingerprint])
        if public_key is None:
            raise _DigestError(f"INVALID: Unable to load PKCS #1 key with fingerprint "
                               f"{data['digestPublicKeyFingerprint']}")
        to_sign = _string_to_sign(data, inflated)
        signature = binascii.unhexlify(data["_signature"])
        if not verify_pkcs1_signature(public_key, to_sign, signature):
            raise _DigestError("INVALID: signature verification failed")
        return data, normalize_date(parse_date(data["digestEndTime"]))

    def public_key(self, der: Any) -> rsa.RSAPublicKey | None:
        """The key loaded from ``der``, or None if it is not a DER PKCS#1 RSA key; each key
        is loaded once (every digest of a chain names the same few)."""
        if isinstance(der, bytes) and der in self._loaded_keys:
            return self._loaded_keys[der]
        try:
            key: rsa.RSAPublicKey | None = load_pkcs1_public_key(der)
        except Exception:
            key = None
        if isinstance(der, bytes):
            self._loaded_keys[der] = key
        return key

    def traverse(self, backfill: bool) -> None:
        bucket = self.bucket
        digests = self.load_digest_keys(bucket, self.start, self.end, backfill)
        self.digests_listed += len(digests)
        # With no digest, no key is needed: a Region that never signed one may have no key (the
        # AWS CLI always gets one: our ListPublicKeys makes the first).
        public_keys = {} if backfill or not digests else self.load_public_keys(
            self.start, self.end + timedelta(hours=2))
        key, end_date = self.last_digest(digests)
        last_start = end_date
        while key and last_start is not None and self.start <= last_start:
            self.prefetch_digests(bucket, digests, key)
            try:
                data, end_date = self.load_and_validate(public_keys, bucket, key, backfill)
                last_start = normalize_date(parse_date(data["digestStartTime"]))
                previous_bucket = data.get("previousDigestS3Bucket", None)
                previous_key = data.get("previousDigestS3Object", None)
                self.on_valid_digest(data, backfill)
                if previous_bucket is None or previous_key is None:
                    key, end_date = self.find_next(digests, bucket, key, last_start,
                                                   on="gap", backfill=backfill)
                else:
                    key = previous_key
                    if previous_bucket != bucket:
                        bucket = previous_bucket
                        digests = self.load_digest_keys(bucket, self.start, end_date, backfill)
            except _DigestMissing:
                key, end_date = self.find_next(digests, bucket, key, last_start, on="missing",
                                               backfill=backfill, status="INVALID: not found")
            except _DigestError as exc:
                key, end_date = self.find_next(digests, bucket, key, last_start, on="invalid",
                                               backfill=backfill, status=exc.status)
            except ObjectStoreError:
                raise
            except Exception as exc:  # the CLI's catch-all: "INVALID: <message>"
                key, end_date = self.find_next(digests, bucket, key, last_start, on="invalid",
                                               backfill=backfill, status=f"INVALID: {exc}")
            self.digests_seen += 1
            if self.progress:
                self.progress("digests", self.digests_seen,
                              max(self.digests_seen, self.digests_listed))

    def on_valid_digest(self, data: dict[str, Any], backfill: bool) -> None:
        self.track_found_times(data)
        self._output.append(FileResult(
            "digest", f"s3://{data['digestS3Bucket']}/{data['digestS3Object']}", VALID, backfill))
        log_files = data.get("logFiles")
        if not log_files:
            return
        with self._progress_lock:
            self.logs_known += len(log_files)
        for log in log_files:  # checked while the walk goes on; settle() puts them in order
            self._output.append(self._submit(self.check_log_counted, log))
        self.settle(pending=PENDING_LOG_CHECKS)

    def track_found_times(self, data: dict[str, Any]) -> None:
        earliest = max(normalize_date(parse_date(data["digestStartTime"])), self.start)
        if not self.report.found_start or earliest < self.report.found_start:
            self.report.found_start = earliest
        latest = min(normalize_date(parse_date(data["digestEndTime"])), self.end)
        if not self.report.found_end or latest > self.report.found_end:
            self.report.found_end = latest

    def check_log_counted(self, log: Any) -> FileResult:
        result = self.check_log(log)
        with self._progress_lock:
            self.logs_done += 1
            if self.progress:
                self.progress("logs", self.logs_done, self.logs_known)
        return result

    def check_log(self, log: Any) -> FileResult:
        def field_of(name: str) -> Any:
            return log.get(name) if isinstance(log, dict) else None

        uri = f"s3://{field_of('s3Bucket')}/{field_of('s3Object')}"
        try:
            stored = self.store.get_object(log["s3Bucket"], log["s3Object"])
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            rolling = hashlib.sha256()
            body = stored.body
            for offset in range(0, len(body), 2048):
                rolling.update(inflater.decompress(body[offset:offset + 2048]))
            remaining = inflater.flush()
            if remaining:
                rolling.update(remaining)
            if inflater.unused_data:
                return FileResult("log", uri,
                                  "INVALID: unexpected data after end of compressed stream")
            if rolling.hexdigest() != log["hashValue"]:
                return FileResult("log", uri, "INVALID: hash value doesn't match")
            return FileResult("log", uri, VALID)
        except ObjectStoreError as exc:
            if exc.code != "NoSuchKey":
                raise
            return FileResult("log", uri, "INVALID: not found")
        except Exception:
            return FileResult("log", uri, "INVALID: invalid format")


def _tail_check(*, newest_end: datetime | None, start: datetime, end: datetime, now: datetime,
                digest_interval: timedelta, logging: bool, logging_since: datetime | None,
                latest_digest_end: datetime | None) -> str | None:
    """What digest should be there but was not found, or None if all is well."""
    if latest_digest_end is not None and latest_digest_end <= end + timedelta(hours=1):
        if latest_digest_end >= start and (newest_end is None or newest_end < latest_digest_end):
            return (f"expected a digest ending at {format_display_date(latest_digest_end)}, "
                    "the newest delivered")
    if not logging:
        return None
    threshold = min(end, now) - 2 * digest_interval
    floor = max(start, logging_since) if logging_since is not None else start
    if threshold < floor:
        return None
    if newest_end is None or newest_end < threshold:
        return f"expected a digest ending after {format_display_date(threshold)}"
    return None


def validate_trail(*, store: ObjectReader, bucket: str, prefix: str | None, org_id: str | None,
                   account: str, trail_name: str, home_region: str,
                   source_region: str | None, start: datetime, end: datetime,
                   public_keys: PublicKeySource, digest_interval: timedelta, now: datetime,
                   progress: Progress | None = None, trail_arn: str | None = None,
                   logging: bool = True, logging_since: datetime | None = None,
                   latest_digest_end: datetime | None = None,
                   fetch_threads: int = LOCAL_FETCH_THREADS) -> ValidationReport:
    """Validate a trail's digests and log files for ``[start, end]`` as validate-logs does.

    ``public_keys(start, end)`` answers like ListPublicKeys: ``[(fingerprint, der), ...]``
    with DER PKCS#1 keys. ``account`` is the member account for organization trails
    (``org_id`` = ``o-...``); ``trail_arn`` defaults to
    ``arn:aws:cloudtrail:<home>:<account>:trail/<name>``. Tail check: ``logging`` says the
    trail was logging through the window (since ``logging_since`` if it started inside it);
    ``latest_digest_end``, when the caller knows the end time of the newest digest it
    delivered, makes the check exact. ``progress(phase, done, total)`` is called with phase
    ``digests`` and ``logs`` (``logs`` from the reading threads). ``fetch_threads``: objects
    read at a time (:data:`REMOTE_FETCH_THREADS` suits a store over the network)."""
    start = _as_utc(start)
    end = _as_utc(end)
    now = _as_utc(now)
    if start > end:
        raise ValueError("Invalid time range specified: start-time must occur before end-time")
    if digest_interval <= timedelta(0):
        raise ValueError("digest_interval must be positive")
    source = source_region or home_region
    report = ValidationReport(
        trail_arn=trail_arn or f"arn:aws:cloudtrail:{home_region}:{account}:trail/{trail_name}",
        start=start, end=end)
    walker = _Validator(store=store, bucket=bucket, prefix=prefix, org_id=org_id,
                        account=account, trail_name=trail_name, home_region=home_region,
                        source_region=source, start=start, end=end, public_keys=public_keys,
                        report=report, progress=progress, fetch_threads=fetch_threads)

    listed = list(walker.load_digest_keys(bucket, start, end, backfill=False))
    newest_end: datetime | None = None
    for key in listed:
        try:
            date = normalize_date(parse_date(extract_digest_key_date(key)))
        except (ValueError, OverflowError):
            continue
        if newest_end is None or date > newest_end:
            newest_end = date
    missing = _tail_check(
        newest_end=newest_end, start=start, end=end, now=now, digest_interval=digest_interval,
        logging=logging, logging_since=_as_utc(logging_since) if logging_since else None,
        latest_digest_end=_as_utc(latest_digest_end) if latest_digest_end else None)
    if missing is not None:
        location = digest_prefix(prefix=prefix, org_id=org_id, account=account, region=source)
        report.results.append(FileResult(
            "digest", f"s3://{bucket}/{location}/", f"INVALID: newest digest missing: {missing}"))

    try:
        try:
            walker.traverse(backfill=False)
            walker.traverse(backfill=True)
        except Exception:
            walker.settle()  # a log file's fatal error raises first if it came before this one
            raise
        walker.settle()
    finally:
        walker.close()
    return report
