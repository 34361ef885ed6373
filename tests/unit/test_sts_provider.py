"""The STS provider against the real SQLite store: temporary credentials and their principals.

Issued credentials are read back through the real ``CredentialResolver`` (its own read-only
connection), as SigV4 does on the next call.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from searchtrail.auth import webidentity
from searchtrail.auth.credentials import CredentialResolver
from searchtrail.auth.identities import Identities, policies_for
from searchtrail.auth.principals import user_principal
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.iam import IamProvider
from searchtrail.services.sts import StsProvider
from searchtrail.store.sqlite.connection import open_connection
from searchtrail.store.sqlite.resources import SqliteResources
from tests.unit.test_iam_provider import (
    ACCOUNT,
    ALLOW_ALL,
    AOSS_READ,
    OTHER,
    T0,
    T0_S,
    Harness,
    code_of,
    create_accounts,
    trust,
)

ISSUER = "https://idp.example.com/tenant"
ISSUER_PATH = "idp.example.com/tenant"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_PATH}"
CLIENT_ID = "searchtrail-app"

# The userIdentity of the AssumedRole CreateCollection record in AWS's page on logging
# OpenSearch Serverless calls with CloudTrail (shared/seed/000_01767f6fcc22eaba.txt), verbatim.
SEED_USER_IDENTITY = {
    "type": "AssumedRole",
    "principalId": "AIDACKCEVSQ6C2EXAMPLE",
    "arn": "arn:aws:iam::123456789012:user/test-user",
    "accountId": "123456789012",
    "accessKeyId": "access-key",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AIDACKCEVSQ6C2EXAMPLE",
            "arn": "arn:aws:iam::123456789012:role/Admin",
            "accountId": "123456789012",
            "userName": "Admin",
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2022-04-08T14:11:34Z", "mfaAuthenticated": "false"},
    },
}


def shape(value):
    """Keys all the way down, leaves replaced by their JSON type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__


# --- fixtures ----------------------------------------------------------------------------------


