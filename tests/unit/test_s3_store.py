"""S3Store against moto's S3 server over a real loopback socket, error translation included."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from searchtrail.audit.objectstore import ObjectNotFound, ObjectStore, ObjectStoreError
from searchtrail.audit.stores.s3 import S3Store
from tests.functional.server import free_port
from tests.peers import MotoServer

FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
           "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE")


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory) -> Iterator[None]:
    empty = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED:
            patch.delenv(name, raising=False)
        for name, value in FAKE_ENV.items():
            patch.setenv(name, value)
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        yield


@pytest.fixture(scope="module")
def moto(aws_env, tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server.endpoint, server.process
    finally:
        server.stop()


@pytest.fixture
def store(moto) -> S3Store:
    return S3Store(moto[0])


@pytest.fixture
def bucket(store: S3Store) -> str:
    name = f"trail-{uuid.uuid4().hex[:12]}"
    store.create_bucket(name)
    return name


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ObjectStoreError) as err:
        call()
    assert err.value.message
    return err.value.code


# --------------------------------------------------------------------------- happy paths


def test_satisfies_the_object_store_protocol(store: S3Store) -> None:
    def takes(s: ObjectStore) -> ObjectStore:
        return s

    assert takes(store) is store


def test_client_is_path_style_with_short_timeouts_and_standard_retries(store: S3Store) -> None:
    config = store.client.meta.config
    assert config.s3["addressing_style"] == "path"
    assert (config.connect_timeout, config.read_timeout) == (5.0, 5.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.request_checksum_calculation == "when_required"


def test_put_get_head_round_trip_with_metadata(store: S3Store, bucket: str) -> None:
    key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/digest.json.gz"
    body = b"\x1f\x8b\x08 digest bytes"
    sent: list = []
    store.client.meta.events.register("before-send.s3.PutObject",
                                      lambda request, **_: sent.append(request))
    store.put_object(bucket, key, body, content_type="application/x-gzip",
                     metadata={"Signature": "ab12", "signature-algorithm": "SHA256withRSA"})
    assert sent and sent[0].url.startswith(f"{store.endpoint_url}/{bucket}/AWSLogs/")
    assert not any(name.lower().startswith("x-amz-checksum") for name in sent[0].headers)
    got = store.get_object(bucket, key)
    assert (got.key, got.body, got.size) == (key, body, len(body))
    assert got.etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert got.content_type == "application/x-gzip"
    assert got.metadata == {"signature": "ab12", "signature-algorithm": "SHA256withRSA"}
    assert got.last_modified.utcoffset().total_seconds() == 0
    head = store.head_object(bucket, key)
    assert head.body == b""
    assert (head.size, head.etag, head.metadata, head.content_type) == (
        got.size, got.etag, got.metadata, got.content_type)


def test_replace_and_delete(store: S3Store, bucket: str) -> None:
    store.put_object(bucket, "k", b"one", content_type="text/plain", metadata={"v": "1"})
    store.put_object(bucket, "k", b"two", content_type="text/plain", metadata={"v": "2"})
    got = store.get_object(bucket, "k")
    assert (got.body, got.metadata) == (b"two", {"v": "2"})
    store.delete_object(bucket, "k")
    with pytest.raises(ObjectNotFound):
        store.get_object(bucket, "k")
    store.delete_object(bucket, "k")  # deleting a missing key is not an error


def test_listing_order_prefix_and_paging(store: S3Store, bucket: str) -> None:
    keys = ["a-c", "a/b", "a/c/d", "b", "z", "é/x", "A"]
    for key in keys:
        store.put_object(bucket, key, key.encode(), content_type="text/plain")
    expected = sorted(keys, key=lambda k: k.encode())
    page, truncated = store.list_objects(bucket)
    assert [o.key for o in page] == expected and truncated is False
    assert [(o.size, o.etag) for o in page] == [
        (len(k.encode()), f'"{hashlib.md5(k.encode()).hexdigest()}"') for k in expected]
    collected, after = [], ""
    for _ in range(len(keys) + 1):  # bounded: one page per key at most
        page, truncated = store.list_objects(bucket, start_after=after, max_keys=2)
        collected += [o.key for o in page]
        if not truncated:
            break
        after = page[-1].key
    assert collected == expected
    assert [o.key for o in store.list_objects(bucket, prefix="a/")[0]] == ["a/b", "a/c/d"]
    assert [o.key for o in store.list_objects(bucket, prefix="a", start_after="a/b")[0]] == [
        "a/c/d"]


def test_bucket_exists_and_region(store: S3Store, bucket: str) -> None:
    assert store.bucket_exists(bucket) is True
    assert store.bucket_exists(f"missing-{uuid.uuid4().hex[:8]}") is False
    assert store.bucket_region(bucket) is None  # us-east-1
    west = f"west-{uuid.uuid4().hex[:12]}"
    store.create_bucket(west, "eu-west-1")
    assert store.bucket_region(west) == "eu-west-1"


# --------------------------------------------------------------------------- errors


def test_missing_bucket_is_no_such_bucket_everywhere(store: S3Store) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    for call in (lambda: store.get_object(missing, "k"),
                 lambda: store.head_object(missing, "k"),
                 lambda: store.put_object(missing, "k", b"x", content_type="text/plain"),
                 lambda: store.list_objects(missing),
                 lambda: store.bucket_region(missing)):
        assert code_of(call) == "NoSuchBucket"


def test_missing_key_is_no_such_key(store: S3Store, bucket: str) -> None:
    for call in (lambda: store.get_object(bucket, "nope"), lambda: store.head_object(bucket, "nope")):
        with pytest.raises(ObjectNotFound) as err:
            call()
        assert err.value.code == "NoSuchKey"


def test_nothing_listening_is_service_unavailable(aws_env) -> None:
    store = S3Store(f"http://127.0.0.1:{free_port()}", connect_timeout=1, read_timeout=1,
                    max_attempts=1)
    assert code_of(lambda: store.put_object("b-b-b", "k", b"x", content_type="text/plain")) == (
        "ServiceUnavailable")
    assert code_of(lambda: store.bucket_exists("b-b-b")) == "ServiceUnavailable"


def test_stopped_server_times_out_as_service_unavailable(moto, bucket: str) -> None:
    endpoint, process = moto
    store = S3Store(endpoint, connect_timeout=0.5, read_timeout=0.5, max_attempts=2)
    store.put_object(bucket, "k", b"before", content_type="text/plain")
    process.send_signal(signal.SIGSTOP)
    try:
        assert code_of(lambda: store.get_object(bucket, "k")) == "ServiceUnavailable"
        assert code_of(lambda: store.list_objects(bucket)) == "ServiceUnavailable"
    finally:
        process.send_signal(signal.SIGCONT)
    assert store.get_object(bucket, "k").body == b"before"  # and back once it answers


def test_no_credentials_in_the_chain_is_access_denied(moto, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Store(moto[0], max_attempts=1)
    with pytest.raises(ObjectStoreError) as err:
        store.list_objects("any-bucket")
    assert err.value.code == "AccessDenied" and "credentials" in err.value.message


def test_credentials_come_from_the_environment_chain(moto) -> None:
    credentials = S3Store(moto[0]).client._request_signer._credentials
    assert credentials.access_key == os.environ["AWS_ACCESS_KEY_ID"] == "testing"


def test_invalid_arguments_are_object_store_errors(store: S3Store) -> None:
    assert code_of(lambda: store.list_objects("b-b-b", max_keys=-1)) == "InvalidArgument"
    assert code_of(lambda: store.get_object("", "k")) == "InvalidArgument"
