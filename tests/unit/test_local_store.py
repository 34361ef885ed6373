"""LocalFolderStore: CloudTrail's key layout on disk, atomic durable writes, byte-order listing,
metadata kept outside the layout, key and bucket-name rules."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from searchtrail import durable
from searchtrail.audit.objectstore import ObjectNotFound, ObjectStore, ObjectStoreError
from searchtrail.audit.stores import local
from searchtrail.audit.stores.local import LocalFolderStore, validate_bucket_name

ACCOUNT = "111122223333"
OTHER = "444455556666"
BUCKET = "trail-logs"
LOG_KEY = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/02/"
           f"{ACCOUNT}_CloudTrail_us-east-1_20260102T0310Z_Mu0KsOhtH1ar15ZZ.json.gz")
DIGEST_KEY = (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/01/02/"
              f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20260102T040000Z.json.gz")


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    store = LocalFolderStore(tmp_path / "store")
    store.create_bucket(BUCKET, ACCOUNT)
    return store


def put(store: LocalFolderStore, key: str, body: bytes = b"x", **kwargs) -> None:
    kwargs.setdefault("content_type", "application/octet-stream")
    store.put_object(BUCKET, key, body, **kwargs)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def utf8_sorted(keys) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def all_keys(store: LocalFolderStore, *, prefix: str = "", page_size: int = 1000) -> list[str]:
    keys, after = [], ""
    for _ in range(10_000):  # bounded: every page makes progress or ends
        page, truncated = store.list_objects(BUCKET, prefix=prefix, start_after=after,
                                             max_keys=page_size)
        keys += [o.key for o in page]
        if not truncated:
            return keys
        assert page, "a truncated page must not be empty"
        after = page[-1].key
    raise AssertionError("listing did not end")


# --------------------------------------------------------------------------- protocol, layout


def test_satisfies_the_object_store_protocol(store: LocalFolderStore) -> None:
    def takes(s: ObjectStore) -> ObjectStore:
        return s

    assert takes(store) is store
    for name in ("bucket_exists", "bucket_region", "put_object", "get_object", "head_object",
                 "list_objects", "delete_object"):
        assert callable(getattr(store, name))


def test_objects_sit_at_their_cloudtrail_key_and_nothing_else_does(
        store: LocalFolderStore) -> None:
    body = b"\x1f\x8b gzip bytes"
    put(store, LOG_KEY, body, content_type="application/x-gzip")
    put(store, DIGEST_KEY, b"digest", content_type="application/x-gzip",
        metadata={"signature": "ab12", "signature-algorithm": "SHA256withRSA"})
    bucket_dir = store.root / "buckets" / BUCKET
    assert store.bucket_path(BUCKET) == bucket_dir
    assert (bucket_dir / LOG_KEY).read_bytes() == body
    assert files_under(bucket_dir) == {LOG_KEY, DIGEST_KEY}  # no metadata or temp files here
    assert (store.root / "bucket-meta" / BUCKET / "bucket.json").is_file()


def test_get_and_head_return_bytes_etag_type_and_lowercased_metadata(
        store: LocalFolderStore) -> None:
    body = b'{"Records":[]}'
    before = datetime.now(timezone.utc).replace(microsecond=0)
    put(store, DIGEST_KEY, body, content_type="application/x-gzip",
        metadata={"Signature": "ab12", "signature-algorithm": "SHA256withRSA"})
    got = store.get_object(BUCKET, DIGEST_KEY)
    assert got.body == body and got.size == len(body) and got.key == DIGEST_KEY
    assert got.etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert got.content_type == "application/x-gzip"
    assert got.metadata == {"signature": "ab12", "signature-algorithm": "SHA256withRSA"}
    assert got.last_modified.tzinfo is not None and got.last_modified >= before
    head = store.head_object(BUCKET, DIGEST_KEY)
    assert head.body == b""
    assert (head.size, head.etag, head.content_type, head.metadata, head.last_modified) == (
        got.size, got.etag, got.content_type, got.metadata, got.last_modified)


def test_default_content_type_and_empty_object(store: LocalFolderStore) -> None:
    put(store, "empty", b"", content_type="")
    got = store.get_object(BUCKET, "empty")
    assert (got.body, got.size, got.content_type, got.metadata) == (
        b"", 0, "binary/octet-stream", {})
    assert got.etag == '"d41d8cd98f00b204e9800998ecf8427e"'


# --------------------------------------------------------------------------- atomic, durable


def test_replace_swaps_bytes_and_metadata_together(store: LocalFolderStore) -> None:
    put(store, LOG_KEY, b"one", metadata={"v": "1"}, content_type="text/plain")
    put(store, LOG_KEY, b"two!", metadata={"v": "2"}, content_type="application/json")
    got = store.get_object(BUCKET, LOG_KEY)
    assert (got.body, got.metadata, got.content_type) == (b"two!", {"v": "2"}, "application/json")
    listed = store.list_objects(BUCKET)[0]
    assert [(o.key, o.size, o.etag) for o in listed] == [(LOG_KEY, 4, got.etag)]
    meta_files = files_under(store.root / "bucket-meta" / BUCKET / "objects")
    assert len(meta_files) == 1  # the replaced version's metadata is gone


def test_retry_with_same_bytes_leaves_the_same_object(store: LocalFolderStore) -> None:
    put(store, LOG_KEY, b"same", metadata={"a": "1"})
    first = store.get_object(BUCKET, LOG_KEY)
    put(store, LOG_KEY, b"same", metadata={"a": "1"})
    second = store.get_object(BUCKET, LOG_KEY)
    assert (first.body, first.etag, first.metadata) == (second.body, second.etag, second.metadata)
    assert files_under(store.bucket_path(BUCKET)) == {LOG_KEY}


def test_crash_before_rename_keeps_old_object_with_its_own_metadata(
        store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch) -> None:
    put(store, DIGEST_KEY, b"old digest", metadata={"signature": "old"})
    target = os.fsencode(store.bucket_path(BUCKET) / DIGEST_KEY)
    real_replace = os.replace

    def crash(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fsencode(dst) == target:
            raise OSError(5, "simulated crash before rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(local.os, "replace", crash)
    with pytest.raises(ObjectStoreError):
        put(store, DIGEST_KEY, b"new digest", metadata={"signature": "new"})
    monkeypatch.setattr(local.os, "replace", real_replace)
    got = store.get_object(BUCKET, DIGEST_KEY)
    assert (got.body, got.metadata) == (b"old digest", {"signature": "old"})
    assert store.head_object(BUCKET, DIGEST_KEY).metadata == {"signature": "old"}
    assert files_under(store.bucket_path(BUCKET)) == {DIGEST_KEY}  # no temp file left
    put(store, DIGEST_KEY, b"new digest", metadata={"signature": "new"})
    assert store.get_object(BUCKET, DIGEST_KEY).metadata == {"signature": "new"}


def test_write_is_fsynced_then_renamed_then_directory_fsynced(
        store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_fsync_dir = os.fsync, os.replace, local.sync_directory

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:  # type: ignore[no-untyped-def]
        events.append(("replace", os.fsdecode(dst)))
        real_replace(src, dst)

    def fsync_dir(path: bytes) -> None:
        events.append(("fsync_dir", os.fsdecode(path)))
        real_fsync_dir(path)

    monkeypatch.setattr(local.os, "fsync", fsync)
    monkeypatch.setattr(local.os, "replace", replace)
    monkeypatch.setattr(local, "sync_directory", fsync_dir)
    put(store, LOG_KEY, b"durable")
    target = str(store.bucket_path(BUCKET) / LOG_KEY)
    at = events.index(("replace", target))
    assert any(kind == "fsync" and os.path.basename(name).startswith(local.TEMP_PREFIX)
               and os.path.dirname(name) == os.path.dirname(target)
               for kind, name in events[:at]), events
    assert ("fsync_dir", os.path.dirname(target)) in events[at + 1:]
    # new directories were fsynced into their parents
    assert ("fsync_dir", str(store.bucket_path(BUCKET))) in events[:at]


def test_metadata_survives_a_touched_mtime(store: LocalFolderStore) -> None:
    put(store, LOG_KEY, b"bytes", metadata={"k": "v"})
    os.utime(store.bucket_path(BUCKET) / LOG_KEY, (1_000_000_000, 1_000_000_000))
    head = store.head_object(BUCKET, LOG_KEY)
    assert head.metadata == {"k": "v"} and head.etag == f'"{hashlib.md5(b"bytes").hexdigest()}"'


def test_bytes_changed_behind_its_back_never_get_stale_metadata(store: LocalFolderStore) -> None:
    put(store, DIGEST_KEY, b"signed bytes", metadata={"signature": "ab"})
    (store.bucket_path(BUCKET) / DIGEST_KEY).write_bytes(b"tampered bytes!")
    got = store.get_object(BUCKET, DIGEST_KEY)
    assert got.body == b"tampered bytes!" and got.metadata == {}
    assert got.etag == f'"{hashlib.md5(b"tampered bytes!").hexdigest()}"'
    assert store.head_object(BUCKET, DIGEST_KEY).etag == got.etag
    assert store.list_objects(BUCKET)[0][0].etag == got.etag


def test_concurrent_writers_leave_one_consistent_version(store: LocalFolderStore) -> None:
    barrier = threading.Barrier(8, timeout=30)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for round_ in range(5):
                put(store, LOG_KEY, f"writer {n} round {round_}".encode(),
                    metadata={"writer": str(n), "round": str(round_)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    got = store.get_object(BUCKET, LOG_KEY)
    assert got.body == (f"writer {got.metadata['writer']} round "
                        f"{got.metadata['round']}").encode()
    assert files_under(store.bucket_path(BUCKET)) == {LOG_KEY}


# --------------------------------------------------------------------------- listing

TRICKY = ["a-c", "a/b", "a/c/d", "a/c/e", "ab", "b", "z", "~tilde", "é/x", "日本/語", "A", "0"]


def test_listing_is_in_utf8_byte_order_across_folders(store: LocalFolderStore) -> None:
    for key in TRICKY:
        put(store, key, key.encode())
    assert all_keys(store) == utf8_sorted(TRICKY)
    summaries, truncated = store.list_objects(BUCKET)
    assert not truncated
    assert [(o.size, o.etag) for o in summaries] == [
        (len(k.encode()), f'"{hashlib.md5(k.encode()).hexdigest()}"') for k in utf8_sorted(TRICKY)]


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 1000])
def test_paging_with_start_after_reassembles_the_listing(store: LocalFolderStore,
                                                         page_size: int) -> None:
    for key in TRICKY:
        put(store, key)
    assert all_keys(store, page_size=page_size) == utf8_sorted(TRICKY)


def test_prefix_and_start_after_select_exactly(store: LocalFolderStore) -> None:
    for key in TRICKY:
        put(store, key)
    assert all_keys(store, prefix="a") == ["a-c", "a/b", "a/c/d", "a/c/e", "ab"]
    assert all_keys(store, prefix="a/c/") == ["a/c/d", "a/c/e"]
    assert all_keys(store, prefix="a/c/d") == ["a/c/d"]
    assert all_keys(store, prefix="nothing") == []
    page, truncated = store.list_objects(BUCKET, start_after="a/c")
    assert [o.key for o in page] == utf8_sorted(k for k in TRICKY if k.encode() > b"a/c")
    page, _ = store.list_objects(BUCKET, prefix="a", start_after="a/b", max_keys=2)
    assert [o.key for o in page] == ["a/c/d", "a/c/e"]
    page, truncated = store.list_objects(BUCKET, start_after="\U0010ffff")
    assert (page, truncated) == ([], False)


def test_max_keys_and_truncation(store: LocalFolderStore) -> None:
    for key in ("k1", "k2", "k3"):
        put(store, key)
    assert [o.key for o in store.list_objects(BUCKET, max_keys=3)[0]] == ["k1", "k2", "k3"]
    assert store.list_objects(BUCKET, max_keys=3)[1] is False
    page, truncated = store.list_objects(BUCKET, max_keys=2)
    assert [o.key for o in page] == ["k1", "k2"] and truncated is True
    assert store.list_objects(BUCKET, max_keys=0) == ([], True)
    with pytest.raises(ObjectStoreError) as err:
        store.list_objects(BUCKET, max_keys=-1)
    assert err.value.code == "InvalidArgument"


def test_listing_skips_temp_files_symlinks_and_foreign_names(store: LocalFolderStore) -> None:
    put(store, "real")
    bucket_dir = store.bucket_path(BUCKET)
    (bucket_dir / (local.TEMP_PREFIX + "abc")).write_bytes(b"half written")
    os.symlink("/etc/hostname", bucket_dir / "link")
    os.close(os.open(os.path.join(os.fsencode(bucket_dir), b"bad\xff"), os.O_CREAT | os.O_WRONLY))
    assert all_keys(store) == ["real"]
    with pytest.raises(ObjectNotFound):
        store.get_object(BUCKET, "link")


def _folder_with_a_secret(tmp_path: Path) -> Path:
    """A folder outside every bucket, holding a file the server must never serve."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "credentials").write_bytes(b"secret")
    return outside