class World:
    def __init__(self, conn, db, provider: StsProvider) -> None:
        self.conn = conn
        self.keys = create_accounts(conn, ACCOUNT, OTHER)
        self.iam = Harness(conn, "iam", IamProvider())
        self.sts = Harness(conn, "sts", provider, clock=self.iam.clock)
        self.resolver = CredentialResolver(lambda: open_connection(db, read_only=True))
        self.iam("CreateUser", UserName="alice")
        self.alice = self.principal_of(
            self.iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"])

    def principal_of(self, access_key_id: str):
        credential = self.resolver.lookup(access_key_id)
        assert credential is not None, access_key_id
        return credential.owner

    def iam_in(self, account: str) -> Harness:
        return self.iam.as_(self.root(account))

    def root(self, account: str = ACCOUNT):
        return self.principal_of(self.keys[account])

    def role(self, name: str, document: str, account: str = ACCOUNT, **params) -> dict:
        return self.iam_in(account)("CreateRole", RoleName=name, AssumeRolePolicyDocument=document,
                                    **params)["Role"]

    def assume(self, caller, role_arn: str, session: str = "s1", **params) -> dict:
        return self.sts.as_(caller)("AssumeRole", RoleArn=role_arn, RoleSessionName=session,
                                    **params)

    def assume_fails(self, caller, role_arn: str, session: str = "s1", **params) -> ServiceError:
        return self.sts.as_(caller).fail("AssumeRole", RoleArn=role_arn, RoleSessionName=session,
                                         **params)


@pytest.fixture
def world(conn, db) -> World:
    return World(conn, db, StsProvider())


ALICE_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"


# --- GetCallerIdentity -------------------------------------------------------------------------


def test_get_caller_identity_for_root_user_and_role_session(world):
    assert world.sts.as_(world.root())("GetCallerIdentity") == {
        "UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
    alice = world.sts.as_(world.alice)("GetCallerIdentity")
    assert alice["Arn"] == ALICE_ARN and alice["UserId"].startswith("AIDA")
    role = world.role("Admin", trust({"AWS": ALICE_ARN}))
    key = world.assume(world.alice, role["Arn"], "dev")["Credentials"]["AccessKeyId"]
    assert world.sts.as_(world.principal_of(key))("GetCallerIdentity") == {
        "UserId": f"{role['RoleId']}:dev", "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/dev"}


# --- AssumeRole --------------------------------------------------------------------------------


def test_assume_role_issues_credentials_of_an_assumed_role(world):
    role = world.role("Admin", trust({"AWS": ALICE_ARN}))
    out = world.assume(world.alice, role["Arn"], "dev")
    creds = out["Credentials"]
    assert re.fullmatch("ASIA[A-Z2-7]{16}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) >= 300 and re.fullmatch(r"[A-Za-z0-9+/=]+",
                                                              creds["SessionToken"])
    assert creds["Expiration"] == T0_S + timedelta(hours=1)
    assert out["AssumedRoleUser"] == {"AssumedRoleId": f"{role['RoleId']}:dev",
                                      "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/dev"}
    assert "PackedPolicySize" not in out and "SourceIdentity" not in out
    call = world.sts.last
    assert call.referenced_resources == [{"ARN": role["Arn"], "accountId": ACCOUNT,
                                          "type": "AWS::IAM::Role"}]
    assert call.shared_with_accounts == []
    credential = world.resolver.lookup(creds["AccessKeyId"])
    assert (credential.secret_access_key, credential.session_token) == (
        creds["SecretAccessKey"], creds["SessionToken"])
    assert credential.expires_at == creds["Expiration"]
    used = world.iam("GetRole", RoleName="Admin")["Role"]["RoleLastUsed"]
    assert used == {"LastUsedDate": T0_S, "Region": "us-east-1"}


def test_assumed_role_identity_matches_the_seed_record_field_for_field(world):
    role = world.role("Admin", trust({"AWS": ALICE_ARN}))
    key = world.assume(world.alice, role["Arn"], "test-user")["Credentials"]["AccessKeyId"]
    identity = world.principal_of(key).user_identity()
    assert shape(identity) == shape(SEED_USER_IDENTITY)
    assert list(identity) == list(SEED_USER_IDENTITY)
    assert list(identity["sessionContext"]) == list(SEED_USER_IDENTITY["sessionContext"])
    assert list(identity["sessionContext"]["sessionIssuer"]) == list(
        SEED_USER_IDENTITY["sessionContext"]["sessionIssuer"])
    assert identity["type"] == "AssumedRole"
    assert identity["principalId"] == f"{role['RoleId']}:test-user"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:test-user", identity["principalId"])
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/test-user"
    assert identity["accountId"] == ACCOUNT and identity["accessKeyId"] == key
    assert identity["sessionContext"]["sessionIssuer"] == {
        "type": "Role", "principalId": role["RoleId"], "arn": role["Arn"],
        "accountId": ACCOUNT, "userName": "Admin"}
    assert identity["sessionContext"]["webIdFederationData"] == {}
    attributes = identity["sessionContext"]["attributes"]
    assert attributes == {"creationDate": "2025-03-01T12:00:00Z", "mfaAuthenticated": "false"}
    seed_attributes = SEED_USER_IDENTITY["sessionContext"]["attributes"]
    for field in ("creationDate", "mfaAuthenticated"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|true|false", seed_attributes[field])
        assert len(attributes[field]) == len(seed_attributes[field])


def test_the_role_session_principal_gives_the_authorizer_what_it_needs(world):
    role = world.role("Admin", trust({"AWS": ALICE_ARN}), Tags=[{"Key": "team", "Value": "a"}])
    key = world.assume(world.alice, role["Arn"], "dev")["Credentials"]["AccessKeyId"]
    principal = world.principal_of(key)
    assert (principal.principal_type, principal.userid, principal.username) == (
        "AssumedRole", f"{role['RoleId']}:dev", None)
    assert (principal.is_root, principal.mfa, principal.session_policies) == (False, False, None)
    assert principal.tags == {"team": "a"}
    owner = principal.policy_owner
    assert (owner.kind, owner.account_id, owner.name, owner.unique_id, owner.arn) == (
        "role", ACCOUNT, "Admin", role["RoleId"], role["Arn"])


def test_trust_policy_decides_who_may_assume(world):
    world.role("Other", trust({"AWS": ACCOUNT}))
    role = world.role("Admin", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"}))
    error = world.assume_fails(world.alice, role["Arn"])
    assert code_of(error) == ("AccessDenied", 403)
    assert error.message == (f"User: {ALICE_ARN} is not authorized to perform: sts:AssumeRole "
                             f"on resource: {role['Arn']}")
    missing = f"arn:aws:iam::{ACCOUNT}:role/Missing"
    assert world.assume_fails(world.alice, missing).message.endswith(f"resource: {missing}")
    world.iam("UpdateAssumeRolePolicy", RoleName="Admin", PolicyDocument=trust({"AWS": ACCOUNT}))
    assert world.assume(world.alice, role["Arn"])["Credentials"]


def test_deny_in_the_trust_policy_wins(world):
    document = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": ALICE_ARN}, "Action": "sts:AssumeRole"}]})
    role = world.role("R", document)
    assert code_of(world.assume_fails(world.alice, role["Arn"])) == ("AccessDenied", 403)
    world.iam("CreateUser", UserName="bob")
    bob_key = world.iam("CreateAccessKey", UserName="bob")["AccessKey"]["AccessKeyId"]
    assert world.assume(world.principal_of(bob_key), role["Arn"])["Credentials"]


def test_root_cannot_assume_roles(world):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    error = world.assume_fails(world.root(), role["Arn"])
    assert code_of(error) == ("AccessDenied", 403)
    assert error.message == "Roles may not be assumed by root accounts."


def test_a_role_arn_with_another_path_is_not_the_role(world):
    world.role("R", trust({"AWS": ACCOUNT}), Path="/ops/")
    error = world.assume_fails(world.alice, f"arn:aws:iam::{ACCOUNT}:role/R")
    assert code_of(error) == ("AccessDenied", 403)
    assert code_of(world.assume_fails(world.alice, "arn:aws:s3:::not-a-role-arn")) == (
        "ValidationError", 400)


def test_duration_is_bounded_by_the_role(world):
    role = world.role("R", trust({"AWS": ACCOUNT}), MaxSessionDuration=7200)
    out = world.assume(world.alice, role["Arn"], DurationSeconds=7200)
    assert out["Credentials"]["Expiration"] == T0_S + timedelta(seconds=7200)
    error = world.assume_fails(world.alice, role["Arn"], DurationSeconds=7201)
    assert code_of(error) == ("ValidationError", 400)
    assert error.message == ("The requested DurationSeconds exceeds the MaxSessionDuration set "
                             "for this role.")
    assert world.assume(world.alice, role["Arn"], DurationSeconds=900)["Credentials"][
        "Expiration"] == T0_S + timedelta(seconds=900)


def test_role_chaining_is_limited_to_one_hour(world):
    first = world.role("First", trust({"AWS": ALICE_ARN}), MaxSessionDuration=43200)
    second = world.role("Second", trust({"AWS": first["Arn"]}), MaxSessionDuration=43200)
    key = world.assume(world.alice, first["Arn"], DurationSeconds=43200)["Credentials"][
        "AccessKeyId"]
    session = world.principal_of(key)
    error = world.assume_fails(session, second["Arn"], DurationSeconds=3601)
    assert error.message == ("The requested DurationSeconds exceeds the 1 hour session limit "
                             "for roles assumed by role chaining.")
    chained = world.assume(session, second["Arn"], "hop")
    assert chained["AssumedRoleUser"]["Arn"].endswith("assumed-role/Second/hop")


@pytest.mark.parametrize("name", ["has space", "x" * 65, "bad/slash"])
def test_role_session_names_follow_sts_rules(world, name):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    assert code_of(world.assume_fails(world.alice, role["Arn"], name)) == ("ValidationError", 400)


def test_cross_account_assume_role_is_shared_with_the_role_account(world):
    role = world.role("Auditor", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), account=OTHER)
    out = world.assume(world.alice, role["Arn"], "audit")
    call = world.sts.last
    assert call.account_id == ACCOUNT and call.shared_with_accounts == [OTHER]
    assert call.referenced_resources == [{"ARN": role["Arn"], "accountId": OTHER,
                                          "type": "AWS::IAM::Role"}]
    principal = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert principal.account_id == OTHER
    assert principal.arn == f"arn:aws:sts::{OTHER}:assumed-role/Auditor/audit"
    not_trusted = world.role("Closed", trust({"AWS": OTHER}), account=OTHER)
    assert code_of(world.assume_fails(world.alice, not_trusted["Arn"])) == ("AccessDenied", 403)
    assert world.sts.last.shared_with_accounts == [OTHER]  # the role's owner sees the attempt
    unknown = "arn:aws:iam::999988887777:role/Anything"
    assert code_of(world.assume_fails(world.alice, unknown)) == ("AccessDenied", 403)
    assert world.sts.last.shared_with_accounts == []  # no such account here
    same = world.role("Mine", trust({"AWS": "*"}))
    assert code_of(world.assume_fails(world.alice, same["Arn"], DurationSeconds=43200)) == (
        "ValidationError", 400)
    assert world.sts.last.shared_with_accounts == []


def test_external_id_condition(world):
    role = world.role("R", trust({"AWS": ACCOUNT},
                                 Condition={"StringEquals": {"sts:ExternalId": "xyz-123"}}))
    assert code_of(world.assume_fails(world.alice, role["Arn"])) == ("AccessDenied", 403)
    assert code_of(world.assume_fails(world.alice, role["Arn"], ExternalId="wrong-1")) == (
        "AccessDenied", 403)
    assert world.assume(world.alice, role["Arn"], ExternalId="xyz-123")["Credentials"]


def test_mfa_codes_cannot_be_validated(world):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    error = world.assume_fails(world.alice, role["Arn"],
                               SerialNumber=f"arn:aws:iam::{ACCOUNT}:mfa/alice", TokenCode="123456")
    assert code_of(error) == ("AccessDenied", 403)


# --- session policies --------------------------------------------------------------------------


def test_session_policies_travel_with_the_credentials(world):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    arn = world.iam("CreatePolicy", PolicyName="P", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    out = world.assume(world.alice, role["Arn"], Policy=AOSS_READ, PolicyArns=[{"arn": arn}])
    assert 1 <= out["PackedPolicySize"] <= 100
    principal = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert principal.session_policies == (json.loads(AOSS_READ), json.loads(ALLOW_ALL))
    missing = f"arn:aws:iam::{ACCOUNT}:policy/missing"
    assert code_of(world.assume_fails(world.alice, role["Arn"],
                                      PolicyArns=[{"arn": missing}])) == ("ValidationError", 400)
    assert code_of(world.assume_fails(world.alice, role["Arn"], Policy='{"Statement": 1}')) == (
        "MalformedPolicyDocument", 400)


def test_session_policy_size_limits(world):
    role = world.role("R", trust({"AWS": ACCOUNT}, action=["sts:AssumeRole", "sts:TagSession"]))
    long_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "aoss:List*", "Resource": "arn:aws:aoss:::" + "x" * 2100}]})
    assert code_of(world.assume_fails(world.alice, role["Arn"], Policy=long_policy)) == (
        "ValidationError", 400)
    tags = [{"Key": f"key{i:03d}" + "k" * 100, "Value": "v" * 250} for i in range(20)]
    assert code_of(world.assume_fails(world.alice, role["Arn"], Tags=tags)) == (
        "PackedPolicyTooLarge", 400)


