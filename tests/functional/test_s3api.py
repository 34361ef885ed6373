"""The read-only S3 API (``/_s3``) over a real socket, driven by the AWS CLI v1 and boto3.

The server here is uvicorn in a thread with a small router: ``/_s3`` → the API, ``/_s3late``
→ the same API with a clock an hour ahead (skew), ``POST /`` → a stand-in CloudTrail
answering DescribeTrails and ListPublicKeys so that ``aws cloudtrail validate-logs`` runs end
to end against the S3 API. Every test runs twice: with searchtrail's HTTP protocol, which
serves GET and HEAD directly (as `searchtrail serve` does), and with uvicorn's own, where
every request takes the ASGI path. The last test checks the real server's mount.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchtrail.audit.stores.local import LocalFolderStore
from searchtrail.auth.credentials import CredentialResolver
from searchtrail.auth.identities import AccessKey, Identities
from searchtrail.gateway.httpserver import SearchtrailHttpProtocol
from searchtrail.auth.authorizer import Authorizer
from searchtrail.console.readers import ThreadConnections
from searchtrail.gateway.s3api import S3_NAMESPACE, PolicyPermits, ReadOnlyS3Api
from searchtrail.store.sqlite.connection import migrate, open_connection
from searchtrail.store.sqlite.resources import SqliteResources

from tests.clients import boto3_client

BUCKET = "trail-bucket"
WEST_BUCKET = "west-bucket"
OTHER_BUCKET = "other-bucket"
ROLLUP_BUCKET = "rollup-bucket"
TRAIL = "audit"
SPECIAL_KEY = "odd keys/sp ace+plus%pct&amp=eq~tilde é.txt"
CLI_TIMEOUT = 120
NS = "{" + S3_NAMESPACE + "}"
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Harness:
    port: int
    store: LocalFolderStore
    account: str
    other_account: str
    root_key: AccessKey
    user_key: AccessKey
    other_key: AccessKey
    tmp: Path
    log_keys: list[str]
    digest_keys: list[str]
    protocol: str = "direct"  # how GET and HEAD are served: "direct" or "asgi"
    asgi_s3_requests: list[str] = field(default_factory=list)  # those the ASGI app saw
    narrow_key: AccessKey | None = None  # may read AWSLogs/ only
    denied_key: AccessKey | None = None  # allowed everything, then denied s3:*
    users: dict[str, AccessKey] = field(default_factory=dict)  # more users, by name

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/_s3"

    def client(self, key: AccessKey | None = None, *, secret: str | None = None,
               endpoint: str | None = None, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
        key = key or self.root_key
        return boto3_client(
            "s3", region_name=region, endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=secret or key.secret_access_key,
            config=Config(retries={"total_max_attempts": 1}))

    def cli(self, *args: str, key: AccessKey | None = None) -> subprocess.CompletedProcess:
        key = key or self.root_key
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": key.access_key_id,
            "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": f"http://127.0.0.1:{self.port}",
            "AWS_CONFIG_FILE": str(self.tmp / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.tmp / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        return subprocess.run([sys.executable, "-m", "awscli", *args], env=env,
                              capture_output=True, timeout=CLI_TIMEOUT)


# --------------------------------------------------------------------------- fixtures


def _user(identities: Identities, account: str, name: str, now: datetime,
          *statements: dict) -> AccessKey:
    """An IAM user with one inline policy of ``statements``, and its access key."""
    user = identities.create_user(account, name, now)
    user["InlinePolicies"] = {"s3": json.dumps({"Version": "2012-10-17",
                                               "Statement": list(statements)})}
    identities.put_user(account, user)
    return identities.create_access_key(account, name, now)


def _identities(db: Path) -> tuple[str, str, AccessKey, AccessKey, AccessKey, AccessKey,
                                   AccessKey, dict[str, AccessKey]]:
    conn = open_connection(db)
    migrate(conn)
    conn.execute("BEGIN IMMEDIATE")
    identities = Identities(SqliteResources(conn, "", ""))
    now = datetime.now(timezone.utc)
    account = identities.create_account(now, make_default=True)
    root_key = identities.create_access_key(account, None, now)
    user_key = _user(identities, account, "reader", now, {
        "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"})
    narrow_key = _user(identities, account, "narrow", now, {
        "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/*"}, {
        "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}",
        "Condition": {"StringLike": {"s3:prefix": "AWSLogs/*"}}})
    denied_key = _user(identities, account, "denied", now,
                       {"Effect": "Allow", "Action": "*", "Resource": "*"},
                       {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    allow_all = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    users = {
        "loopback-denied": _user(identities, account, "loopback-denied", now, allow_all, {
            "Effect": "Deny", "Action": "s3:*", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}),
        "no-eu": _user(identities, account, "no-eu", now, allow_all, {
            "Effect": "Deny", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}),
        "lister": _user(identities, account, "lister", now, {
            "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}),
        "no-listing": _user(identities, account, "no-listing", now, allow_all, {
            "Effect": "Deny", "Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}),
    }
    other = identities.create_account(now)
    other_key = identities.create_access_key(other, None, now)
    conn.execute("COMMIT")
    conn.close()
    return account, other, root_key, user_key, other_key, narrow_key, denied_key, users


class FakeCloudTrail:
    """DescribeTrails and ListPublicKeys, all validate-logs asks of CloudTrail."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        self.fingerprint = hashlib.md5(self.der).hexdigest()
        self.trails: list[dict] = []

    def sign(self, text: str) -> str:
        return self.private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()

    async def __call__(self, scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        while (await receive()).get("more_body"):
            pass
        target = dict(scope["headers"]).get(b"x-amz-target", b"").decode()
        if target.endswith(".DescribeTrails"):
            answer = {"trailList": self.trails}
        elif target.endswith(".ListPublicKeys"):
            answer = {"PublicKeyList": [{
                "Value": base64.b64encode(self.der).decode(), "Fingerprint": self.fingerprint,
                "ValidityStartTime": 1_700_000_000, "ValidityEndTime": 1_900_000_000}]}
        else:
            answer = {"__type": "UnknownOperationException"}
        body = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": 200 if "__type" not in answer else 400,
                    "headers": [(b"content-type", b"application/x-amz-json-1.1"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _write_trail_files(store: LocalFolderStore, account: str,
                       cloudtrail: FakeCloudTrail) -> tuple[list[str], list[str]]:
    """One log file and two chained, signed digests, as CloudTrail lays them out."""
    log_key = (f"AWSLogs/{account}/CloudTrail/us-east-1/2026/01/02/"
               f"{account}_CloudTrail_us-east-1_20260102T0310Z_Mu0KsOhtH1ar15ZZ.json.gz")
    log_json = json.dumps({"Records": [{"eventVersion": "1.08", "eventTime": "2026-01-02T03:05:00Z",
                                        "eventSource": "aoss.amazonaws.com",
                                        "eventName": "ListCollections"}]}).encode()
    store.put_object(BUCKET, log_key, gzip.compress(log_json), content_type="application/x-gzip")
    digest_keys, previous = [], None
    for start, end, files in (("2026-01-02T03:00:00Z", "2026-01-02T04:00:00Z", [log_key]),
                              ("2026-01-02T04:00:00Z", "2026-01-02T05:00:00Z", [])):
        stamp = end.replace("-", "").replace(":", "")
        key = (f"AWSLogs/{account}/CloudTrail-Digest/us-east-1/2026/01/02/"
               f"{account}_CloudTrail-Digest_us-east-1_{TRAIL}_us-east-1_{stamp}.json.gz")
        digest = {
            "awsAccountId": account, "digestStartTime": start, "digestEndTime": end,
            "digestS3Bucket": BUCKET, "digestS3Object": key,
            "digestPublicKeyFingerprint": cloudtrail.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": "2026-01-02T03:05:00Z" if files else None,
            "oldestEventTime": "2026-01-02T03:05:00Z" if files else None,
            "previousDigestS3Bucket": previous and BUCKET,
            "previousDigestS3Object": previous and previous[0],
            "previousDigestHashValue": previous and previous[1],
            "previousDigestHashAlgorithm": previous and "SHA-256",
            "previousDigestSignature": previous and previous[2],
            "logFiles": [{"s3Bucket": BUCKET, "s3Object": name,
                          "hashValue": hashlib.sha256(log_json).hexdigest(),
                          "hashAlgorithm": "SHA-256", "newestEventTime": "2026-01-02T03:05:00Z",
                          "oldestEventTime": "2026-01-02T03:05:00Z"} for name in files],
        }
        raw = json.dumps(digest).encode()
        signature = cloudtrail.sign(f"{end}\n{BUCKET}/{key}\n{hashlib.sha256(raw).hexdigest()}\n"
                                    f"{previous[2] if previous else 'null'}")
        store.put_object(BUCKET, key, gzip.compress(raw), content_type="application/x-gzip",
                         metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"})
        digest_keys.append(key)
        previous = (key, hashlib.sha256(raw).hexdigest(), signature)
    return [log_key], digest_keys


@pytest.fixture(scope="module", params=["direct", "asgi"])
def harness(tmp_path_factory, request) -> Harness:
    tmp = tmp_path_factory.mktemp("s3api")
    db = tmp / "searchtrail.sqlite3"
    account, other, root_key, user_key, other_key, narrow_key, denied_key, users = _identities(db)
    store = LocalFolderStore(tmp / "store")
    store.create_bucket(BUCKET, account)
    store.create_bucket(WEST_BUCKET, account, "eu-west-1")
    store.create_bucket(OTHER_BUCKET, other)
    store.create_bucket(ROLLUP_BUCKET, other)
    for key in ("a/1", "a/2", "a/3", "b/1", "c", "d/x/y", "e"):
        store.put_object(ROLLUP_BUCKET, key, b".", content_type="text/plain")
    cloudtrail = FakeCloudTrail()
    log_keys, digest_keys = _write_trail_files(store, account, cloudtrail)
    cloudtrail.trails = [{"Name": TRAIL, "S3BucketName": BUCKET, "HomeRegion": "us-east-1",
                          "TrailARN": f"arn:aws:cloudtrail:us-east-1:{account}:trail/{TRAIL}",
                          "IsOrganizationTrail": False, "LogFileValidationEnabled": True}]
    store.put_object(BUCKET, SPECIAL_KEY, b"special", content_type="text/plain; charset=utf-8")
    store.put_object(OTHER_BUCKET, "secret", b"not yours", content_type="text/plain")
    credentials = CredentialResolver(lambda: open_connection(db, read_only=True))

    def now() -> datetime:
        return datetime.now(timezone.utc)

    reads = ThreadConnections(lambda: open_connection(db, read_only=True))
    permits = PolicyPermits(Authorizer(), reads.get, now)
    api = ReadOnlyS3Api(store, credentials, now, timedelta(minutes=5), permits=permits)
    late = ReadOnlyS3Api(store, credentials, lambda: now() + timedelta(hours=1),
                         timedelta(minutes=5), permits=permits, prefix="/_s3late")

    asgi_s3_requests: list[str] = []

    async def router(scope, receive, send):  # type: ignore[no-untyped-def]
        path = scope.get("path", "")
        if scope["type"] != "http":
            return
        if path.startswith("/_s3"):
            asgi_s3_requests.append(scope["method"])
        if path == "/_s3" or path.startswith("/_s3/"):
            await api(scope, receive, send)
        elif path == "/_s3late" or path.startswith("/_s3late/"):
            await late(scope, receive, send)
        elif path == "/" and scope["method"] == "POST":
            await cloudtrail(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # listening before the thread starts: clients queue, no wait needed
    protocol = (SearchtrailHttpProtocol.configured(s3_apis=(api, late))
                if request.param == "direct" else "httptools")
    server = uvicorn.Server(uvicorn.Config(router, lifespan="off", log_level="warning",
                                           http=protocol))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Harness(sock.getsockname()[1], store, account, other, root_key, user_key,
                      other_key, tmp, log_keys, digest_keys, request.param, asgi_s3_requests,
                      narrow_key, denied_key, users)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def error_code(call) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as err:
        call()
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def signed_raw(harness: Harness, method: str, target: str, *, key: AccessKey | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Sign ``target`` (path and query exactly as given) as botocore does, send it as is."""
    key = key or harness.root_key
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{harness.port}{target}",
                         headers=headers or {})
    S3SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "s3",
                "us-east-1").add_auth(request)
    return raw(harness, method, target, dict(request.headers.items()))


def raw(harness: Harness, method: str, target: str,
        headers: dict[str, str] | None = None, body: bytes | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", harness.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def xml_error(body: bytes) -> tuple[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    request_id = root.findtext("RequestId")
    assert request_id and root.findtext("Message")
    return root.findtext("Code"), request_id


# --------------------------------------------------------------------------- the AWS CLI


def test_cli_s3_ls_recursive_lists_every_key(harness: Harness) -> None:
    done = harness.cli("s3", "ls", f"s3://{BUCKET}/", "--recursive")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    listed = [line.split(None, 3)[3] for line in lines]
    assert listed == sorted(harness.log_keys + harness.digest_keys + [SPECIAL_KEY],
                            key=lambda k: k.encode())
    sizes = {line.split(None, 3)[3]: int(line.split()[2]) for line in lines}
    assert sizes[SPECIAL_KEY] == len(b"special")


def test_cli_s3_ls_folder_view_and_bucket_list(harness: Harness) -> None:
    done = harness.cli("s3", "ls", f"s3://{BUCKET}/")
    assert done.returncode == 0, done.stderr.decode()
    assert [line.split() for line in done.stdout.decode().splitlines()] == [
        ["PRE", "AWSLogs/"], ["PRE", "odd", "keys/"]]
    done = harness.cli("s3", "ls")
    assert done.returncode == 0, done.stderr.decode()
    names = [line.split()[-1] for line in done.stdout.decode().splitlines()]
    assert names == [BUCKET, WEST_BUCKET]  # not the other account's bucket


def test_cli_s3_cp_to_stdout_gives_the_exact_bytes(harness: Harness) -> None:
    key = harness.log_keys[0]
    done = harness.cli("s3", "cp", f"s3://{BUCKET}/{key}", "-")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == harness.store.get_object(BUCKET, key).body
    done = harness.cli("s3", "cp", f"s3://{BUCKET}/{SPECIAL_KEY}", "-")
    assert (done.returncode, done.stdout) == (0, b"special"), done.stderr.decode()


def test_cli_s3api_list_objects_location_and_head_object(harness: Harness) -> None:
    done = harness.cli("s3api", "list-objects", "--bucket", BUCKET, "--prefix", "AWSLogs/",
                       "--page-size", "1")
    assert done.returncode == 0, done.stderr.decode()
    keys = [item["Key"] for item in json.loads(done.stdout)["Contents"]]
    assert keys == sorted(harness.log_keys + harness.digest_keys)
    done = harness.cli("s3api", "get-bucket-location", "--bucket", BUCKET)
    assert json.loads(done.stdout) == {"LocationConstraint": None}, done.stderr.decode()
    done = harness.cli("s3api", "get-bucket-location", "--bucket", WEST_BUCKET)
    assert json.loads(done.stdout) == {"LocationConstraint": "eu-west-1"}
    done = harness.cli("s3api", "head-object", "--bucket", BUCKET, "--key",
                       harness.digest_keys[0])
    assert done.returncode == 0, done.stderr.decode()
    head = json.loads(done.stdout)
    assert head["Metadata"]["signature-algorithm"] == "SHA256withRSA"
    assert re.fullmatch(r"[0-9a-f]{512}", head["Metadata"]["signature"])
    assert head["ContentType"] == "application/x-gzip"


def test_cli_errors_for_missing_key_and_other_account(harness: Harness) -> None:
    done = harness.cli("s3api", "head-object", "--bucket", BUCKET, "--key", "nope")
    assert done.returncode != 0 and b"404" in done.stderr
    done = harness.cli("s3", "ls", f"s3://{OTHER_BUCKET}/")
    assert done.returncode != 0 and b"AccessDenied" in done.stderr


def test_cli_validate_logs_accepts_the_chain_and_catches_tampering(harness: Harness) -> None:
    arn = f"arn:aws:cloudtrail:us-east-1:{harness.account}:trail/{TRAIL}"
    args = ("cloudtrail", "validate-logs", "--trail-arn", arn, "--start-time",
            "2026-01-02T02:00:00Z", "--end-time", "2026-01-02T06:00:00Z", "--verbose")
    done = harness.cli(*args)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "2/2 digest files valid" in out and "1/1 log files valid" in out
    for key in harness.digest_keys + harness.log_keys:
        assert f"s3://{BUCKET}/{key}\tvalid" in out
    log_key = harness.log_keys[0]
    original = harness.store.get_object(BUCKET, log_key)
    tampered = json.loads(gzip.decompress(original.body))
    tampered["Records"][0]["eventName"] = "DeleteCollection"
    harness.store.put_object(BUCKET, log_key, gzip.compress(json.dumps(tampered).encode()),
                             content_type=original.content_type)
    try:
        done = harness.cli(*args)
        assert done.returncode == 1
        assert f"s3://{BUCKET}/{log_key}\tINVALID: hash value doesn't match" in done.stderr.decode()
        assert "0/1 log files valid" in done.stdout.decode()
    finally:
        harness.store.put_object(BUCKET, log_key, original.body,
                                 content_type=original.content_type)


# --------------------------------------------------------------------------- boto3


def test_list_objects_v1_paging_with_marker(harness: Harness) -> None:
    s3 = harness.client()
    every = sorted(harness.log_keys + harness.digest_keys + [SPECIAL_KEY], key=str.encode)
    first = s3.list_objects(Bucket=BUCKET, MaxKeys=2)
    assert [c["Key"] for c in first["Contents"]] == every[:2]
    assert first["IsTruncated"] is True and first["NextMarker"] == every[1]
    assert first["MaxKeys"] == 2
    assert first["Contents"][0]["Owner"]["ID"] == harness.account
    rest = s3.list_objects(Bucket=BUCKET, Marker=every[1])
    assert [c["Key"] for c in rest["Contents"]] == every[2:] and rest["IsTruncated"] is False
    pages = list(s3.get_paginator("list_objects").paginate(
        Bucket=BUCKET, PaginationConfig={"PageSize": 1}))
    assert len(pages) == len(every)
    assert [c["Key"] for p in pages for c in p["Contents"]] == every
    digests = s3.list_objects(Bucket=BUCKET, Prefix=f"AWSLogs/{harness.account}/CloudTrail-Digest/us-east-1",
                              Marker=harness.digest_keys[0])
    assert [c["Key"] for c in digests["Contents"]] == harness.digest_keys[1:]


def test_list_objects_v2_paging_delimiter_and_start_after(harness: Harness) -> None:
    s3 = harness.client()
    every = sorted(harness.log_keys + harness.digest_keys + [SPECIAL_KEY], key=str.encode)
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, PaginationConfig={"PageSize": 2}))
    assert [c["Key"] for p in pages for c in p.get("Contents", [])] == every
    assert [p["KeyCount"] for p in pages] == [2, 2]
    assert "NextContinuationToken" in pages[0] and "NextContinuationToken" not in pages[-1]
    assert "Owner" not in pages[0]["Contents"][0]
    top = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["AWSLogs/", "odd keys/"]
    assert "Contents" not in top and top["KeyCount"] == 2
    deeper = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/",
                                Prefix=f"AWSLogs/{harness.account}/")
    assert [p["Prefix"] for p in deeper["CommonPrefixes"]] == [
        f"AWSLogs/{harness.account}/CloudTrail-Digest/", f"AWSLogs/{harness.account}/CloudTrail/"]
    after = s3.list_objects_v2(Bucket=BUCKET, StartAfter=every[-2], FetchOwner=True)
    assert [c["Key"] for c in after["Contents"]] == [every[-1]]
    assert after["StartAfter"] == every[-2] and after["Contents"][0]["Owner"]["ID"]
    assert error_code(lambda: s3.list_objects_v2(Bucket=BUCKET, ContinuationToken="bogus!")) == (
        "InvalidArgument", 400)


def test_delimiter_rollup_counts_prefixes_once_and_pages_past_them(harness: Harness) -> None:
    s3 = harness.client(harness.other_key)
    seen, marker = [], ""
    for _ in range(10):  # bounded
        page = s3.list_objects(Bucket=ROLLUP_BUCKET, Delimiter="/", MaxKeys=2, Marker=marker)
        entries = ([p["Prefix"] for p in page.get("CommonPrefixes", [])]
                   + [c["Key"] for c in page.get("Contents", [])])
        seen.append(sorted(entries))
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]
    assert seen == [["a/", "b/"], ["c", "d/"], ["e"]]
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=ROLLUP_BUCKET, Delimiter="/", PaginationConfig={"PageSize": 1}))
    assert [p.get("CommonPrefixes", [{}])[0].get("Prefix") or p["Contents"][0]["Key"]
            for p in pages] == ["a/", "b/", "c", "d/", "e"]


def test_get_object_body_headers_metadata_and_ranges(harness: Harness) -> None:
    s3 = harness.client()
    key = harness.digest_keys[0]
    stored = harness.store.get_object(BUCKET, key)
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == stored.body
    assert got["ETag"] == stored.etag and got["ContentLength"] == stored.size
    assert got["ContentType"] == "application/x-gzip"
    assert got["Metadata"] == stored.metadata
    assert got["LastModified"] == stored.last_modified.replace(microsecond=0)
    part = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=2-5")
    assert part["Body"].read() == stored.body[2:6]
    assert part["ContentRange"] == f"bytes 2-5/{stored.size}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=-3")["Body"].read() == stored.body[-3:]
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key=key,
                                            Range=f"bytes={stored.size}-")) == ("InvalidRange", 416)
    special = s3.get_object(Bucket=BUCKET, Key=SPECIAL_KEY)
    assert special["Body"].read() == b"special"
    assert special["ContentType"] == "text/plain; charset=utf-8"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert (head["ContentLength"], head["ETag"], head["Metadata"]) == (
        stored.size, stored.etag, stored.metadata)
    assert s3.head_bucket(Bucket=WEST_BUCKET)["BucketRegion"] == "eu-west-1"


def test_presigned_url_downloads(harness: Harness) -> None:
    s3 = boto3_client(
        "s3", region_name="us-east-1", endpoint_url=harness.endpoint,
        aws_access_key_id=harness.root_key.access_key_id,
        aws_secret_access_key=harness.root_key.secret_access_key,
        config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": SPECIAL_KEY},
                                    ExpiresIn=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.read() == b"special"


def test_signature_version_2_is_refused_with_a_pointer_to_sigv4(harness: Harness) -> None:
    url = harness.client().generate_presigned_url(  # boto3's default for presigning S3: SigV2
        "get_object", Params={"Bucket": BUCKET, "Key": SPECIAL_KEY}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in url
    status, _, body = raw(harness, "GET", url.split(str(harness.port), 1)[1])
    assert (status, xml_error(body)[0]) == (400, "InvalidRequest")
    assert b"AWS4-HMAC-SHA256" in body


def test_iam_user_of_the_owner_account_may_read(harness: Harness) -> None:
    s3 = harness.client(harness.user_key)
    assert s3.get_object(Bucket=BUCKET, Key=SPECIAL_KEY)["Body"].read() == b"special"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET, WEST_BUCKET]


def test_an_iam_users_policies_decide_what_it_may_read(harness: Harness) -> None:
    """Every request asks the caller's IAM policies (s3:ListAllMyBuckets, s3:ListBucket with
    s3:prefix, s3:GetBucketLocation, s3:GetObject); it used to be enough to belong to the
    bucket's account, so a user denied everything still read every log."""
    narrow = harness.client(harness.narrow_key)
    log_key = harness.log_keys[0]
    assert narrow.get_object(Bucket=BUCKET, Key=log_key)["Body"].read()[:2] == b"\x1f\x8b"
    listed = narrow.list_objects_v2(Bucket=BUCKET, Prefix="AWSLogs/")["Contents"]
    assert log_key in [entry["Key"] for entry in listed]
    assert error_code(lambda: narrow.get_object(Bucket=BUCKET, Key=SPECIAL_KEY)) == (
        "AccessDenied", 403)
    assert error_code(lambda: narrow.list_objects_v2(Bucket=BUCKET)) == ("AccessDenied", 403)
    assert error_code(lambda: narrow.list_buckets()) == ("AccessDenied", 403)
    assert error_code(lambda: narrow.get_bucket_location(Bucket=BUCKET)) == ("AccessDenied", 403)
    denied = harness.client(harness.denied_key)
    for call in (denied.list_buckets, lambda: denied.head_bucket(Bucket=BUCKET),
                 lambda: denied.list_objects(Bucket=BUCKET),
                 lambda: denied.get_object(Bucket=BUCKET, Key=log_key),
                 lambda: denied.head_object(Bucket=BUCKET, Key=log_key)):
        assert error_code(call)[1] == 403
    status, _, body = signed_raw(harness, "GET", f"/_s3/{BUCKET}/{quote(log_key)}",
                                 key=harness.denied_key)
    assert (status, xml_error(body)[0]) == (403, "AccessDenied")
    assert b"s3:GetObject" in body and b"explicit deny" in body


def test_conditions_see_the_callers_address_and_the_buckets_region(harness: Harness) -> None:
    """aws:SourceIp was missing on the ASGI path (a GET with Expect: 100-continue), so a Deny on
    it did not apply; aws:RequestedRegion was the signing Region, so signing for us-east-1 read
    an eu-west-1 bucket past a Deny on that Region."""
    key = harness.users["loopback-denied"]
    target = f"/_s3/{BUCKET}/{quote(harness.log_keys[0])}"
    for headers in ({}, {"Expect": "100-continue"}):
        status, _, body = signed_raw(harness, "GET", target, key=key, headers=headers)
        assert (status, xml_error(body)[0]) == (403, "AccessDenied"), headers
    no_eu = harness.client(harness.users["no-eu"])  # signs for us-east-1
    assert no_eu.list_objects_v2(Bucket=BUCKET)["KeyCount"] > 0
    assert error_code(lambda: no_eu.list_objects_v2(Bucket=WEST_BUCKET)) == ("AccessDenied", 403)
    # ListBuckets has no resource type: arn:aws:s3:::* grants and denies it, as AWS's examples
    assert [b["Name"] for b in harness.client(harness.users["lister"]).list_buckets()[
        "Buckets"]] == [BUCKET, WEST_BUCKET]
    assert error_code(harness.client(harness.users["no-listing"]).list_buckets) == (
        "AccessDenied", 403)


def test_no_answer_can_run_script_on_the_consoles_origin(harness: Harness) -> None:
    """A log file holds what callers sent (a User-Agent of <script>...); served as text/html
    through a response-content-type override on the console's origin, it ran there."""
    target = (f"/_s3/{BUCKET}/{quote(harness.log_keys[0])}"
              "?response-content-type=text%2Fhtml&response-content-encoding=gzip")
    for path in (target, f"/_s3/{BUCKET}", "/_s3/no-such-bucket/x"):
        status, headers, _ = signed_raw(harness, "GET", path)
        assert headers["content-security-policy"] == "sandbox; default-src 'none'", path
        assert headers["x-content-type-options"] == "nosniff", path
    assert signed_raw(harness, "GET", target)[1]["content-type"] == "text/html"


def test_list_buckets_pages(harness: Harness) -> None:
    s3 = harness.client(harness.other_key)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [OTHER_BUCKET, ROLLUP_BUCKET]
    first = harness.client().list_buckets(MaxBuckets=1)
    assert [b["Name"] for b in first["Buckets"]] == [BUCKET]
    second = harness.client().list_buckets(MaxBuckets=1, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == [WEST_BUCKET]
    assert "ContinuationToken" not in second


# --------------------------------------------------------------------------- refusals


def test_wrong_secret_is_signature_does_not_match(harness: Harness) -> None:
    s3 = harness.client(secret="x" * 40)
    assert error_code(lambda: s3.list_objects(Bucket=BUCKET)) == ("SignatureDoesNotMatch", 403)
    assert error_code(s3.list_buckets) == ("SignatureDoesNotMatch", 403)


def test_unknown_access_key_is_invalid_access_key_id(harness: Harness) -> None:
    s3 = harness.client(AccessKey("AKIAUNKNOWNUNKNOWN00", "x" * 40, "", None))
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key=SPECIAL_KEY)) == (
        "InvalidAccessKeyId", 403)


def test_skewed_clock_is_request_time_too_skewed(harness: Harness) -> None:
    s3 = harness.client(endpoint=f"http://127.0.0.1:{harness.port}/_s3late")
    assert error_code(lambda: s3.list_objects(Bucket=BUCKET)) == ("RequestTimeTooSkewed", 403)


def test_other_account_is_access_denied(harness: Harness) -> None:
    s3 = harness.client(harness.other_key)
    for call in (lambda: s3.list_objects(Bucket=BUCKET), lambda: s3.list_objects_v2(Bucket=BUCKET),
                 lambda: s3.get_object(Bucket=BUCKET, Key=SPECIAL_KEY),
                 lambda: s3.get_bucket_location(Bucket=BUCKET)):
        assert error_code(call) == ("AccessDenied", 403)
    assert error_code(lambda: harness.client().get_object(Bucket=OTHER_BUCKET, Key="secret")) == (
        "AccessDenied", 403)


def test_missing_bucket_and_key(harness: Harness) -> None:
    s3 = harness.client()
    assert error_code(lambda: s3.list_objects(Bucket="no-such-bucket")) == ("NoSuchBucket", 404)
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key="nope")) == ("NoSuchKey", 404)
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key="a/../b")) == ("NoSuchKey", 404)
    assert error_code(lambda: s3.head_object(Bucket=BUCKET, Key="nope")) == ("404", 404)


