"""The foundation's acceptance flow through boto3: policies, a collection's life, every call recorded."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def record_for(cloudtrail, event_name: str, request_id: str) -> dict:
    """The one record of a call, found by event name as a user would, matched by request id."""
    matches, token = [], None
    for _ in range(20):  # bounded paging
        kwargs = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
                  "MaxResults": 50}
        if token:
            kwargs["NextToken"] = token
        page = cloudtrail.lookup_events(**kwargs)
        for item in page["Events"]:
            record = json.loads(item["CloudTrailEvent"])
            if record["requestID"] == request_id:
                matches.append((item, record))
        token = page.get("NextToken")
        if not token:
            break
    assert len(matches) == 1, f"{event_name} {request_id}: {len(matches)} records"
    item, record = matches[0]
    assert item["EventId"] == record["eventID"]
    assert item["EventName"] == event_name
    assert item["ReadOnly"] == ("true" if record["readOnly"] else "false")
    return record


def check_common_fields(record: dict, *, account: str, key_id: str, event_name: str,
                        read_only: bool, region: str = "us-east-1",
                        source: str = "aoss.amazonaws.com") -> None:
    assert record["eventVersion"] == "1.11"
    assert record["userIdentity"] == {"type": "Root", "principalId": account,
                                      "arn": f"arn:aws:iam::{account}:root",
                                      "accountId": account, "accessKeyId": key_id}
    event_time = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - event_time) < timedelta(minutes=5)
    assert record["eventSource"] == source
    assert record["eventName"] == event_name
    assert record["awsRegion"] == region
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert UUID.match(record["eventID"])
    assert UUID.match(record["requestID"])
    assert record["readOnly"] is read_only
    assert record["eventType"] == "AwsApiCall"
    assert record["managementEvent"] is True
    assert record["recipientAccountId"] == account
    assert record["eventCategory"] == "Management"
    assert "tlsDetails" not in record  # plain HTTP


def account_of(server) -> str:  # type: ignore[no-untyped-def]
    aoss = server.client("opensearchserverless")
    # The account id is in every record; read it from one, as a user would.
    request_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    record = record_for(server.client("cloudtrail"), "ListCollections", request_id)
    return record["recipientAccountId"]


def test_policies_and_collection_lifecycle_are_each_recorded(server) -> None:
    aoss = server.client("opensearchserverless")
    cloudtrail = server.client("cloudtrail")
    key_id = server.credentials()[0]
    account = account_of(server)
    suffix = uuid.uuid4().hex[:6]
    name = f"app-logs{suffix}"
    calls = []

    enc = aoss.create_security_policy(
        name=f"enc-{suffix}", type="encryption",
        policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/app*"]}],
                           "AWSOwnedKey": True}))
    assert enc["securityPolicyDetail"]["policy"]["AWSOwnedKey"] is True
    calls.append(("CreateSecurityPolicy", enc, False))
    net = aoss.create_security_policy(
        name=f"net-{suffix}", type="network",
        policy=json.dumps([{"Rules": [{"ResourceType": "collection",
                                       "Resource": [f"collection/{name}"]}],
                            "AllowFromPublic": True}]))
    calls.append(("CreateSecurityPolicy", net, False))

    created = aoss.create_collection(name=name, description="app logs")
    detail = created["createCollectionDetail"]
    assert detail["status"] == "CREATING"
    assert detail["type"] == "TIMESERIES"
    assert detail["kmsKeyArn"] == "auto"
    assert detail["arn"] == f"arn:aws:aoss:us-east-1:{account}:collection/{detail['id']}"
    calls.append(("CreateCollection", created, False))

    deadline = time.monotonic() + 30
    status = "CREATING"
    while status != "ACTIVE" and time.monotonic() < deadline:
        got = aoss.batch_get_collection(ids=[detail["id"]])
        status = got["collectionDetails"][0]["status"]
        if status != "ACTIVE":
            time.sleep(0.2)  # the collection becomes ACTIVE after the configured delay
    assert status == "ACTIVE"
    calls.append(("BatchGetCollection", got, True))

    listed = aoss.list_collections(collectionFilters={"name": name})
    assert [c["name"] for c in listed["collectionSummaries"]] == [name]
    calls.append(("ListCollections", listed, True))
    updated = aoss.update_collection(id=detail["id"], description="renamed")
    assert updated["updateCollectionDetail"]["description"] == "renamed"
    calls.append(("UpdateCollection", updated, False))
    deleted = aoss.delete_collection(id=detail["id"])
    assert deleted["deleteCollectionDetail"]["status"] == "DELETING"
    calls.append(("DeleteCollection", deleted, False))

    for event_name, response, read_only in calls:
        request_id = response["ResponseMetadata"]["RequestId"]
        record = record_for(cloudtrail, event_name, request_id)
        check_common_fields(record, account=account, key_id=key_id, event_name=event_name,
                            read_only=read_only)
        assert "errorCode" not in record and "errorMessage" not in record
        assert record["requestParameters"]["accountId"] == account
        if read_only:
            assert record["responseElements"] is None
        else:
            assert record["responseElements"] is not None

    create_record = record_for(cloudtrail, "CreateCollection",
                               created["ResponseMetadata"]["RequestId"])
    assert create_record["requestParameters"]["name"] == name
    assert create_record["requestParameters"]["description"] == "app logs"
    assert create_record["requestParameters"]["clientToken"]
    assert create_record["responseElements"]["createCollectionDetail"]["id"] == detail["id"]
    assert create_record["resources"][0]["ARN"] == detail["arn"]


def test_failures_leave_exactly_one_record_with_their_error_code(server) -> None:
    aoss = server.client("opensearchserverless")
    cloudtrail = server.client("cloudtrail")
    suffix = uuid.uuid4().hex[:6]
    aoss.create_security_policy(
        name=f"enc-dup-{suffix}", type="encryption",
        policy=json.dumps({"Rules": [{"ResourceType": "collection",
                                      "Resource": [f"collection/dup{suffix}"]}],
                           "AWSOwnedKey": True}))
    aoss.create_collection(name=f"dup{suffix}")

    failures = []
    with pytest.raises(ClientError) as conflict:
        aoss.create_collection(name=f"dup{suffix}")
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    failures.append(("CreateCollection", conflict.value, "ConflictException"))

    with pytest.raises(ClientError) as no_policy:
        aoss.create_collection(name=f"nopolicy{suffix}")
    assert no_policy.value.response["Error"]["Code"] == "ValidationException"
    assert no_policy.value.response["Error"]["Message"] == (
        f"No matching security policy of encryption type found for collection name: "
        f"nopolicy{suffix}. Please create security policy of encryption type for this collection.")
    failures.append(("CreateCollection", no_policy.value, "ValidationException"))

    unchecked = server.client("opensearchserverless", validate=False)
    with pytest.raises(ClientError) as bad_name:
        unchecked.create_collection(name="Invalid Name!")
    assert bad_name.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'name' failed to satisfy constraint" in bad_name.value.response["Error"]["Message"]
    assert bad_name.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    failures.append(("CreateCollection", bad_name.value, "ValidationException"))

    for event_name, error, code in failures:
        request_id = error.response["ResponseMetadata"]["RequestId"]
        record = record_for(cloudtrail, event_name, request_id)
        assert record["errorCode"] == code
        assert record["errorMessage"] == error.response["Error"]["Message"]
        assert record["responseElements"] is None