# --- session tags and source identity ------------------------------------------------------


def test_session_tags_need_tag_session_in_the_trust_policy(world):
    closed = world.role("Closed", trust({"AWS": ACCOUNT}))
    error = world.assume_fails(world.alice, closed["Arn"], Tags=[{"Key": "project", "Value": "x"}])
    assert code_of(error) == ("AccessDenied", 403)
    assert "sts:TagSession" in error.message
    role = world.role("Open", trust({"AWS": ACCOUNT}, action=["sts:AssumeRole", "sts:TagSession"]),
                      Tags=[{"Key": "project", "Value": "role"}, {"Key": "team", "Value": "t"}])
    out = world.assume(world.alice, role["Arn"], Tags=[{"Key": "project", "Value": "x"}])
    assert out["PackedPolicySize"] >= 1
    assert world.principal_of(out["Credentials"]["AccessKeyId"]).tags == {
        "project": "x", "team": "t"}
    error = world.assume_fails(world.alice, role["Arn"], Tags=[{"Key": "a", "Value": "1"},
                                                               {"Key": "A", "Value": "2"}])
    assert code_of(error) == ("ValidationError", 400)


def test_transitive_tags_follow_role_chaining_and_cannot_be_overridden(world):
    both = ["sts:AssumeRole", "sts:TagSession"]
    first = world.role("First", trust({"AWS": ALICE_ARN}, action=both))
    second = world.role("Second", trust({"AWS": first["Arn"]}, action=both))
    out = world.assume(world.alice, first["Arn"], Tags=[{"Key": "cost", "Value": "42"},
                                                        {"Key": "temp", "Value": "t"}],
                       TransitiveTagKeys=["cost"])
    session = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert session.transitive_tag_keys == ("cost",)
    chained = world.assume(session, second["Arn"], "hop")
    assert world.principal_of(chained["Credentials"]["AccessKeyId"]).tags == {"cost": "42"}
    error = world.assume_fails(session, second["Arn"], Tags=[{"Key": "COST", "Value": "0"}])
    assert code_of(error) == ("ValidationError", 400)
    assert code_of(world.assume_fails(world.alice, first["Arn"], TransitiveTagKeys=["nope"])) == (
        "ValidationError", 400)


