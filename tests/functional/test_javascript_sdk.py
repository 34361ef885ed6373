"""A second SDK: the AWS SDK for JavaScript v3 (tests/sdk/javascript) against a real server.

Its wire differs from botocore's (CloudTrail's short X-Amz-Target, its own headers and
paginators, its own response parsers), which the boto3 tests cannot show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.needs import unavailable

CHECK = Path(__file__).resolve().parents[1] / "sdk" / "javascript"
AOSS_CALLS = ("CreateSecurityPolicy", "CreateCollection", "CreateCollection again",
              "BatchGetCollection", "GetSecurityPolicy", "ListTagsForResource",
              "ListCollections as the user", "BatchGetCollection as the role")


def run_check(server) -> dict:  # type: ignore[no-untyped-def]
    node = shutil.which("node")
    if node is None:
        unavailable("node is missing: apt-get install nodejs npm")
    if not (CHECK / "node_modules" / "@aws-sdk" / "client-cloudtrail").is_dir():
        unavailable(f"the JavaScript SDK is not installed: npm ci --prefix {CHECK} "
                    "(`make test` does it when npm is there)")
    key_id, secret = server.credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID=key_id,
               AWS_SECRET_ACCESS_KEY=secret, NODE_NO_WARNINGS="1")
    ran = subprocess.run([node, str(CHECK / "check.mjs")], capture_output=True, text=True,
                         timeout=120, env=env, cwd=CHECK)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_the_javascript_sdk_drives_every_service_and_is_recorded(fresh_server) -> None:
    server = fresh_server.start()
    seen = run_check(server)
    account = seen["account"]
    assert seen["rootArn"] == f"arn:aws:iam::{account}:root"

    # aoss: answers parsed by the SDK's own deserializers
    assert seen["collection"]["status"] == "CREATING"
    assert seen["collection"]["createdDateType"] == "number"  # epoch milliseconds
    assert seen["sameTokenSameId"] is True
    assert seen["listedNames"] == seen["batchNames"] == ["js-logs"]
    assert seen["policyDocument"] == {
        "Rules": [{"ResourceType": "collection", "Resource": ["collection/js-*"]}],
        "AWSOwnedKey": True}
    assert seen["tags"] == [{"key": "team", "value": "search"}]
    errors = {label: (error["name"], error["status"]) for label, error in seen["errors"].items()}
    assert errors == {"CreateCollection taken": ("ConflictException", 409),
                      "GetSecurityPolicy missing": ("ResourceNotFoundException", 404),
                      "BatchGetCollection as the user": ("AccessDeniedException", 403)}
    assert "js-reader is not authorized to perform: aoss:BatchGetCollection" in \
        seen["errors"]["BatchGetCollection as the user"]["message"]

    # IAM and STS: query-protocol XML, dates included
    assert seen["userCreateDateIsDate"] is True and seen["expirationIsDate"] is True
    assert seen["roleSessionArn"] == f"arn:aws:sts::{account}:assumed-role/js-admin/js-session"
    assert seen["trailList"] == []

    # CloudTrail: LookupEvents through the SDK's paginator holds every aoss call it made,
    # each with the SDK's User-Agent and the request id it was answered with
    assert all(event["eventTimeIsDate"] for event in seen["lookup"])
    records = {event["record"]["requestID"]: event["record"] for event in seen["lookup"]}
    made = {seen["requestIds"][label] for label in AOSS_CALLS} | {
        seen["errors"][label]["requestId"] for label in seen["errors"]}
    assert made <= set(records)
    for request_id in made:
        assert records[request_id]["eventSource"] == "aoss.amazonaws.com"
        assert records[request_id]["userAgent"].startswith("aws-sdk-js/")
    denied = records[seen["errors"]["BatchGetCollection as the user"]["requestId"]]
    assert denied["errorCode"] == "AccessDeniedException"
    assert denied["userIdentity"]["arn"] == f"arn:aws:iam::{account}:user/js-reader"
    as_role = records[seen["requestIds"]["BatchGetCollection as the role"]]
    assert as_role["userIdentity"]["type"] == "AssumedRole"

    # the IAM and STS calls are recorded too, as boto3 finds them
    cloudtrail = server.client("cloudtrail")
    for label, source in (("AssumeRole", "sts.amazonaws.com"),
                          ("CreateUser", "iam.amazonaws.com")):
        found = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": label}])["Events"]
        record = json.loads(found[0]["CloudTrailEvent"])
        assert record["requestID"] == seen["requestIds"][label]
        assert record["eventSource"] == source and record["userAgent"].startswith("aws-sdk-js/")
