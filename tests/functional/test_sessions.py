"""Temporary credentials end to end: cross-account roles, web identity, federation tokens."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta

import botocore.exceptions
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.clients import boto3_client
from tests.functional.test_cli import searchtrail

ALLOW_AOSS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "aoss:*", "Resource": "*"}]})


def session_client(server, service: str, credentials: dict, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    return boto3_client(
        service, region_name=region, endpoint_url=server.endpoint,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"])


def records(server, event_name: str, *, key=None, region="us-east-1") -> list[dict]:  # type: ignore[no-untyped-def]
    events = server.client("cloudtrail", region=region, key=key).lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": event_name}], MaxResults=50)["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in events]


def test_cross_account_assume_role_is_recorded_in_both_accounts(server) -> None:
    other = json.loads(searchtrail("accounts", "create", "--data-dir", str(server.data_dir)).stdout)
    other_key = (other["AccessKey"]["AccessKeyId"], other["AccessKey"]["SecretAccessKey"])
    account = server.client("sts").get_caller_identity()["Account"]
    # In the other account: a role that trusts our account.
    other_iam = server.client("iam", key=other_key)
    role = other_iam.create_role(RoleName="Auditor", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    other_iam.put_role_policy(RoleName="Auditor", PolicyName="aoss", PolicyDocument=ALLOW_AOSS)
    # In our account: a user allowed to assume it.
    iam = server.client("iam")
    name = "xacct-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": role["Arn"]}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = server.client("sts", key=(key["AccessKeyId"], key["SecretAccessKey"]))
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="audit")
    request_id = assumed["ResponseMetadata"]["RequestId"]

    ours = [r for r in records(server, "AssumeRole") if r["requestID"] == request_id]
    theirs = [r for r in records(server, "AssumeRole", key=other_key) if r["requestID"] == request_id]
    assert len(ours) == len(theirs) == 1
    assert ours[0]["sharedEventID"] == theirs[0]["sharedEventID"]
    assert ours[0]["eventID"] != theirs[0]["eventID"]
    assert ours[0]["recipientAccountId"] == account
    assert theirs[0]["recipientAccountId"] == other["AccountId"]
    # the role's account sees who called as an account and a principal id, nothing more
    assert ours[0]["userIdentity"]["arn"].endswith(f":user/{name}")
    assert theirs[0]["userIdentity"] == {"type": "AWSAccount",
                                         "principalId": ours[0]["userIdentity"]["principalId"],
                                         "accountId": account}

    # The session acts in the other account, and its records land there.
    aoss = session_client(server, "opensearchserverless", assumed["Credentials"])
    listed = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    there = [r for r in records(server, "ListCollections", key=other_key) if r["requestID"] == listed]
    assert there and there[0]["userIdentity"]["arn"] == (
        f"arn:aws:sts::{other['AccountId']}:assumed-role/Auditor/audit")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_web_identity_session_and_its_record(server, tmp_path) -> None:
    issuer_host = f"idp-{uuid.uuid4().hex[:6]}.example.com"
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    provider = iam.create_open_id_connect_provider(Url=f"https://{issuer_host}",
                                                   ClientIDList=["searchtrail-app"],
                                                   ThumbprintList=["a" * 40])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                      "n": _b64(numbers.n.to_bytes(256, "big")), "e": _b64(b"\x01\x00\x01")}]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    done = searchtrail("iam", "set-oidc-jwks", "--provider-arn", provider["OpenIDConnectProviderArn"],
                       "--jwks-file", str(tmp_path / "jwks.json"), "--data-dir", str(server.data_dir))
    assert done.returncode == 0, done.stderr
    role = iam.create_role(RoleName="WebApp-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider["OpenIDConnectProviderArn"]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer_host}:aud": "searchtrail-app"}}}]}))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="aoss", PolicyDocument=ALLOW_AOSS)

    now = int(time.time())
    header = _b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iss": f"https://{issuer_host}", "aud": "searchtrail-app",
                              "sub": "user-42", "iat": now, "exp": now + 600}).encode())
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{header}.{claims}.{_b64(signature)}"

    unsigned = boto3_client("sts", region_name="us-east-1", endpoint_url=server.endpoint,
                            aws_access_key_id="unused", aws_secret_access_key="unused")
    assumed = unsigned.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="web",
                                                     WebIdentityToken=token)
    assert assumed["SubjectFromWebIdentityToken"] == "user-42"
    request_id = assumed["ResponseMetadata"]["RequestId"]
    found = [r for r in records(server, "AssumeRoleWithWebIdentity") if r["requestID"] == request_id]
    assert len(found) == 1
    identity = found[0]["userIdentity"]
    assert identity["type"] == "WebIdentityUser"
    assert identity["userName"] == "user-42"
    assert token not in json.dumps(found[0])  # the token itself is never recorded

    aoss = session_client(server, "opensearchserverless", assumed["Credentials"])
    listed = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    record = [r for r in records(server, "ListCollections") if r["requestID"] == listed][0]
    context = record["userIdentity"]["sessionContext"]
    assert record["userIdentity"]["type"] == "AssumedRole"
    assert context["webIdFederationData"]["federatedProvider"] == provider["OpenIDConnectProviderArn"]
    assert record["recipientAccountId"] == account


def test_federation_token_is_a_federated_user(server) -> None:
    iam = server.client("iam")
    name = "fed-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:*", "aoss:*"],
                                                "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = server.client("sts", key=(key["AccessKeyId"], key["SecretAccessKey"]))
    token = sts.get_federation_token(Name="bob", Policy=ALLOW_AOSS)
    account = token["FederatedUser"]["Arn"].split(":")[4]
    aoss = session_client(server, "opensearchserverless", token["Credentials"])
    listed = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    record = [r for r in records(server, "ListCollections") if r["requestID"] == listed][0]
    identity = record["userIdentity"]
    assert identity["type"] == "FederatedUser"
    assert identity["principalId"] == f"{account}:bob"
    assert identity["arn"] == f"arn:aws:sts::{account}:federated-user/bob"
    assert identity["sessionContext"]["sessionIssuer"]["type"] == "IAMUser"
    assert identity["sessionContext"]["sessionIssuer"]["userName"] == name


def test_deeply_nested_documents_are_malformed_not_internal_errors(server) -> None:
    """JSON nested past Python's recursion limit, in a web identity token or a policy: the
    caller's error, refused as such and recorded (it was a 500 from a RecursionError)."""
    import botocore.exceptions
    import pytest

    def refused(call, **params) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call(**params)
        return error.value.response["Error"]["Code"], \
            error.value.response["ResponseMetadata"]["RequestId"]

    account = server.client("sts").get_caller_identity()["Account"]
    deep_claims = _b64(b"[" * 3000 + b"]" * 3000)
    unsigned = boto3_client("sts", region_name="us-east-1", endpoint_url=server.endpoint,
                            aws_access_key_id="unused", aws_secret_access_key="unused")
    code, request_id = refused(unsigned.assume_role_with_web_identity,
                               RoleArn=f"arn:aws:iam::{account}:role/any", RoleSessionName="web",
                               WebIdentityToken=f"{_b64(b'{}')}.{deep_claims}.{_b64(b'sig')}")
    assert code == "InvalidIdentityToken"
    assert [r["errorCode"] for r in records(server, "AssumeRoleWithWebIdentity")
            if r["requestID"] == request_id] == ["InvalidIdentityToken"]

    def deep_policy(levels: int) -> str:
        return '{"Version":"2012-10-17","Statement":' + "[" * levels + "]" * levels + "}"

    iam = server.client("iam")
    code, request_id = refused(iam.create_policy, PolicyName="deep-" + uuid.uuid4().hex[:6],
                               PolicyDocument=deep_policy(3000))
    assert code == "MalformedPolicyDocument"
    assert [r["errorCode"] for r in records(server, "CreatePolicy")
            if r["requestID"] == request_id] == ["MalformedPolicyDocument"]
    name = "deep-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:*",
                                                "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = server.client("sts", key=(key["AccessKeyId"], key["SecretAccessKey"]))
    # 2,037 characters: within a session policy's 2,048, so it is parsed
    code, _ = refused(sts.get_federation_token, Name="bob", Policy=deep_policy(1000))
    assert code == "MalformedPolicyDocument"