def test_source_identity_needs_permission_is_recorded_and_sticks(world):
    closed = world.role("Closed", trust({"AWS": ACCOUNT}))
    error = world.assume_fails(world.alice, closed["Arn"], SourceIdentity="alice-laptop")
    assert "sts:SetSourceIdentity" in error.message
    actions = ["sts:AssumeRole", "sts:SetSourceIdentity"]
    first = world.role("First", trust({"AWS": ALICE_ARN}, action=actions))
    second = world.role("Second", trust({"AWS": first["Arn"]}, action=actions))
    out = world.assume(world.alice, first["Arn"], SourceIdentity="alice-laptop")
    assert out["SourceIdentity"] == "alice-laptop"
    session = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert session.user_identity()["sessionContext"]["sourceIdentity"] == "alice-laptop"
    chained = world.assume(session, second["Arn"], "hop")
    assert chained["SourceIdentity"] == "alice-laptop"
    error = world.assume_fails(session, second["Arn"], SourceIdentity="someone-else")
    assert code_of(error) == ("ValidationError", 400)
    assert code_of(world.assume_fails(world.alice, first["Arn"], SourceIdentity="aws:x1")) == (
        "ValidationError", 400)


# --- GetSessionToken / GetFederationToken ------------------------------------------------------


def test_get_session_token_for_a_user(world):
    out = world.sts.as_(world.alice)("GetSessionToken", DurationSeconds=7200)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["Expiration"] == T0_S + timedelta(seconds=7200)
    principal = world.principal_of(creds["AccessKeyId"])
    identity = principal.user_identity()
    assert identity == {
        "type": "IAMUser", "principalId": world.alice.principal_id, "arn": ALICE_ARN,
        "accountId": ACCOUNT, "accessKeyId": creds["AccessKeyId"], "userName": "alice",
        "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                           "attributes": {"creationDate": "2025-03-01T12:00:00Z",
                                          "mfaAuthenticated": "false"}}}
    assert (principal.username, principal.is_temporary, principal.policy_owner.kind) == (
        "alice", True, "user")
    assert world.sts.as_(world.alice)("GetSessionToken")["Credentials"]["Expiration"] == (
        T0_S + timedelta(hours=12))
    error = world.sts.as_(principal).fail("GetSessionToken")
    assert code_of(error) == ("AccessDenied", 403)
    assert error.message == "Cannot call GetSessionToken with session credentials"