def test_a_folder_symlinked_into_a_bucket_is_not_followed(store: LocalFolderStore,
                                                            tmp_path) -> None:
    """O_NOFOLLOW guards only a path's last part: a folder symlink inside a bucket served
    any file the server could read (the credentials, the database)."""
    outside = _folder_with_a_secret(tmp_path)
    put(store, "AWSLogs/real")
    bucket_dir = store.bucket_path(BUCKET)
    os.symlink(outside, bucket_dir / "dir-link")
    os.symlink(outside, bucket_dir / "AWSLogs" / "nested-link")
    for key in ("dir-link/credentials", "AWSLogs/nested-link/credentials"):
        with pytest.raises(ObjectNotFound):
            store.get_object(BUCKET, key)
        with pytest.raises(ObjectNotFound):
            store.head_object(BUCKET, key)
    assert store.get_object(BUCKET, "AWSLogs/real").body == b"x"


def test_a_folder_swapped_for_a_symlink_while_listed_shows_nothing_outside(
        store: LocalFolderStore, tmp_path, monkeypatch) -> None:
    """The walk saw a folder, which then became a symlink to outside the bucket: the listing
    showed the names, sizes and MD5s of the files there."""
    put(store, "real")
    os.symlink(_folder_with_a_secret(tmp_path), store.bucket_path(BUCKET) / "swapped")
    listed_as_folder = LocalFolderStore._entries

    def entries_seen_before_the_swap(directory: bytes, key_prefix: bytes):  # type: ignore[no-untyped-def]
        found = listed_as_folder(directory, key_prefix)
        if key_prefix == b"":  # at the walk's check the link was still a real folder
            found = sorted([*found, (b"swapped/", os.path.join(directory, b"swapped"), True)])
        return found

    monkeypatch.setattr(LocalFolderStore, "_entries", staticmethod(entries_seen_before_the_swap))
    assert [summary.key for summary in store.list_objects(BUCKET)[0]] == ["real"]


