"""The validator's S3 reader: signatures as botocore's S3 signer makes them, S3Store's error
codes and attempts, credentials from the AWS chain, and the same validation results through
it as through the object store it reads (served here by a small S3 server of the test's own,
which checks every signature with the project's SigV4 verification)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, quote, quote_plus, unquote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from searchtrail.audit import validation
from searchtrail.audit.objectstore import ObjectNotFound, ObjectStoreError
from searchtrail.audit.stores.s3 import S3Store
from searchtrail.audit.stores import s3reader
from searchtrail.audit.stores.s3reader import S3Reader, open_s3_reader
from searchtrail.auth import sigv4
from tests.unit.test_validation import (
    BUCKET,
    DictStore,
    Trail,
    build_trail,
    regzip,
    validate,
)

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="
REGION = "us-east-1"
SIGNED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy")


# -- an S3 server over a DictStore ----------------------------------------------------------

class FakeS3:
    """GetObject and ListObjectsV2 over a DictStore, as S3 answers them; every request's
    signature is verified (``sigv4.verify_s3``) and logged."""

    def __init__(self, store: DictStore, *, token: str | None = None) -> None:
        self.store = store
        self.credential = sigv4.StaticCredential(KEY_ID, SECRET, token)
        self.requests: list[tuple[str, str]] = []  # (path, query)
        self.refuse_next = 0  # answer this many requests with 503 SlowDown
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeS3":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3
    fake: FakeS3

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        path, _, query = self.path.partition("?")
        with fake.lock:
            fake.requests.append((path, query))
            refuse, fake.refuse_next = fake.refuse_next > 0, max(0, fake.refuse_next - 1)
        if refuse:
            return self.error(503, "SlowDown", "Please reduce your request rate.")
        request = sigv4.HttpRequest("GET", path, query, list(self.headers.items()), b"")
        try:
            sigv4.verify_s3(request, lookup=lambda key: fake.credential
                            if key == KEY_ID else None, now=datetime.now(timezone.utc))
        except sigv4.SigV4Error as exc:
            return self.error(exc.status, exc.code, exc.message)
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        if bucket not in fake.store.buckets:
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist")
        if key:
            return self.get_object(bucket, key)
        return self.list_objects(bucket, dict(parse_qsl(query, keep_blank_values=True)))

    def get_object(self, bucket: str, key: str) -> None:
        try:
            stored = self.fake.store.get_object(bucket, key)
        except ObjectNotFound:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        headers = {"Content-Type": stored.content_type, "ETag": stored.etag,
                   "Last-Modified": formatdate(stored.last_modified.timestamp(), usegmt=True)}
        headers.update({f"x-amz-meta-{name}": value for name, value in stored.metadata.items()})
        self.answer(200, stored.body, headers)

    def list_objects(self, bucket: str, params: dict[str, str]) -> None:
        assert params["list-type"] == "2"
        page, truncated = self.fake.store.list_objects(
            bucket, prefix=params.get("prefix", ""), start_after=params.get("start-after", ""),
            max_keys=int(params.get("max-keys", "1000")))
        encoded = params.get("encoding-type") == "url"
        contents = "".join(
            f"<Contents><Key>{quote_plus(item.key, safe='/') if encoded else item.key}</Key>"
            f"<LastModified>{item.last_modified.strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
            f"</LastModified><ETag>{item.etag}</ETag><Size>{item.size}</Size></Contents>"
            for item in page)
        body = (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{NS}">'
                f"<Name>{bucket}</Name><KeyCount>{len(page)}</KeyCount>"
                + ("<EncodingType>url</EncodingType>" if encoded else "")
                + f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{contents}"
                "</ListBucketResult>")
        self.answer(200, body.encode(), {"Content-Type": "application/xml"})

    def error(self, status: int, code: str, message: str) -> None:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        self.answer(status, body, {"Content-Type": "application/xml"})

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """No AWS settings from the machine: empty shared files, no keys, no proxies."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setattr(s3reader.time, "sleep", lambda seconds: None)  # no backoff waits
    return monkeypatch