def test_the_roots_session_tokens_last_at_most_an_hour(world):
    out = world.sts.as_(world.root())("GetSessionToken", DurationSeconds=129600)
    assert out["Credentials"]["Expiration"] == T0_S + timedelta(hours=1)
    principal = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert principal.is_root and principal.user_identity()["type"] == "Root"


def test_get_federation_token_for_a_user(world):
    out = world.sts.as_(world.alice)("GetFederationToken", Name="Bob", Policy=AOSS_READ)
    assert out["FederatedUser"] == {"FederatedUserId": f"{ACCOUNT}:Bob",
                                    "Arn": f"arn:aws:sts::{ACCOUNT}:federated-user/Bob"}
    assert out["Credentials"]["Expiration"] == T0_S + timedelta(hours=12)
    key = out["Credentials"]["AccessKeyId"]
    principal = world.principal_of(key)
    assert principal.user_identity() == {
        "type": "FederatedUser", "principalId": f"{ACCOUNT}:Bob",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/Bob", "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {"type": "IAMUser", "principalId": world.alice.principal_id,
                              "arn": ALICE_ARN, "accountId": ACCOUNT, "userName": "alice"},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2025-03-01T12:00:00Z", "mfaAuthenticated": "false"}}}
    assert principal.session_policies == (json.loads(AOSS_READ),)
    assert (principal.principal_type, principal.userid) == ("FederatedUser", f"{ACCOUNT}:Bob")
    assert principal.policy_owner.name == "alice"
    error = world.sts.as_(principal).fail("GetFederationToken", Name="Again")
    assert error.message == "Cannot call GetFederationToken with session credentials"


def test_federated_users_without_a_policy_get_nothing(world):
    out = world.sts.as_(world.root())("GetFederationToken", Name="Carol", DurationSeconds=7200)
    assert out["Credentials"]["Expiration"] == T0_S + timedelta(hours=1)
    principal = world.principal_of(out["Credentials"]["AccessKeyId"])
    assert principal.session_policies == ()
    issuer = principal.user_identity()["sessionContext"]["sessionIssuer"]
    assert issuer == {"type": "Root", "principalId": ACCOUNT,
                      "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}
    assert principal.policy_owner.kind == "root" and not principal.is_root
    # the root's identity allows everything; the (empty) session policies then allow nothing
    assert policies_for(SqliteResources(world.conn, "", ""), principal) == (
        [json.loads(ALLOW_ALL)], None)
    role = world.role("R", trust({"AWS": ACCOUNT}))
    assert code_of(world.assume_fails(principal, role["Arn"])) == ("AccessDenied", 403)


# --- expiry ----------------------------------------------------------------------------------


def test_credentials_carry_their_expiry_and_stay_resolvable_after_it(world):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    creds = world.assume(world.alice, role["Arn"], DurationSeconds=900)["Credentials"]
    world.iam.advance(3600)
    credential = world.resolver.lookup(creds["AccessKeyId"])
    assert credential is not None
    assert credential.expires_at == T0_S + timedelta(seconds=900)
    assert credential.expires_at <= world.iam.now


# --- AssumeRoleWithWebIdentity -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _uint(value: int, size: int | None = None) -> str:
    size = size or (value.bit_length() + 7) // 8
    return _b64(value.to_bytes(size, "big"))


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_jwk(key, kid: str = "k1") -> dict:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": _uint(numbers.n), "e": _uint(numbers.e)}


def make_jwt(key, claims: dict, *, kid: str | None = "k1", alg: str = "RS256") -> str:
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if alg == "RS256":
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = b""
    return f"{signing_input}.{_b64(signature)}"


def claims(**changes) -> dict:
    base = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "user-42",
            "iat": int(T0.timestamp()) - 10, "exp": int(T0.timestamp()) + 600}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


WEB_TRUST = trust({"Federated": PROVIDER_ARN}, action="sts:AssumeRoleWithWebIdentity",
                  Condition={"StringEquals": {f"{ISSUER_PATH}:aud": CLIENT_ID,
                                              f"{ISSUER_PATH}:sub": "user-42"}})


@pytest.fixture
def web(world, rsa_key):
    world.iam("CreateOpenIDConnectProvider", Url=ISSUER, ClientIDList=[CLIENT_ID])
    world.conn.execute("BEGIN IMMEDIATE")
    Identities(SqliteResources(world.conn, "", "")).set_oidc_jwks(
        ACCOUNT, PROVIDER_ARN, {"keys": [rsa_jwk(rsa_key)]})
    world.conn.execute("COMMIT")
    world.web_role = world.role("WebApp", WEB_TRUST)
    return world


def web_call(world, token: str, role_arn: str | None = None, session: str = "web", **params):
    role_arn = role_arn or world.web_role["Arn"]
    caller = webidentity.caller(role_arn, token)
    return world.sts.as_(caller)("AssumeRoleWithWebIdentity", RoleArn=role_arn,
                                 RoleSessionName=session, WebIdentityToken=token, **params)


def web_fails(world, token: str, **params) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        web_call(world, token, **params)
    return info.value


def test_web_identity_token_becomes_a_role_session(web, rsa_key):
    out = web_call(web, make_jwt(rsa_key, claims()), session="app")
    role = web.web_role
    assert out["SubjectFromWebIdentityToken"] == "user-42"
    assert (out["Provider"], out["Audience"]) == (ISSUER_PATH, CLIENT_ID)
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/WebApp/app"
    assert web.sts.last.shared_with_accounts == []
    principal = web.principal_of(out["Credentials"]["AccessKeyId"])
    identity = principal.user_identity()
    assert identity["principalId"] == f"{role['RoleId']}:app"
    assert identity["sessionContext"]["webIdFederationData"] == {
        "federatedProvider": PROVIDER_ARN, "attributes": {}}
    assert identity["sessionContext"]["sessionIssuer"]["arn"] == role["Arn"]
    assert principal.credential_source == "AssumeRoleWithWebIdentity"


def test_the_web_identity_caller_as_recorded(rsa_key):
    token = make_jwt(rsa_key, claims())
    caller = webidentity.caller(f"arn:aws:iam::{ACCOUNT}:role/WebApp", token)
    assert caller.account_id == ACCOUNT
    assert caller.user_identity() == {
        "type": "WebIdentityUser", "principalId": f"{PROVIDER_ARN}:{CLIENT_ID}:user-42",
        "userName": "user-42", "identityProvider": PROVIDER_ARN}
    assert webidentity.caller("nonsense", "not.a.jwt!").user_identity()["type"] == (
        "WebIdentityUser")


@pytest.mark.parametrize("change, code, message", [
    ({"aud": "someone-else"}, "InvalidIdentityToken", "Incorrect token audience"),
    ({"exp": int(T0.timestamp()) - 1}, "ExpiredTokenException", "Token expired: current "
     f"date/time {int(T0.timestamp())} must be before the expiration date/time "
     f"{int(T0.timestamp()) - 1}"),
    ({"iss": "https://elsewhere.example"}, "InvalidIdentityToken",
     "No OpenIDConnect provider found in your account for https://elsewhere.example"),
    ({"sub": None}, "InvalidIdentityToken", "The web identity token has no 'sub' claim."),
    ({"nbf": int(T0.timestamp()) + 3600}, "InvalidIdentityToken", None),
])
def test_web_identity_token_claims_are_checked(web, rsa_key, change, code, message):
    error = web_fails(web, make_jwt(rsa_key, claims(**change)))
    assert error.code == code and error.status in (400, 403)
    if message:
        assert error.message == message


def test_web_identity_signature_and_key_are_checked(web, rsa_key, other_rsa_key):
    forged = make_jwt(other_rsa_key, claims())
    assert code_of(web_fails(web, forged)) == ("InvalidIdentityToken", 400)
    unknown_kid = make_jwt(rsa_key, claims(), kid="other")
    assert web_fails(web, unknown_kid).message == webidentity.NO_KEY
    header, payload, signature = make_jwt(rsa_key, claims()).split(".")
    tampered = _b64(json.dumps(claims(sub="admin")).encode())
    assert code_of(web_fails(web, f"{header}.{tampered}.{signature}")) == (
        "InvalidIdentityToken", 400)
    unsigned = make_jwt(None, claims(), alg="none")
    assert code_of(web_fails(web, unsigned)) == ("InvalidIdentityToken", 400)
    assert web_fails(web, "not-a-jwt").message == webidentity.NOT_A_JWT
    assert web_call(web, make_jwt(rsa_key, claims()))["Credentials"]


def test_web_identity_trust_conditions(web, rsa_key):
    error = web_fails(web, make_jwt(rsa_key, claims(sub="user-43")))
    assert code_of(error) == ("AccessDenied", 403)
    assert error.message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    aws_only = web.role("AwsOnly", trust({"AWS": ACCOUNT}))
    error = web_fails(web, make_jwt(rsa_key, claims()), role_arn=aws_only["Arn"])
    assert code_of(error) == ("AccessDenied", 403)
    too_long = web_fails(web, make_jwt(rsa_key, claims()), DurationSeconds=7200)
    assert code_of(too_long) == ("ValidationError", 400)


def test_web_identity_with_configured_keys_and_ec_signatures(conn, db):
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "x": _uint(numbers.x, 32),
                      "y": _uint(numbers.y, 32)}]}
    world = World(conn, db, StsProvider(jwks={ISSUER: jwks}))
    world.iam("CreateOpenIDConnectProvider", Url=ISSUER, ClientIDList=[CLIENT_ID])
    world.web_role = world.role("WebApp", WEB_TRUST)
    out = web_call(world, make_jwt(key, claims(), kid="ec1", alg="ES256"))
    assert out["SubjectFromWebIdentityToken"] == "user-42"
    unconfigured = World.__new__(World)
    unconfigured.__dict__.update(world.__dict__)
    unconfigured.sts = Harness(conn, "sts", StsProvider(), clock=world.iam.clock)
    error = web_fails(unconfigured, make_jwt(key, claims(), kid="ec1", alg="ES256"))
    assert error.message == webidentity.NO_KEY


