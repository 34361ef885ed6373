"""The deny matrix (reliability plan §3.6, A1–A7) through boto3: every denial is a 403 with AWS's
message, changes nothing, and leaves one record with its errorCode."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.clients import boto3_client
from tests.functional.server import ServerProcess
from tests.functional.trails import searchtrail_cli

REGION = "ca-west-1"  # this file's own region


def statement(effect: str, action, resource="*", **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class User:
    """An IAM user made through boto3's IAM client, with its own keys and clients."""

    def __init__(self, server: ServerProcess, *statements: dict) -> None:
        self.server = server
        self.name = "u" + uuid.uuid4().hex[:10]
        self.iam = server.client("iam")
        self.arn = self.iam.create_user(UserName=self.name)["User"]["Arn"]
        if statements:
            self.iam.put_user_policy(UserName=self.name, PolicyName="p", PolicyDocument=document(*statements))
        key = self.iam.create_access_key(UserName=self.name)["AccessKey"]
        self.key_id = key["AccessKeyId"]
        self.key = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return self.server.client(service, region=REGION, key=self.key)


def denied(call) -> ClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return error.value


def record_of(server, request_id: str, event_name: str, region: str = REGION) -> dict:  # type: ignore[no-untyped-def]
    events = server.client("cloudtrail", region=region).lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": event_name}], MaxResults=50)["Events"]
    found = [json.loads(e["CloudTrailEvent"]) for e in events]
    found = [r for r in found if r["requestID"] == request_id]
    assert len(found) == 1
    return found[0]


def encryption_policy(name: str) -> str:
    return json.dumps({"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}*"]}],
                       "AWSOwnedKey": True})


def test_a1_no_policy_is_an_implicit_deny_with_no_side_effect(server) -> None:
    user = User(server)
    error = denied(lambda: user.client("opensearchserverless").create_security_policy(
        name="a1-policy", type="encryption", policy=encryption_policy("a1")))
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["Error"]["Message"] == (
        f"User: {user.arn} is not authorized to perform: aoss:CreateSecurityPolicy because no "
        "identity-based policy allows the aoss:CreateSecurityPolicy action")
    root = server.client("opensearchserverless", region=REGION)
    with pytest.raises(ClientError):  # nothing was created
        root.get_security_policy(name="a1-policy", type="encryption")
    record = record_of(server, error.response["ResponseMetadata"]["RequestId"], "CreateSecurityPolicy")
    assert record["errorCode"] == "AccessDeniedException"
    assert record["errorMessage"] == error.response["Error"]["Message"]
    assert record["userIdentity"]["arn"] == user.arn


def test_a2_explicit_deny_wins_over_allow(server) -> None:
    user = User(server, statement("Allow", "*"), statement("Deny", "aoss:CreateCollection"))
    aoss = user.client("opensearchserverless")
    aoss.create_security_policy(name="a2-policy", type="encryption", policy=encryption_policy("a2"))
    error = denied(lambda: aoss.create_collection(name="a2-collection"))
    assert error.response["Error"]["Message"] == (
        f"User: {user.arn} is not authorized to perform: aoss:CreateCollection with an "
        "explicit deny in an identity-based policy")  # no resource type: no " on resource"
    assert server.client("opensearchserverless", region=REGION).list_collections(
        collectionFilters={"name": "a2-collection"})["collectionSummaries"] == []


def test_a3_wildcards_notaction_and_case(server) -> None:
    user = User(server, statement("Allow", "AOSS:create*"), statement("Allow", "aoss:List*"))
    aoss = user.client("opensearchserverless")
    aoss.create_security_policy(name="a3-policy", type="encryption", policy=encryption_policy("a3"))
    aoss.list_collections()
    denied(lambda: aoss.get_security_policy(name="a3-policy", type="encryption"))
    everything_but_deletes = User(server, {"Effect": "Allow", "NotAction": "aoss:Delete*",
                                           "Resource": "*"})
    other = everything_but_deletes.client("opensearchserverless")
    other.get_security_policy(name="a3-policy", type="encryption")
    denied(lambda: other.delete_security_policy(name="a3-policy", type="encryption"))


