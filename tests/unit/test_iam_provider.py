"""The IAM provider against the real SQLite store: every operation's rules and errors.

Calls go through ``Harness`` the way the gateway makes them: input and output checked
against botocore's model, one transaction per call, rolled back on a ServiceError.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import botocore.session
import pytest
from botocore.validate import ParamValidator

from searchtrail.auth.identities import (
    KIND_LOGIN_PROFILE,
    Identities,
    policies_for,
    verify_password,
)
from searchtrail.auth.principals import role_session_principal, root_principal, user_principal
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.call import Call
from searchtrail.services.iam import IamProvider
from searchtrail.services.iam import documents
from searchtrail.store.sqlite.resources import SqliteResources

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
T0_S = T0.replace(microsecond=0)
SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name) for name in ("iam", "sts")}
ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
AOSS_READ = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "aoss:List*",
                                       "Resource": "*"}]})
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
ID21 = r"[A-Z2-7]{17}"


def trust(principal: object, action: str | list[str] = "sts:AssumeRole", **extra: object) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": action, **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class Harness:
    """Calls handlers the way the gateway does: one transaction per call, rolled back on error."""

    def __init__(self, conn, service, provider, *, account=ACCOUNT, principal=None,
                 clock=None, region=REGION):
        self.conn = conn
        self.service = service
        self.provider = provider
        self.handlers = provider.handlers()
        self.account = account
        self.region = region
        self.principal = principal or root_principal(account, "AKIAROOTEXAMPLE00000")
        self.clock = clock if clock is not None else [T0]
        self._last: list[Call | None] = [None]  # shared with the harnesses as_() derives

    @property
    def last(self) -> Call | None:
        return self._last[0]

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def advance(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)

    def as_(self, principal, account=None) -> "Harness":
        derived = Harness(self.conn, self.service, self.provider,
                          account=account or principal.account_id, principal=principal,
                          clock=self.clock, region=self.region)
        derived._last = self._last
        return derived

    def __call__(self, operation, check_output=True, **params):
        op = MODELS[self.service].operation_model(operation)
        if op.input_shape is not None:
            report = ParamValidator().validate(params, op.input_shape)
            assert not report.has_errors(), report.generate_report()
        call = Call(account_id=self.account, region=self.region, now=self.now,
                    request_id="r", resources=SqliteResources(self.conn, self.account,
                                                              self.region),
                    operation=operation, principal=self.principal)
        self._last[0] = call
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            recipients = getattr(self.provider, "record_recipients", dict)().get(operation)
            if recipients is not None:
                call.shared_with_accounts.extend(recipients(call, params))
            output = self.handlers[operation](call, params)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        if check_output and op.output_shape is not None:
            report = ParamValidator().validate(output, op.output_shape)
            assert not report.has_errors(), report.generate_report()
        return output

    def fail(self, operation, **params) -> ServiceError:
        with pytest.raises(ServiceError) as info:
            self(operation, **params)
        return info.value

    def identities(self) -> Identities:
        return Identities(SqliteResources(self.conn, "", ""))


def create_accounts(conn, *accounts: str) -> dict[str, str]:
    """Accounts with a root key each; returns account -> root access key id."""
    conn.execute("BEGIN IMMEDIATE")
    identities = Identities(SqliteResources(conn, "", ""))
    keys = {}
    for position, account in enumerate(accounts):
        identities.create_account(T0, account_id=account, make_default=position == 0)
        keys[account] = identities.create_access_key(account, None, T0).access_key_id
    conn.execute("COMMIT")
    return keys


def code_of(error: ServiceError) -> tuple[str, int | None]:
    return error.code, error.status


@pytest.fixture
def changes() -> list:
    return []


@pytest.fixture
def iam(conn, changes) -> Harness:
    keys = create_accounts(conn, ACCOUNT, OTHER)
    return Harness(conn, "iam", IamProvider(changed=changes.append),
                   principal=root_principal(ACCOUNT, keys[ACCOUNT]))


def as_user(iam: Harness, name: str) -> Harness:
    user = iam.identities().get_user(iam.account, name)
    return iam.as_(user_principal(iam.account, user, "AKIAUSEREXAMPLE00000"))


# --- the table -----------------------------------------------------------------------------

REQUIRED = """CreateUser GetUser ListUsers DeleteUser TagUser UntagUser ListUserTags
CreateAccessKey ListAccessKeys UpdateAccessKey DeleteAccessKey GetAccessKeyLastUsed CreateRole
GetRole ListRoles DeleteRole UpdateAssumeRolePolicy TagRole PutUserPolicy GetUserPolicy
ListUserPolicies DeleteUserPolicy PutRolePolicy GetRolePolicy ListRolePolicies DeleteRolePolicy
CreatePolicy GetPolicy ListPolicies DeletePolicy CreatePolicyVersion GetPolicyVersion
ListPolicyVersions SetDefaultPolicyVersion DeletePolicyVersion AttachUserPolicy
DetachUserPolicy ListAttachedUserPolicies AttachRolePolicy DetachRolePolicy
ListAttachedRolePolicies CreateLoginProfile UpdateLoginProfile GetLoginProfile
DeleteLoginProfile CreateOpenIDConnectProvider GetOpenIDConnectProvider
ListOpenIDConnectProviders DeleteOpenIDConnectProvider GetAccountSummary""".split()


def test_every_required_operation_is_served_and_named_as_in_the_model():
    handlers = IamProvider().handlers()
    assert set(REQUIRED) <= set(handlers)
    assert set(handlers) <= set(MODELS["iam"].operation_names)


# --- users -----------------------------------------------------------------------------------


def test_create_user_returns_the_user(iam):
    user = iam("CreateUser", UserName="alice", Path="/eng/",
               Tags=[{"Key": "team", "Value": "search"}])["User"]
    assert re.fullmatch("AIDA" + ID21, user["UserId"])
    assert user == {"Path": "/eng/", "UserName": "alice", "UserId": user["UserId"],
                    "Arn": f"arn:aws:iam::{ACCOUNT}:user/eng/alice", "CreateDate": T0_S,
                    "Tags": [{"Key": "team", "Value": "search"}]}


def test_user_names_are_unique_regardless_of_case(iam):
    iam("CreateUser", UserName="Alice")
    error = iam.fail("CreateUser", UserName="alice")
    assert code_of(error) == ("EntityAlreadyExists", 409)
    assert error.message == "User with name alice already exists."
    assert iam("GetUser", UserName="ALICE")["User"]["UserName"] == "Alice"


def test_same_user_name_in_another_account_is_another_user(iam):
    iam("CreateUser", UserName="alice")
    other = iam.as_(root_principal(OTHER, "AKIAOTHERROOT0000000"))
    assert other("CreateUser", UserName="alice")["User"]["Arn"].startswith(f"arn:aws:iam::{OTHER}:")


def test_get_user_missing_is_no_such_entity(iam):
    error = iam.fail("GetUser", UserName="nobody")
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == "The user with name nobody cannot be found."


def test_get_user_without_a_name_is_the_caller(iam):
    iam("CreateUser", UserName="alice")
    assert as_user(iam, "alice")("GetUser")["User"]["UserName"] == "alice"
    root = iam("GetUser", check_output=False)["User"]
    assert root == {"UserId": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root", "CreateDate": T0_S}
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    role = iam.identities().get_role(ACCOUNT, "r")
    session = role_session_principal(account_id=ACCOUNT, role_name="r", role_id=role["RoleId"],
                                     role_arn=role["Arn"], session_name="s",
                                     access_key_id="ASIAEXAMPLE", creation_date=T0)
    error = iam.as_(session).fail("GetUser")
    assert code_of(error) == ("ValidationError", 400)
    assert error.message == "Must specify userName when calling with non-User credentials"


def test_list_users_filters_by_path_and_pages_with_markers(iam):
    for name, path in (("d", "/"), ("b", "/eng/"), ("a", "/eng/"), ("c", "/eng/x/")):
        iam("CreateUser", UserName=name, Path=path)
    first = iam("ListUsers", PathPrefix="/eng/", MaxItems=2)
    assert [user["UserName"] for user in first["Users"]] == ["a", "b"]
    assert first["IsTruncated"] is True and "Tags" not in first["Users"][0]
    second = iam("ListUsers", PathPrefix="/eng/", MaxItems=2, Marker=first["Marker"])
    assert [user["UserName"] for user in second["Users"]] == ["c"]
    assert second["IsTruncated"] is False and "Marker" not in second
    assert [u["UserName"] for u in iam("ListUsers")["Users"]] == ["a", "b", "c", "d"]
    assert code_of(iam.fail("ListUsers", Marker="bm90LWEtbWFya2Vy")) == ("ValidationError", 400)
    for name in ("r1", "r2"):
        iam("CreateRole", RoleName=name, AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    roles_marker = iam("ListRoles", MaxItems=1)["Marker"]
    assert code_of(iam.fail("ListUsers", Marker=roles_marker)) == ("ValidationError", 400)


@pytest.mark.parametrize("blocker, message", [
    ("login", "Cannot delete entity, must delete login profile first."),
    ("key", "Cannot delete entity, must delete access keys first."),
    ("inline", "Cannot delete entity, must delete policies first."),
    ("attached", "Cannot delete entity, must detach all policies first."),
])
def test_delete_user_refuses_while_something_hangs_on_it(iam, blocker, message):
    iam("CreateUser", UserName="alice")
    if blocker == "login":
        iam("CreateLoginProfile", UserName="alice", Password="Correct-Horse-9")
    elif blocker == "key":
        iam("CreateAccessKey", UserName="alice")
    elif blocker == "inline":
        iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)
    else:
        iam("AttachUserPolicy", UserName="alice", PolicyArn=ADMIN)
    error = iam.fail("DeleteUser", UserName="alice")
    assert code_of(error) == ("DeleteConflict", 409)
    assert error.message == message
    assert iam("GetUser", UserName="alice")


def test_delete_user_removes_it(iam):
    iam("CreateUser", UserName="alice")
    assert iam("DeleteUser", UserName="alice") == {}
    assert code_of(iam.fail("GetUser", UserName="alice")) == ("NoSuchEntity", 404)
    assert code_of(iam.fail("DeleteUser", UserName="alice")) == ("NoSuchEntity", 404)
    iam("CreateUser", UserName="alice")  # the name is free again


def test_user_tags_add_replace_case_insensitively_and_remove(iam, changes):
    iam("CreateUser", UserName="alice", Tags=[{"Key": "Team", "Value": "a"}])
    iam("TagUser", UserName="alice", Tags=[{"Key": "team", "Value": "b"},
                                            {"Key": "env", "Value": "dev"}])
    assert changes == [None]
    assert iam("ListUserTags", UserName="alice")["Tags"] == [
        {"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "b"}]
    iam("UntagUser", UserName="alice", TagKeys=["ENV"])
    assert iam("GetUser", UserName="alice")["User"]["Tags"] == [{"Key": "team", "Value": "b"}]
    assert changes == [None, None]


@pytest.mark.parametrize("tags, code", [
    ([{"Key": "k", "Value": "1"}, {"Key": "K", "Value": "2"}], ("InvalidInput", 400)),
    ([{"Key": "aws:owner", "Value": "x"}], ("InvalidInput", 400)),
    ([{"Key": f"k{i}", "Value": "v"} for i in range(50)], ("LimitExceeded", 409)),
])
def test_tag_rules(iam, tags, code):
    iam("CreateUser", UserName="alice", Tags=[{"Key": "first", "Value": "x"}])
    assert code_of(iam.fail("TagUser", UserName="alice", Tags=tags)) == code
    assert iam("ListUserTags", UserName="alice")["Tags"] == [{"Key": "first", "Value": "x"}]


def test_tagging_a_missing_user_is_no_such_entity(iam):
    assert code_of(iam.fail("TagUser", UserName="x", Tags=[{"Key": "a", "Value": "b"}])) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail("ListUserTags", UserName="x")) == ("NoSuchEntity", 404)


# --- access keys -------------------------------------------------------------------------------


def test_create_access_key_for_a_user(iam):
    iam("CreateUser", UserName="alice")
    key = iam("CreateAccessKey", UserName="alice")["AccessKey"]
    assert re.fullmatch("AKIA[A-Z2-7]{16}", key["AccessKeyId"])
    assert len(key["SecretAccessKey"]) == 40
    assert key == {"UserName": "alice", "AccessKeyId": key["AccessKeyId"], "Status": "Active",
                   "SecretAccessKey": key["SecretAccessKey"], "CreateDate": T0_S}
    stored = iam.identities().find_access_key(key["AccessKeyId"])
    assert (stored.account_id, stored.user_name) == (ACCOUNT, "alice")


def test_a_user_has_at_most_two_access_keys(iam):
    iam("CreateUser", UserName="alice")
    iam("CreateAccessKey", UserName="alice")
    iam("CreateAccessKey", UserName="alice")
    error = iam.fail("CreateAccessKey", UserName="alice")
    assert code_of(error) == ("LimitExceeded", 409)
    assert error.message == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert code_of(iam.fail("CreateAccessKey", UserName="bob")) == ("NoSuchEntity", 404)


def test_without_a_user_name_keys_are_the_callers(iam):
    iam("CreateUser", UserName="alice")
    alice = as_user(iam, "alice")
    mine = alice("CreateAccessKey")["AccessKey"]
    assert mine["UserName"] == "alice"
    assert [k["AccessKeyId"] for k in alice("ListAccessKeys")["AccessKeyMetadata"]] == [
        mine["AccessKeyId"]]
    root_keys = iam("ListAccessKeys")["AccessKeyMetadata"]
    assert len(root_keys) == 1 and "UserName" not in root_keys[0]
    root_key = iam("CreateAccessKey", check_output=False)["AccessKey"]
    assert "UserName" not in root_key
    assert iam.identities().find_access_key(root_key["AccessKeyId"]).user_name is None


def test_update_access_key_status_and_signal(iam, changes):
    iam("CreateUser", UserName="alice")
    key_id = iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"]
    iam("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert changes == [key_id]
    listed = iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"]
    assert listed == [{"UserName": "alice", "AccessKeyId": key_id, "Status": "Inactive",
                       "CreateDate": T0_S}]
    iam("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Active")
    assert iam.identities().find_access_key(key_id).status == "Active"
    assert code_of(iam.fail("UpdateAccessKey", UserName="alice", AccessKeyId=key_id,
                            Status="Expired")) == ("InvalidInput", 400)


def test_keys_of_others_are_not_found(iam, changes):
    iam("CreateUser", UserName="alice")
    iam("CreateUser", UserName="bob")
    key_id = iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"]
    error = iam.fail("UpdateAccessKey", UserName="bob", AccessKeyId=key_id, Status="Inactive")
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == f"The Access Key with id {key_id} cannot be found."
    assert code_of(iam.fail("DeleteAccessKey", AccessKeyId=key_id)) == ("NoSuchEntity", 404)
    assert changes == []
    assert iam.identities().find_access_key(key_id).status == "Active"


def test_delete_access_key(iam, changes):
    iam("CreateUser", UserName="alice")
    key_id = iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"]
    assert iam("DeleteAccessKey", UserName="alice", AccessKeyId=key_id) == {}
    assert changes == [key_id]
    assert iam.identities().find_access_key(key_id) is None
    assert iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"] == []
    iam("DeleteUser", UserName="alice")


def test_get_access_key_last_used(iam):
    iam("CreateUser", UserName="alice")
    key_id = iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"]
    assert iam("GetAccessKeyLastUsed", AccessKeyId=key_id) == {
        "UserName": "alice", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
    other = iam.as_(root_principal(OTHER, "AKIAOTHERROOT0000000"))
    assert code_of(other.fail("GetAccessKeyLastUsed", AccessKeyId=key_id)) == ("NoSuchEntity", 404)


# --- roles -------------------------------------------------------------------------------------


def test_create_role_returns_the_role_with_its_trust_policy_url_encoded(iam):
    document = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    role = iam("CreateRole", RoleName="Admin", Path="/ops/", AssumeRolePolicyDocument=document,
               Description="admins", MaxSessionDuration=7200,
               Tags=[{"Key": "tier", "Value": "1"}])["Role"]
    assert re.fullmatch("AROA" + ID21, role["RoleId"])
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ops/Admin"
    assert "%7B%22Version%22%3A" in role["AssumeRolePolicyDocument"]
    assert unquote(role["AssumeRolePolicyDocument"]) == document
    assert (role["Path"], role["Description"], role["MaxSessionDuration"], role["CreateDate"]) == (
        "/ops/", "admins", 7200, T0_S)
    assert role["Tags"] == [{"Key": "tier", "Value": "1"}]
    got = iam("GetRole", RoleName="admin")["Role"]
    assert got["RoleId"] == role["RoleId"] and got["RoleLastUsed"] == {}


def test_role_defaults_and_duplicates(iam):
    role = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    assert role["Role"]["MaxSessionDuration"] == 3600
    error = iam.fail("CreateRole", RoleName="R", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    assert code_of(error) == ("EntityAlreadyExists", 409)
    assert error.message == "Role with name R already exists."


@pytest.mark.parametrize("document", [
    "{not json",
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                         "Action": "sts:AssumeRole"}]}),
    json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole",
         "Resource": "*"}]}),
    trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/ghost"}),
])
def test_malformed_trust_policies_are_refused(iam, document):
    error = iam.fail("CreateRole", RoleName="r", AssumeRolePolicyDocument=document)
    assert code_of(error) == ("MalformedPolicyDocument", 400)
    assert code_of(iam.fail("GetRole", RoleName="r")) == ("NoSuchEntity", 404)


def test_trust_policy_size_is_limited(iam):
    big = trust({"AWS": [ACCOUNT] * 200})
    error = iam.fail("CreateRole", RoleName="r", AssumeRolePolicyDocument=big)
    assert code_of(error) in {("LimitExceeded", 409), ("MalformedPolicyDocument", 400)}
    assert code_of(iam.fail("GetRole", RoleName="r")) == ("NoSuchEntity", 404)


def test_update_assume_role_policy(iam):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam("CreateUser", UserName="alice")
    alice_arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    iam("UpdateAssumeRolePolicy", RoleName="r", PolicyDocument=trust({"AWS": alice_arn}))
    assert json.loads(unquote(iam("GetRole", RoleName="r")["Role"]["AssumeRolePolicyDocument"])
                      )["Statement"][0]["Principal"] == {"AWS": alice_arn}
    assert code_of(iam.fail("UpdateAssumeRolePolicy", RoleName="r", PolicyDocument="[]")) == (
        "MalformedPolicyDocument", 400)
    assert code_of(iam.fail("UpdateAssumeRolePolicy", RoleName="x",
                            PolicyDocument=trust({"AWS": ACCOUNT}))) == ("NoSuchEntity", 404)


def test_list_roles_omits_tags_and_last_use(iam):
    iam("CreateRole", RoleName="b", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}),
        Tags=[{"Key": "k", "Value": "v"}])
    iam("CreateRole", RoleName="a", Path="/x/", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    roles = iam("ListRoles")["Roles"]
    assert [role["RoleName"] for role in roles] == ["a", "b"]
    assert all("Tags" not in role and "RoleLastUsed" not in role for role in roles)
    assert [role["RoleName"] for role in iam("ListRoles", PathPrefix="/x/")["Roles"]] == ["a"]


def test_role_tags_signal_and_delete_conflicts(iam, changes):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam("TagRole", RoleName="r", Tags=[{"Key": "team", "Value": "x"}])
    iam("UntagRole", RoleName="r", TagKeys=["nothing"])
    assert iam("ListRoleTags", RoleName="r")["Tags"] == [{"Key": "team", "Value": "x"}]
    assert changes == [None, None]
    iam("PutRolePolicy", RoleName="r", PolicyName="p", PolicyDocument=ALLOW_ALL)
    assert iam.fail("DeleteRole", RoleName="r").message == (
        "Cannot delete entity, must delete policies first.")
    iam("DeleteRolePolicy", RoleName="r", PolicyName="p")
    iam("AttachRolePolicy", RoleName="r", PolicyArn=ADMIN)
    error = iam.fail("DeleteRole", RoleName="r")
    assert code_of(error) == ("DeleteConflict", 409)
    assert error.message == "Cannot delete entity, must detach all policies first."
    iam("DetachRolePolicy", RoleName="r", PolicyArn=ADMIN)
    iam("DeleteRole", RoleName="r")
    assert code_of(iam.fail("GetRole", RoleName="r")) == ("NoSuchEntity", 404)


def test_update_role(iam):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam("UpdateRole", RoleName="r", MaxSessionDuration=43200, Description="d")
    role = iam("GetRole", RoleName="r")["Role"]
    assert (role["MaxSessionDuration"], role["Description"]) == (43200, "d")


# --- inline policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["User", "Role"])
def test_inline_policies_put_get_list_delete(iam, kind):
    owner = {f"{kind}Name": "who"}
    if kind == "User":
        iam("CreateUser", UserName="who")
    else:
        iam("CreateRole", RoleName="who", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam(f"Put{kind}Policy", **owner, PolicyName="b", PolicyDocument=ALLOW_ALL)
    iam(f"Put{kind}Policy", **owner, PolicyName="a", PolicyDocument=AOSS_READ)
    got = iam(f"Get{kind}Policy", **owner, PolicyName="a")
    assert got == {f"{kind}Name": "who", "PolicyName": "a",
                   "PolicyDocument": got["PolicyDocument"]}
    assert unquote(got["PolicyDocument"]) == AOSS_READ and "%22" in got["PolicyDocument"]
    assert iam(f"List{kind}Policies", **owner)["PolicyNames"] == ["a", "b"]
    iam(f"Put{kind}Policy", **owner, PolicyName="a", PolicyDocument=ALLOW_ALL)  # replaces
    assert unquote(iam(f"Get{kind}Policy", **owner, PolicyName="a")["PolicyDocument"]) == ALLOW_ALL
    iam(f"Delete{kind}Policy", **owner, PolicyName="a")
    assert iam(f"List{kind}Policies", **owner)["PolicyNames"] == ["b"]
    error = iam.fail(f"Get{kind}Policy", **owner, PolicyName="a")
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == f"The {kind.lower()} policy with name a cannot be found."
    assert code_of(iam.fail(f"Delete{kind}Policy", **owner, PolicyName="a")) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail(f"Put{kind}Policy", **{f"{kind}Name": "ghost"}, PolicyName="a",
                            PolicyDocument=ALLOW_ALL)) == ("NoSuchEntity", 404)


@pytest.mark.parametrize("document", [
    "nope",
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}),
    json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]}),
    json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Maybe", "Action": "*", "Resource": "*"}]}),
])
def test_malformed_inline_policies_are_refused(iam, document):
    iam("CreateUser", UserName="u")
    error = iam.fail("PutUserPolicy", UserName="u", PolicyName="p", PolicyDocument=document)
    assert code_of(error) == ("MalformedPolicyDocument", 400)
    assert iam("ListUserPolicies", UserName="u")["PolicyNames"] == []


def _sized_policy(size: int) -> str:
    base = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "aoss:List*", "Resource": "arn:aws:aoss:::x"}]},
        separators=(",", ":"))
    return base.replace(":::x", ":::" + "x" * (size - len(base) + 1))


def test_inline_sizes_are_limited_per_user_and_role(iam):
    iam("CreateUser", UserName="u")
    iam("PutUserPolicy", UserName="u", PolicyName="a", PolicyDocument=_sized_policy(1500))
    error = iam.fail("PutUserPolicy", UserName="u", PolicyName="b",
                     PolicyDocument=_sized_policy(600))
    assert code_of(error) == ("LimitExceeded", 409)
    assert error.message == "Maximum policy size of 2048 bytes exceeded for user u"
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam("PutRolePolicy", RoleName="r", PolicyName="a", PolicyDocument=_sized_policy(6000))
    assert code_of(iam.fail("PutRolePolicy", RoleName="r", PolicyName="b",
                            PolicyDocument=_sized_policy(4300))) == ("LimitExceeded", 409)


# --- managed policies ----------------------------------------------------------------------------


def test_create_and_get_policy(iam):
    policy = iam("CreatePolicy", PolicyName="Read", Path="/team/", PolicyDocument=AOSS_READ,
                 Description="read", Tags=[{"Key": "a", "Value": "b"}])["Policy"]
    arn = f"arn:aws:iam::{ACCOUNT}:policy/team/Read"
    assert re.fullmatch("ANPA" + ID21, policy["PolicyId"])
    assert policy == {"PolicyName": "Read", "PolicyId": policy["PolicyId"], "Arn": arn,
                      "Path": "/team/", "DefaultVersionId": "v1", "AttachmentCount": 0,
                      "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
                      "CreateDate": T0_S, "UpdateDate": T0_S, "Description": "read",
                      "Tags": [{"Key": "a", "Value": "b"}]}
    assert iam("GetPolicy", PolicyArn=arn)["Policy"] == policy
    version = iam("GetPolicyVersion", PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert unquote(version["Document"]) == AOSS_READ and version["IsDefaultVersion"] is True


def test_policy_names_are_unique_per_account_whatever_the_path(iam):
    iam("CreatePolicy", PolicyName="Read", PolicyDocument=AOSS_READ)
    error = iam.fail("CreatePolicy", PolicyName="read", Path="/x/", PolicyDocument=AOSS_READ)
    assert code_of(error) == ("EntityAlreadyExists", 409)
    assert error.message == "A policy called read already exists. Duplicate names are not allowed."


def test_policy_lookups_errors(iam):
    error = iam.fail("GetPolicy", PolicyArn="arn:aws:iam::111122223333:nonsense/x")
    assert code_of(error) == ("InvalidInput", 400)
    missing = f"arn:aws:iam::{ACCOUNT}:policy/nope"
    error = iam.fail("GetPolicy", PolicyArn=missing)
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == f"Policy {missing} does not exist or is not attachable."
    iam("CreatePolicy", PolicyName="Mine", PolicyDocument=AOSS_READ)
    other = iam.as_(root_principal(OTHER, "AKIAOTHERROOT0000000"))
    assert code_of(other.fail("GetPolicy", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/Mine")) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail("CreatePolicy", PolicyName="Bad", PolicyDocument="{}")) == (
        "MalformedPolicyDocument", 400)
    assert code_of(iam.fail("CreatePolicy", PolicyName="Big",
                            PolicyDocument=_sized_policy(6200))) == ("LimitExceeded", 409)


def test_policy_versions_lifecycle(iam):
    arn = iam("CreatePolicy", PolicyName="P", PolicyDocument=AOSS_READ)["Policy"]["Arn"]
    iam.advance(60)
    v2 = iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL,
             SetAsDefault=True)["PolicyVersion"]
    assert v2 == {"VersionId": "v2", "IsDefaultVersion": True,
                  "CreateDate": T0_S + timedelta(seconds=60)}
    iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=AOSS_READ)
    listed = iam("ListPolicyVersions", PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in listed] == [
        ("v3", False), ("v2", True), ("v1", False)]
    policy = iam("GetPolicy", PolicyArn=arn)["Policy"]
    assert policy["DefaultVersionId"] == "v2"
    assert policy["UpdateDate"] == T0_S + timedelta(seconds=60)
    error = iam.fail("DeletePolicyVersion", PolicyArn=arn, VersionId="v2")
    assert code_of(error) == ("DeleteConflict", 409)
    assert error.message == "Cannot delete the default version of a policy."
    iam("SetDefaultPolicyVersion", PolicyArn=arn, VersionId="v1")
    iam("DeletePolicyVersion", PolicyArn=arn, VersionId="v2")
    assert code_of(iam.fail("GetPolicyVersion", PolicyArn=arn, VersionId="v2")) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail("SetDefaultPolicyVersion", PolicyArn=arn, VersionId="v9")) == (
        "NoSuchEntity", 404)
    for _ in range(3):
        iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=AOSS_READ)
    assert [v["VersionId"] for v in iam("ListPolicyVersions", PolicyArn=arn)["Versions"]] == [
        "v6", "v5", "v4", "v3", "v1"]
    error = iam.fail("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=AOSS_READ)
    assert code_of(error) == ("LimitExceeded", 409)


def test_delete_policy_rules(iam):
    arn = iam("CreatePolicy", PolicyName="P", PolicyDocument=AOSS_READ)["Policy"]["Arn"]
    iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    assert code_of(iam.fail("DeletePolicy", PolicyArn=arn)) == ("DeleteConflict", 409)
    iam("DeletePolicyVersion", PolicyArn=arn, VersionId="v2")
    iam("CreateUser", UserName="u")
    iam("AttachUserPolicy", UserName="u", PolicyArn=arn)
    error = iam.fail("DeletePolicy", PolicyArn=arn)
    assert error.message == "Cannot delete a policy attached to entities."
    iam("DetachUserPolicy", UserName="u", PolicyArn=arn)
    iam("DeletePolicy", PolicyArn=arn)
    assert code_of(iam.fail("GetPolicy", PolicyArn=arn)) == ("NoSuchEntity", 404)
    iam("CreatePolicy", PolicyName="P", PolicyDocument=AOSS_READ)  # the name is free again
    assert code_of(iam.fail("DeletePolicy", PolicyArn=ADMIN)) == ("InvalidInput", 400)


def test_aws_managed_policies_are_readable_and_listed(iam):
    admin = iam("GetPolicy", PolicyArn=ADMIN)["Policy"]
    assert admin["PolicyName"] == "AdministratorAccess" and admin["DefaultVersionId"] == "v1"
    document = json.loads(unquote(iam("GetPolicyVersion", PolicyArn=ADMIN,
                                      VersionId="v1")["PolicyVersion"]["Document"]))
    assert document["Statement"] == [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    iam("CreatePolicy", PolicyName="Mine", PolicyDocument=AOSS_READ)
    local = iam("ListPolicies", Scope="Local")["Policies"]
    assert [p["PolicyName"] for p in local] == ["Mine"]
    aws = [p["Arn"] for p in iam("ListPolicies", Scope="AWS")["Policies"]]
    assert ADMIN in aws and all(":aws:policy/" in arn for arn in aws)
    assert len(iam("ListPolicies")["Policies"]) == len(aws) + 1


# --- attachments -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["User", "Role"])
def test_attach_detach_and_counts(iam, kind):
    owner = {f"{kind}Name": "who"}
    if kind == "User":
        iam("CreateUser", UserName="who")
    else:
        iam("CreateRole", RoleName="who", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    arn = iam("CreatePolicy", PolicyName="P", Path="/p/", PolicyDocument=AOSS_READ)["Policy"]["Arn"]
    iam(f"Attach{kind}Policy", **owner, PolicyArn=arn)
    iam(f"Attach{kind}Policy", **owner, PolicyArn=arn)  # idempotent
    iam(f"Attach{kind}Policy", **owner, PolicyArn=ADMIN)
    assert iam("GetPolicy", PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert iam("GetPolicy", PolicyArn=ADMIN)["Policy"]["AttachmentCount"] == 1
    assert iam(f"ListAttached{kind}Policies", **owner)["AttachedPolicies"] == [
        {"PolicyName": "P", "PolicyArn": arn},
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}]
    assert iam(f"ListAttached{kind}Policies", **owner, PathPrefix="/p/")["AttachedPolicies"] == [
        {"PolicyName": "P", "PolicyArn": arn}]
    assert [p["Arn"] for p in iam("ListPolicies", OnlyAttached=True)["Policies"]] == sorted(
        [arn, ADMIN], key=lambda a: a.rsplit("/", 1)[1].lower())
    iam(f"Detach{kind}Policy", **owner, PolicyArn=arn)
    assert iam("GetPolicy", PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    error = iam.fail(f"Detach{kind}Policy", **owner, PolicyArn=arn)
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == f"Policy {arn} was not found."
    missing = f"arn:aws:iam::{ACCOUNT}:policy/missing"
    assert code_of(iam.fail(f"Attach{kind}Policy", **owner, PolicyArn=missing)) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail(f"Attach{kind}Policy", **owner, PolicyArn="arn:aws:s3:::bucket/x")) == (
        "InvalidInput", 400)


def test_at_most_ten_policies_attached(iam):
    iam("CreateUser", UserName="u")
    for number in range(10):
        arn = iam("CreatePolicy", PolicyName=f"P{number}",
                  PolicyDocument=AOSS_READ)["Policy"]["Arn"]
        iam("AttachUserPolicy", UserName="u", PolicyArn=arn)
    error = iam.fail("AttachUserPolicy", UserName="u", PolicyArn=ADMIN)
    assert code_of(error) == ("LimitExceeded", 409)
    assert error.message == "Cannot exceed quota for PoliciesPerUser: 10."


def test_attached_policies_page_on_after_a_detach_between_pages(iam):
    iam("CreateUser", UserName="u")
    arns = [iam("CreatePolicy", PolicyName=f"P{number}", PolicyDocument=AOSS_READ)["Policy"][
        "Arn"] for number in range(4)]
    for arn in arns:
        iam("AttachUserPolicy", UserName="u", PolicyArn=arn)
    first = iam("ListAttachedUserPolicies", UserName="u", MaxItems=2)
    seen = [item["PolicyArn"] for item in first["AttachedPolicies"]]
    iam("DetachUserPolicy", UserName="u", PolicyArn=seen[0])
    rest = iam("ListAttachedUserPolicies", UserName="u", Marker=first["Marker"])
    assert sorted(seen[1:] + [item["PolicyArn"] for item in rest["AttachedPolicies"]]) == \
        sorted(set(arns) - {seen[0]})


# --- login profiles ----------------------------------------------------------------------------


def test_login_profile_lifecycle_stores_only_a_hash(iam):
    iam("CreateUser", UserName="alice")
    profile = iam("CreateLoginProfile", UserName="alice", Password="Correct-Horse-9",
                  PasswordResetRequired=True)["LoginProfile"]
    assert profile == {"UserName": "alice", "CreateDate": T0_S, "PasswordResetRequired": True}
    raw = iam.conn.execute("SELECT doc FROM resources WHERE kind=?",
                           (KIND_LOGIN_PROFILE,)).fetchone()[0]
    assert "Correct-Horse-9" not in raw
    stored = json.loads(raw)["PasswordHash"]
    assert stored["Algorithm"] == "scrypt" and len(stored["Salt"]) >= 20
    assert verify_password(stored, "Correct-Horse-9") and not verify_password(stored, "wrong")
    error = iam.fail("CreateLoginProfile", UserName="alice", Password="Another-Pass-1")
    assert code_of(error) == ("EntityAlreadyExists", 409)
    iam("UpdateLoginProfile", UserName="alice", Password="New-Secret-42",
        PasswordResetRequired=False)
    stored = json.loads(iam.conn.execute("SELECT doc FROM resources WHERE kind=?",
                                         (KIND_LOGIN_PROFILE,)).fetchone()[0])["PasswordHash"]
    assert verify_password(stored, "New-Secret-42") and not verify_password(stored,
                                                                            "Correct-Horse-9")
    profile = iam("GetLoginProfile", UserName="alice")["LoginProfile"]
    assert profile["PasswordResetRequired"] is False
    iam("DeleteLoginProfile", UserName="alice")
    error = iam.fail("GetLoginProfile", UserName="alice")
    assert code_of(error) == ("NoSuchEntity", 404)
    assert error.message == "Login Profile for User alice cannot be found."
    assert code_of(iam.fail("UpdateLoginProfile", UserName="alice",
                            Password="New-Secret-43")) == ("NoSuchEntity", 404)


def test_two_hashes_of_one_password_differ(iam):
    for name in ("a", "b"):
        iam("CreateUser", UserName=name)
        iam("CreateLoginProfile", UserName=name, Password="Same-Pass-123")
    hashes = [json.loads(row[0])["PasswordHash"]["Hash"] for row in iam.conn.execute(
        "SELECT doc FROM resources WHERE kind=?", (KIND_LOGIN_PROFILE,))]
    assert len(set(hashes)) == 2


@pytest.mark.parametrize("password", ["Short1!", "alllowercaseletters", "alice", "ALICE"])
def test_weak_passwords_violate_the_password_policy(iam, password):
    iam("CreateUser", UserName="alice")
    error = iam.fail("CreateLoginProfile", UserName="alice", Password=password)
    assert code_of(error) == ("PasswordPolicyViolation", 400)
    assert password not in error.message
    assert code_of(iam.fail("GetLoginProfile", UserName="alice")) == ("NoSuchEntity", 404)


def test_login_profile_for_self_and_missing_user(iam):
    iam("CreateUser", UserName="alice")
    as_user(iam, "alice")("CreateLoginProfile", Password="Correct-Horse-9")
    assert iam("GetLoginProfile", UserName="alice")["LoginProfile"]["UserName"] == "alice"
    assert code_of(iam.fail("CreateLoginProfile", UserName="bob", Password="Correct-Horse-9")) == (
        "NoSuchEntity", 404)


# --- OIDC providers ----------------------------------------------------------------------------


def test_oidc_provider_lifecycle(iam):
    out = iam("CreateOpenIDConnectProvider", Url="https://login.example.com/tenant",
              ClientIDList=["app"], ThumbprintList=["a" * 40])
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/login.example.com/tenant"
    assert out == {"OpenIDConnectProviderArn": arn}
    got = iam("GetOpenIDConnectProvider", OpenIDConnectProviderArn=arn)
    assert got == {"Url": "login.example.com/tenant", "ClientIDList": ["app"],
                   "ThumbprintList": ["a" * 40], "CreateDate": T0_S}
    assert iam("ListOpenIDConnectProviders") == {"OpenIDConnectProviderList": [{"Arn": arn}]}
    error = iam.fail("CreateOpenIDConnectProvider", Url="https://login.example.com/tenant")
    assert code_of(error) == ("EntityAlreadyExists", 409)
    iam("AddClientIDToOpenIDConnectProvider", OpenIDConnectProviderArn=arn, ClientID="two")
    assert iam("GetOpenIDConnectProvider", OpenIDConnectProviderArn=arn)["ClientIDList"] == [
        "app", "two"]
    iam("DeleteOpenIDConnectProvider", OpenIDConnectProviderArn=arn)
    error = iam.fail("GetOpenIDConnectProvider", OpenIDConnectProviderArn=arn)
    assert code_of(error) == ("NoSuchEntity", 404)
    assert code_of(iam.fail("DeleteOpenIDConnectProvider", OpenIDConnectProviderArn=arn)) == (
        "NoSuchEntity", 404)
    assert code_of(iam.fail("GetOpenIDConnectProvider",
                            OpenIDConnectProviderArn="arn:aws:iam::1:nonsense")) == (
        "InvalidInput", 400)


@pytest.mark.parametrize("url", ["http://login.example.com", "https://sp ace.example.com",
                                 "https://ex\u00e4mple.com"])
def test_oidc_provider_url_must_be_https_and_printable_ascii(iam, url):
    # one the provider's ARN could not name again could never be read or deleted
    error = iam.fail("CreateOpenIDConnectProvider", Url=url)
    assert code_of(error) == ("InvalidInput", 400)
    assert iam("ListOpenIDConnectProviders")["OpenIDConnectProviderList"] == []


def test_oidc_jwks_is_set_locally(iam):
    arn = iam("CreateOpenIDConnectProvider", Url="https://idp.example")["OpenIDConnectProviderArn"]
    iam.conn.execute("BEGIN IMMEDIATE")
    iam.identities().set_oidc_jwks(ACCOUNT, arn, {"keys": [{"kty": "RSA", "n": "AQ", "e": "AQAB"}]})
    with pytest.raises(ServiceError) as info:
        iam.identities().set_oidc_jwks(ACCOUNT, arn, {"nokeys": True})
    iam.conn.execute("COMMIT")
    assert info.value.code == "InvalidInput"
    assert iam.identities().get_oidc_provider(ACCOUNT, arn)["Jwks"]["keys"][0]["kty"] == "RSA"


# --- account summary ---------------------------------------------------------------------------


def test_account_summary_counts(iam):
    iam("CreateUser", UserName="a")
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    arn = iam("CreatePolicy", PolicyName="P", PolicyDocument=AOSS_READ)["Policy"]["Arn"]
    iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    summary = iam("GetAccountSummary")["SummaryMap"]
    assert (summary["Users"], summary["Roles"], summary["Policies"],
            summary["PolicyVersionsInUse"], summary["AccountAccessKeysPresent"]) == (1, 1, 1, 2, 1)
    assert summary["AccessKeysPerUserQuota"] == 2


# --- what the authorizer reads -----------------------------------------------------------------


def _policies(iam: Harness, principal):
    return policies_for(SqliteResources(iam.conn, "", ""), principal)


def test_policies_for_a_user_reads_inline_attached_defaults_and_boundary(iam):
    boundary = iam("CreatePolicy", PolicyName="Boundary", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    iam("CreateUser", UserName="alice", PermissionsBoundary=boundary)
    assert iam("GetPolicy", PolicyArn=boundary)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    assert iam("GetUser", UserName="alice")["User"]["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": boundary}
    iam("PutUserPolicy", UserName="alice", PolicyName="inline", PolicyDocument=AOSS_READ)
    arn = iam("CreatePolicy", PolicyName="P", PolicyDocument=AOSS_READ)["Policy"]["Arn"]
    iam("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL, SetAsDefault=True)
    iam("AttachUserPolicy", UserName="alice", PolicyArn=arn)
    alice = iam.identities().get_user(ACCOUNT, "alice")
    principal = user_principal(ACCOUNT, alice, "AKIAX")
    identity, bound = _policies(iam, principal)
    assert identity == [json.loads(AOSS_READ), json.loads(ALLOW_ALL)]
    assert bound == json.loads(ALLOW_ALL)
    iam("DetachUserPolicy", UserName="alice", PolicyArn=arn)
    assert _policies(iam, principal).identity == [json.loads(AOSS_READ)]
    iam("DeleteUserPolicy", UserName="alice", PolicyName="inline")
    assert _policies(iam, principal).identity == []


def test_policies_for_root_and_for_a_recreated_user(iam):
    assert _policies(iam, iam.principal) == ([json.loads(ALLOW_ALL)], None)
    iam("CreateUser", UserName="alice")
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)
    old = user_principal(ACCOUNT, iam.identities().get_user(ACCOUNT, "alice"), "AKIAX")
    iam("DeleteUserPolicy", UserName="alice", PolicyName="p")
    iam("DeleteUser", UserName="alice")
    iam("CreateUser", UserName="alice")
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)
    assert _policies(iam, old) == ([], None)


def test_policies_for_a_role_session(iam):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    iam("AttachRolePolicy", RoleName="r", PolicyArn=ADMIN)
    role = iam.identities().get_role(ACCOUNT, "r")
    session = role_session_principal(
        account_id=ACCOUNT, role_name="r", role_id=role["RoleId"], role_arn=role["Arn"],
        session_name="s", access_key_id="ASIAX", creation_date=T0,
        session_policies=(json.loads(AOSS_READ),))
    identity, boundary = _policies(iam, session)
    assert identity == [{"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    assert boundary is None
    assert session.session_policies == (json.loads(AOSS_READ),)


# --- the policy-document check -----------------------------------------------------------------


@pytest.mark.parametrize("text, kind, message", [
    ("[1]", "identity", "Syntax errors in policy."),
    ("{", "identity", "Syntax errors in policy."),
    ('{"Statement": {"Effect": "Allow", "Action": "s3:Get", "Resource": "*", '
     '"Principal": "*"}}', "identity", "Policy document should not specify a principal."),
    ('{"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}', "trust",
     "Missing required field Principal."),
    ('{"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*", '
     '"Resource": "*"}}', "trust", "Has prohibited field Resource."),
])
def test_policy_check_answers_the_first_problem(text, kind, message):
    with pytest.raises(ServiceError) as info:
        documents.validate(text, kind)
    assert code_of(info.value) == ("MalformedPolicyDocument", 400)
    assert info.value.message == message


def test_policy_check_accepts_valid_documents():
    assert documents.validate(ALLOW_ALL, "identity") == json.loads(ALLOW_ALL)
    assert documents.validate(trust("*"), "trust")["Statement"][0]["Principal"] == "*"