def test_writes_are_method_not_allowed_and_the_connection_stays_usable(harness: Harness) -> None:
    s3 = harness.client()
    for call in (lambda: s3.put_object(Bucket=BUCKET, Key="new", Body=b"x" * 2_000_000),
                 lambda: s3.delete_object(Bucket=BUCKET, Key=SPECIAL_KEY),
                 lambda: s3.create_bucket(Bucket="new-bucket"),
                 lambda: s3.put_object(Bucket=BUCKET, Key="small", Body=b"tiny")):
        assert error_code(call) == ("MethodNotAllowed", 405)
        assert s3.get_object(Bucket=BUCKET, Key=SPECIAL_KEY)["Body"].read() == b"special"
    assert not harness.store.bucket_exists("new-bucket")
    assert [o.key for o in harness.store.list_objects(BUCKET, prefix="new")[0]] == []


def test_unimplemented_subresource_is_not_implemented(harness: Harness) -> None:
    s3 = harness.client()
    assert error_code(lambda: s3.get_bucket_versioning(Bucket=BUCKET)) == ("NotImplemented", 501)
    assert error_code(lambda: s3.get_object_tagging(Bucket=BUCKET, Key=SPECIAL_KEY)) == (
        "NotImplemented", 501)


# --------------------------------------------------------------------------- the wire


