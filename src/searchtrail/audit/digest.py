"""CloudTrail digest files: keys, the exact JSON, the signing string and the signature.

Key layout (cloudtrail-spec 5.1; timestamp and date path = digestEndTime, WITH seconds)::

    [prefix/]AWSLogs/[o-org/]<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/
        <acct>_CloudTrail-Digest_<region>_<trail>_<homeRegion>_<YYYYMMDDTHHMMSSZ>.json.gz

The JSON is serialized once, compactly, with a fixed field order; those exact bytes are
hashed, signed and gzipped (one member, fixed header). Signing is RSA PKCS#1 v1.5 over
SHA-256, which is deterministic, so equal inputs give byte-identical digests and a retry
rewrites the same object. The signature travels as S3 user metadata (``metadata``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from searchtrail.audit.logfile import LogFile, aws_logs_root, format_event_time, gzip_member, utc
from searchtrail.audit.signing import SIGNATURE_ALGORITHM, SigningKey

DIGEST_TIMESTAMP = "%Y%m%dT%H%M%SZ"
HASH_ALGORITHM = "SHA-256"


def digest_prefix(*, prefix: str | None, org_id: str | None, account: str, region: str) -> str:
    """``[prefix/]AWSLogs/[org/]<acct>/CloudTrail-Digest/<region>`` (what the CLI lists)."""
    root = aws_logs_root(prefix=prefix, org_id=org_id, account=account)
    return f"{root}/CloudTrail-Digest/{region}"


def digest_key(*, prefix: str | None, org_id: str | None, account: str, region: str,
               trail_name: str, home_region: str, end: datetime) -> str:
    at = utc(end)
    base = digest_prefix(prefix=prefix, org_id=org_id, account=account, region=region)
    return (f"{base}/{at:%Y/%m/%d}/{account}_CloudTrail-Digest_{region}_{trail_name}_"
            f"{home_region}_{at.strftime(DIGEST_TIMESTAMP)}.json.gz")


def _time_doc(value: datetime) -> int:
    return int(utc(value).timestamp())


def _time_from_doc(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


@dataclass(frozen=True)
class DigestLogEntry:
    """One ``logFiles[]`` entry: a log file delivered inside the digest's window."""

    bucket: str
    key: str
    sha256: str  # hex SHA-256 of the uncompressed log file
    newest_event_time: datetime
    oldest_event_time: datetime

    @classmethod
    def of(cls, bucket: str, key: str, log_file: LogFile) -> "DigestLogEntry":
        return cls(bucket, key, log_file.sha256, log_file.newest_event_time,
                   log_file.oldest_event_time)

    def to_json(self) -> dict[str, Any]:
        return {
            "s3Bucket": self.bucket,
            "s3Object": self.key,
            "hashValue": self.sha256,
            "hashAlgorithm": HASH_ALGORITHM,
            "newestEventTime": format_event_time(self.newest_event_time),
            "oldestEventTime": format_event_time(self.oldest_event_time),
        }

    def to_doc(self) -> dict[str, Any]:
        """JSON-types form for the resource repository (times as epoch seconds)."""
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256,
                "newest": _time_doc(self.newest_event_time),
                "oldest": _time_doc(self.oldest_event_time)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "DigestLogEntry":
        return cls(doc["bucket"], doc["key"], doc["sha256"], _time_from_doc(doc["newest"]),
                   _time_from_doc(doc["oldest"]))


@dataclass(frozen=True)
class PreviousDigest:
    """The chain link to the digest delivered before (None for a starting digest)."""

    bucket: str
    key: str
    sha256: str  # hex SHA-256 of its uncompressed JSON bytes
    signature: str  # its hex signature

    def to_doc(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256,
                "signature": self.signature}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "PreviousDigest":
        return cls(doc["bucket"], doc["key"], doc["sha256"], doc["signature"])


@dataclass(frozen=True)
class Digest:
    bucket: str
    key: str
    start: datetime
    end: datetime
    fingerprint: str
    json_bytes: bytes  # exactly the bytes that were hashed and signed
    body: bytes  # gzip of json_bytes, one member: the object to store
    sha256: str  # hex SHA-256 of json_bytes
    signature: str  # lower-case hex

    @property
    def metadata(self) -> dict[str, str]:
        """S3 user metadata (x-amz-meta-signature, x-amz-meta-signature-algorithm)."""
        return {"signature": self.signature, "signature-algorithm": SIGNATURE_ALGORITHM}

    def as_previous(self) -> PreviousDigest:
        """The link the next digest carries."""
        return PreviousDigest(self.bucket, self.key, self.sha256, self.signature)


def signing_string(*, digest_end_time: str, bucket: str, key: str, digest_sha256: str,
                   previous_signature: str | None) -> bytes:
    """cloudtrail-spec 5.2: end time, bucket/key, hash, previous signature or "null"."""
    previous = "null" if previous_signature is None else previous_signature
    return f"{digest_end_time}\n{bucket}/{key}\n{digest_sha256}\n{previous}".encode("utf-8")


def digest_document(*, account: str, bucket: str, key: str, start: datetime, end: datetime,
                    log_files: list[DigestLogEntry], previous: PreviousDigest | None,
                    fingerprint: str) -> dict[str, Any]:
    """The digest JSON object, fields in the order AWS writes them."""
    newest = max((entry.newest_event_time for entry in log_files), default=None)
    oldest = min((entry.oldest_event_time for entry in log_files), default=None)
    return {
        "awsAccountId": account,
        "digestStartTime": format_event_time(start),
        "digestEndTime": format_event_time(end),
        "digestS3Bucket": bucket,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": format_event_time(newest) if newest else None,
        "oldestEventTime": format_event_time(oldest) if oldest else None,
        "previousDigestS3Bucket": previous.bucket if previous else None,
        "previousDigestS3Object": previous.key if previous else None,
        "previousDigestHashValue": previous.sha256 if previous else None,
        "previousDigestHashAlgorithm": HASH_ALGORITHM if previous else None,
        "previousDigestSignature": previous.signature if previous else None,
        "logFiles": [entry.to_json() for entry in log_files],
    }


def build_digest(*, account: str, bucket: str, key: str, start: datetime, end: datetime,
                 log_files: list[DigestLogEntry], previous: PreviousDigest | None,
                 signing_key: SigningKey) -> Digest:
    """Serialize, hash, sign and gzip one digest. ``key`` is the S3 object key
    (from :func:`digest_key`), ``signing_key`` the key current at ``end``."""
    if utc(start) > utc(end):
        raise ValueError("digest start must not be after its end")
    document = digest_document(account=account, bucket=bucket, key=key, start=start, end=end,
                               log_files=log_files, previous=previous,
                               fingerprint=signing_key.fingerprint)
    json_bytes = json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    sha256 = hashlib.sha256(json_bytes).hexdigest()
    to_sign = signing_string(digest_end_time=document["digestEndTime"], bucket=bucket, key=key,
                             digest_sha256=sha256,
                             previous_signature=previous.signature if previous else None)
    return Digest(
        bucket=bucket,
        key=key,
        start=utc(start),
        end=utc(end),
        fingerprint=signing_key.fingerprint,
        json_bytes=json_bytes,
        body=gzip_member(json_bytes),
        sha256=sha256,
        signature=signing_key.sign(to_sign),
    )