def test_a_provider_without_client_ids_takes_no_audience(web, rsa_key):
    web.iam("RemoveClientIDFromOpenIDConnectProvider", OpenIDConnectProviderArn=PROVIDER_ARN,
            ClientID=CLIENT_ID)
    error = web_fails(web, make_jwt(rsa_key, claims()))
    assert (error.code, error.message) == ("InvalidIdentityToken", "Incorrect token audience")


def test_web_identity_session_tags_from_the_token(web, rsa_key):
    web.iam("UpdateAssumeRolePolicy", RoleName="WebApp", PolicyDocument=trust(
        {"Federated": PROVIDER_ARN},
        action=["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]))
    token = make_jwt(rsa_key, claims(**{"https://aws.amazon.com/tags": {
        "principal_tags": {"dept": ["search"]}, "transitive_tag_keys": ["dept"]}}))
    out = web_call(web, token)
    principal = web.principal_of(out["Credentials"]["AccessKeyId"])
    assert principal.tags == {"dept": "search"}
    assert principal.transitive_tag_keys == ("dept",)


# --- the trust policy's condition keys ------------------------------------------------------


@pytest.mark.parametrize("principal, allowed", [
    ("*", True), ({"AWS": "*"}, True), ({"AWS": ACCOUNT}, True),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, True), ({"AWS": [OTHER, ALICE_ARN]}, True),
    ({"AWS": OTHER}, False), ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}, False),
    ({"Service": "ec2.amazonaws.com"}, False), ({"Federated": PROVIDER_ARN}, False),
])
def test_trust_policy_principals(world, principal, allowed):
    world.iam("CreateUser", UserName="bob")
    world.iam("PutUserPolicy", UserName="alice", PolicyName="assume", PolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    role = world.role("R", trust(principal))
    if allowed:
        assert world.assume(world.alice, role["Arn"])["Credentials"]
    else:
        assert code_of(world.assume_fails(world.alice, role["Arn"])) == ("AccessDenied", 403)


TAGGING = ["sts:AssumeRole", "sts:TagSession"]


@pytest.mark.parametrize("condition, params, allowed", [
    ({"StringEquals": {"sts:ExternalId": "a"}}, {"ExternalId": "a1"}, False),
    ({"StringEquals": {"sts:ExternalId": "a1"}}, {"ExternalId": "a1"}, True),
    ({"StringEquals": {"sts:ExternalId": "a1"}}, {}, False),
    ({"Null": {"sts:ExternalId": "true"}}, {}, True),
    ({"StringLike": {"sts:RoleSessionName": "ci-*"}}, {"RoleSessionName": "ci-42"}, True),
    ({"StringLike": {"sts:RoleSessionName": "ci-*"}}, {"RoleSessionName": "dev"}, False),
    # a policy variable names the caller: the keys are single values, not lists of one
    ({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}},
     {"RoleSessionName": "alice"}, True),
    ({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}},
     {"RoleSessionName": "bob"}, False),
    # long-term keys carry no aws:MultiFactorAuthPresent at all (IAM's condition key docs)
    ({"Bool": {"aws:MultiFactorAuthPresent": "false"}}, {}, False),
    ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}, True),
    ({"Null": {"aws:MultiFactorAuthPresent": "true"}}, {}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {}, False),
    ({"StringEquals": {"aws:PrincipalType": "User"}}, {}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
     {"Tags": [{"Key": "a", "Value": "1"}]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}},
     {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "c", "Value": "2"}]}, False),
    ({"StringEquals": {"aws:RequestTag/a": "1"}}, {"Tags": [{"Key": "a", "Value": "1"}]}, True),
])
def test_trust_policy_conditions_see_the_callers_and_the_requests_keys(world, condition, params,
                                                                       allowed):
    role = world.role("R", trust({"AWS": ACCOUNT}, action=TAGGING, Condition=condition))
    world.iam("PutUserPolicy", UserName="alice", PolicyName="assume", PolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}))
    session = params.pop("RoleSessionName", "s1")
    if allowed:
        assert world.assume(world.alice, role["Arn"], session, **params)["Credentials"]
    else:
        error = world.assume_fails(world.alice, role["Arn"], session, **params)
        assert code_of(error) == ("AccessDenied", 403)