def test_a4_resource_arns_scope_the_grant(server) -> None:
    root = server.client("opensearchserverless", region=REGION)
    root.create_security_policy(name="a4-policy", type="encryption", policy=encryption_policy("a4"))
    first = root.create_collection(name="a4-first")["createCollectionDetail"]
    second = root.create_collection(name="a4-second")["createCollectionDetail"]
    user = User(server, statement("Allow", "aoss:UpdateCollection", first["arn"]))
    aoss = user.client("opensearchserverless")
    error = denied(lambda: aoss.update_collection(id=second["id"], description="x"))
    assert f"on resource: {second['arn']}" in error.response["Error"]["Message"]
    other_region = first["arn"].replace(REGION, "eu-north-1")
    elsewhere = User(server, statement("Allow", "aoss:UpdateCollection", other_region))
    denied(lambda: elsewhere.client("opensearchserverless").update_collection(id=first["id"]))


def test_a5_conditions(server) -> None:
    not_from_here = User(server, statement("Allow", "aoss:List*"), statement(
        "Deny", "*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    denied(lambda: not_from_here.client("opensearchserverless").list_collections())
    only_here = User(server, statement("Allow", "aoss:List*", Condition={
        "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
        "StringEquals": {"aws:RequestedRegion": REGION}}))
    only_here.client("opensearchserverless").list_collections()
    other_region = only_here.server.client("opensearchserverless", region="eu-north-1",
                                           key=only_here.key)
    denied(lambda: other_region.list_collections())
    needs_mfa = User(server, statement("Allow", "aoss:List*", Condition={
        "Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    denied(lambda: needs_mfa.client("opensearchserverless").list_collections())
    unless_mfa_false = User(server, statement("Allow", "aoss:List*", Condition={
        "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}))
    unless_mfa_false.client("opensearchserverless").list_collections()  # key absent: IfExists holds
    with pytest.raises(ClientError) as refused:  # IAM refuses an unknown operator outright
        User(server, statement("Allow", "aoss:List*", Condition={
            "StringEqualsMaybe": {"aws:username": "x"}}))
    assert refused.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_a6_trust_and_session_policies(server) -> None:
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    somebody_else = User(server)
    nobody = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": somebody_else.arn}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName="a6-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=nobody)["Role"]
    user = User(server, statement("Allow", "sts:AssumeRole"))
    error = denied(lambda: user.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="denied"))
    assert error.response["Error"]["Code"] == "AccessDenied"
    record = record_of(server, error.response["ResponseMetadata"]["RequestId"], "AssumeRole")
    assert record["eventSource"] == "sts.amazonaws.com"
    assert record["errorCode"] == "AccessDenied"

    trusting = iam.create_role(RoleName="a6t-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName=trusting["RoleName"], PolicyName="aoss",
                        PolicyDocument=document(statement("Allow", "aoss:*")))
    session = user.client("sts").assume_role(
        RoleArn=trusting["Arn"], RoleSessionName="narrow",
        Policy=document(statement("Allow", "aoss:ListCollections")))["Credentials"]
    narrow = boto3_client(
        "opensearchserverless", region_name=REGION, endpoint_url=server.endpoint,
        aws_access_key_id=session["AccessKeyId"], aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"])
    narrow.list_collections()
    error = denied(lambda: narrow.list_security_policies(type="encryption"))
    assert "no session policy allows" in error.response["Error"]["Message"]


def test_a7_detaching_a_policy_or_deactivating_a_key_applies_on_the_next_call(server) -> None:
    user = User(server, statement("Allow", "aoss:List*"))
    aoss = user.client("opensearchserverless")
    aoss.list_collections()
    user.iam.delete_user_policy(UserName=user.name, PolicyName="p")
    denied(lambda: aoss.list_collections())

    managed = user.iam.create_policy(PolicyName="a7-" + uuid.uuid4().hex[:6],
                                     PolicyDocument=document(statement("Allow", "aoss:List*")))
    user.iam.attach_user_policy(UserName=user.name, PolicyArn=managed["Policy"]["Arn"])
    aoss.list_collections()
    user.iam.detach_user_policy(UserName=user.name, PolicyArn=managed["Policy"]["Arn"])
    denied(lambda: aoss.list_collections())

    user.iam.attach_user_policy(UserName=user.name, PolicyArn=managed["Policy"]["Arn"])
    aoss.list_collections()
    user.iam.update_access_key(UserName=user.name, AccessKeyId=user.key_id, Status="Inactive")
    error = denied(lambda: aoss.list_collections())
    assert error.response["Error"]["Code"] == "UnrecognizedClientException"


def test_trust_conditions_see_the_request(server) -> None:
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    role = iam.create_role(RoleName="ext-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "s3cret"}}}]}))["Role"]
    user = User(server, statement("Allow", "sts:AssumeRole"))
    sts = user.client("sts")
    denied(lambda: sts.assume_role(RoleArn=role["Arn"], RoleSessionName="wrong", ExternalId="guess"))
    assert sts.assume_role(RoleArn=role["Arn"], RoleSessionName="right",
                           ExternalId="s3cret")["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_iam_calls_are_judged_on_the_entitys_own_arn_with_its_path_and_case(server) -> None:
    """The resource of an IAM call naming a user or role is that entity's ARN as stored: a
    Deny on its path, or on its name in its own case, holds however the request spells it.
    (It was the ARN written from the request: no path, the caller's case.)"""
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    tag = uuid.uuid4().hex[:6]
    boss = iam.create_user(UserName=f"boss-{tag}", Path="/admins/")["User"]
    role = iam.create_role(RoleName=f"adminrole-{tag}", Path="/admins/",
                           AssumeRolePolicyDocument=document({
                               "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                               "Action": "sts:AssumeRole"}))["Role"]
    plain = iam.create_user(UserName=f"plain-{tag}")["User"]
    user = User(server, statement("Allow", "iam:*"),
                statement("Deny", "iam:*", [f"arn:aws:iam::{account}:user/admins/*",
                                            f"arn:aws:iam::{account}:role/admins/*",
                                            plain["Arn"]]))
    mine = user.client("iam")
    error = denied(lambda: mine.create_access_key(UserName=boss["UserName"]))
    assert f"on resource: {boss['Arn']}" in error.response["Error"]["Message"]
    denied(lambda: mine.put_role_policy(RoleName=role["RoleName"], PolicyName="pwn",
                                        PolicyDocument=document(statement("Allow", "*"))))
    denied(lambda: mine.update_assume_role_policy(RoleName=role["RoleName"].upper(),
                                                  PolicyDocument=document()))
    denied(lambda: mine.put_user_policy(UserName=plain["UserName"].upper(), PolicyName="pwn",
                                        PolicyDocument=document(statement("Allow", "*"))))
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == []
    assert iam.list_user_policies(UserName=plain["UserName"])["PolicyNames"] == []
    assert iam.list_access_keys(UserName=boss["UserName"])["AccessKeyMetadata"] == []


def test_a_tag_call_naming_a_resource_in_another_partition_does_not_reach_it(server) -> None:
    """arn:aws-cn:... is not this collection's ARN: a Deny on the real one must not be
    stepped around by spelling another partition. (The tags were applied before.)"""
    root = server.client("opensearchserverless", region=REGION)
    root.create_security_policy(name="part-policy", type="encryption",
                                policy=encryption_policy("part"))
    collection = root.create_collection(name="part-one")["createCollectionDetail"]
    user = User(server, statement("Allow", "aoss:*"),
                statement("Deny", "aoss:*", collection["arn"]))
    aoss = user.client("opensearchserverless")
    denied(lambda: aoss.tag_resource(resourceArn=collection["arn"],
                                     tags=[{"key": "k", "value": "v"}]))
    for partition in ("aws-cn", "aws-us-gov", "xyz"):
        spoofed = collection["arn"].replace("arn:aws:", f"arn:{partition}:", 1)
        with pytest.raises(ClientError) as refused:
            aoss.tag_resource(resourceArn=spoofed, tags=[{"key": "k", "value": "v"}])
        assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert root.list_tags_for_resource(resourceArn=collection["arn"])["tags"] == []


def test_session_token_credentials_without_mfa_call_no_iam_api(server) -> None:
    """AWS: credentials from GetSessionToken cannot call any IAM API operation unless MFA
    information was given for them (they could: ListUsers, CreateUser)."""
    user = User(server, statement("Allow", "*"))
    credentials = user.client("sts").get_session_token()["Credentials"]

    def session(service: str):  # type: ignore[no-untyped-def]
        return boto3_client(service, region_name=REGION, endpoint_url=server.endpoint,
                            aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"])

    iam = session("iam")
    for call in (iam.list_users, lambda: iam.create_user(UserName="via-session")):
        error = denied(call)
        assert error.response["Error"]["Code"] == "AccessDenied"
        assert "GetSessionToken without MFA" in error.response["Error"]["Message"]
    assert session("opensearchserverless").list_collections()[
        "ResponseMetadata"]["HTTPStatusCode"] == 200  # other services as the user's policies say
    names = [u["UserName"] for u in server.client("iam").list_users()["Users"]]
    assert "via-session" not in names


def test_conditions_on_what_the_request_itself_sets(server) -> None:
    """iam:PolicyARN, aws:RequestTag/<key> and aws:TagKeys come from the request's members
    (they were never set: a Deny on them never applied, an Allow never granted)."""
    iam = server.client("iam")
    admin = iam.create_policy(PolicyName="admin-" + uuid.uuid4().hex[:6],
                              PolicyDocument=document(statement("Allow", "*")))["Policy"]["Arn"]
    reader = iam.create_policy(PolicyName="reader-" + uuid.uuid4().hex[:6],
                               PolicyDocument=document(statement("Allow", "aoss:List*")))[
        "Policy"]["Arn"]
    user = User(server, statement("Allow", ["iam:*", "aoss:*"]),
                statement("Deny", "iam:AttachUserPolicy",
                          Condition={"ArnEquals": {"iam:PolicyARN": admin}}),
                statement("Deny", ["aoss:CreateCollection", "aoss:TagResource"],
                          Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["forbidden"]}}),
                statement("Deny", "aoss:CreateCollection",
                          Condition={"Null": {"aws:RequestTag/owner": "true"}}))
    mine = user.client("iam")
    denied(lambda: mine.attach_user_policy(UserName=user.name, PolicyArn=admin))
    mine.attach_user_policy(UserName=user.name, PolicyArn=reader)
    attached = iam.list_attached_user_policies(UserName=user.name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [reader]

    root = server.client("opensearchserverless", region=REGION)
    root.create_security_policy(name="cond-policy", type="encryption",
                                policy=encryption_policy("cond"))
    aoss = user.client("opensearchserverless")
    denied(lambda: aoss.create_collection(name="cond-one", tags=[
        {"key": "owner", "value": "me"}, {"key": "forbidden", "value": "x"}]))
    denied(lambda: aoss.create_collection(name="cond-one"))  # no owner tag
    made = aoss.create_collection(name="cond-one", tags=[{"key": "owner", "value": "me"}])
    denied(lambda: aoss.tag_resource(resourceArn=made["createCollectionDetail"]["arn"],
                                     tags=[{"key": "forbidden", "value": "x"}]))


@pytest.mark.parametrize("condition", [
    {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
    {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
    {"StringEquals": {"aws:RequestedRegion": REGION}},
    {"Bool": {"aws:SecureTransport": "false"}},
])
def test_a_trust_policy_sees_the_requests_global_keys(server, condition) -> None:
    """They were missing where the STS provider checks the trust policy itself, so any
    condition on them denied."""
    user = User(server, statement("Allow", "sts:AssumeRole"))
    role = server.client("iam").create_role(
        RoleName="global-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=document({
            "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole",
            "Condition": condition}))["Role"]
    assumed = user.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="global")
    assert assumed["Credentials"]["AccessKeyId"].startswith("ASIA")
    role = server.client("iam").create_role(
        RoleName="elsewhere-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=document({
            "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))["Role"]
    denied(lambda: user.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="no"))


def test_the_aws_guides_collection_name_condition_scopes_a_user_to_its_collections(server) -> None:
    """The AWS guide's example ("Configuring permissions for collections"): aoss:* on "*" under
    StringEquals aoss:collection. The key was never filled, so the guide's policy allowed
    nothing; now it allows exactly the named collection, by name in the request or from the
    stored collection an id names."""
    suffix = uuid.uuid4().hex[:6]
    mine, other = f"logs{suffix}", f"other{suffix}"
    root = server.client("opensearchserverless", region=REGION)
    for name in (mine, other):
        root.create_security_policy(name=f"enc-{name}", type="encryption",
                                    policy=encryption_policy(name))
    theirs = root.create_collection(name=other)["createCollectionDetail"]
    user = User(server, statement("Allow", "aoss:*",
                                  Condition={"StringEquals": {"aoss:collection": mine}}))
    aoss = user.client("opensearchserverless")
    made = aoss.create_collection(name=mine)["createCollectionDetail"]
    denied(lambda: aoss.create_collection(name=other + "x"))
    got = aoss.batch_get_collection(names=[mine])["collectionDetails"]
    assert [c["name"] for c in got] == [mine]
    assert [c["id"] for c in aoss.batch_get_collection(ids=[made["id"]])["collectionDetails"]] \
        == [made["id"]]
    denied(lambda: aoss.batch_get_collection(names=[mine, other]))  # each one must be allowed
    denied(lambda: aoss.batch_get_collection(ids=[made["id"], theirs["id"]]))
    aoss.tag_resource(resourceArn=made["arn"], tags=[{"key": "team", "value": "search"}])
    denied(lambda: aoss.tag_resource(resourceArn=theirs["arn"],
                                     tags=[{"key": "team", "value": "search"}]))
    denied(lambda: aoss.delete_collection(id=theirs["id"]))
    assert root.batch_get_collection(ids=[theirs["id"]])["collectionDetails"][0]["status"] in (
        "CREATING", "ACTIVE")
    assert root.list_tags_for_resource(resourceArn=theirs["arn"])["tags"] == []


def test_policy_operations_are_judged_on_the_collections_their_rules_name(server) -> None:
    """The guide's example grants aoss:CreateAccessPolicy and aoss:CreateSecurityPolicy under
    StringEquals aoss:collection; the Service Authorization Reference gives them aoss:collection
    (and access policies aoss:index). The key was not filled there: the guide's Allow allowed
    no policy, and a Deny on it never applied."""
    suffix = uuid.uuid4().hex[:6]
    mine, other = f"mine{suffix}", f"other{suffix}"

    root_arn = "arn:aws:iam::{}:root".format(
        server.client("sts").get_caller_identity()["Account"])

    def rules(*resources: str) -> str:
        return json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": list(resources),
                                       "Permission": ["aoss:DescribeCollectionItems"]}],
                            "Principal": [root_arn]}])

    def network(*resources: str) -> str:
        return json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": list(resources)}],
                            "AllowFromPublic": True}])

    scoped = User(server, statement("Allow", "aoss:*",
                                    Condition={"StringEquals": {"aoss:collection": mine}}))
    aoss = scoped.client("opensearchserverless")
    aoss.create_security_policy(name=f"enc-{mine}", type="encryption", policy=json.dumps(
        {"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{mine}"]}],
         "AWSOwnedKey": True}))
    aoss.create_security_policy(name=f"net-{mine}", type="network",
                                policy=network(f"collection/{mine}"))
    made = aoss.create_access_policy(name=f"data-{mine}", type="data",
                                     policy=rules(f"collection/{mine}"))
    denied(lambda: aoss.create_access_policy(name=f"data-{other}", type="data",
                                             policy=rules(f"collection/{other}")))
    # Every collection named must be allowed, and a pattern is not the name.
    both = rules(f"collection/{mine}", f"collection/{other}")
    denied(lambda: aoss.create_access_policy(name=f"both-{mine}", type="data", policy=both))
    denied(lambda: aoss.create_security_policy(name=f"net-{other}", type="network",
                                               policy=network(f"collection/{mine}*")))
    denied(lambda: aoss.update_access_policy(
        name=f"data-{mine}", type="data", policyVersion=made["accessPolicyDetail"]["policyVersion"],
        policy=rules(f"collection/{other}")))

    guarded = User(server, statement("Allow", "aoss:*"),
                   statement("Deny", ["aoss:CreateAccessPolicy", "aoss:CreateSecurityPolicy"],
                             Condition={"StringEquals": {"aoss:collection": other}}),
                   statement("Deny", "aoss:CreateAccessPolicy",
                             Condition={"StringLike": {"aoss:index": "secret*"}}))
    aoss = guarded.client("opensearchserverless")
    denied(lambda: aoss.create_access_policy(name=f"d1-{suffix}", type="data", policy=both))
    denied(lambda: aoss.create_security_policy(name=f"n1-{suffix}", type="network",
                                               policy=network(f"collection/{other}")))
    index_rules = json.dumps([{"Rules": [{"ResourceType": "index",
                                          "Resource": [f"index/{mine}/secrets"],
                                          "Permission": ["aoss:ReadDocument"]}],
                               "Principal": [root_arn]}])
    denied(lambda: aoss.create_access_policy(name=f"d2-{suffix}", type="data", policy=index_rules))
    aoss.create_access_policy(name=f"d3-{suffix}", type="data",
                              policy=index_rules.replace("secrets", "logs"))
    listed = server.client("opensearchserverless", region=REGION).list_access_policies(type="data")
    names = {p["name"] for p in listed["accessPolicySummaries"]}
    assert {f"data-{mine}", f"d3-{suffix}"} <= names
    assert not names & {f"data-{other}", f"both-{mine}", f"d1-{suffix}", f"d2-{suffix}"}


