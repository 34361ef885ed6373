"""CloudTrail log files as delivered to S3: object keys and deterministic gzip bodies.

Key layout (cloudtrail-spec section 4)::

    [prefix/]AWSLogs/[o-org/]<acct>/CloudTrail/<region>/YYYY/MM/DD/
        <acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique16>.json.gz

Body: ONE gzip member of ``{"Records":[r1,r2,...]}``. The stored record strings are joined
as they are (never re-serialized), and the gzip header is fixed (mtime 0, no file name,
OS "unknown"), so the same records always give the same bytes and a retried delivery
rewrites an identical object. The digest's ``hashValue`` is the SHA-256 of the
*uncompressed* bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from isal import isal_zlib

LOG_FILE_TIMESTAMP = "%Y%m%dT%H%MZ"
EVENT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UNIQUE_LENGTH = 16
# ISA-L's deflate (levels 0-3), level 1, for log files and digests alike: a file of 20,000
# CloudTrail records takes 7-10 ms where zlib's level 3 took 50-66 ms, and comes out smaller
# (ratio 12.9 against 11.5). Compression was half of the delivery worker's CPU, and on two
# cores that CPU is taken from the API (bench/README.md "Delivery beside the API: ISA-L
# compression").
GZIP_LEVEL = 1
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# magic, deflate, no flags, mtime 0, no extra flags, OS 255 ("unknown"): the same everywhere
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def utc(value: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused (time is always passed in)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(timezone.utc)


def format_event_time(value: datetime) -> str:
    return utc(value).strftime(EVENT_TIME_FORMAT)


def gzip_member(*parts: bytes) -> bytes:
    """Exactly one gzip member of ``parts`` joined, with a fixed header (deterministic for a
    given ISA-L). The parts are streamed through one compressor rather than joined: a log
    file's records are megabytes, and neither a joined copy of them nor one-shot deflate's
    output buffer (as large as its input) is made (bench/README.md, "(d) Delivery")."""
    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    member, crc, size = [_GZIP_HEADER], 0, 0
    for part in parts:
        member.append(compressor.compress(part))
        crc = isal_zlib.crc32(part, crc)
        size += len(part)
    member += (compressor.flush(), struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(member)


def aws_logs_root(*, prefix: str | None, org_id: str | None, account: str) -> str:
    """``[prefix/]AWSLogs/[org/]<acct>``; an empty prefix counts as none (as in the CLI)."""
    root = "AWSLogs/"
    if org_id:
        root += f"{org_id}/"
    root += account
    if prefix:
        root = f"{prefix}/{root}"
    return root


def log_file_key(*, prefix: str | None, org_id: str | None, account: str, region: str,
                 delivered_at: datetime, unique: str) -> str:
    if len(unique) != UNIQUE_LENGTH or not unique.isascii() or not unique.isalnum():
        raise ValueError("unique must be 16 ASCII alphanumerics")
    at = utc(delivered_at)
    root = aws_logs_root(prefix=prefix, org_id=org_id, account=account)
    return (f"{root}/CloudTrail/{region}/{at:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{at.strftime(LOG_FILE_TIMESTAMP)}_{unique}.json.gz")


def unique_suffix(seed: bytes) -> str:
    """16 alphanumerics derived from ``seed`` (SHA-256, base 62): same seed, same key."""
    number = int.from_bytes(hashlib.sha256(seed).digest(), "big")
    chars = []
    for _ in range(UNIQUE_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


@dataclass(frozen=True)
class LogFile:
    body: bytes  # the gzip object to store
    sha256: str  # lower-case hex SHA-256 of the uncompressed JSON
    newest_event_time: datetime
    oldest_event_time: datetime
    count: int


def _event_time(record: str) -> datetime:
    try:
        parsed = orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"record is not JSON: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("eventTime"), str):
        raise ValueError("record is not an object with a string eventTime")
    when = datetime.fromisoformat(parsed["eventTime"])
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def build_log_file(records: Sequence[str]) -> LogFile:
    """``{"Records":[...]}`` from record strings, as one deterministic gzip member; the newest
    and oldest eventTime are read from the records themselves."""
    if not records:
        raise ValueError("a log file holds at least one record")
    times = [_event_time(record) for record in records]
    return _sealed(",".join(records).encode("utf-8"), len(records), max(times), min(times))


def log_file_of_joined(joined: bytes, count: int, newest_epoch: int,
                       oldest_epoch: int) -> LogFile:
    """A log file from ``count`` stored records already joined with commas in order, and the
    newest and oldest of their stored event times (epoch seconds): what the delivery worker
    reads in one SQL aggregate, with no Python step per record."""
    if count < 1 or not joined:
        raise ValueError("a log file holds at least one record")
    return _sealed(joined, count, datetime.fromtimestamp(newest_epoch, timezone.utc),
                   datetime.fromtimestamp(oldest_epoch, timezone.utc))


def _sealed(joined: bytes, count: int, newest: datetime, oldest: datetime) -> LogFile:
    document = (b'{"Records":[', joined, b"]}")
    digest = hashlib.sha256()
    for part in document:
        digest.update(part)
    return LogFile(
        body=gzip_member(*document),
        sha256=digest.hexdigest(),
        newest_event_time=newest,
        oldest_event_time=oldest,
        count=count,
    )