def test_get_and_head_skip_the_asgi_app_only_on_the_direct_protocol(harness: Harness) -> None:
    """searchtrail's protocol answers GET and HEAD itself (a HEAD with the length a GET has and
    no body); writes and `Expect: 100-continue` still take the ASGI path."""
    path = f"/_s3/{BUCKET}/{quote(SPECIAL_KEY)}"
    seen = len(harness.asgi_s3_requests)
    status, headers, body = signed_raw(harness, "GET", path)
    assert (status, body) == (200, b"special")
    status, headers, body = signed_raw(harness, "HEAD", path)
    assert (status, headers["content-length"], body) == (200, str(len(b"special")), b"")
    status, headers, body = signed_raw(harness, "HEAD", f"/_s3/{BUCKET}/missing-key")
    assert status == 404 and int(headers["content-length"]) > 0 and body == b""
    status, _, body = signed_raw(harness, "GET", path, headers={"Expect": "100-continue"})
    assert (status, body) == (200, b"special")
    status, _, body = raw(harness, "DELETE", path)
    assert (status, xml_error(body)[0]) == (405, "MethodNotAllowed")
    expected = (["GET", "DELETE"] if harness.protocol == "direct"
                else ["GET", "HEAD", "HEAD", "GET", "DELETE"])
    assert harness.asgi_s3_requests[seen:] == expected