@pytest.fixture
def env_keys(aws_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return aws_env


@pytest.fixture
def served() -> Iterator[tuple[Trail, FakeS3]]:
    trail = build_trail()
    with FakeS3(trail.store) as fake:
        yield trail, fake


def reader_for(fake: FakeS3, token: str | None = None) -> S3Reader:
    return S3Reader(fake.endpoint, region=REGION, credentials=lambda: (KEY_ID, SECRET, token))


# -- signatures ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", [
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/x_CloudTrail_us-east-1_1.json.gz",
    "odd keys/a b+c=d~e&f%g/ü €.json.gz",
])
@pytest.mark.parametrize("token", [None, TOKEN])
def test_get_is_signed_as_botocore_signs_it(key: str, token: str | None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reader = S3Reader("http://127.0.0.1:9000/prefix/", region="eu-west-3",
                      credentials=lambda: (KEY_ID, SECRET, token))
    path = f"/prefix/{BUCKET}/{quote(key, safe='/~')}"
    query = "list-type=2&prefix=a%20b%2Bc&start-after=x%2Fy"
    monkeypatch.setattr(s3reader.time, "gmtime", lambda: SIGNED_AT.timetuple())
    for query_string in ("", query):
        ours = dict(reader._signed_headers(path, query_string))
        request = AWSRequest(method="GET", url=f"http://127.0.0.1:9000{path}"
                             + (f"?{query_string}" if query_string else ""))
        with mock.patch("botocore.auth.get_current_datetime",
                        return_value=SIGNED_AT.replace(tzinfo=None)):
            S3SigV4Auth(Credentials(KEY_ID, SECRET, token), "s3", "eu-west-3").add_auth(request)
        assert ours["authorization"] == request.headers["Authorization"]
        assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
        assert ours["host"] == "127.0.0.1:9000"
        assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


def test_default_ports_are_left_out_of_the_host_header() -> None:
    for endpoint, host in (("http://s3.example:80", "s3.example"),
                           ("https://s3.example", "s3.example"),
                           ("https://s3.example:8443", "s3.example:8443"),
                           ("http://[::1]:9000", "[::1]:9000")):
        reader = S3Reader(endpoint, region=REGION, credentials=lambda: (KEY_ID, SECRET, None))
        assert dict(reader._signed_headers("/b/k", ""))["host"] == host


# -- reads --------------------------------------------------------------------------------

def test_get_and_list_through_a_signature_checking_server(served: tuple[Trail, FakeS3]) -> None:
    trail, fake = served
    reader = reader_for(fake)
    digest = trail.digests[0]
    got = reader.get_object(BUCKET, digest.key)
    assert got.body == digest.body
    assert got.metadata == digest.metadata
    assert got.size == len(digest.body) and got.content_type == "application/json"
    # pages of 3 (the DictStore's), continued from the last key as the validator does
    keys, after = [], ""
    while True:
        page, truncated = reader.list_objects(BUCKET, prefix="AWSLogs/", start_after=after)
        keys.extend(item.key for item in page)
        if not truncated:
            break
        after = page[-1].key
    assert keys == sorted(k for b, k in trail.store.objects)
    assert all(query.count("list-type=2") == 1 for path, query in fake.requests if query)


def test_keys_that_xml_and_urls_mangle_round_trip(served: tuple[Trail, FakeS3]) -> None:
    trail, fake = served
    odd = "odd/a b+c=d~e&f%g<h>/ü \x01.json"
    trail.store.put_object(BUCKET, odd, b"x", content_type="text/plain")
    reader = reader_for(fake)
    page, _ = reader.list_objects(BUCKET, prefix="odd/")
    assert [item.key for item in page] == [odd]
    assert reader.get_object(BUCKET, odd).body == b"x"


def test_session_token_is_sent(served: tuple[Trail, FakeS3]) -> None:
    trail, fake = served
    fake.credential = sigv4.StaticCredential(KEY_ID, SECRET, TOKEN)
    assert reader_for(fake, TOKEN).get_object(BUCKET, trail.digests[0].key).body
    with pytest.raises(ObjectStoreError) as caught:
        reader_for(fake, None).get_object(BUCKET, trail.digests[0].key)
    assert caught.value.code == "InvalidToken"


# -- errors, as S3Store's -----------------------------------------------------------------

def test_missing_key_and_bucket(served: tuple[Trail, FakeS3]) -> None:
    _, fake = served
    reader = reader_for(fake)
    with pytest.raises(ObjectNotFound) as caught:
        reader.get_object(BUCKET, "nothing/here")
    assert caught.value.code == "NoSuchKey"
    with pytest.raises(ObjectStoreError) as caught:
        reader.get_object("other-bucket", "k")
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.message == "GetObject other-bucket/k: The specified bucket does not exist"
    with pytest.raises(ObjectStoreError) as caught:
        reader.list_objects("other-bucket", prefix="x")
    assert caught.value.code == "NoSuchBucket"


def test_wrong_secret_is_refused(served: tuple[Trail, FakeS3]) -> None:
    trail, fake = served
    reader = S3Reader(fake.endpoint, region=REGION, credentials=lambda: (KEY_ID, "wrong", None))
    with pytest.raises(ObjectStoreError) as caught:
        reader.get_object(BUCKET, trail.digests[0].key)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert len(fake.requests) == 1  # not worth another attempt


def test_throttling_is_retried_up_to_three_attempts(served: tuple[Trail, FakeS3],
                                                    aws_env: pytest.MonkeyPatch) -> None:
    trail, fake = served
    reader = reader_for(fake)
    fake.refuse_next = 2
    assert reader.get_object(BUCKET, trail.digests[0].key).body == trail.digests[0].body
    assert len(fake.requests) == 3
    fake.refuse_next = 3
    with pytest.raises(ObjectStoreError) as caught:
        reader.get_object(BUCKET, trail.digests[0].key)
    assert caught.value.code == "SlowDown"
    assert len(fake.requests) == 6


def test_unreachable_endpoint(aws_env: pytest.MonkeyPatch) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound then closed: nothing listens there
    reader = S3Reader(f"http://127.0.0.1:{port}", region=REGION,
                      credentials=lambda: (KEY_ID, SECRET, None))
    with pytest.raises(ObjectStoreError) as caught:
        reader.get_object(BUCKET, "k")
    assert caught.value.code == "ServiceUnavailable"
    assert f"could not be reached for GetObject {BUCKET}/k" in caught.value.message


@pytest.mark.parametrize("endpoint", ["ftp://host/", "not a url", "http://host:port/"])
def test_bad_endpoint_is_invalid_argument(endpoint: str) -> None:
    with pytest.raises(ObjectStoreError) as caught:
        S3Reader(endpoint, region=REGION, credentials=lambda: (KEY_ID, SECRET, None))
    assert caught.value.code == "InvalidArgument"


# -- credentials: the standard chain --------------------------------------------------------

def test_environment_keys_are_read_directly(served: tuple[Trail, FakeS3],
                                            env_keys: pytest.MonkeyPatch) -> None:
    trail, fake = served
    reader = open_s3_reader(fake.endpoint, region=REGION)
    assert isinstance(reader, S3Reader)
    with mock.patch("botocore.session.Session", side_effect=AssertionError("not needed")):
        assert reader.get_object(BUCKET, trail.digests[0].key).body == trail.digests[0].body


def test_environment_session_token(served: tuple[Trail, FakeS3],
                                   env_keys: pytest.MonkeyPatch) -> None:
    trail, fake = served
    fake.credential = sigv4.StaticCredential(KEY_ID, SECRET, TOKEN)
    env_keys.setenv("AWS_SESSION_TOKEN", TOKEN)
    assert open_s3_reader(fake.endpoint, region=REGION).get_object(BUCKET,
                                                                   trail.digests[0].key).body


def test_a_profile_from_the_shared_credentials_file(served: tuple[Trail, FakeS3],
                                                    aws_env: pytest.MonkeyPatch,
                                                    tmp_path: Any) -> None:
    trail, fake = served
    shared = tmp_path / "credentials"
    shared.write_text(f"[auditor]\naws_access_key_id = {KEY_ID}\n"
                      f"aws_secret_access_key = {SECRET}\n")
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    aws_env.setenv("AWS_PROFILE", "auditor")
    reader = open_s3_reader(fake.endpoint, region=REGION)
    assert reader.get_object(BUCKET, trail.digests[0].key).body == trail.digests[0].body


def test_no_credentials_is_access_denied(served: tuple[Trail, FakeS3],
                                         aws_env: pytest.MonkeyPatch) -> None:
    trail, fake = served
    aws_env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)  # half a key pair: botocore refuses it
    with pytest.raises(ObjectStoreError) as caught:
        open_s3_reader(fake.endpoint, region=REGION).get_object(BUCKET, trail.digests[0].key)
    assert caught.value.code == "AccessDenied"
    assert "No usable AWS credentials for GetObject" in caught.value.message
    assert fake.requests == []


