"""The trail validator: every tamper case of the reliability plan (T1-T11), with the exact
statuses, and the same output as the AWS CLI's own validate-logs code run on the same store."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives import serialization

from searchtrail.audit.digest import Digest, DigestLogEntry, build_digest, digest_key
from searchtrail.audit.logfile import build_log_file, log_file_key, unique_suffix
from searchtrail.audit.objectstore import (
    ObjectNotFound,
    ObjectStoreError,
    ObjectSummary,
    StoredObject,
)
from searchtrail.audit.signing import SigningKeys
from searchtrail.audit.validation import NoPublicKeysFound, ValidationReport, validate_trail
from tests.unit.test_digest import import_cli_validation
from tests.unit.test_signing import MemoryRepo

UTC = timezone.utc
ACCOUNT = "123456789012"
REGION = "us-east-1"
TRAIL = "t1"
BUCKET = "trail-bucket"
ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"
T = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
END = T + 4 * HOUR
NOW = END + timedelta(minutes=5)


# -- a dict-backed object store -----------------------------------------------------------

class DictStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.buckets = {BUCKET}
        self.page_size = 3  # small pages exercise the listing's continuation

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets

    def bucket_region(self, bucket: str) -> str | None:
        return None

    def put_object(self, bucket: str, key: str, body: bytes, *, content_type: str,
                   metadata: dict[str, str] | None = None) -> None:
        if bucket not in self.buckets:
            raise ObjectStoreError("NoSuchBucket", bucket)
        self.objects[(bucket, key)] = StoredObject(key, body, len(body), NOW, '"etag"',
                                                   content_type, dict(metadata or {}))

    def get_object(self, bucket: str, key: str) -> StoredObject:
        if bucket not in self.buckets:
            raise ObjectStoreError("NoSuchBucket", bucket)
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise ObjectNotFound(bucket, key) from None

    def head_object(self, bucket: str, key: str) -> StoredObject:
        return replace(self.get_object(bucket, key), body=b"")

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     max_keys: int = 1000) -> tuple[list[ObjectSummary], bool]:
        if bucket not in self.buckets:
            raise ObjectStoreError("NoSuchBucket", bucket)
        keys = sorted((k for b, k in self.objects if b == bucket and k.startswith(prefix)
                       and k.encode() > start_after.encode()), key=str.encode)
        limit = min(max_keys, self.page_size)
        page = [ObjectSummary(k, self.objects[(bucket, k)].size, NOW, '"etag"')
                for k in keys[:limit]]
        return page, len(keys) > limit

    def delete_object(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    # test helpers
    def body(self, key: str) -> bytes:
        return self.objects[(BUCKET, key)].body

    def set_body(self, key: str, body: bytes) -> None:
        self.objects[(BUCKET, key)] = replace(self.objects[(BUCKET, key)], body=body,
                                              size=len(body))

    def set_metadata(self, key: str, metadata: dict[str, str]) -> None:
        self.objects[(BUCKET, key)] = replace(self.objects[(BUCKET, key)], metadata=metadata)

    def copy(self, key: str, new_key: str) -> None:
        self.objects[(BUCKET, new_key)] = replace(self.objects[(BUCKET, key)], key=new_key)


# -- a generated trail --------------------------------------------------------------------

@dataclass
class Trail:
    store: DictStore
    keys: SigningKeys
    prefix: str | None
    org_id: str | None
    interval: timedelta
    digests: list[Digest] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)  # digest key -> its log keys
    serve_keys: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]] = lambda k: k

    def digest_keys(self) -> list[str]:
        return [d.key for d in self.digests]

    def all_logs(self) -> list[str]:
        return [log for d in self.digests for log in self.logs[d.key]]

    def public_keys(self, start: datetime, end: datetime) -> list[tuple[str, bytes]]:
        found = self.keys.public_keys(ACCOUNT, REGION, start, end, NOW)
        return self.serve_keys([(k.fingerprint, k.public_der) for k in found])

    def uri(self, key: str) -> str:
        return f"s3://{BUCKET}/{key}"


def new_keys(validity: timedelta = timedelta(days=30)) -> SigningKeys:
    repo = MemoryRepo()
    return SigningKeys(lambda account, region: repo.scoped(account, region), validity=validity)


_SHARED_KEYS = new_keys()


def build_trail(*, periods: int = 4, interval: timedelta = HOUR, prefix: str | None = None,
                org_id: str | None = None, keys: SigningKeys | None = None,
                logs_per_period: int = 2, restart_before: int | None = None,
                start: datetime = T) -> Trail:
    """``periods`` digests of ``interval`` from ``start``, each listing its log files. With
    ``restart_before=p``, logging stops before period p (no digest for p-1's window end is
    lost: period p-1 is skipped) and digest p is a starting digest."""
    trail = Trail(DictStore(), keys or _SHARED_KEYS, prefix, org_id, interval)
    previous = None
    for p in range(1, periods + 1):
        window_start, window_end = start + (p - 1) * interval, start + p * interval
        if restart_before is not None and p == restart_before - 1:
            previous = None  # logging stopped: no digest, no logs for this window
            continue
        entries: list[DigestLogEntry] = []
        log_keys: list[str] = []
        for n in range(logs_per_period):
            delivered = window_start + (n + 1) * interval / (logs_per_period + 1)
            records = [json.dumps({"eventVersion": "1.11",
                                   "eventTime": (delivered - timedelta(minutes=m))
                                   .strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "eventName": f"Op{p}{n}{m}"}, separators=(",", ":"))
                       for m in (1, 3, 2)]
            log = build_log_file(records)
            key = log_file_key(prefix=prefix, org_id=org_id, account=ACCOUNT, region=REGION,
                               delivered_at=delivered,
                               unique=unique_suffix(f"{p}/{n}".encode()))
            trail.store.put_object(BUCKET, key, log.body, content_type="application/json")
            entries.append(DigestLogEntry.of(BUCKET, key, log))
            log_keys.append(key)
        dkey = digest_key(prefix=prefix, org_id=org_id, account=ACCOUNT, region=REGION,
                          trail_name=TRAIL, home_region=REGION, end=window_end)
        digest = build_digest(account=ACCOUNT, bucket=BUCKET, key=dkey, start=window_start,
                              end=window_end, log_files=entries, previous=previous,
                              signing_key=trail.keys.current(ACCOUNT, REGION, window_end))
        trail.store.put_object(BUCKET, dkey, digest.body, content_type="application/json",
                               metadata=digest.metadata)
        trail.digests.append(digest)
        trail.logs[dkey] = log_keys
        previous = digest.as_previous()
    return trail


def validate(trail: Trail, *, start: datetime = T, end: datetime = END, now: datetime = NOW,
             **kwargs: Any) -> ValidationReport:
    return validate_trail(store=trail.store, bucket=BUCKET, prefix=trail.prefix,
                          org_id=trail.org_id, account=ACCOUNT, trail_name=TRAIL,
                          home_region=REGION, source_region=REGION, start=start, end=end,
                          public_keys=trail.public_keys, digest_interval=trail.interval,
                          now=now, **kwargs)


# -- the AWS CLI's own validate-logs code, run in-process on the same store ---------------

class _FakeS3:
    def __init__(self, store: DictStore) -> None:
        self.store = store

    def get_paginator(self, name: str) -> "_FakeS3":
        assert name == "list_objects"
        return self

    def paginate(self, Bucket: str, Marker: str, Prefix: str) -> "_FakePages":  # noqa: N803
        return _FakePages(self.store, Bucket, Marker, Prefix)

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        from botocore.exceptions import ClientError

        try:
            stored = self.store.get_object(Bucket, Key)
        except ObjectStoreError as exc:
            raise ClientError({"Error": {"Code": exc.code, "Message": exc.message}},
                              "GetObject") from None
        return {"Body": io.BytesIO(stored.body), "Metadata": dict(stored.metadata)}


@dataclass
class _FakePages:
    store: DictStore
    bucket: str
    marker: str
    prefix: str

    def search(self, expression: str) -> Any:
        assert expression == "Contents[*].Key"
        after = self.marker
        while True:
            page, truncated = self.store.list_objects(self.bucket, prefix=self.prefix,
                                                      start_after=after)
            for summary in page:
                yield summary.key
            if not truncated:
                return
            after = page[-1].key


class _FakeProvider:
    def __init__(self, store: DictStore) -> None:
        self.s3 = _FakeS3(store)

    def get_client(self, bucket: str) -> _FakeS3:
        return self.s3


class _FakeCloudTrail:
    def __init__(self, trail: Trail) -> None:
        self.trail = trail

    def describe_trails(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"TrailARN": ARN, "S3BucketName": BUCKET,
                                 "IsOrganizationTrail": bool(self.trail.org_id)}
        if self.trail.prefix:
            entry["S3KeyPrefix"] = self.trail.prefix
        return {"trailList": [entry]}

    def list_public_keys(self, StartTime: datetime,  # noqa: N803
                         EndTime: datetime) -> dict[str, Any]:  # noqa: N803
        # the CLI keeps blobs as base64 text, as they travel on the wire
        return {"PublicKeyList": [{"Fingerprint": fp, "Value": base64.b64encode(der).decode()}
                                  for fp, der in self.trail.public_keys(StartTime, EndTime)]}


class _FakeOrganizations:
    def __init__(self, org_id: str | None) -> None:
        self.org_id = org_id

    def describe_organization(self) -> dict[str, Any]:
        return {"Organization": {"Id": self.org_id}}


def run_cli(trail: Trail, *, start: datetime = T, end: datetime = END,
            verbose: bool = True) -> tuple[str, str, int]:
    cli = import_cli_validation()
    command = cli.CloudTrailValidateLogs(None)
    command.trail_arn = ARN
    command.is_verbose = verbose
    command.s3_bucket = None  # go through DescribeTrails, as the lead's end-to-end run does
    command.s3_prefix = None
    command.account_id = ACCOUNT if trail.org_id else None
    command.start_time = start
    command.end_time = end
    command._source_region = REGION
    command.s3_client_provider = _FakeProvider(trail.store)
    command.cloudtrail_client = _FakeCloudTrail(trail)
    command.organization_client = _FakeOrganizations(trail.org_id)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        command._call()
    invalid = (command._invalid_digests + command._invalid_backfill_digests
               + command._invalid_logs)
    return out.getvalue(), err.getvalue(), 1 if invalid else 0


def assert_same_as_cli(trail: Trail, *, start: datetime = T,
                       end: datetime = END) -> ValidationReport:
    """Our report (tail check off: the CLI has none) prints exactly what the CLI prints."""
    report = validate(trail, start=start, end=end, logging=False)
    for verbose in (True, False):
        stdout, stderr, rc = run_cli(trail, start=start, end=end, verbose=verbose)
        assert report.render_text(verbose) == (stdout, stderr)
        assert report.exit_code == rc
    return report


def statuses(report: ValidationReport, kind: str | None = None) -> dict[str, str]:
    return {r.uri: r.status for r in report.results if kind is None or r.kind == kind}


def invalid(report: ValidationReport) -> dict[str, str]:
    return {r.uri: r.status for r in report.invalid}


def regzip(body: bytes, change: Callable[[bytes], bytes]) -> bytes:
    return gzip.compress(change(gzip.decompress(body)), mtime=0)


# -- T11 / the untouched trail ------------------------------------------------------------

def test_untouched_trail_is_valid_with_the_cli_output() -> None:
    trail = build_trail()
    report = assert_same_as_cli(trail)
    assert report.ok and report.exit_code == 0
    assert (report.digests_valid, report.digests_total) == (4, 4)
    assert (report.logs_valid, report.logs_total) == (8, 8)
    # newest -> oldest, each digest followed by its log files
    expected_order = []
    for digest in reversed(trail.digests):
        expected_order.append(trail.uri(digest.key))
        expected_order.extend(trail.uri(k) for k in trail.logs[digest.key])
    assert [r.uri for r in report.results] == expected_order
    stdout, stderr = report.render(verbose=True)
    assert stderr == []
    assert stdout[0] == ("Validating log files for trail arn:aws:cloudtrail:us-east-1:"
                         "123456789012:trail/t1 between 2026-11-25T09:00:00Z and "
                         "2026-11-25T13:00:00Z")
    assert stdout[1] == ""
    assert stdout[2] == f"Digest file\ts3://{BUCKET}/{trail.digests[-1].key}\tvalid"
    assert stdout[3] == f"Log file\ts3://{BUCKET}/{trail.logs[trail.digests[-1].key][0]}\tvalid"
    assert stdout[-6:] == [
        "",
        "Results requested for 2026-11-25T09:00:00Z to 2026-11-25T13:00:00Z",
        "Results found for 2026-11-25T09:00:00Z to 2026-11-25T13:00:00Z:",
        "",
        "4/4 digest files valid",
        "8/8 log files valid",
    ]
    assert report.render(verbose=False) == ([
        stdout[0], "",
        "Results requested for 2026-11-25T09:00:00Z to 2026-11-25T13:00:00Z",
        "Results found for 2026-11-25T09:00:00Z to 2026-11-25T13:00:00Z:",
        "",
        "4/4 digest files valid",
        "8/8 log files valid",
    ], [])
    # with the tail check on, nothing changes for a complete trail
    assert validate(trail).results == report.results


def test_prefix_and_organization_trail_and_sub_window() -> None:
    trail = build_trail(prefix="audit/logs", org_id="o-exampleorg1")
    report = assert_same_as_cli(trail)
    assert report.ok and (report.digests_valid, report.logs_valid) == (4, 8)
    # a window inside the trail: only the digests that cover it (and the one after)
    sub = assert_same_as_cli(trail, start=T + HOUR + timedelta(minutes=30), end=T + 2 * HOUR)
    assert sub.ok
    assert [r.uri for r in sub.results if r.kind == "digest"] == [
        trail.uri(trail.digests[2].key), trail.uri(trail.digests[1].key)]


def test_other_objects_under_the_prefix_are_ignored() -> None:
    trail = build_trail()
    other = digest_key(prefix=None, org_id=None, account=ACCOUNT, region=REGION,
                       trail_name="t2", home_region=REGION, end=T + 2 * HOUR)
    trail.store.put_object(BUCKET, other, b"junk", content_type="x")
    trail.store.put_object(BUCKET, trail.digests[0].key + ".bak", b"junk", content_type="x")
    report = assert_same_as_cli(trail)
    assert report.ok and report.digests_total == 4


# -- log files (T1-T4) --------------------------------------------------------------------

def test_t1_one_byte_of_a_log_changed() -> None:
    trail = build_trail()
    target = trail.logs[trail.digests[1].key][0]
    trail.store.set_body(target, regzip(trail.store.body(target),
                                        lambda raw: raw.replace(b"Op2", b"Op9", 1)))
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target): "INVALID: hash value doesn't match"}
    assert not report.ok and (report.logs_valid, report.logs_total) == (7, 8)


def test_regzipped_log_with_the_same_content_is_still_valid() -> None:
    trail = build_trail()
    target = trail.logs[trail.digests[1].key][1]
    trail.store.set_body(target, gzip.compress(gzip.decompress(trail.store.body(target)),
                                               compresslevel=1, mtime=12345))
    assert assert_same_as_cli(trail).ok


def test_t2_log_deleted() -> None:
    trail = build_trail()
    target = trail.logs[trail.digests[2].key][1]
    trail.store.delete_object(BUCKET, target)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target): "INVALID: not found"}
    stdout, stderr = report.render(verbose=False)
    assert stderr == [f"Log file\ts3://{BUCKET}/{target}\tINVALID: not found", ""]
    assert stdout[-2:] == ["4/4 digest files valid", "7/8 log files valid, 1/8 log files INVALID"]


def test_t3_two_logs_swapped() -> None:
    trail = build_trail()
    a, b = trail.logs[trail.digests[0].key][0], trail.logs[trail.digests[3].key][1]
    body_a, body_b = trail.store.body(a), trail.store.body(b)
    trail.store.set_body(a, body_b)
    trail.store.set_body(b, body_a)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(a): "INVALID: hash value doesn't match",
                               trail.uri(b): "INVALID: hash value doesn't match"}


@pytest.mark.parametrize("extra", [gzip.compress(b'{"Records":[]}', mtime=0), b"junk"])
def test_t4_data_after_the_gzip_member(extra: bytes) -> None:
    trail = build_trail()
    target = trail.logs[trail.digests[1].key][1]
    trail.store.set_body(target, trail.store.body(target) + extra)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {
        trail.uri(target): "INVALID: unexpected data after end of compressed stream"}


def test_log_that_is_not_gzip_is_invalid_format() -> None:
    trail = build_trail()
    target = trail.logs[trail.digests[1].key][0]
    trail.store.set_body(target, b'{"Records":[]}')
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target): "INVALID: invalid format"}


# -- digests (T5-T9) ----------------------------------------------------------------------

def test_t5_digest_body_edited_keeping_its_metadata() -> None:
    trail = build_trail()
    target = trail.digests[1]
    trail.store.set_body(target.key, regzip(target.body,
                                            lambda raw: raw.replace(b'"logFiles":[{',
                                                                    b'"logFiles":[ {')))
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: signature verification failed"}
    # the chain goes on past the broken digest: the older one is still checked
    assert statuses(report)[trail.uri(trail.digests[0].key)] == "valid"
    # an invalid digest's log files are not checked
    assert report.logs_total == 6


def test_t5_signature_flipped_or_metadata_removed() -> None:
    trail = build_trail()
    flipped, removed = trail.digests[3], trail.digests[2]
    signature = flipped.signature
    trail.store.set_metadata(flipped.key, {**flipped.metadata,
                                           "signature": ("1" if signature[0] == "0" else "0")
                                           + signature[1:]})
    trail.store.set_metadata(removed.key, {})
    report = assert_same_as_cli(trail)
    assert invalid(report) == {
        trail.uri(flipped.key): "INVALID: signature verification failed",
        trail.uri(removed.key): "INVALID: signature verification failed",
    }


def test_digest_that_is_not_gzip_is_invalid_format() -> None:
    trail = build_trail()
    target = trail.digests[2]
    trail.store.set_body(target.key, target.json_bytes)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: invalid format"}


def test_t6_middle_digest_deleted() -> None:
    trail = build_trail()
    target = trail.digests[2]
    trail.store.delete_object(BUCKET, target.key)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: not found"}
    assert (report.digests_valid, report.digests_total) == (3, 4)
    stdout, stderr = report.render(verbose=False)
    assert stderr == [f"Digest file\ts3://{BUCKET}/{target.key}\tINVALID: not found", ""]
    assert "3/4 digest files valid, 1/4 digest files INVALID" in stdout


def test_t6_oldest_digest_deleted() -> None:
    trail = build_trail()
    target = trail.digests[0]
    trail.store.delete_object(BUCKET, target.key)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: not found"}


def test_t7_digest_moved() -> None:
    trail = build_trail()
    target = trail.digests[3]
    moved = target.key.replace("T130000Z", "T130001Z")
    trail.store.copy(target.key, moved)
    trail.store.delete_object(BUCKET, target.key)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {
        trail.uri(moved): "INVALID: has been moved from its original location"}
    assert validate(trail).results == report.results  # the tail check sees the moved key


def test_t7_digest_copied_beside_the_original() -> None:
    trail = build_trail()
    newest = trail.digests[3]
    copied = newest.key.replace("T130000Z", "T130030Z")
    trail.store.copy(newest.key, copied)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {
        trail.uri(copied): "INVALID: has been moved from its original location"}
    assert statuses(report)[trail.uri(newest.key)] == "valid"
    # a copy beside an older digest is never read: the walk follows the links (as the CLI)
    trail = build_trail()
    trail.store.copy(trail.digests[1].key, trail.digests[1].key.replace("T110000Z", "T110030Z"))
    assert assert_same_as_cli(trail).ok


def test_t8_newest_digest_deleted_is_caught_only_by_the_tail_check() -> None:
    trail = build_trail()
    newest = trail.digests[3]
    trail.store.delete_object(BUCKET, newest.key)
    # the CLI's algorithm does not see it
    cli_like = assert_same_as_cli(trail)
    assert cli_like.ok and (cli_like.digests_valid, cli_like.digests_total) == (3, 3)
    # the service knows the newest digest it delivered: exact
    report = validate(trail, latest_digest_end=newest.end)
    tail = (f"s3://{BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/")
    assert invalid(report) == {
        tail: "INVALID: newest digest missing: expected a digest ending at 2026-11-25T13:00:00Z, "
              "the newest delivered"}
    assert not report.ok and (report.digests_valid, report.digests_total) == (3, 4)
    stdout, stderr = report.render(verbose=False)
    assert stderr == [f"Digest file\t{tail}\tINVALID: newest digest missing: expected a digest "
                      "ending at 2026-11-25T13:00:00Z, the newest delivered", ""]
    # without that knowledge, one missing interval is inside the 2x slack of the heuristic
    # (two missing intervals are not: next test)
    assert validate(trail).ok
    assert validate(trail, end=NOW).ok


def test_t8_two_newest_digests_deleted_heuristic() -> None:
    trail = build_trail()
    for digest in trail.digests[2:]:
        trail.store.delete_object(BUCKET, digest.key)
    assert assert_same_as_cli(trail, end=NOW).ok
    report = validate(trail, end=NOW)
    assert [r.status for r in report.invalid] == [
        "INVALID: newest digest missing: expected a digest ending after 2026-11-25T11:05:00Z"]
    # not when the trail was not logging, or started logging too recently to owe a digest
    assert validate(trail, end=NOW, logging=False).ok
    assert validate(trail, end=NOW, logging_since=NOW - HOUR).ok


def test_t8_all_digests_deleted() -> None:
    trail = build_trail()
    for digest in trail.digests:
        trail.store.delete_object(BUCKET, digest.key)
    cli_like = assert_same_as_cli(trail)
    assert cli_like.ok
    assert cli_like.render(verbose=True)[0][-1] == "No digests found"
    report = validate(trail)
    assert [r.status for r in report.invalid] == [
        "INVALID: newest digest missing: expected a digest ending after 2026-11-25T11:00:00Z"]
    assert report.render(verbose=False)[0][-3:] == [
        "No valid digests found in range", "",
        "0/1 digest files valid, 1/1 digest files INVALID"]


def test_t9_unknown_fingerprint() -> None:
    trail = build_trail()
    target = trail.digests[1]
    stranger = new_keys().current(ACCOUNT, REGION, target.end)
    resigned = build_digest(account=ACCOUNT, bucket=BUCKET, key=target.key, start=target.start,
                            end=target.end, log_files=[], previous=trail.digests[0].as_previous(),
                            signing_key=stranger)
    trail.store.put_object(BUCKET, target.key, resigned.body, content_type="application/json",
                           metadata=resigned.metadata)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: public key not found in "
                               f"region us-east-1 for fingerprint {stranger.fingerprint}"}


def test_t9_key_valid_outside_the_window() -> None:
    keys = new_keys(validity=timedelta(days=1))
    trail = build_trail(keys=keys)
    target = trail.digests[2]
    future = keys.current(ACCOUNT, REGION, T + timedelta(days=10))  # rotated long after
    resigned = build_digest(account=ACCOUNT, bucket=BUCKET, key=target.key, start=target.start,
                            end=target.end, log_files=[], previous=trail.digests[1].as_previous(),
                            signing_key=future)
    trail.store.put_object(BUCKET, target.key, resigned.body, content_type="application/json",
                           metadata=resigned.metadata)
    report = assert_same_as_cli(trail)
    assert invalid(report) == {trail.uri(target.key): "INVALID: public key not found in "
                               f"region us-east-1 for fingerprint {future.fingerprint}"}


def test_t10_key_rotation_mid_window() -> None:
    keys = new_keys(validity=2 * HOUR)
    trail = build_trail(periods=6, keys=keys)
    assert len({d.fingerprint for d in trail.digests}) == 3
    report = assert_same_as_cli(trail, end=T + 6 * HOUR)
    assert report.ok and (report.digests_valid, report.logs_valid) == (6, 12)


def test_spki_public_key_cannot_be_loaded() -> None:
    trail = build_trail()

    def as_spki(found: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(fp, serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
            for fp, der in found]

    trail.serve_keys = as_spki
    report = assert_same_as_cli(trail)
    fp = trail.digests[0].fingerprint
    assert set(invalid(report).values()) == {
        f"INVALID: Unable to load PKCS #1 key with fingerprint {fp}"}
    assert report.digests_total == 4 and report.digests_valid == 0


def test_no_public_keys_is_fatal_like_the_cli() -> None:
    trail = build_trail()
    trail.serve_keys = lambda found: []
    message = "No public keys found between 2026-11-25T09:00:00Z and 2026-11-25T15:00:00Z"
    with pytest.raises(NoPublicKeysFound, match=message):
        validate(trail)
    with pytest.raises(RuntimeError, match=message):
        run_cli(trail)


def test_no_digests_need_no_public_keys() -> None:
    """A Region where nothing was ever signed has no key; `trail validate` (which makes none)
    reports what it found, no digest, as the AWS CLI does against a server that makes one."""
    trail = build_trail()
    for digest in trail.digests:
        trail.store.delete_object(BUCKET, digest.key)
    trail.serve_keys = lambda found: []
    report = validate(trail, logging=False)
    assert report.ok and report.render(verbose=True)[0][-1] == "No digests found"


def test_gap_when_logging_stopped_and_restarted() -> None:
    trail = build_trail(periods=5, restart_before=4)
    assert len(trail.digests) == 4
    report = assert_same_as_cli(trail, end=T + 5 * HOUR)
    assert report.ok
    assert [g.status for g in report.gaps] == [
        "No log files were delivered by CloudTrail between 2026-11-25T11:00:00Z and "
        "2026-11-25T12:00:00Z"]
    stdout, stderr = report.render(verbose=False)
    assert stderr == [report.gaps[0].status, ""]
    assert "4/4 digest files valid" in stdout


def test_store_errors_other_than_not_found_are_fatal() -> None:
    trail = build_trail()
    trail.store.buckets.clear()
    with pytest.raises(ObjectStoreError) as caught:
        validate(trail)
    assert caught.value.code == "NoSuchBucket"


def test_bad_time_range_and_naive_times() -> None:
    trail = build_trail()
    with pytest.raises(ValueError, match="Invalid time range specified: start-time must occur "
                                         "before end-time"):
        validate(trail, start=END, end=T)
    with pytest.raises(ValueError):
        validate(trail, start=datetime(2026, 11, 25))


def test_progress_is_reported() -> None:
    trail = build_trail()
    calls: list[tuple[str, int, int]] = []
    validate(trail, progress=lambda phase, done, total: calls.append((phase, done, total)))
    assert [c for c in calls if c[0] == "digests"][-1] == ("digests", 4, 4)
    assert [c for c in calls if c[0] == "logs"][-1] == ("logs", 8, 8)


def test_digest_with_trailing_member_is_still_read_like_the_cli() -> None:
    """zlib.decompress ignores a second member in a digest; the signature still holds."""
    trail = build_trail()
    target = trail.digests[1]
    trail.store.set_body(target.key, target.body + gzip.compress(b"{}", mtime=0))
    report = assert_same_as_cli(trail)
    assert report.ok
    assert zlib.decompress(trail.store.body(target.key), zlib.MAX_WBITS | 16) == target.json_bytes