def test_list_result_is_namespaced_xml_with_millisecond_dates(harness: Harness) -> None:
    status, headers, body = signed_raw(harness, "GET", f"/_s3/{BUCKET}?list-type=2&max-keys=1")
    assert status == 200 and headers["content-type"] == "application/xml"
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ListBucketResult"
    assert ISO_MILLIS.fullmatch(root.find(f"{NS}Contents/{NS}LastModified").text)
    assert headers["x-amz-request-id"] and headers["x-amz-id-2"]


def test_special_characters_are_escaped_or_url_encoded(harness: Harness) -> None:
    status, _, body = signed_raw(harness, "GET", f"/_s3/{BUCKET}?prefix=odd")
    assert status == 200
    assert ET.fromstring(body).find(f"{NS}Contents/{NS}Key").text == SPECIAL_KEY
    assert b"&amp;amp=" in body  # escaped by the XML writer, not by hand
    status, _, body = signed_raw(harness, "GET", f"/_s3/{BUCKET}?prefix=odd&encoding-type=url")
    key = ET.fromstring(body).find(f"{NS}Contents/{NS}Key").text
    assert key == quote(SPECIAL_KEY, safe="/~")


@pytest.mark.parametrize("target, code, status", [
    (f"/_s3/{BUCKET}?max-keys=abc", "InvalidArgument", 400),
    (f"/_s3/{BUCKET}?max-keys=-1", "InvalidArgument", 400),
    (f"/_s3/{BUCKET}?encoding-type=base64", "InvalidArgument", 400),
    (f"/_s3/{BUCKET}?list-type=3", "InvalidArgument", 400),
    (f"/_s3/{BUCKET}/%FF%FE", "InvalidURI", 400),
    ("/_s3//key", "InvalidURI", 400),
    (f"/_s3/{BUCKET}/k?versionId=abc", "NoSuchVersion", 404),
    (f"/_s3/{BUCKET}?prefix=%01", "InvalidArgument", 400),
    ("/_s3/Not_A_Valid_Bucket/k", "NoSuchBucket", 404),
])
def test_bad_input_gets_an_s3_error_document(harness: Harness, target: str, code: str,
                                             status: int) -> None:
    got_status, headers, body = signed_raw(harness, "GET", target)
    assert (got_status, xml_error(body)[0]) == (status, code)
    assert headers["content-type"] == "application/xml"


