"""Trails delivering to an S3 server (moto over a socket), judged by `aws cloudtrail validate-logs`.

One multi-region trail with validation and SNS notifications; 200 mixed calls in two regions.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess
from tests.functional.trails import (DIGEST_KEY, LOG_KEY, chain_closed, counts, read_bucket,
                                     searchtrail_cli, validate_both, wait_for)
from tests.peers import MOTO_CREDENTIALS, MotoServer

BUCKET = "trail-bucket"
REGIONS = ("us-east-1", "eu-west-1")


def mixed_calls(server: ServerProcess, region: str, count: int) -> list[str]:
    """Successes and failures of several operations; returns every call's request id."""
    aoss = server.client("opensearchserverless", region=region)
    ids = []
    tag = uuid.uuid4().hex[:6]
    policy = json.dumps({"Rules": [{"ResourceType": "collection",
                                    "Resource": [f"collection/m{tag}*"]}], "AWSOwnedKey": True})
    ids.append(aoss.create_security_policy(name=f"m{tag}", type="encryption",
                                           policy=policy)["ResponseMetadata"]["RequestId"])
    for n in range(count - 1):
        try:
            if n % 4 == 0:
                response = aoss.create_collection(name=f"m{tag}{n}")
            elif n % 4 == 1:
                response = aoss.create_collection(name=f"nopolicy{tag}{n}")  # ValidationException
            elif n % 4 == 2:
                response = aoss.get_security_policy(name=f"missing{n}", type="network")
            else:
                response = aoss.list_collections()
            ids.append(response["ResponseMetadata"]["RequestId"])
        except ClientError as error:
            ids.append(error.response["ResponseMetadata"]["RequestId"])
    return ids


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("trails-s3")
    moto = MotoServer(root).start()
    server = ServerProcess(root / "data", env=dict(MOTO_CREDENTIALS), args=[
        "--s3-endpoint-url", moto.endpoint, "--sns-endpoint-url", moto.endpoint,
        "--delivery-interval", "2", "--digest-interval", "60"])
    try:
        s3, sns, sqs = moto.client("s3"), moto.client("sns"), moto.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        topic = sns.create_topic(Name="trail-topic")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        server.start()
        cloudtrail = server.client("cloudtrail")
        trail = cloudtrail.create_trail(Name="main-trail", S3BucketName=BUCKET,
                                        IsMultiRegionTrail=True, EnableLogFileValidation=True,
                                        SnsTopicName=topic)  # moto keeps its topic in its own account
        cloudtrail.start_logging(Name="main-trail")
        request_ids = [rid for region in REGIONS for rid in mixed_calls(server, region, 100)]

        def all_delivered():  # type: ignore[no-untyped-def]
            found = {r["requestID"] for records in read_bucket(s3, BUCKET).records_by_key.values()
                     for r in records}
            return set(request_ids) <= found

        wait_for(all_delivered, seconds=60, what="every call's record in a log file")
        status = cloudtrail.get_trail_status(Name="main-trail")
        cloudtrail.stop_logging(Name="main-trail")

        wait_for(lambda: chain_closed(server, "main-trail"), seconds=60,
                 what="the final digest of each region")
        yield {"moto": moto, "server": server, "s3": s3, "sqs": sqs, "queue_url": queue_url,
               "trail_arn": trail["TrailARN"], "request_ids": request_ids, "status": status}
    finally:
        server.stop()
        moto.stop()


def test_every_record_is_in_exactly_one_file_under_cloudtrails_layout(delivered) -> None:
    content = read_bucket(delivered["s3"], BUCKET)
    account = delivered["trail_arn"].split(":")[4]
    for key, records in content.records_by_key.items():
        match = LOG_KEY.match(key)
        assert match, key
        assert match["account"] == account
        assert {r["awsRegion"] for r in records} == {match["region"]}
    event_ids = Counter(content.event_ids())
    assert [eid for eid, n in event_ids.items() if n > 1] == []
    request_ids = Counter(r["requestID"] for records in content.records_by_key.values()
                          for r in records)
    for request_id in delivered["request_ids"]:
        assert request_ids[request_id] == 1, request_id
    assert {LOG_KEY.match(k)["region"] for k in content.log_keys} == set(REGIONS)
    for key in content.digest_keys:
        assert DIGEST_KEY.match(key)["trail"] == "main-trail"


def test_trail_status_reports_deliveries(delivered) -> None:
    status = delivered["status"]
    assert status["IsLogging"] is True
    assert status["LatestDeliveryTime"] is not None
    assert "LatestDeliveryError" not in status


def _validate(delivered, region: str):  # type: ignore[no-untyped-def]
    return validate_both(delivered["server"], delivered["trail_arn"],
                         s3_endpoint=delivered["moto"].endpoint, region=region,
                         server_env=dict(MOTO_CREDENTIALS), delivers_to=delivered["moto"].endpoint)


@pytest.mark.parametrize("region", REGIONS)
def test_validate_logs_accepts_every_digest_and_log_file(delivered, region) -> None:
    content = read_bucket(delivered["s3"], BUCKET)
    logs = [k for k in content.log_keys if LOG_KEY.match(k)["region"] == region]
    digests = [k for k in content.digest_keys if DIGEST_KEY.match(k)["region"] == region]
    aws, ours = _validate(delivered, region)
    expected = (f"{len(digests)}/{len(digests)}", f"{len(logs)}/{len(logs)}")
    assert aws.returncode == 0, aws.stdout + aws.stderr
    assert counts(aws.stdout) == expected, aws.stdout
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert counts(ours.stdout) == expected, ours.stdout