def test_a_deny_on_a_resources_stored_tags_applies(server) -> None:
    """aws:ResourceTag/<key> (and iam:ResourceTag/<key>) come from the resource's stored tags:
    a Deny on them used to never apply, so tagging a resource protected nothing."""
    suffix = uuid.uuid4().hex[:6]
    root = server.client("opensearchserverless", region=REGION)
    root.create_security_policy(name=f"enc-tags{suffix}", type="encryption",
                                policy=encryption_policy(f"tags{suffix}"))
    prod = root.create_collection(name=f"tags{suffix}p", tags=[
        {"key": "stage", "value": "prod"}])["createCollectionDetail"]
    dev = root.create_collection(name=f"tags{suffix}d", tags=[
        {"key": "stage", "value": "dev"}])["createCollectionDetail"]
    iam = server.client("iam")
    guarded = iam.create_role(RoleName=f"guarded{suffix}", Tags=[
        {"Key": "protected", "Value": "true"}],
        AssumeRolePolicyDocument=document({"Effect": "Allow", "Principal": {"Service": "x"},
                                           "Action": "sts:AssumeRole"}))["Role"]["RoleName"]
    plain = iam.create_role(RoleName=f"plain{suffix}", AssumeRolePolicyDocument=document({
        "Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole"}))[
        "Role"]["RoleName"]
    user = User(server, statement("Allow", ["aoss:*", "iam:*"]),
                statement("Deny", ["aoss:DeleteCollection", "aoss:UntagResource"],
                          Condition={"StringEquals": {"aws:ResourceTag/stage": "prod"}}),
                statement("Deny", "iam:PutRolePolicy",
                          Condition={"StringEquals": {"iam:ResourceTag/protected": "true"}}))
    aoss = user.client("opensearchserverless")
    denied(lambda: aoss.delete_collection(id=prod["id"]))
    denied(lambda: aoss.untag_resource(resourceArn=prod["arn"], tagKeys=["stage"]))
    aoss.untag_resource(resourceArn=dev["arn"], tagKeys=["stage"])
    assert root.list_tags_for_resource(resourceArn=prod["arn"])["tags"] == [
        {"key": "stage", "value": "prod"}]
    assert root.list_tags_for_resource(resourceArn=dev["arn"])["tags"] == []
    admin = document(statement("Allow", "*"))
    mine = user.client("iam")
    denied(lambda: mine.put_role_policy(RoleName=guarded, PolicyName="a", PolicyDocument=admin))
    mine.put_role_policy(RoleName=plain, PolicyName="a", PolicyDocument=admin)
    assert iam.list_role_policies(RoleName=guarded)["PolicyNames"] == []
    assert iam.list_role_policies(RoleName=plain)["PolicyNames"] == ["a"]


