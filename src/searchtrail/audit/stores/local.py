"""A local folder as an object store: objects on disk in CloudTrail's exact key layout.

Layout under ``root``::

    buckets/<bucket>/<key>                          the object's bytes, key '/' = directories
    bucket-meta/<bucket>/bucket.json                owner account, region, creation date
    bucket-meta/<bucket>/objects/<h[:2]>/<h>/<md5>.json
                                                    content type and user metadata of the
                                                    object whose bytes have that MD5
                                                    (h = hex SHA-256 of the key)
    bucket-meta/<bucket>/locks/<xx>                 lock files (256 stripes per bucket)

So ``buckets/`` holds nothing but the objects and can be copied, served or read as is
(``AWSLogs/<account>/CloudTrail/...``).

Writes are atomic and durable: the bytes go to a temporary file in the target's directory,
are fsynced, renamed over the key, and the directory is fsynced; new directories are fsynced
into their parents. Metadata is written (durably) *before* the rename and is keyed by the
content's MD5, so after a crash at any point the bytes on disk always find the metadata that
was written with them, never another version's. Writers of one key are serialised with
``flock`` on a lock stripe, so several threads or processes may share a folder.

Keys are S3 keys that a file system can hold: 1..1024 UTF-8 bytes, no absolute paths, no
empty, ``.`` or ``..`` segments (so no trailing ``/``), no control characters (NUL
included), segments of at most 255 bytes. A key cannot be both an object and the "folder"
of other keys (``a`` and ``a/b``); that is refused with ``InvalidArgument``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import stat as statmode
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from searchtrail.arns import is_region
from searchtrail.audit.objectstore import (
    S3_MAX_LIST_KEYS,
    ObjectNotFound,
    ObjectStoreError,
    ObjectSummary,
    StoredObject,
)
from searchtrail.durable import TEMP_PREFIX, replace_file, sync_directory, synced_temp_file

BUCKETS_DIR = "buckets"
META_DIR = "bucket-meta"
BUCKET_FILE = "bucket.json"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
DEFAULT_REGION = "us-east-1"
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_METADATA_BYTES = 2048  # S3: user metadata, names plus values, UTF-8
PUT_ATTEMPTS = 5  # a concurrent delete may remove an empty directory under a writer
LOCK_STRIPES = 256
MAX_CACHED_BUCKETS = 10_000  # bucket settings kept in memory (a few hundred bytes each)

_UTC = timezone.utc
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_METADATA_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_MD5_JSON = re.compile(r"[0-9a-f]{32}\.json")


@dataclass(frozen=True)
class BucketInfo:
    name: str
    owner_account: str
    region: str
    created: datetime


def validate_bucket_name(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (general purpose rules), or None."""
    if not isinstance(name, str) or not 3 <= len(name) <= 63:
        return "Bucket names must be between 3 (min) and 63 (max) characters long."
    if not _BUCKET_CHARS.fullmatch(name):
        return ("Bucket names can consist only of lowercase letters, numbers, dots (.), and "
                "hyphens (-).")
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "Bucket names must begin and end with a letter or number."
    if ".." in name:
        return "Bucket names must not contain two adjacent periods."
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "Bucket names must not be formatted as an IP address (for example, 192.168.5.4)."
    for prefix in _BUCKET_PREFIXES:
        if name.startswith(prefix):
            return f"Bucket names must not start with the prefix '{prefix}'."
    for suffix in _BUCKET_SUFFIXES:
        if name.endswith(suffix):
            return f"Bucket names must not end with the suffix '{suffix}'."
    return None


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _fd_md5(fd: int) -> str:
    """The MD5 of an open file's bytes from its start (an ETag when no sidecar holds one)."""
    digest = hashlib.md5()
    offset = 0
    while block := os.pread(fd, 1 << 20, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _key_bytes(key: str) -> bytes:
    """The key's UTF-8 bytes, or ObjectStoreError when no file can hold it."""
    if not isinstance(key, str) or not key:
        raise ObjectStoreError("InvalidArgument", "The object key must not be empty.")
    try:
        data = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ObjectStoreError("InvalidArgument",
                               "The object key is not valid UTF-8.") from None
    if len(data) > MAX_KEY_BYTES:
        raise ObjectStoreError("KeyTooLong", f"Your key is too long: {len(data)} bytes; the "
                               f"maximum is {MAX_KEY_BYTES}.")
    if _CONTROL.search(key):
        raise ObjectStoreError("InvalidArgument", "The object key must not contain control "
                               "characters (NUL, newline, ...) in a local folder store.")
    if key.startswith("/"):
        raise ObjectStoreError("InvalidArgument", f"The object key must be relative, not "
                               f"start with '/': {key!r}.")
    for segment in data.split(b"/"):
        if segment in (b"", b".", b".."):
            raise ObjectStoreError("InvalidArgument", "The object key must not contain empty, "
                                   f"'.' or '..' segments (nor end with '/'): {key!r}.")
        if len(segment) > MAX_SEGMENT_BYTES:
            raise ObjectStoreError("KeyTooLong", f"A '/'-separated part of the key is longer "
                                   f"than {MAX_SEGMENT_BYTES} bytes, which a local folder "
                                   "cannot hold.")
        if segment.startswith(TEMP_PREFIX.encode()):
            raise ObjectStoreError("InvalidArgument", f"Key segments must not start with "
                                   f"{TEMP_PREFIX!r} (reserved for temporary files).")
    return data


def _clean_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    size = 0
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ObjectStoreError("InvalidArgument", "Metadata names and values must be strings.")
        lower = name.lower()
        if not _METADATA_NAME.fullmatch(lower):
            raise ObjectStoreError("InvalidArgument", f"Invalid metadata name {name!r}: use "
                                   "letters, digits and '-' (an HTTP header token).")
        if _CONTROL.search(value.replace("\t", " ")):
            raise ObjectStoreError("InvalidArgument", f"The value of metadata {name!r} must "
                                   "not contain control characters.")
        cleaned[lower] = value
        size += len(lower.encode()) + len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_METADATA_BYTES:
        raise ObjectStoreError("MetadataTooLarge", "Your metadata headers exceed the maximum "
                               f"allowed metadata size ({MAX_METADATA_BYTES} bytes).")
    return cleaned


def _makedirs(path: bytes) -> None:
    """Create missing directories, each fsynced into its parent."""
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise _conflict(directory) from None
        except NotADirectoryError:
            raise _conflict(directory) from None
        sync_directory(os.path.dirname(directory))


def _conflict(path: bytes) -> ObjectStoreError:
    return ObjectStoreError("InvalidArgument", "A local folder store cannot hold both an object "
                            "and keys below it ('a' and 'a/b'); conflict at "
                            f"{os.fsdecode(path)!r}.")


@contextmanager
def _ignored(*errors: type[BaseException]) -> Iterator[None]:
    try:
        yield
    except errors:
        pass


def _millis(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns // 1_000_000 / 1000, _UTC)


def _quoted(md5_hex: str) -> str:
    return f'"{md5_hex}"'


class LocalFolderStore:
    """ObjectStore over a local folder; see the module docstring for the layout and rules."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = os.fsencode(self.root.absolute())
        self._objects = os.path.join(self._root, BUCKETS_DIR.encode())
        self._meta = os.path.join(self._root, META_DIR.encode())
        # name -> (the settings file's identity, its BucketInfo). Every object call reads the
        # bucket's settings; a stat that still matches saves the open, read and parse.
        self._bucket_cache: dict[str, tuple[tuple[int, int, int, int], BucketInfo]] = {}

    # ------------------------------------------------------------------ paths

    def bucket_path(self, bucket: str) -> Path:
        """Where the bucket's objects live (``<root>/buckets/<bucket>``)."""
        return self.root / BUCKETS_DIR / bucket

    def _bucket_dir(self, bucket: str) -> bytes:
        return os.path.join(self._objects, bucket.encode())

    def _bucket_meta_dir(self, bucket: str) -> bytes:
        return os.path.join(self._meta, bucket.encode())

    def _sidecar_dir(self, bucket: str, key_bytes: bytes) -> bytes:
        digest = hashlib.sha256(key_bytes).hexdigest().encode()
        return os.path.join(self._bucket_meta_dir(bucket), b"objects", digest[:2], digest)

    def _object_path(self, bucket: str, key_bytes: bytes) -> bytes:
        return os.path.join(self._bucket_dir(bucket), key_bytes)

    @contextmanager
    def _locked(self, bucket: str, key_bytes: bytes, exclusive: bool) -> Iterator[None]:
        """Writers hold the key's stripe exclusively; readers share it, or go without it when
        the folder is read-only to them (they then tolerate a concurrent replace)."""
        stripe = hashlib.sha256(key_bytes).digest()[0] % LOCK_STRIPES
        directory = os.path.join(self._bucket_meta_dir(bucket), b"locks")
        path = os.path.join(directory, f"{stripe:02x}".encode())
        try:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                _makedirs(directory)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exclusive:
                raise self._os_error(exc, bucket) from None
            fd = -1
        if fd < 0:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ buckets

    def create_bucket(self, name: str, owner_account: str, region: str = DEFAULT_REGION, *,
                      exist_ok: bool = False) -> BucketInfo:
        """Create a bucket owned by ``owner_account``. An existing one raises
        BucketAlreadyOwnedByYou (same owner; returned as is with ``exist_ok``) or
        BucketAlreadyExists (another owner)."""
        problem = validate_bucket_name(name)
        if problem:
            raise ObjectStoreError("InvalidBucketName",
                                   f"The specified bucket is not valid: {name!r}. {problem}")
        if not re.fullmatch(r"[0-9]{12}", owner_account or ""):
            raise ObjectStoreError("InvalidArgument", f"The owner account must be a 12-digit "
                                   f"account id, not {owner_account!r}.")
        if not is_region(region or ""):
            raise ObjectStoreError("InvalidLocationConstraint",
                                   f"The specified location-constraint is not valid: {region!r}.")
        try:
            existing = self._bucket_info(name)
            if existing is not None:
                if existing.owner_account != owner_account:
                    raise ObjectStoreError("BucketAlreadyExists", f"The requested bucket name "
                                           f"{name!r} is not available: another account owns it.")
                if exist_ok:
                    return existing
                raise ObjectStoreError("BucketAlreadyOwnedByYou", f"The bucket {name!r} already "
                                       "exists and is owned by you.")
            info = BucketInfo(name, owner_account, region,
                              datetime.now(_UTC).replace(microsecond=0))
            _makedirs(self._bucket_dir(name))
            meta_dir = self._bucket_meta_dir(name)
            _makedirs(meta_dir)
            doc = {"Name": name, "OwnerAccount": owner_account, "Region": region,
                   "CreationDate": info.created.isoformat()}
            replace_file(meta_dir, BUCKET_FILE.encode(), json.dumps(doc).encode())
            return info
        except OSError as exc:
            raise self._os_error(exc, name) from None

    def _bucket_info(self, name: str) -> BucketInfo | None:
        cached = self._bucket_cache.get(name)  # only valid names are ever cached
        if cached is None and validate_bucket_name(name) is not None:
            return None
        path = os.path.join(self._bucket_meta_dir(name), BUCKET_FILE.encode())
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            self._bucket_cache.pop(name, None)
            return None
        except OSError as exc:
            raise ObjectStoreError("InternalError",
                                   f"Cannot read the settings of bucket {name!r}: {exc}") from None
        # A rewrite is an atomic replace: a new inode, and new times.
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if cached is not None and cached[0] == identity:
            return cached[1]
        try:
            with open(path, "rb") as handle:
                doc = json.loads(handle.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ObjectStoreError("InternalError",
                                   f"Cannot read the settings of bucket {name!r}: {exc}") from None
        info = BucketInfo(doc["Name"], doc["OwnerAccount"], doc.get("Region", DEFAULT_REGION),
                          datetime.fromisoformat(doc["CreationDate"]))
        if len(self._bucket_cache) >= MAX_CACHED_BUCKETS:
            self._bucket_cache.clear()
        self._bucket_cache[name] = (identity, info)
        return info

    def _require_bucket(self, name: str) -> BucketInfo:
        info = self._bucket_info(name)
        if info is None:
            raise ObjectStoreError("NoSuchBucket", f"The specified bucket does not exist: {name}")
        return info

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket_info(bucket) is not None

    def key_prefix_problem(self, prefix: str) -> str | None:
        try:
            _key_bytes(f"{prefix}/AWSLogs")  # as a trail's keys begin (audit/logfile.py)
        except ObjectStoreError as refused:
            return refused.message
        return None

    def bucket_owner(self, name: str) -> str | None:
        info = self._bucket_info(name)
        return info.owner_account if info else None

    def bucket_region(self, bucket: str) -> str | None:
        region = self._require_bucket(bucket).region
        return None if region == DEFAULT_REGION else region

    def bucket(self, name: str) -> BucketInfo | None:
        return self._bucket_info(name)

    def buckets(self) -> list[BucketInfo]:
        """Every bucket, by name."""
        try:
            names = sorted(os.listdir(self._meta))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._os_error(exc, "") from None
        found = []
        for raw in names:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            info = self._bucket_info(name)
            if info is not None:
                found.append(info)
        return found

    # ------------------------------------------------------------------ objects

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        key_bytes = _key_bytes(key)
        body = bytes(body)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        if _CONTROL.search(content_type):
            raise ObjectStoreError("InvalidArgument",
                                   "The content type must not contain control characters.")
        meta = _clean_metadata(metadata)
        self._require_bucket(bucket)
        target = self._object_path(bucket, key_bytes)
        directory, name = os.path.split(target)
        md5 = hashlib.md5(body).hexdigest()
        sidecars = self._sidecar_dir(bucket, key_bytes)
        try:
            with self._locked(bucket, key_bytes, exclusive=True):
                if os.path.isdir(target):
                    raise _conflict(target)
                tmp = self._temp_with_body(directory, body)
                try:
                    stat = os.stat(tmp)
                    _makedirs(sidecars)
                    doc = {"key": key, "contentType": content_type, "metadata": meta,
                           "size": stat.st_size, "mtimeNs": stat.st_mtime_ns}
                    replace_file(sidecars, f"{md5}.json".encode(), json.dumps(doc).encode())
                    try:
                        os.replace(tmp, target)
                    except IsADirectoryError:
                        raise _conflict(target) from None
                except BaseException:
                    with _ignored(OSError):
                        os.unlink(tmp)
                    raise
                sync_directory(directory)
                self._drop_sidecars(sidecars, keep=f"{md5}.json")
        except OSError as exc:
            raise self._os_error(exc, bucket, key) from None

    def _temp_with_body(self, directory: bytes, body: bytes) -> bytes:
        """A fsynced temporary file holding ``body`` in ``directory`` (created if needed)."""
        for attempt in range(PUT_ATTEMPTS):
            _makedirs(directory)
            try:
                return synced_temp_file(directory, body)
            except FileNotFoundError:
                if attempt == PUT_ATTEMPTS - 1:
                    raise
                # a delete pruned the empty directory meanwhile: create it again
        raise AssertionError("unreachable")

    @staticmethod
    def _drop_sidecars(directory: bytes, keep: str | None) -> None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            if keep is None or name != keep.encode():
                with _ignored(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))

    def _read_sidecar(self, directory: bytes, name: bytes) -> dict | None:
        try:
            with open(os.path.join(directory, name), "rb") as handle:
                doc = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _sidecar_for(self, bucket: str, key_bytes: bytes, stat: os.stat_result,
                     md5: str | None) -> tuple[str | None, dict | None]:
        """(md5, sidecar doc) for the object whose stat is ``stat``: by content MD5 when known,
        else by the size and mtime recorded at write time. (None, None): not found."""
        directory = self._sidecar_dir(bucket, key_bytes)
        if md5 is not None:
            return md5, self._read_sidecar(directory, f"{md5}.json".encode())
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        for name in names:
            text = name.decode("ascii", "replace")
            if not _MD5_JSON.fullmatch(text):
                continue
            doc = self._read_sidecar(directory, name)
            if doc and doc.get("size") == stat.st_size and doc.get("mtimeNs") == stat.st_mtime_ns:
                return text[:32], doc
        return None, None

    def _open_beneath(self, bucket: str, key_bytes: bytes) -> int:
        """The object's file, opened one folder at a time from the bucket's with no symlink
        followed (O_NOFOLLOW alone guards only the last part of a path): a folder symlinked
        into a bucket must not serve what lies outside it (the credentials, the database)."""
        *folders, name = key_bytes.split(b"/")  # _key_bytes refused empty, . and .. parts
        # the bucket's own folder may be a link an operator made (to another disk)
        directory = os.open(self._bucket_dir(bucket), os.O_RDONLY | os.O_DIRECTORY)
        try:
            for folder in folders:
                inner = os.open(folder, _FOLDER_FLAGS, dir_fd=directory)
                os.close(directory)
                directory = inner
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directory)
        finally:
            os.close(directory)

    def _open_file(self, bucket: str, key_bytes: bytes) -> tuple[int, os.stat_result] | None:
        """The object's open file and its stat, or None when no regular file holds the key
        (missing, a folder, behind a symlink); other OSErrors pass through."""
        try:
            fd = self._open_beneath(bucket, key_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise
        try:
            stat = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if not statmode.S_ISREG(stat.st_mode):
            os.close(fd)
            return None
        return fd, stat

    def _open(self, bucket: str, key: str) -> tuple[bytes, int]:
        key_bytes = _key_bytes(key)
        self._require_bucket(bucket)
        try:
            found = self._open_file(bucket, key_bytes)
        except OSError as exc:
            raise self._os_error(exc, bucket, key) from None
        if found is None:
            raise ObjectNotFound(bucket, key)
        return key_bytes, found[0]

    def _stored(self, bucket: str, key: str, key_bytes: bytes, stat: os.stat_result,
                body: bytes | None) -> StoredObject:
        md5 = hashlib.md5(body).hexdigest() if body is not None else None
        md5, doc = self._sidecar_for(bucket, key_bytes, stat, md5)
        if md5 is None:
            md5 = self._file_md5(self._object_path(bucket, key_bytes))
            md5, doc = self._sidecar_for(bucket, key_bytes, stat, md5)
        doc = doc or {}
        return StoredObject(key=key, body=body or b"", size=stat.st_size,
                            last_modified=_millis(stat.st_mtime_ns), etag=_quoted(md5),
                            content_type=doc.get("contentType") or DEFAULT_CONTENT_TYPE,
                            metadata=dict(doc.get("metadata") or {}))

    @staticmethod
    def _file_md5(path: bytes) -> str:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            return _fd_md5(fd)
        finally:
            os.close(fd)

    def get_object(self, bucket: str, key: str) -> StoredObject:
        key_bytes = _key_bytes(key)
        self._require_bucket(bucket)
        with self._locked(bucket, key_bytes, exclusive=False):
            key_bytes, fd = self._open(bucket, key)
            try:
                with os.fdopen(fd, "rb") as handle:
                    stat = os.fstat(handle.fileno())
                    body = handle.read()
                return self._stored(bucket, key, key_bytes, stat, body)
            except OSError as exc:
                raise self._os_error(exc, bucket, key) from None

    def head_object(self, bucket: str, key: str) -> StoredObject:
        key_bytes = _key_bytes(key)
        self._require_bucket(bucket)
        with self._locked(bucket, key_bytes, exclusive=False):
            key_bytes, fd = self._open(bucket, key)
            try:
                stat = os.fstat(fd)
            finally:
                os.close(fd)
            try:
                return self._stored(bucket, key, key_bytes, stat, None)
            except FileNotFoundError:
                raise ObjectNotFound(bucket, key) from None
            except OSError as exc:
                raise self._os_error(exc, bucket, key) from None

    def delete_object(self, bucket: str, key: str) -> None:
        """Remove the object (no error when it is missing, as S3); empty folders go too."""
        key_bytes = _key_bytes(key)
        self._require_bucket(bucket)
        target = self._object_path(bucket, key_bytes)
        try:
            with self._locked(bucket, key_bytes, exclusive=True):
                directory = os.path.dirname(target)
                try:
                    if os.path.isdir(target) and not os.path.islink(target):
                        return  # a "folder" of other keys, not an object
                    os.unlink(target)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                else:
                    sync_directory(directory)
                sidecars = self._sidecar_dir(bucket, key_bytes)
                self._drop_sidecars(sidecars, keep=None)
                with _ignored(OSError):
                    os.rmdir(sidecars)
                self._prune(directory, self._bucket_dir(bucket))
        except OSError as exc:
            raise self._os_error(exc, bucket, key) from None

    @staticmethod
    def _prune(directory: bytes, stop: bytes) -> None:
        """Remove empty directories from ``directory`` up to (not including) ``stop``."""
        while directory != stop and directory.startswith(stop + b"/"):
            try:
                os.rmdir(directory)
            except OSError:
                return  # not empty (or gone): the folders above are not empty either
            parent = os.path.dirname(directory)
            with _ignored(OSError):
                sync_directory(parent)
            directory = parent

    # ------------------------------------------------------------------ listing

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = S3_MAX_LIST_KEYS) -> tuple[list[ObjectSummary], bool]:
        """Keys > start_after with the prefix, in UTF-8 byte order; (page, is_truncated)."""
        if max_keys < 0:
            raise ObjectStoreError("InvalidArgument", "max_keys must not be negative.")
        self._require_bucket(bucket)
        try:
            prefix_b = prefix.encode("utf-8")
            after_b = start_after.encode("utf-8")
        except UnicodeEncodeError:
            raise ObjectStoreError("InvalidArgument",
                                   "The prefix and start-after must be valid UTF-8.") from None
        page: list[ObjectSummary] = []
        try:
            for key_bytes in self._walk(bucket, prefix_b, after_b):
                if len(page) >= max_keys:
                    return page, True
                summary = self._summary(bucket, key_bytes)
                if summary is not None:
                    page.append(summary)
        except OSError as exc:
            raise self._os_error(exc, bucket) from None
        return page, False

    def _summary(self, bucket: str, key_bytes: bytes) -> ObjectSummary | None:
        # Read through the same symlink-free open as a GET: a folder swapped for a symlink
        # while the walk listed it must not show what lies outside the bucket.
        found = self._open_file(bucket, key_bytes)
        if found is None:
            return None  # deleted while listing, or no longer a file of the bucket's
        fd, stat = found
        try:
            md5, _ = self._sidecar_for(bucket, key_bytes, stat, None)
            if md5 is None:
                md5 = _fd_md5(fd)
        except FileNotFoundError:
            return None  # its metadata deleted with it while listing
        finally:
            os.close(fd)
        return ObjectSummary(key=key_bytes.decode("utf-8"), size=stat.st_size,
                             last_modified=_millis(stat.st_mtime_ns), etag=_quoted(md5))

    def _walk(self, bucket: str, prefix: bytes, after: bytes) -> Iterator[bytes]:
        """Every object's key with the prefix and key > after, in byte order.

        Depth-first over directories sorted as ``name + b"/"``, which is the byte order of the
        keys below them; directories that cannot hold a wanted key are skipped."""
        stack = [iter(self._entries(self._bucket_dir(bucket), b""))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            key, path, is_dir = entry
            if is_dir:
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    if key > prefix:
                        return  # sorted: nothing later has the prefix
                    continue
                if after > key and not after.startswith(key):
                    continue  # every key below is <= after
                stack.append(iter(self._entries(path, key)))
            else:
                if not key.startswith(prefix):
                    if key > prefix:
                        return
                    continue
                if key > after:
                    yield key

    @staticmethod
    def _entries(directory: bytes, key_prefix: bytes) -> list[tuple[bytes, bytes, bool]]:
        """(key or key prefix ending in '/', path, is_dir) of a directory, sorted by key."""
        entries = []
        try:
            with os.scandir(directory) as listing:
                for entry in listing:
                    name = entry.name
                    if name.startswith(TEMP_PREFIX.encode()):
                        continue
                    try:
                        name.decode("utf-8")
                    except UnicodeDecodeError:
                        continue  # not written through this store
                    if entry.is_dir(follow_symlinks=False):
                        entries.append((key_prefix + name + b"/", entry.path, True))
                    elif entry.is_file(follow_symlinks=False):
                        entries.append((key_prefix + name, entry.path, False))
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries.sort()
        return entries

    # ------------------------------------------------------------------ errors

    @staticmethod
    def _os_error(exc: OSError, bucket: str, key: str | None = None) -> ObjectStoreError:
        where = f"{bucket}/{key}" if key is not None else bucket
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return ObjectStoreError("ServiceUnavailable",
                                    f"The local folder store is full ({where}): {exc.strerror}.")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ObjectStoreError("AccessDenied", f"The local folder store cannot write or "
                                    f"read {where}: {exc.strerror}.")
        if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            return ObjectStoreError("InvalidArgument", "A local folder store cannot hold both an "
                                    f"object and keys below it ({where}).")
        if exc.errno == errno.ENAMETOOLONG:
            return ObjectStoreError("KeyTooLong", f"The key is too long for the local file "
                                    f"system ({where}).")
        return ObjectStoreError("InternalError", f"Local folder store failed on {where}: {exc}.")
