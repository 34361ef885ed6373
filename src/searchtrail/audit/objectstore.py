"""The object-store interface trails deliver to: a local folder or any S3-compatible endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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