def test_a_deny_on_a_trails_stored_tags_applies(server) -> None:
    bucket = "authz-tags-" + uuid.uuid4().hex[:6]
    made = searchtrail_cli("buckets", "create", bucket, "--data-dir", str(server.data_dir))
    assert made.returncode == 0, made.stderr
    root = server.client("cloudtrail", region=REGION)
    kept = root.create_trail(Name=bucket + "-kept", S3BucketName=bucket,
                             TagsList=[{"Key": "keep", "Value": "yes"}])["TrailARN"]
    spare = root.create_trail(Name=bucket + "-spare", S3BucketName=bucket)["TrailARN"]
    user = User(server, statement("Allow", "cloudtrail:*"),
                statement("Deny", "cloudtrail:DeleteTrail",
                          Condition={"StringEquals": {"aws:ResourceTag/keep": "yes"}}))
    trails = user.client("cloudtrail")
    denied(lambda: trails.delete_trail(Name=kept))
    trails.delete_trail(Name=spare)
    assert [t["TrailARN"] for t in root.describe_trails()["trailList"]
            if t["S3BucketName"] == bucket] == [kept]


def test_aws_managed_policies_are_read_as_the_callers_policies_allow(server) -> None:
    """arn:aws:iam::aws:policy/... belongs to no account of the caller's, yet reading it needs
    only the caller's own Allow (it was refused as a cross-account read, root included)."""
    arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    root = server.client("iam")
    version = root.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    assert root.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    reader = User(server, statement("Allow", ["iam:GetPolicy*", "iam:ListPolicyVersions"]))
    assert reader.client("iam").get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
    assert reader.client("iam").list_policy_versions(PolicyArn=arn)["Versions"]
    stranger = User(server, statement("Allow", "aoss:*")).client("iam")
    assert denied(lambda: stranger.get_policy(PolicyArn=arn)).response["Error"]["Code"] == \
        "AccessDenied"