@pytest.mark.parametrize("text", [
    # the Deny read last by one parser and first by another
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"aoss:*","Resource":"*",'
    '"Effect":"Allow"}]}',
    # not JSON: every call by its user answered 500
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"aoss:*","Resource":"*",'
    '"Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":NaN}}}]}',
])
def test_a_policy_iam_could_read_two_ways_is_malformed(server, text) -> None:
    iam = server.client("iam")
    name = "strict-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    assert _error_code(iam.put_user_policy, UserName=name, PolicyName="p",
                       PolicyDocument=text) == "MalformedPolicyDocument"
    assert _error_code(iam.create_policy, PolicyName=name,
                       PolicyDocument=text) == "MalformedPolicyDocument"
    account = server.client("sts").get_caller_identity()["Account"]
    assert _error_code(iam.create_role, RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{account}:user/{name}"}}]})) \
        == "MalformedPolicyDocument"  # it let everyone else assume the role


def _user_with_policy(server, statement: dict,  # type: ignore[no-untyped-def]
                      key: tuple[str, str] | None = None) -> tuple[str, tuple[str, str]]:
    """A user (of the account whose root ``key`` is given; else the default one) allowed
    sts, aoss and iam but for ``statement``, and its access key."""
    iam = server.client("iam", key=key)
    name = "cond-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:*", "aoss:*", "iam:*"], "Resource": "*"},
            statement]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (key["AccessKeyId"], key["SecretAccessKey"])