def test_unsigned_and_malformed_requests(harness: Harness) -> None:
    status, _, body = raw(harness, "GET", f"/_s3/{BUCKET}")
    assert (status, xml_error(body)[0]) == (403, "AccessDenied")
    status, _, body = raw(harness, "GET", f"/_s3/{BUCKET}", {"Authorization": "garbage"})
    assert (status, xml_error(body)[0]) == (400, "AuthorizationHeaderMalformed")
    status, headers, body = raw(harness, "PUT", f"/_s3/{BUCKET}/k", {"Content-Length": "3"}, b"abc")
    code, request_id = xml_error(body)
    assert (status, code) == (405, "MethodNotAllowed") and headers["x-amz-request-id"] == request_id
    assert headers["allow"] == "GET, HEAD"
    status, _, body = raw(harness, "GET", f"/_s3/{BUCKET}", {"Content-Length": str(10 ** 9)})
    assert (status, xml_error(body)[0]) == (400, "MaxMessageLengthExceeded")


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bucket=st.sampled_from([BUCKET, OTHER_BUCKET, "", "x", "no-such-bucket"]), key=_TEXT,
       params=st.lists(st.tuples(st.sampled_from(
           ["prefix", "marker", "max-keys", "delimiter", "list-type", "continuation-token",
            "start-after", "encoding-type", "location", "acl", "x-id", "fetch-owner"]), _TEXT),
           max_size=4), method=st.sampled_from(["GET", "HEAD"]),
       byte_range=st.one_of(st.none(), st.text(alphabet=st.characters(
           min_codepoint=0x20, max_codepoint=0x7e), max_size=12).map(lambda t: "bytes=" + t)))