_SEGMENT = st.text(alphabet="ab-_.~é/", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..") and "/" not in s)
_KEY = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)


@settings(max_examples=40, deadline=None)
@given(keys=st.sets(_KEY, min_size=1, max_size=12), page_size=st.integers(1, 5),
       prefix=st.sampled_from(["", "a", "a/", "b-", "é", "~"]))
def test_listing_matches_sorted_keys_for_any_key_set(keys: set[str], page_size: int,
                                                     prefix: str) -> None:
    # a key cannot also be the "folder" of another key in a local folder
    keys = {k for k in keys if not any(o.startswith(k + "/") for o in keys)}
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalFolderStore(Path(tmp))
        store.create_bucket(BUCKET, ACCOUNT)
        for key in keys:
            put(store, key)
        expected = utf8_sorted(k for k in keys if k.startswith(prefix))
        assert all_keys(store, prefix=prefix, page_size=page_size) == expected


# --------------------------------------------------------------------------- key rules


@pytest.mark.parametrize("key", [
    "", "/abs/path", "..", "a/../b", "../escape", "a/./b", ".", "a//b", "a/", "nul\x00byte",
    "new\nline", "\ud800", local.TEMP_PREFIX + "x", "a/" + local.TEMP_PREFIX + "y",
])
def test_invalid_keys_are_refused_everywhere(store: LocalFolderStore, key: str) -> None:
    for call in (lambda: put(store, key), lambda: store.get_object(BUCKET, key),
                 lambda: store.head_object(BUCKET, key),
                 lambda: store.delete_object(BUCKET, key)):
        with pytest.raises(ObjectStoreError) as err:
            call()
        assert err.value.code == "InvalidArgument", key
        assert err.value.message
    assert not (store.root / "escape").exists() and not (store.root / "buckets" / "escape").exists()


