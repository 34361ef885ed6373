"""Any S3-compatible endpoint (AWS S3, MinIO, Ceph, ...) as an object store, through boto3.

Path-style addressing (works with any endpoint), standard retries with a few attempts, short
timeouts, and checksums only where the API requires them (the defaults of newer botocore
send CRC trailers that many S3-compatible stores refuse). Credentials come from the
standard AWS chain (environment, shared files, instance roles) or the ``session`` given.
Every failure becomes an ``ObjectStoreError`` whose code is S3's (NoSuchBucket,
AccessDenied, ...) or ``ServiceUnavailable`` when the endpoint cannot be reached in time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ResponseStreamingError,
)

from searchtrail.audit.objectstore import (
    S3_ATTEMPTS,
    S3_MAX_LIST_KEYS,
    S3_STATUS_CODES,
    S3_TIMEOUT_SECONDS,
    ObjectNotFound,
    ObjectStoreError,
    ObjectSummary,
    StoredObject,
)

T = TypeVar("T")

# HEAD answers carry no body, so only the status tells what went wrong (botocore: "404")
_STATUS_CODES = {str(status): code for status, code in S3_STATUS_CODES.items()}
_LOCATION_ALIASES = {"": None, "us-east-1": None, "EU": "eu-west-1"}


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


class S3Store:
    """ObjectStore over boto3's S3 client. Thread-safe (one client, shared)."""

    def __init__(self, endpoint_url: str | None, region: str = "us-east-1", session: Any = None,
                 *, connect_timeout: float = S3_TIMEOUT_SECONDS,
                 read_timeout: float = S3_TIMEOUT_SECONDS,
                 max_attempts: int = S3_ATTEMPTS) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        session = session or boto3.session.Session()
        config = Config(
            region_name=region,
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self._client = session.client("s3", endpoint_url=endpoint_url, region_name=region,
                                          config=config)
        except (BotoCoreError, ValueError) as exc:
            raise ObjectStoreError("InvalidArgument",
                                   f"Cannot set up an S3 client for {endpoint_url!r}: {exc}") from None

    @property
    def client(self) -> Any:
        return self._client

    # ------------------------------------------------------------------ calls

    def _call(self, what: str, action: Callable[[], T], *,
              not_found: Callable[[], ObjectStoreError] | None = None) -> T:
        try:
            return action()
        except ClientError as exc:
            raise self._client_error(exc, what, not_found) from None
        except (HTTPClientError, BotoConnectionError, ResponseStreamingError) as exc:
            raise ObjectStoreError("ServiceUnavailable",
                                   f"The S3 endpoint {self._where()} could not be reached for "
                                   f"{what}: {exc}") from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ObjectStoreError("AccessDenied", f"No usable AWS credentials for {what} "
                                   f"({exc}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a "
                                   "profile.") from None
        except ParamValidationError as exc:
            raise ObjectStoreError("InvalidArgument", f"{what}: {exc}") from None
        except BotoCoreError as exc:
            raise ObjectStoreError("InternalError", f"{what} failed: {exc}") from None
        except OSError as exc:
            raise ObjectStoreError("ServiceUnavailable",
                                   f"The S3 endpoint {self._where()} failed during {what}: "
                                   f"{exc}") from None

    def _where(self) -> str:
        return self.endpoint_url or f"(AWS S3, {self.region})"

    @staticmethod
    def _client_error(exc: ClientError, what: str,
                      not_found: Callable[[], ObjectStoreError] | None) -> ObjectStoreError:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = _STATUS_CODES.get(code, code) or _STATUS_CODES.get(str(status), "InternalError")
        if code in ("NotFound", "NoSuchKey") and not_found is not None:
            return not_found()
        message = error.get("Message") or f"HTTP {status}"
        return ObjectStoreError(code, f"{what}: {message}")

    # ------------------------------------------------------------------ buckets

    def key_prefix_problem(self, prefix: str) -> str | None:
        return None  # S3 keys are any UTF-8 up to 1,024 bytes; CloudTrail caps the prefix at 200

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call(f"HeadBucket {bucket}", lambda: self._client.head_bucket(Bucket=bucket))
        except ObjectStoreError as error:
            if error.code in ("NotFound", "NoSuchBucket"):
                return False
            raise
        return True

    def _bucket_error(self, bucket: str, key: str) -> ObjectStoreError:
        """After a 404 without a body: NoSuchBucket or NoSuchKey."""
        if not self.bucket_exists(bucket):
            return ObjectStoreError("NoSuchBucket", f"The specified bucket does not exist: {bucket}")
        return ObjectNotFound(bucket, key)

    def bucket_region(self, bucket: str) -> str | None:
        answer = self._call(f"GetBucketLocation {bucket}",
                            lambda: self._client.get_bucket_location(Bucket=bucket))
        location = answer.get("LocationConstraint") or ""
        return _LOCATION_ALIASES.get(location, location)

    def create_bucket(self, bucket: str, region: str | None = None) -> None:
        """Create ``bucket`` (tests and setup helpers; trails deliver to existing buckets)."""
        region = region or self.region
        params: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call(f"CreateBucket {bucket}", lambda: self._client.create_bucket(**params))

    # ------------------------------------------------------------------ objects

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": bytes(body),
                                  "ContentType": content_type or "binary/octet-stream"}
        if metadata:
            params["Metadata"] = {name.lower(): value for name, value in metadata.items()}
        self._call(f"PutObject {bucket}/{key}", lambda: self._client.put_object(**params))

    def get_object(self, bucket: str, key: str) -> StoredObject:
        def fetch() -> tuple[dict, bytes]:
            answer = self._client.get_object(Bucket=bucket, Key=key)
            stream = answer["Body"]
            try:
                return answer, stream.read()
            finally:
                stream.close()

        answer, body = self._call(f"GetObject {bucket}/{key}", fetch,
                                  not_found=lambda: ObjectNotFound(bucket, key))
        return self._stored(key, answer, body)

    def head_object(self, bucket: str, key: str) -> StoredObject:
        answer = self._call(f"HeadObject {bucket}/{key}",
                            lambda: self._client.head_object(Bucket=bucket, Key=key),
                            not_found=lambda: self._bucket_error(bucket, key))
        return self._stored(key, answer, b"")

    @staticmethod
    def _stored(key: str, answer: dict, body: bytes) -> StoredObject:
        return StoredObject(
            key=key, body=body, size=int(answer.get("ContentLength", len(body))),
            last_modified=_utc(answer["LastModified"]), etag=answer.get("ETag", ""),
            content_type=answer.get("ContentType") or "binary/octet-stream",
            metadata={name.lower(): value for name, value in (answer.get("Metadata") or {}).items()})

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = S3_MAX_LIST_KEYS) -> tuple[list[ObjectSummary], bool]:
        if max_keys < 0:
            raise ObjectStoreError("InvalidArgument", "max_keys must not be negative.")
        params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": min(max_keys, S3_MAX_LIST_KEYS),
                                  "Prefix": prefix}
        if start_after:
            params["StartAfter"] = start_after
        answer = self._call(f"ListObjectsV2 {bucket}",
                            lambda: self._client.list_objects_v2(**params))
        page = [ObjectSummary(key=item["Key"], size=int(item.get("Size", 0)),
                              last_modified=_utc(item["LastModified"]),
                              etag=item.get("ETag", ""))
                for item in answer.get("Contents") or []]
        return page, bool(answer.get("IsTruncated"))

    def delete_object(self, bucket: str, key: str) -> None:
        self._call(f"DeleteObject {bucket}/{key}",
                   lambda: self._client.delete_object(Bucket=bucket, Key=key))