def _error_code(call, **params) -> str | None:  # type: ignore[no-untyped-def]
    try:
        call(**params)
    except botocore.exceptions.ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def test_revoking_a_roles_older_sessions_denies_them(server) -> None:
    """The IAM console's "revoke active sessions": a Deny on aws:TokenIssueTime older than a
    moment applies to the sessions issued before it, and not to those issued after."""
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    role = "revoke-" + uuid.uuid4().hex[:6]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": account}}]}))
    iam.put_role_policy(RoleName=role, PolicyName="aoss", PolicyDocument=ALLOW_AOSS)
    _, key = _user_with_policy(server, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    sts = server.client("sts", key=key)
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="s1")
    issued = assumed["Credentials"]["Expiration"] - timedelta(hours=1)
    aoss = session_client(server, "opensearchserverless", assumed["Credentials"])

    def revoke_before(moment: datetime) -> None:
        iam.put_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                                "Effect": "Deny", "Action": "*", "Resource": "*",
                                "Condition": {"DateLessThan": {"aws:TokenIssueTime":
                                                               moment.strftime(ISO)}}}]}))

    revoke_before(issued - timedelta(minutes=5))
    assert _error_code(aoss.list_collections) is None
    revoke_before(issued + timedelta(minutes=5))
    assert _error_code(aoss.list_collections) == "AccessDeniedException"


ISO = "%Y-%m-%dT%H:%M:%SZ"


@pytest.mark.parametrize("condition", [
    {"StringLike": {"aws:UserAgent": "*Boto3*"}},
    {"Bool": {"aws:ViaAWSService": "false"}},
    {"Bool": {"aws:PrincipalIsAWSService": "false"}},
    {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    {"StringLike": {"aws:ResourceOrgID": "o-*"}},
    {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}},
])
def test_a_deny_on_an_always_present_global_key_applies(server, condition) -> None:
    _, key = _user_with_policy(server, {"Effect": "Deny", "Action": "aoss:ListCollections",
                                        "Resource": "*", "Condition": condition})
    aoss = server.client("opensearchserverless", key=key)
    assert _error_code(aoss.list_collections) == "AccessDeniedException"
    assert _error_code(aoss.list_vpc_endpoints) is None  # an action the Deny does not name


def test_the_organization_id_grants_a_trust_policy_to_every_account(server) -> None:
    """The usual trust policy for an organization: any principal whose account is in it."""
    organization = server.client("organizations").describe_organization()["Organization"]["Id"]
    other = json.loads(searchtrail("accounts", "create", "--data-dir", str(server.data_dir)).stdout)
    other_key = (other["AccessKey"]["AccessKeyId"], other["AccessKey"]["SecretAccessKey"])
    account = server.client("sts").get_caller_identity()["Account"]
    role = "org-" + uuid.uuid4().hex[:6]
    server.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"},
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization}}}]}))
    _, member = _user_with_policy(server, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
                                  key=other_key)
    sts = server.client("sts", key=member)
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}",
                           RoleSessionName="member")["Credentials"]


