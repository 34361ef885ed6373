"""Trails into the embedded local bucket folder, read back through the server's read-only S3 API."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess
from tests.needs import file_modes_binding
from tests.functional.trails import (DIGEST_KEY, LOG_KEY, aws_cli, chain_closed, counts,
                                     local_s3, read_bucket, searchtrail_cli, stored_count,
                                     validate_both, wait_for)

BUCKET = "local-trail"


@pytest.fixture(scope="module")
def local(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("trails-local")
    server = ServerProcess(root / "data", args=["--delivery-interval", "1", "--digest-interval", "2"])
    try:
        server.start()
        made = searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(server.data_dir))
        assert made.returncode == 0, made.stderr
        cloudtrail = server.client("cloudtrail")
        trail = cloudtrail.create_trail(Name="local", S3BucketName=BUCKET, S3KeyPrefix="audit",
                                        EnableLogFileValidation=True)
        cloudtrail.start_logging(Name="local")
        aoss = server.client("opensearchserverless")
        request_ids = []
        for round_ in range(4):  # spread over several digest periods, so digests chain
            request_ids += [aoss.list_collections()["ResponseMetadata"]["RequestId"]
                            for _ in range(25)]
            wait_for(lambda: set(request_ids) <= _delivered(server), seconds=30,
                     what=f"round {round_} delivered")
            wait_for(lambda n=round_: len(_digests(server)) > n, seconds=30, what="another digest")
        stop = cloudtrail.stop_logging(Name="local")["ResponseMetadata"]["RequestId"]
        wait_for(lambda: chain_closed(server, "local"), seconds=30, what="the final digest")
        yield {"server": server, "trail_arn": trail["TrailARN"], "request_ids": request_ids,
               "stop_request_id": stop}
    finally:
        server.stop()


def _delivered(server: ServerProcess) -> set[str]:
    return set(read_bucket(local_s3(server), BUCKET).request_ids())


def _digests(server: ServerProcess) -> list[str]:
    return read_bucket(local_s3(server), BUCKET).digest_keys


def _object_path(server: ServerProcess, key: str) -> Path:
    return server.data_dir / "buckets" / BUCKET / key


def test_layout_on_disk_and_through_the_s3_api(local) -> None:
    server = local["server"]
    content = read_bucket(local_s3(server), BUCKET)
    assert content.log_keys and len(content.digest_keys) >= 3
    for key in content.log_keys:
        assert LOG_KEY.match(key)["prefix"] == "audit"
        assert _object_path(server, key).is_file()  # CloudTrail's key layout, as files
    for key in content.digest_keys:
        assert DIGEST_KEY.match(key)["prefix"] == "audit"
    delivered = Counter(r["requestID"] for records in content.records_by_key.values()
                        for r in records)
    assert all(delivered[rid] == 1 for rid in local["request_ids"])
    assert max(delivered.values()) == 1


def test_the_stopped_trail_delivers_the_stoplogging_call_that_stopped_it(local) -> None:
    """As on AWS, a trail takes what was recorded until it stopped, the StopLogging call's own
    record included: an attacker's StopLogging is in the very files it cut short."""
    records = read_bucket(local_s3(local["server"]), BUCKET).records_by_key.values()
    stops = [r for batch in records for r in batch if r["requestID"] == local["stop_request_id"]]
    assert [(r["eventName"], r["requestParameters"]) for r in stops] == [
        ("StopLogging", {"name": "local"})]


def test_validate_logs_accepts_the_local_store(local) -> None:
    server = local["server"]
    content = read_bucket(local_s3(server), BUCKET)
    aws, ours = validate_both(server, local["trail_arn"], s3_endpoint=server.endpoint + "/_s3",
                              region="us-east-1")
    expected = (f"{len(content.digest_keys)}/{len(content.digest_keys)}",
                f"{len(content.log_keys)}/{len(content.log_keys)}")
    assert aws.returncode == 0, aws.stdout + aws.stderr
    assert counts(aws.stdout) == expected
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert counts(ours.stdout) == expected