def test_behind_a_proxy_s3store_reads(env_keys: pytest.MonkeyPatch) -> None:
    env_keys.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert isinstance(open_s3_reader("http://127.0.0.1:9", region=REGION), S3Store)


# -- the validator through the reader ----------------------------------------------------------

def _tamper(trail: Trail) -> None:
    logs = trail.logs[trail.digests[1].key]
    trail.store.set_body(logs[0], regzip(trail.store.body(logs[0]),
                                         lambda raw: raw.replace(b"Op2", b"Op9", 1)))
    trail.store.delete_object(BUCKET, logs[1])
    trail.store.delete_object(BUCKET, trail.digests[2].key)


@pytest.mark.timeout(60)  # a bound on a hang (a fetch thread waiting forever), not a speed target
@pytest.mark.parametrize("tampered", [False, True])
@pytest.mark.parametrize("pending", [validation.PENDING_LOG_CHECKS, 1])
def test_same_results_through_the_reader_as_from_the_store(
        tampered: bool, pending: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "PENDING_LOG_CHECKS", pending)
    trail = build_trail(periods=6)
    if tampered:
        _tamper(trail)
    direct = validate(trail, end=trail.digests[-1].end)
    with FakeS3(trail.store) as fake:
        over_http = Trail(**{**trail.__dict__, "store": reader_for(fake)})  # type: ignore[arg-type]
        report = validate(over_http, end=trail.digests[-1].end,
                          fetch_threads=validation.REMOTE_FETCH_THREADS)
    assert report.results == direct.results
    assert report.render_text(True) == direct.render_text(True)
    assert report.ok is not tampered