def test_one_message_per_delivered_log_file(delivered) -> None:
    content = read_bucket(delivered["s3"], BUCKET)
    sqs = delivered["sqs"]
    notified: list[str] = []
    for _ in range(50):  # bounded: each receive takes up to 10 messages
        messages = sqs.receive_message(QueueUrl=delivered["queue_url"], MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            assert body["s3Bucket"] == BUCKET
            notified.extend(body["s3ObjectKey"])
    assert sorted(notified) == sorted(content.log_keys)


class Tampered:
    """Change an object, and put the original back afterwards."""

    def __init__(self, s3, key: str) -> None:  # type: ignore[no-untyped-def]
        self.s3, self.key = s3, key
        head = s3.get_object(Bucket=BUCKET, Key=key)
        self.body, self.metadata = head["Body"].read(), head["Metadata"]

    def restore(self) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=self.key, Body=self.body, Metadata=self.metadata)


def _newest(keys: list[str], region: str) -> list[str]:
    return sorted(k for k in keys if f"/{region}/" in k)


def test_a_changed_byte_in_a_log_file_is_detected_by_both(delivered) -> None:
    s3, content = delivered["s3"], read_bucket(delivered["s3"], BUCKET)
    key = _newest(content.log_keys, "us-east-1")[0]
    original = Tampered(s3, key)
    raw = bytearray(gzip.decompress(original.body))
    raw[len(raw) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(bytes(raw)))
    try:
        aws, ours = _validate(delivered, "us-east-1")
        assert aws.returncode == 1 and f"{key}\tINVALID: hash value doesn't match" in aws.stderr
        assert ours.returncode == 1 and f"{key}\tINVALID: hash value doesn't match" in ours.stderr
    finally:
        original.restore()


def test_a_deleted_log_file_is_detected_by_both(delivered) -> None:
    s3, content = delivered["s3"], read_bucket(delivered["s3"], BUCKET)
    key = _newest(content.log_keys, "us-east-1")[-1]
    original = Tampered(s3, key)
    s3.delete_object(Bucket=BUCKET, Key=key)
    try:
        aws, ours = _validate(delivered, "us-east-1")
        assert aws.returncode == 1 and f"{key}\tINVALID: not found" in aws.stderr
        assert ours.returncode == 1 and f"{key}\tINVALID: not found" in ours.stderr
    finally:
        original.restore()


def test_an_edited_digest_is_detected_by_both(delivered) -> None:
    s3, content = delivered["s3"], read_bucket(delivered["s3"], BUCKET)
    key = _newest(content.digest_keys, "eu-west-1")[-1]
    original = Tampered(s3, key)
    digest = json.loads(gzip.decompress(original.body))
    digest["logFiles"] = digest["logFiles"][1:]
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(digest).encode()),
                  Metadata=original.metadata)
    try:
        aws, ours = _validate(delivered, "eu-west-1")
        assert aws.returncode == 1 and "INVALID: signature verification failed" in aws.stderr
        assert ours.returncode == 1 and "INVALID: signature verification failed" in ours.stderr
    finally:
        original.restore()


def test_a_deleted_newest_digest_is_flagged_by_searchtrail_only(delivered) -> None:
    s3, content = delivered["s3"], read_bucket(delivered["s3"], BUCKET)
    digests = _newest(content.digest_keys, "us-east-1")
    original = Tampered(s3, digests[-1])
    s3.delete_object(Bucket=BUCKET, Key=digests[-1])
    try:
        aws, ours = _validate(delivered, "us-east-1")
        assert aws.returncode == 0  # the AWS CLI cannot see a missing newest digest
        assert ours.returncode == 1
        assert "newest digest missing" in ours.stderr
    finally:
        original.restore()


def test_env_and_trail_validate_follow_the_s3_endpoint_the_server_was_started_with(
        delivered) -> None:
    """The server got --s3-endpoint-url on its command line: `env` points S3 clients there
    (it pointed them at the server's /_s3, which does not serve those buckets) and `trail
    validate` reads the buckets there without being told again."""
    server, moto = delivered["server"], delivered["moto"]
    exports = searchtrail_cli("env", "--data-dir", str(server.data_dir))
    assert f"export AWS_ENDPOINT_URL_S3={moto.endpoint}\n" in exports.stdout, exports.stdout
    ours = searchtrail_cli("trail", "validate", "--trail-arn", delivered["trail_arn"],
                           "--start-time", "2020-01-01T00:00:00Z", "--data-dir",
                           str(server.data_dir), env=dict(MOTO_CREDENTIALS))
    assert ours.returncode == 0, ours.stdout + ours.stderr
    digests, logs = counts(ours.stdout)
    assert digests and logs and not digests.startswith("0/"), ours.stdout


def test_a_local_bucket_is_refused_where_trails_deliver_to_s3(delivered) -> None:
    """It used to be made in the data dir: a node then delivered its trails' files there,
    out of the S3 store every other node and the validators read."""
    server, moto = delivered["server"], delivered["moto"]
    made = searchtrail_cli("buckets", "create", "local-only", "--data-dir", str(server.data_dir))
    said = " ".join(made.stderr.split())
    assert made.returncode == 1, made.stdout + made.stderr
    assert f"deliver to the S3-compatible store at {moto.endpoint}, not to local buckets" in said
    assert not (server.data_dir / "buckets" / "local-only").exists()
