"""The object-store interface trails deliver to: a local folder or any S3-compatible endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


# What the S3 clients share: S3Store (boto3) and the validator's S3Reader.
S3_TIMEOUT_SECONDS = 5.0  # to connect, and for each read
S3_ATTEMPTS = 3  # in all, the first one included ("standard" retries)
# S3's largest ListObjects page: what the clients ask for, and what the local folder store and
# the read-only /_s3 API give at most.
S3_MAX_LIST_KEYS = 1000
# The code of an error answer that carries no S3 <Error> body (a HEAD's), by HTTP status.
S3_STATUS_CODES = {301: "PermanentRedirect", 400: "BadRequest", 403: "AccessDenied",
                   404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
                   412: "PreconditionFailed", 500: "InternalError", 501: "NotImplemented",
                   503: "ServiceUnavailable"}


class ObjectStoreError(Exception):
    """A store refused or failed an operation; ``code`` is the S3 error code (NoSuchBucket,
    NoSuchKey, AccessDenied, ...) or ``ServiceUnavailable`` when the store cannot be reached.
    GetTrailStatus shows ``code`` as LatestDeliveryError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ObjectNotFound(ObjectStoreError):
    def __init__(self, bucket: str, key: str) -> None:
        super().__init__("NoSuchKey", f"The specified key does not exist: {bucket}/{key}")


@dataclass(frozen=True)
class ObjectSummary:
    key: str
    size: int
    last_modified: datetime
    etag: str  # quoted hex MD5, as S3 shows it


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes  # empty for head_object
    size: int
    last_modified: datetime
    etag: str
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)  # user metadata, keys lower-case


class ObjectStore(Protocol):
    """Thread-safe; every method raises ObjectStoreError (never a driver exception)."""

    def bucket_exists(self, bucket: str) -> bool: ...

    def key_prefix_problem(self, prefix: str) -> str | None:
        """Why keys under ``prefix/`` cannot be stored here (a trail's S3KeyPrefix), or None."""

    def bucket_region(self, bucket: str) -> str | None:
        """The bucket's region (GetBucketLocation); None means us-east-1."""

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        """Create or replace; a retry with the same bytes leaves the same object."""

    def get_object(self, bucket: str, key: str) -> StoredObject: ...

    def head_object(self, bucket: str, key: str) -> StoredObject: ...

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = 1000) -> tuple[list[ObjectSummary], bool]:
        """Keys > start_after with the prefix, in byte order; returns (page, is_truncated)."""

    def delete_object(self, bucket: str, key: str) -> None: ...