def test_key_length_limits(store: LocalFolderStore) -> None:
    longest = "/".join(["é" * 127] * 4) + "/" + "x" * 4  # exactly 1024 UTF-8 bytes
    assert len(longest.encode()) == 1024
    put(store, longest, b"ok")
    assert store.get_object(BUCKET, longest).body == b"ok"
    for key in (longest + "x", "x" * 256):
        with pytest.raises(ObjectStoreError) as err:
            put(store, key)
        assert err.value.code == "KeyTooLong"


def test_a_key_cannot_be_both_object_and_folder(store: LocalFolderStore) -> None:
    put(store, "a/b")
    with pytest.raises(ObjectStoreError) as err:
        put(store, "a")
    assert err.value.code == "InvalidArgument" and "both" in err.value.message
    put(store, "c")
    with pytest.raises(ObjectStoreError) as err:
        put(store, "c/d")
    assert err.value.code == "InvalidArgument"
    assert all_keys(store) == ["a/b", "c"]
    with pytest.raises(ObjectNotFound):
        store.head_object(BUCKET, "a")  # a folder is not an object


@pytest.mark.parametrize("metadata, code", [
    ({"bad name": "v"}, "InvalidArgument"),
    ({"ok": "line\nbreak"}, "InvalidArgument"),
    ({"": "v"}, "InvalidArgument"),
    ({"big": "x" * 2048}, "MetadataTooLarge"),
])
def test_metadata_rules(store: LocalFolderStore, metadata: dict, code: str) -> None:
    with pytest.raises(ObjectStoreError) as err:
        put(store, LOG_KEY, metadata=metadata)
    assert err.value.code == code
    assert files_under(store.bucket_path(BUCKET)) == set()