def test_no_signed_request_gets_a_server_error(harness: Harness, bucket: str, key: str,
                                               params: list, method: str, byte_range) -> None:
    path = f"/_s3/{quote(bucket)}" + (f"/{quote(key, safe='/')}" if key else "")
    query = "&".join(f"{quote(name)}={quote(value, safe='')}" for name, value in params)
    headers = {} if byte_range is None else {"Range": byte_range}
    status, _, body = signed_raw(harness, method, path + (f"?{query}" if query else ""),
                                 headers=headers)
    if status == 501:  # what S3 answers for a sub-resource it does not serve
        assert "acl" in {name for name, _ in params}
        assert method == "HEAD" or ET.fromstring(body).findtext("Code") == "NotImplemented"
        return
    assert status < 500, body
    if method == "GET" and (status >= 300 or not key):
        ET.fromstring(body)  # an S3 document, never a stack trace


# --------------------------------------------------------------------------- the real server


def test_real_server_serves_its_local_store_under_s3_prefix(fresh_server) -> None:
    """`searchtrail serve` mounts the API at /_s3 over <data-dir>'s local folder store."""
    server = fresh_server.start()
    data_dir = server.data_dir
    conn = server.store()
    try:
        account = Identities(SqliteResources(conn, "", "")).default_account()
    finally:
        conn.close()
    store = LocalFolderStore(data_dir)
    store.create_bucket("served-bucket", account)
    key = f"AWSLogs/{account}/CloudTrail/us-east-1/2026/01/02/file.json.gz"
    store.put_object("served-bucket", key, b"\x1f\x8bdata", content_type="application/x-gzip",
                     metadata={"signature": "ff00"})
    access_key, secret = server.credentials()
    harness = Harness(server.port, store, account, "", AccessKey(access_key, secret, account, None),
                      AccessKey(access_key, secret, account, None),
                      AccessKey(access_key, secret, account, None), data_dir.parent, [], [])
    done = harness.cli("s3", "ls", "s3://served-bucket/", "--recursive")
    assert done.returncode == 0, done.stderr.decode() + server.log()
    assert done.stdout.decode().split()[-1] == key
    done = harness.cli("s3", "cp", f"s3://served-bucket/{key}", "-")
    assert (done.returncode, done.stdout) == (0, b"\x1f\x8bdata"), done.stderr.decode()
    got = harness.client().get_object(Bucket="served-bucket", Key=key)
    assert got["Metadata"] == {"signature": "ff00"}
    assert server.client("opensearchserverless").list_collections()["collectionSummaries"] == []
    status, _, body = raw(harness, "GET", "/_s3/served-bucket")
    assert (status, xml_error(body)[0]) == (403, "AccessDenied")