def test_a_trust_deny_on_the_session_tags_wins(world):
    document = json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:*"},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:TagSession",
         "Condition": {"StringEquals": {"aws:RequestTag/a": "1"}}}]})
    role = world.role("R", document)
    world.iam("PutUserPolicy", UserName="alice", PolicyName="assume", PolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}))
    assert world.assume(world.alice, role["Arn"])["Credentials"]
    error = world.assume_fails(world.alice, role["Arn"], Tags=[{"Key": "a", "Value": "1"}])
    assert code_of(error) == ("AccessDenied", 403)


def test_caller_principal_for_record_is_user_principal_compatible(world):
    # the IAMUser principal built from a user document keeps the existing CLI-visible shape
    user = Identities(SqliteResources(world.conn, "", "")).get_user(ACCOUNT, "alice")
    assert user_principal(ACCOUNT, user, "AKIAX").user_identity() == {
        "type": "IAMUser", "principalId": user["UserId"], "arn": ALICE_ARN,
        "accountId": ACCOUNT, "accessKeyId": "AKIAX", "userName": "alice"}


def test_now_is_the_call_clock(world):
    role = world.role("R", trust({"AWS": ACCOUNT}))
    world.iam.advance(90.7)
    creds = world.assume(world.alice, role["Arn"])["Credentials"]
    assert creds["Expiration"] == datetime(2025, 3, 1, 13, 1, 30, tzinfo=timezone.utc)