# --------------------------------------------------------------------------- missing things


def test_missing_key_and_bucket(store: LocalFolderStore) -> None:
    for call in (lambda: store.get_object(BUCKET, "nope"),
                 lambda: store.head_object(BUCKET, "nope/deeper")):
        with pytest.raises(ObjectNotFound) as err:
            call()
        assert err.value.code == "NoSuchKey"
    for call in (lambda: store.get_object("no-bucket", "k"), lambda: put_other(store),
                 lambda: store.list_objects("no-bucket"), lambda: store.bucket_region("no-bucket"),
                 lambda: store.delete_object("no-bucket", "k"),
                 lambda: store.get_object("../buckets", "k")):
        with pytest.raises(ObjectStoreError) as err:
            call()
        assert err.value.code == "NoSuchBucket"


def put_other(store: LocalFolderStore) -> None:
    store.put_object("no-bucket", "k", b"", content_type="text/plain")


def test_delete_removes_object_metadata_and_empty_folders(store: LocalFolderStore) -> None:
    put(store, LOG_KEY, metadata={"a": "b"})
    put(store, "AWSLogs/keep", b"k")
    store.delete_object(BUCKET, LOG_KEY)
    with pytest.raises(ObjectNotFound):
        store.get_object(BUCKET, LOG_KEY)
    assert all_keys(store) == ["AWSLogs/keep"]
    assert not (store.bucket_path(BUCKET) / f"AWSLogs/{ACCOUNT}").exists()
    assert files_under(store.root / "bucket-meta" / BUCKET / "objects") != set()
    store.delete_object(BUCKET, LOG_KEY)  # deleting a missing key is not an error (as S3)
    store.delete_object(BUCKET, "AWSLogs/keep")
    assert files_under(store.root / "bucket-meta" / BUCKET / "objects") == set()
    assert list(store.bucket_path(BUCKET).iterdir()) == []
    put(store, "AWSLogs", b"now a file")  # the pruned folder no longer blocks this key
    assert all_keys(store) == ["AWSLogs"]


# --------------------------------------------------------------------------- buckets


@pytest.mark.parametrize("name", [
    "ab", "a" * 64, "Upper", "under_score", "-start", "end-", ".dot", "a..b", "192.168.5.4",
    "xn--punycode", "sthree-x", "amzn-s3-demo-x", "name-s3alias", "name--ol-s3", "x.mrap",
    "name--x-s3", "name--table-s3", "spa ce", "slash/x", "",
])
def test_invalid_bucket_names(tmp_path: Path, name: str) -> None:
    store = LocalFolderStore(tmp_path)
    assert validate_bucket_name(name)
    with pytest.raises(ObjectStoreError) as err:
        store.create_bucket(name, ACCOUNT)
    assert err.value.code == "InvalidBucketName"
    assert repr(name) in err.value.message
    assert not store.bucket_exists(name)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.trail-logs.2026", "1-2", "a.b-c.d"])
