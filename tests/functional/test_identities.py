"""IAM and STS through boto3: roles assumed for real, recorded with the userIdentity AWS writes."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from tests.clients import boto3_client

SEED_IDENTITY_KEYS = ["type", "principalId", "arn", "accountId", "accessKeyId", "sessionContext"]


def trust_for(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "sts:AssumeRole"}]})


def record_of(server, event_name: str, request_id: str, region: str = "us-east-1") -> dict:  # type: ignore[no-untyped-def]
    events = server.client("cloudtrail", region=region).lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": event_name}], MaxResults=50)["Events"]
    found = [json.loads(e["CloudTrailEvent"]) for e in events]
    found = [r for r in found if r["requestID"] == request_id]
    assert len(found) == 1, f"{event_name} {request_id}: {len(found)}"
    return found[0]


@pytest.mark.parametrize("service, operation, params, said", [
    ("sts", "assume_role", {"RoleArn": "arn:aws:iam::123456789012:role/x",
                            "RoleSessionName": "bad name!"},
     "Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy "
     "regular expression pattern: [\\w+=,.@-]*"),
    ("sts", "get_session_token", {"DurationSeconds": 5},
     "Value '5' at 'durationSeconds' failed to satisfy constraint: Member must have value "
     "greater than or equal to 900"),
    ("iam", "list_users", {"MaxItems": 0},
     "Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater "
     "than or equal to 1"),
    ("iam", "list_users", {"MaxItems": "abc"},
     "Value 'abc' at 'maxItems' failed to satisfy constraint: Member must be an integer"),
    ("iam", "tag_user", {"UserName": "u",
                         "Tags": [{"Key": "k", "Value": "v"}, {"Key": "!", "Value": "v"}]},
     "Value '!' at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy"),
])
def test_query_validation_errors_name_members_as_aws_does(server, service, operation, params,
                                                          said) -> None:
    """lowerCamel names and query paths, whichever check fails (the constraint checks used to
    say 'RoleSessionName' and 'Tags.1.Key', the type checks 'maxItems')."""
    from botocore.config import Config

    client = boto3_client(service, region_name="us-east-1", endpoint_url=server.endpoint,
                          aws_access_key_id=server.credentials()[0],
                          aws_secret_access_key=server.credentials()[1],
                          config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        getattr(client, operation)(**params)
    error = refused.value.response["Error"]
    assert (error["Code"], error["Type"]) == ("ValidationError", "Sender")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"].startswith("1 validation error detected: " + said), error["Message"]


def test_assumed_role_create_collection_matches_the_seed_record(server) -> None:
    iam = server.client("iam")
    account = server.client("sts").get_caller_identity()["Account"]
    # Roles are assumed by IAM users (AWS refuses root): an operator with sts:AssumeRole.
    iam.create_user(UserName="operator")
    iam.put_user_policy(UserName="operator", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": "*"}]}))
    operator_key = iam.create_access_key(UserName="operator")["AccessKey"]
    sts = server.client("sts", key=(operator_key["AccessKeyId"], operator_key["SecretAccessKey"]))
    role = iam.create_role(RoleName="Admin", AssumeRolePolicyDocument=trust_for(account))["Role"]
    iam.put_role_policy(RoleName="Admin", PolicyName="all-aoss", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "aoss:*",
                                                "Resource": "*"}]}))
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="test-session")
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    session_key = (credentials["AccessKeyId"], credentials["SecretAccessKey"])

    aoss = boto3_client(
        "opensearchserverless", region_name="us-east-1", endpoint_url=server.endpoint,
        aws_access_key_id=session_key[0], aws_secret_access_key=session_key[1],
        aws_session_token=credentials["SessionToken"])
    with pytest.raises(ClientError) as error:  # no encryption policy: the seed's call failed too
        aoss.create_collection(name="test-collection", description="A sample collection")
    request_id = error.value.response["ResponseMetadata"]["RequestId"]
    record = record_of(server, "CreateCollection", request_id)

    identity = record["userIdentity"]
    assert list(identity) == SEED_IDENTITY_KEYS
    assert identity["type"] == "AssumedRole"
    assert re.fullmatch(r"AROA[A-Z0-9]{17}:test-session", identity["principalId"])
    assert identity["principalId"].split(":")[0] == role["RoleId"]
    assert identity["arn"] == f"arn:aws:sts::{account}:assumed-role/Admin/test-session"
    assert identity["accountId"] == account
    assert identity["accessKeyId"] == credentials["AccessKeyId"]
    context = identity["sessionContext"]
    assert list(context) == ["sessionIssuer", "webIdFederationData", "attributes"]
    assert context["sessionIssuer"] == {"type": "Role", "principalId": role["RoleId"],
                                        "arn": role["Arn"], "accountId": account,
                                        "userName": "Admin"}
    assert context["webIdFederationData"] == {}
    created = datetime.strptime(context["attributes"]["creationDate"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).total_seconds() < 300
    assert context["attributes"]["mfaAuthenticated"] == "false"
    assert record["eventSource"] == "aoss.amazonaws.com"
    assert record["errorCode"] == "ValidationException"
    assert record["requestParameters"] == {"accountId": account, "name": "test-collection",
                                           "description": "A sample collection",
                                           "clientToken": record["requestParameters"]["clientToken"]}
    assert record["responseElements"] is None
    assert record["recipientAccountId"] == account

    assume_record = record_of(server, "AssumeRole", assumed["ResponseMetadata"]["RequestId"])
    assert assume_record["eventSource"] == "sts.amazonaws.com"
    assert assume_record["requestParameters"]["roleArn"] == role["Arn"]
    assert assume_record["requestParameters"]["roleSessionName"] == "test-session"
    assert assume_record["readOnly"] is True
    issued = assume_record["responseElements"]
    assert issued["credentials"]["accessKeyId"] == credentials["AccessKeyId"]
    # as AWS's STS records write it: "Jul 18, 2023, 4:07:39 PM" (UTC)
    written = issued["credentials"]["expiration"]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M", written)
    assert datetime.strptime(written, "%b %d, %Y, %I:%M:%S %p").replace(
        tzinfo=timezone.utc) == credentials["Expiration"]
    assert issued["assumedRoleUser"]["arn"] == identity["arn"]
    assert credentials["SecretAccessKey"] not in json.dumps(assume_record)


def test_iam_calls_are_global_events_in_us_east_1(server) -> None:
    iam = server.client("iam", region="eu-west-2")
    response = iam.create_user(UserName="global-user")
    record = record_of(server, "CreateUser", response["ResponseMetadata"]["RequestId"])
    assert record["eventSource"] == "iam.amazonaws.com"
    assert record["awsRegion"] == "us-east-1"
    assert record["requestParameters"] == {"userName": "global-user"}
    with pytest.raises(ClientError) as error:
        iam.get_user(UserName="nobody-here")
    assert error.value.response["Error"]["Code"] == "NoSuchEntity"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    failed = record_of(server, "GetUser", error.value.response["ResponseMetadata"]["RequestId"])
    assert failed["errorCode"] == "NoSuchEntity"
