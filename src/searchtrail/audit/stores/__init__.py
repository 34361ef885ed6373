"""ObjectStore implementations: a local folder (the default) and any S3-compatible endpoint."""

from __future__ import annotations

from searchtrail.audit.stores.local import BucketInfo, LocalFolderStore, validate_bucket_name

__all__ = ["BucketInfo", "LocalFolderStore", "S3Store", "validate_bucket_name"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # S3Store imports boto3; only load it when asked for.
    if name == "S3Store":
        from searchtrail.audit.stores.s3 import S3Store

        return S3Store
    raise AttributeError(name)