def test_valid_bucket_names(tmp_path: Path, name: str) -> None:
    assert validate_bucket_name(name) is None
    info = LocalFolderStore(tmp_path).create_bucket(name, ACCOUNT)
    assert info.name == name and info.created.tzinfo is not None


def test_bucket_owner_region_and_duplicates(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    store.create_bucket("east-logs", ACCOUNT)
    store.create_bucket("west-logs", OTHER, "eu-west-1")
    assert store.bucket_owner("east-logs") == ACCOUNT and store.bucket_owner("west-logs") == OTHER
    assert store.bucket_owner("missing-one") is None and store.bucket_owner("..") is None
    assert store.bucket_region("east-logs") is None  # us-east-1, as GetBucketLocation says
    assert store.bucket_region("west-logs") == "eu-west-1"
    assert store.bucket_exists("east-logs") and not store.bucket_exists("missing-one")
    assert [(b.name, b.owner_account, b.region) for b in store.buckets()] == [
        ("east-logs", ACCOUNT, "us-east-1"), ("west-logs", OTHER, "eu-west-1")]
    for owner, code in ((ACCOUNT, "BucketAlreadyOwnedByYou"), (OTHER, "BucketAlreadyExists")):
        with pytest.raises(ObjectStoreError) as err:
            store.create_bucket("east-logs", owner)
        assert err.value.code == code
    assert store.create_bucket("east-logs", ACCOUNT, exist_ok=True).owner_account == ACCOUNT
    with pytest.raises(ObjectStoreError) as err:
        store.create_bucket("other-logs", "not-an-account")
    assert err.value.code == "InvalidArgument"
    with pytest.raises(ObjectStoreError) as err:
        store.create_bucket("other-logs", ACCOUNT, "Mars")
    assert err.value.code == "InvalidLocationConstraint"


def test_a_fresh_store_on_the_same_folder_sees_everything(store: LocalFolderStore) -> None:
    put(store, DIGEST_KEY, b"d", metadata={"signature": "s"})
    again = LocalFolderStore(store.root)
    assert again.bucket_owner(BUCKET) == ACCOUNT
    assert again.get_object(BUCKET, DIGEST_KEY).metadata == {"signature": "s"}



def test_bucket_settings_read_once_are_reread_when_another_process_changes_them(
        store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings are kept while their file is unchanged; a replace or removal by another
    process (another store on the same folder) is seen on the next call."""
    assert store.bucket_owner(BUCKET) == ACCOUNT
    opened: list[bytes] = []
    real_open = open

    def counting_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(os.fsencode(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    for _ in range(3):
        assert store.bucket(BUCKET).owner_account == ACCOUNT
    assert not [path for path in opened if path.endswith(b"bucket.json")]

    settings = store.root / local.META_DIR / BUCKET / local.BUCKET_FILE
    other = LocalFolderStore(store.root)
    replaced = settings.read_text().replace(ACCOUNT, OTHER).replace("us-east-1", "eu-west-1")
    local.replace_file(os.fsencode(settings.parent), settings.name.encode(), replaced.encode())
    assert (store.bucket_owner(BUCKET), store.bucket_region(BUCKET)) == (OTHER, "eu-west-1")
    assert other.bucket_owner(BUCKET) == OTHER
    settings.unlink()
    assert store.bucket(BUCKET) is None and not store.bucket_exists(BUCKET)
    with pytest.raises(ObjectStoreError) as err:
        store.get_object(BUCKET, LOG_KEY)
    assert err.value.code == "NoSuchBucket"

@pytest.mark.parametrize("errno_, code", [(errno.ENOSPC, "ServiceUnavailable"),
                                           (errno.EACCES, "AccessDenied"),
                                           (errno.EIO, "InternalError")])
def test_file_system_failures_are_object_store_errors(
        store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch, errno_: int, code: str) -> None:
    put(store, LOG_KEY, b"old", metadata={"v": "old"})

    def fail(fd: int, data: bytes) -> None:
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(durable, "write_all", fail)
    with pytest.raises(ObjectStoreError) as err:
        put(store, LOG_KEY, b"new", metadata={"v": "new"})
    assert err.value.code == code and BUCKET in err.value.message
    monkeypatch.undo()
    got = store.get_object(BUCKET, LOG_KEY)
    assert (got.body, got.metadata) == (b"old", {"v": "old"})
    assert files_under(store.bucket_path(BUCKET)) == {LOG_KEY}