def unsigned(world) -> Harness:
    """The Call the gateway makes for an unsigned request: no principal, account ""."""
    harness = world.sts.as_(world.root())
    harness.principal, harness.account = None, ""
    return harness


def test_an_unsigned_web_identity_call_names_its_caller(web, rsa_key):
    token = make_jwt(rsa_key, claims())
    sts = unsigned(web)
    out = sts("AssumeRoleWithWebIdentity", RoleArn=web.web_role["Arn"], RoleSessionName="app",
              WebIdentityToken=token)
    call = web.sts.last
    assert call.principal.user_identity() == {
        "type": "WebIdentityUser", "principalId": f"{PROVIDER_ARN}:{CLIENT_ID}:user-42",
        "userName": "user-42", "identityProvider": PROVIDER_ARN}
    assert call.principal.account_id == ACCOUNT and call.shared_with_accounts == []
    assert web.principal_of(out["Credentials"]["AccessKeyId"]).kind == "AssumedRole"


def test_a_failed_unsigned_web_identity_call_is_still_attributed(web, rsa_key):
    token = make_jwt(rsa_key, claims(aud="intruder"))
    error = unsigned(web).fail("AssumeRoleWithWebIdentity", RoleArn=web.web_role["Arn"],
                               RoleSessionName="app", WebIdentityToken=token)
    assert code_of(error) == ("InvalidIdentityToken", 400)
    assert web.sts.last.principal.user_identity()["principalId"] == (
        f"{PROVIDER_ARN}:intruder:user-42")
    error = unsigned(web).fail("AssumeRoleWithWebIdentity", RoleArn="arn:aws:s3:::nope-nope-nope",
                               RoleSessionName="app", WebIdentityToken=token)
    assert code_of(error) == ("ValidationError", 400) and web.sts.last.principal is None