@pytest.mark.parametrize("pending", [validation.PENDING_LOG_CHECKS, 1])
def test_a_fatal_error_is_the_first_in_the_cli_order(pending: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The log files are read concurrently, yet the error reported is the one the CLI's
    one-at-a-time walk meets first (here: a log file of the newest digest), whether the walk
    runs far ahead of the checks or waits for them."""
    monkeypatch.setattr(validation, "PENDING_LOG_CHECKS", pending)
    trail = build_trail()
    newest_log = trail.logs[trail.digests[-1].key][0]
    later_log = trail.logs[trail.digests[0].key][1]

    later_failed = threading.Event()

    class Failing(DictStore):
        def get_object(self, bucket: str, key: str) -> Any:
            if key == later_log:
                later_failed.set()
                raise ObjectStoreError("AccessDenied", "the later one")
            if key == newest_log:
                # Fails after the later one when both are in flight; the bound is for the
                # walk that waits for this check before it fetches the later one.
                later_failed.wait(timeout=0.5)
                raise ObjectStoreError("AccessDenied", "the first one")
            return super().get_object(bucket, key)

    failing = Failing()
    failing.objects = trail.store.objects
    with pytest.raises(ObjectStoreError, match="the first one"):
        validate(Trail(**{**trail.__dict__, "store": failing}), fetch_threads=4)