def test_a_deny_on_the_sessions_source_identity_applies(server) -> None:
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    role = "source-" + uuid.uuid4().hex[:6]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Principal": {"AWS": account}}]}))
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "aoss:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "aoss:*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceIdentity": "mallory"}}}]}))
    _, key = _user_with_policy(server, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    sts = server.client("sts", key=key)
    arn = f"arn:aws:iam::{account}:role/{role}"
    sessions = {who: sts.assume_role(RoleArn=arn, RoleSessionName="s1",
                                     SourceIdentity=who)["Credentials"]
                for who in ("mallory", "alice")}
    assert _error_code(session_client(server, "opensearchserverless",
                                      sessions["mallory"]).list_collections) \
        == "AccessDeniedException"
    assert _error_code(session_client(server, "opensearchserverless",
                                      sessions["alice"]).list_collections) is None


def _minimal_user(server, statements: list[dict]) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A user allowed exactly ``statements``, and its access key."""
    iam = server.client("iam")
    name = "min-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "dev"}])
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_passing_tags_or_a_source_identity_needs_the_callers_permission(server) -> None:
    """AWS: sts:TagSession and sts:SetSourceIdentity must be allowed by the caller's policies
    too, and a Deny of them refuses the call. Only the trust policy was asked, so a user
    allowed nothing but sts:AssumeRole could tag a session team=admin and get what a
    role's ABAC policy gives admins, whatever its own Deny said."""
    account = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    role = "abac-" + uuid.uuid4().hex[:6]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]}))
    arn = f"arn:aws:iam::{account}:role/{role}"
    assume = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}
    admin = [{"Key": "team", "Value": "admin"}]

    sts = server.client("sts", key=_minimal_user(server, [assume]))
    assert sts.assume_role(RoleArn=arn, RoleSessionName="plain")["Credentials"]
    for extra, action in ((dict(Tags=admin), "sts:TagSession"),
                          (dict(SourceIdentity="alice"), "sts:SetSourceIdentity")):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            sts.assume_role(RoleArn=arn, RoleSessionName="s1", **extra)
        error = refused.value.response["Error"]
        assert error["Code"] == "AccessDenied", error
        assert f"is not authorized to perform: {action} on resource: {arn}" in error["Message"]

    allowed = server.client("sts", key=_minimal_user(server, [
        assume, {"Effect": "Allow", "Action": ["sts:TagSession", "sts:SetSourceIdentity"],
                 "Resource": arn},
        {"Effect": "Deny", "Action": "sts:TagSession", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "admin"}}}]))
    assert allowed.assume_role(RoleArn=arn, RoleSessionName="s1", SourceIdentity="alice",
                               Tags=[{"Key": "team", "Value": "dev"}])["Credentials"]
    assert _error_code(allowed.assume_role, RoleArn=arn, RoleSessionName="s1",
                       Tags=admin) == "AccessDenied"

    # GetFederationToken's tags likewise
    federating = server.client("sts", key=_minimal_user(server, [
        {"Effect": "Allow", "Action": "sts:GetFederationToken", "Resource": "*"}]))
    assert federating.get_federation_token(Name="plain", Policy=ALLOW_AOSS)["Credentials"]
    assert _error_code(federating.get_federation_token, Name="tagged", Policy=ALLOW_AOSS,
                       Tags=admin) == "AccessDenied"


def test_federation_token_credentials_call_no_iam_and_no_sts_but_who_am_i(server) -> None:
    name, key = _user_with_policy(server, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    sts = server.client("sts", key=key)
    everything = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    token = sts.get_federation_token(Name="bob", Policy=everything)["Credentials"]
    federated_iam = session_client(server, "iam", token)
    assert _error_code(federated_iam.create_access_key, UserName=name) == "AccessDenied"
    assert _error_code(federated_iam.list_users) == "AccessDenied"
    assert server.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"][0][
        "AccessKeyId"] == key[0]  # still the one key
    federated_sts = session_client(server, "sts", token)
    assert _error_code(federated_sts.get_access_key_info, AccessKeyId=key[0]) == "AccessDenied"
    assert federated_sts.get_caller_identity()["Arn"].endswith(":federated-user/bob")


def test_get_session_token_needs_no_policy_and_no_policy_denies_it(server) -> None:
    _, key = _user_with_policy(server, {"Effect": "Deny", "Action": "sts:GetSessionToken",
                                        "Resource": "*"})
    assert server.client("sts", key=key).get_session_token()["Credentials"]["SessionToken"]
    iam = server.client("iam")
    bare = "bare-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=bare)
    bare_key = iam.create_access_key(UserName=bare)["AccessKey"]
    sts = server.client("sts", key=(bare_key["AccessKeyId"], bare_key["SecretAccessKey"]))
    assert sts.get_session_token()["Credentials"]["SessionToken"]


@pytest.mark.parametrize("refusal", ["identity policy", "trust policy", "root"])
def test_a_refused_cross_account_assume_role_is_recorded_for_the_roles_owner(server,
                                                                             refusal) -> None:
    other = json.loads(searchtrail("accounts", "create", "--data-dir", str(server.data_dir)).stdout)
    other_key = (other["AccessKey"]["AccessKeyId"], other["AccessKey"]["SecretAccessKey"])
    account = server.client("sts").get_caller_identity()["Account"]
    trusted = other["AccountId"] if refusal == "trust policy" else account
    role = server.client("iam", key=other_key).create_role(
        RoleName="Target", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": trusted}}]}))["Role"]
    if refusal == "root":
        sts = server.client("sts")
    else:  # the identity policy allows sts:* but this Deny, or the trust policy refuses
        denied = "sts:AssumeRole" if refusal == "identity policy" else "s3:*"
        _, key = _user_with_policy(server, {"Effect": "Deny", "Action": denied, "Resource": "*"})
        sts = server.client("sts", key=key)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="probe")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    request_id = refused.value.response["ResponseMetadata"]["RequestId"]
    theirs = [r for r in records(server, "AssumeRole", key=other_key)
              if r["requestID"] == request_id]
    assert [r["errorCode"] for r in theirs] == ["AccessDenied"]
    assert theirs[0]["userIdentity"]["type"] == "AWSAccount"