def test_an_auditor_with_five_read_actions_validates_through_the_api(local) -> None:
    """What the README tells an operator to give an outside auditor, instead of a copy of the
    store that holds the keys signing digests: an IAM user of their own."""
    server = local["server"]
    iam = server.client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="validate", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "cloudtrail:DescribeTrails", "cloudtrail:ListPublicKeys", "s3:ListBucket",
            "s3:GetBucketLocation", "s3:GetObject"]}]}))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    content = read_bucket(local_s3(server), BUCKET)
    run = aws_cli("cloudtrail", "validate-logs", "--trail-arn", local["trail_arn"],
                  "--start-time", "2020-01-01T00:00:00Z", "--region", "us-east-1", env={
                      "AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint,
                      "AWS_ENDPOINT_URL_S3": server.endpoint + "/_s3",
                      "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                      "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                      "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert counts(run.stdout) == (f"{len(content.digest_keys)}/{len(content.digest_keys)}",
                                  f"{len(content.log_keys)}/{len(content.log_keys)}")


def _tamper_and_validate(local, key: str, change):  # type: ignore[no-untyped-def]
    server = local["server"]
    path = _object_path(server, key)
    original = path.read_bytes()
    try:
        change(path)
        return validate_both(server, local["trail_arn"], s3_endpoint=server.endpoint + "/_s3",
                             region="us-east-1")
    finally:
        path.write_bytes(original)


def test_tampering_in_the_folder_is_detected(local) -> None:
    content = read_bucket(local_s3(local["server"]), BUCKET)
    log_key = sorted(content.log_keys)[0]

    def flip(path: Path) -> None:
        raw = bytearray(gzip.decompress(path.read_bytes()))
        raw[10] ^= 0x01
        path.write_bytes(gzip.compress(bytes(raw)))

    aws, ours = _tamper_and_validate(local, log_key, flip)
    assert aws.returncode == 1 and "INVALID: hash value doesn't match" in aws.stderr
    assert ours.returncode == 1 and "INVALID: hash value doesn't match" in ours.stderr

    aws, ours = _tamper_and_validate(local, log_key, lambda path: path.unlink())
    assert aws.returncode == 1 and "INVALID: not found" in aws.stderr
    assert ours.returncode == 1 and "INVALID: not found" in ours.stderr

    middle_digest = sorted(content.digest_keys)[1]

    def edit_digest(path: Path) -> None:
        digest = json.loads(gzip.decompress(path.read_bytes()))
        digest["newestEventTime"] = "2001-01-01T00:00:00Z"
        path.write_bytes(gzip.compress(json.dumps(digest).encode()))

    aws, ours = _tamper_and_validate(local, middle_digest, edit_digest)
    assert aws.returncode == 1 and "INVALID: signature verification failed" in aws.stderr
    assert ours.returncode == 1 and "INVALID: signature verification failed" in ours.stderr

    newest_digest = sorted(content.digest_keys)[-1]
    aws, ours = _tamper_and_validate(local, newest_digest, lambda path: path.unlink())
    assert aws.returncode == 0
    assert ours.returncode == 1 and "newest digest missing" in ours.stderr


def test_a_trail_without_log_file_validation_has_no_newest_digest_missing(local) -> None:
    """It writes no digests: after two digest periods of logging, `trail validate` reported
    "newest digest missing" and exit 1, where the AWS CLI finds nothing wrong."""
    server = local["server"]
    assert searchtrail_cli("buckets", "create", "plain-trail", "--data-dir",
                           str(server.data_dir)).returncode == 0
    cloudtrail = server.client("cloudtrail")
    arn = cloudtrail.create_trail(Name="plain", S3BucketName="plain-trail")["TrailARN"]
    cloudtrail.start_logging(Name="plain")
    started = cloudtrail.get_trail_status(Name="plain")["StartLoggingTime"].timestamp()
    server.client("opensearchserverless").list_collections()
    wait_for(lambda: stored_count(server, "SELECT count(*) FROM log_files WHERE trail_arn = ? "
                                  "AND delivered_at IS NOT NULL", arn), seconds=30,
             what="a delivered log file")
    # the validator's digest period is 1 s here: more than two have gone since logging began
    wait_for(lambda: datetime.now(timezone.utc).timestamp() > started + 3, seconds=10,
             what="three seconds of logging")
    aws, ours = validate_both(server, arn, s3_endpoint=server.endpoint + "/_s3",
                              region="us-east-1", server_env={"SEARCHTRAIL_DIGEST_INTERVAL": "1"})
    cloudtrail.delete_trail(Name="plain")
    assert aws.returncode == 0, aws.stderr
    assert ours.returncode == 0 and "digest missing" not in ours.stderr, ours.stderr


def test_validate_on_a_terminal_draws_progress_and_gives_the_same_answer(local) -> None:
    """With stderr on a terminal (a pseudo-terminal here) progress bars are drawn there; the
    result lines and the exit code are those of a piped run."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    server = local["server"]
    content = read_bucket(local_s3(server), BUCKET)
    controller, terminal = pty.openpty()
    try:
        ran = subprocess.Popen(
            [sys.executable, "-m", "searchtrail", "trail", "validate", "--trail-arn",
             local["trail_arn"], "--start-time", "2020-01-01T00:00:00Z",
             "--data-dir", str(server.data_dir)],
            stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, text=True)
        os.close(terminal)
        drawn = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # read the terminal until the command closes it
            if select.select([controller], [], [], 1)[0]:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
        stdout, _ = ran.communicate(timeout=60)
    finally:
        os.close(controller)
    assert ran.returncode == 0, drawn.decode(errors="replace")
    assert counts(stdout) == (f"{len(content.digest_keys)}/{len(content.digest_keys)}",
                              f"{len(content.log_keys)}/{len(content.log_keys)}")
    assert b"checking" in drawn, drawn


def test_validate_reads_a_store_and_bucket_it_may_not_write(local, tmp_path) -> None:
    """An auditor's read-only copy of the data dir validates as the original does, and the
    command changes none of its bytes (it used to need a write lock on the store)."""
    import hashlib
    import shutil
    import sqlite3
    import subprocess
    import sys

    server = local["server"]
    copy = tmp_path / "audit-copy"
    shutil.copytree(server.data_dir, copy, ignore=shutil.ignore_patterns("searchtrail.sqlite3*"))
    with sqlite3.connect(server.data_dir / "searchtrail.sqlite3") as live, \
            sqlite3.connect(copy / "searchtrail.sqlite3") as snapshot:
        live.backup(snapshot)  # a consistent copy of a store in use
    snapshot.close()
    paths = sorted(copy.rglob("*"))
    for path in reversed(paths):
        path.chmod(0o500 if path.is_dir() else 0o400)
    copy.chmod(0o500)

    def contents() -> dict[str, str]:
        return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in sorted(copy.rglob("*")) if path.is_file()}

    before = contents()
    try:
        ran = subprocess.run(file_modes_binding(
            [sys.executable, "-m", "searchtrail", "trail", "validate", "--trail-arn",
             local["trail_arn"], "--start-time", "2020-01-01T00:00:00Z", "--data-dir", str(copy)]),
            capture_output=True, text=True, timeout=120)
        after = contents()
    finally:
        for path in [copy, *paths]:
            path.chmod(0o700)
    content = read_bucket(local_s3(server), BUCKET)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert counts(ran.stdout) == (f"{len(content.digest_keys)}/{len(content.digest_keys)}",
                                  f"{len(content.log_keys)}/{len(content.log_keys)}")
    assert after == before


def test_a_trail_made_again_under_its_name_delivers_only_what_it_logged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The default delivery interval (300 s): a trail claims its records as it starts, then
    # not for minutes, so the first trail's last calls are still unclaimed when it goes.
    server = ServerProcess(tmp_path / "data").start()
    try:
        for bucket in ("first-bucket", "second-bucket"):
            made = searchtrail_cli("buckets", "create", bucket, "--data-dir", str(server.data_dir))
            assert made.returncode == 0, made.stderr
        cloudtrail = server.client("cloudtrail")
        s3 = local_s3(server)
        cloudtrail.create_trail(Name="reused", S3BucketName="first-bucket")
        cloudtrail.start_logging(Name="reused")
        wait_for(lambda: read_bucket(s3, "first-bucket").log_keys, seconds=30,
                 what="the first trail's first log file")
        aoss = server.client("opensearchserverless")
        earlier = {aoss.list_collections()["ResponseMetadata"]["RequestId"] for _ in range(3)}
        cloudtrail.delete_trail(Name="reused")
        arn = cloudtrail.create_trail(Name="reused", S3BucketName="second-bucket")["TrailARN"]
        started = cloudtrail.start_logging(Name="reused")["ResponseMetadata"]["RequestId"]

        second = wait_for(lambda: read_bucket(s3, "second-bucket").log_keys and read_bucket(
            s3, "second-bucket"), seconds=30, what="the second trail's first log file")
        assert set(second.request_ids()) == {started}
        assert not earlier & set(read_bucket(s3, "first-bucket").request_ids())
        # the first trail's records were passed over, not left waiting for a claim
        assert stored_count(server, "SELECT count(*) FROM outbox WHERE trail_arn = ?1 AND seq > "
                            "(SELECT through_seq FROM outbox_claims WHERE trail_arn = ?1)",
                            arn) == 0
    finally:
        server.stop()


def test_a_trail_made_again_under_its_name_leaves_the_deleted_ones_unstored_files_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "data",
                           args=["--delivery-interval", "1", "--digest-interval", "2"]).start()
    try:
        made = searchtrail_cli("buckets", "create", "kept-bucket", "--data-dir", str(server.data_dir))
        assert made.returncode == 0, made.stderr
        cloudtrail = server.client("cloudtrail")
        s3 = local_s3(server)
        arn = cloudtrail.create_trail(Name="reused", S3BucketName="kept-bucket",
                                      EnableLogFileValidation=True)["TrailARN"]
        meta = server.data_dir / "bucket-meta" / "kept-bucket"
        meta.rename(tmp_path / "kept-bucket-meta")  # its deliveries fail while it is away
        cloudtrail.start_logging(Name="reused")
        aoss = server.client("opensearchserverless")
        earlier = {aoss.list_collections()["ResponseMetadata"]["RequestId"] for _ in range(3)}
        unstored = ("SELECT count(*) FROM log_files WHERE trail_arn = ?1 AND delivered_at IS NULL "
                    "AND last_seq >= (SELECT max(seq) FROM outbox WHERE trail_arn = ?1)")
        wait_for(lambda: stored_count(server, unstored, arn), seconds=30,
                 what="the first trail's last records in a file it could not store")
        wait_for(lambda: stored_count(server, "SELECT count(*) FROM digests WHERE trail_arn = ?",
                                      arn), seconds=30, what="a digest it could not store")
        cloudtrail.delete_trail(Name="reused")
        (tmp_path / "kept-bucket-meta").rename(meta)
        cloudtrail.create_trail(Name="reused", S3BucketName="kept-bucket",
                                EnableLogFileValidation=True)
        started = cloudtrail.start_logging(Name="reused")["ResponseMetadata"]["RequestId"]

        stored = wait_for(lambda: read_bucket(s3, "kept-bucket").log_keys and read_bucket(
            s3, "kept-bucket"), seconds=30, what="the second trail's first log file")
        assert set(stored.request_ids()) == {started}
        assert "LatestDeliveryError" not in cloudtrail.get_trail_status(Name="reused")
        assert stored_count(server, "SELECT count(*) FROM log_files WHERE delivered_at IS NULL "
                            "AND trail_arn = ?", arn)  # the deleted trail's, as it left them
        # its digests begin a chain of their own, listing its own files only
        first = wait_for(lambda: read_bucket(s3, "kept-bucket").digest_keys, seconds=30,
                         what="the second trail's first digest")[0]
        digest = json.loads(gzip.decompress(s3.get_object(Bucket="kept-bucket",
                                                          Key=first)["Body"].read()))
        assert digest["previousDigestSignature"] is None
        assert {entry["s3Bucket"] for entry in digest["logFiles"]} <= {"kept-bucket"}
        validated = searchtrail_cli("trail", "validate", "--trail-arn", arn, "--start-time",
                                    "2020-01-01T00:00:00Z", "--data-dir", str(server.data_dir))
        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert stored_count(server, "SELECT count(*) FROM digests WHERE delivered_at IS NULL "
                            "AND trail_arn = ?", arn)  # the deleted trail's, never stored
    finally:
        server.stop()


@pytest.mark.parametrize("prefix", ["logs/", "../../escape", "/absolute", "a/./b", "a\u0000b"])
def test_a_key_prefix_the_local_folder_cannot_hold_is_refused_up_front(local, prefix) -> None:
    """Such a trail was accepted, then every delivery failed with InvalidArgument."""
    cloudtrail = local["server"].client("cloudtrail")
    with pytest.raises(ClientError) as refused:
        cloudtrail.create_trail(Name="bad-prefix", S3BucketName=BUCKET, S3KeyPrefix=prefix)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidS3PrefixException", error
    assert "cannot be used with the local bucket folder" in error["Message"]
    with pytest.raises(ClientError) as refused:
        cloudtrail.update_trail(Name="local", S3KeyPrefix=prefix)
    assert refused.value.response["Error"]["Code"] == "InvalidS3PrefixException"
    assert cloudtrail.get_trail(Name="local")["Trail"]["S3KeyPrefix"] == "audit"


def test_cloudtrails_own_calls_are_recorded_in_lower_camel_case(local) -> None:
    """As AWS records them (name, s3BucketName, trailARN), like IAM's and STS's; they were
    recorded as the JSON API spells them (Name, S3BucketName, TrailARN)."""
    cloudtrail = local["server"].client("cloudtrail")
    events = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}])["Events"]
    record = next(r for r in (json.loads(e["CloudTrailEvent"]) for e in events)
                  if r["requestParameters"]["name"] == "local")
    assert record["requestParameters"] == {"name": "local", "s3BucketName": BUCKET,
                                           "s3KeyPrefix": "audit",
                                           "enableLogFileValidation": True}
    assert record["responseElements"]["trailARN"] == local["trail_arn"]
    assert record["responseElements"]["s3BucketName"] == BUCKET
    asked = cloudtrail.lookup_events(StartTime="2026-01-01T00:00:00Z", MaxResults=3,
                                     LookupAttributes=[{"AttributeKey": "EventName",
                                                        "AttributeValue": "StartLogging"}])
    found = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])["Events"]
    mine = next(r for r in (json.loads(e["CloudTrailEvent"]) for e in found)
                if r["requestID"] == asked["ResponseMetadata"]["RequestId"])
    assert mine["requestParameters"] == {
        "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "StartLogging"}],
        "startTime": "2026-01-01T00:00:00Z", "maxResults": 3}


@pytest.fixture
def fresh(tmp_path):  # type: ignore[no-untyped-def]
    """A server of its own, delivering every second and signing every 2 s, with the bucket."""
    server = ServerProcess(tmp_path / "data", args=["--delivery-interval", "1",
                                                    "--digest-interval", "2"])
    try:
        server.start()
        made = searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(server.data_dir))
        assert made.returncode == 0, made.stderr
        yield server
    finally:
        server.stop()


def test_validation_turned_off_and_on_again_begins_a_new_chain(fresh) -> None:
    """As AWS documents: the first digest after validation comes back on has no previous
    digest, and the files delivered while it was off are in no digest. The chain used to go on
    over the gap, listing those files, so that it hid that validation had been off."""
    server = fresh
    cloudtrail, aoss = server.client("cloudtrail"), server.client("opensearchserverless")
    cloudtrail.create_trail(Name="toggled", S3BucketName=BUCKET, EnableLogFileValidation=True)
    cloudtrail.start_logging(Name="toggled")

    def delivered(request_id: str) -> str | None:
        content = read_bucket(local_s3(server), BUCKET)
        return next((key for key, records in content.records_by_key.items()
                     if request_id in {r["requestID"] for r in records}), None)

    def digests() -> list[dict]:
        s3 = local_s3(server)
        return [json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)[
            "Body"].read())) for key in read_bucket(s3, BUCKET).digest_keys]

    before = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    wait_for(lambda: delivered(before) and digests(), seconds=30, what="a first digest")
    cloudtrail.update_trail(Name="toggled", EnableLogFileValidation=False)
    unguarded = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    unguarded_file = wait_for(lambda: delivered(unguarded), seconds=30,
                              what="the call made while validation was off")
    cloudtrail.update_trail(Name="toggled", EnableLogFileValidation=True)
    back_on = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    after_file = wait_for(lambda: delivered(after), seconds=30, what="the last call")

    def restarted() -> dict | None:
        return next((digest for digest in digests() if after_file in {
            entry["s3Object"] for entry in digest["logFiles"]}), None)

    wait_for(restarted, seconds=30, what="a digest listing the last call's file")
    first = min((d for d in digests() if d["digestEndTime"] > back_on),
                key=lambda d: d["digestEndTime"])  # the new chain's first digest
    assert first["previousDigestS3Object"] is None
    assert first["previousDigestSignature"] is None
    listed = {entry["s3Object"] for digest in digests() for entry in digest["logFiles"]}
    assert unguarded_file not in listed
    cloudtrail.stop_logging(Name="toggled")
    wait_for(lambda: chain_closed(server, "toggled"), seconds=30, what="the final digest")
    trail_arn = cloudtrail.get_trail(Name="toggled")["Trail"]["TrailARN"]
    aws, ours = validate_both(server, trail_arn, s3_endpoint=server.endpoint + "/_s3",
                              region="us-east-1")
    assert aws.returncode == 0, aws.stdout + aws.stderr
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert counts(ours.stdout) == counts(aws.stdout)


def test_a_trail_made_single_region_stops_signing_for_the_regions_it_left(fresh) -> None:
    """Its former regions' chains end once their files are covered; they went on signing
    empty digests for regions the trail no longer covers, every interval."""
    server = fresh
    cloudtrail = server.client("cloudtrail")
    cloudtrail.create_trail(Name="narrowed", S3BucketName=BUCKET, IsMultiRegionTrail=True,
                            EnableLogFileValidation=True)
    cloudtrail.start_logging(Name="narrowed")
    west = server.client("opensearchserverless", region="us-west-2")
    away = west.list_collections()["ResponseMetadata"]["RequestId"]

    def digests_by_region() -> Counter:
        return Counter(DIGEST_KEY.match(key)["region"]
                       for key in read_bucket(local_s3(server), BUCKET).digest_keys)

    wait_for(lambda: away in _delivered(server) and digests_by_region()["us-west-2"],
             seconds=30, what="a us-west-2 file and digest")
    cloudtrail.update_trail(Name="narrowed", IsMultiRegionTrail=False)
    # the last us-west-2 file is covered by a digest (at most one more), then no more come
    before = digests_by_region()
    home = before["us-east-1"]
    wait_for(lambda: digests_by_region()["us-east-1"] >= home + 3, seconds=30,
             what="three more home-region digests")
    left = digests_by_region()["us-west-2"]
    assert left <= before["us-west-2"] + 1
    wait_for(lambda: digests_by_region()["us-east-1"] >= home + 5, seconds=30,
             what="two more home-region digests")
    assert digests_by_region()["us-west-2"] == left
