"""Principals: the CloudTrail userIdentity of every caller kind, and what the authorizer reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from searchtrail.auth.principals import (
    PolicyOwner,
    SessionContext,
    SessionIssuer,
    federated_user_principal,
    role_session_principal,
    root_principal,
    user_principal,
    web_identity_user,
)

ACCOUNT = "123456789012"
CREATED = datetime(2022, 4, 8, 14, 11, 34, 987654, tzinfo=timezone.utc)
ROLE_ID = "AROAEXAMPLEEXAMPLE123"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
USER = {"UserName": "alice", "UserId": "AIDAEXAMPLEEXAMPLE123",
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "Tags": [{"Key": "team", "Value": "a"}]}


def role_session(**changes):
    arguments = dict(account_id=ACCOUNT, role_name="Admin", role_id=ROLE_ID, role_arn=ROLE_ARN,
                     session_name="test-user", access_key_id="ASIAEXAMPLE",
                     creation_date=CREATED)
    arguments.update(changes)
    return role_session_principal(**arguments)


def test_root_identity_is_unchanged():
    assert root_principal(ACCOUNT, "AKIAROOT").user_identity() == {
        "type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT, "accessKeyId": "AKIAROOT"}


def test_iam_user_identity_carries_the_user_name():
    assert user_principal(ACCOUNT, USER, "AKIAUSER").user_identity() == {
        "type": "IAMUser", "principalId": USER["UserId"], "arn": USER["Arn"],
        "accountId": ACCOUNT, "accessKeyId": "AKIAUSER", "userName": "alice"}


def test_assumed_role_identity_has_every_field_aws_gives():
    assert role_session().user_identity() == {
        "type": "AssumedRole",
        "principalId": f"{ROLE_ID}:test-user",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/test-user",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": ROLE_ID, "arn": ROLE_ARN,
                              "accountId": ACCOUNT, "userName": "Admin"},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2022-04-08T14:11:34Z", "mfaAuthenticated": "false"},
        },
    }


def test_assumed_role_identity_with_source_identity_mfa_and_web_identity():
    identity = role_session(source_identity="alice", mfa=True,
                            federated_provider=f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example",
                            federated_attributes={"k": "v"}).user_identity()
    context = identity["sessionContext"]
    assert context["sourceIdentity"] == "alice"
    assert context["attributes"]["mfaAuthenticated"] == "true"
    assert context["webIdFederationData"] == {
        "federatedProvider": f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example",
        "attributes": {"k": "v"}}


def test_creation_date_is_utc_whole_seconds():
    plus_two = timezone(timedelta(hours=2))
    identity = role_session(creation_date=datetime(2022, 4, 8, 16, 11, 34, 999999,
                                                   tzinfo=plus_two)).user_identity()
    assert identity["sessionContext"]["attributes"]["creationDate"] == "2022-04-08T14:11:34Z"


def test_federated_user_identity_with_user_and_root_issuers():
    user_issuer = SessionIssuer("IAMUser", USER["UserId"], USER["Arn"], ACCOUNT, "alice")
    federated = federated_user_principal(
        account_id=ACCOUNT, name="Bob", access_key_id="ASIAFED", creation_date=CREATED,
        issuer=user_issuer,
        owner=PolicyOwner("user", ACCOUNT, "alice", USER["UserId"], USER["Arn"]),
        session_policies=())
    assert federated.user_identity() == {
        "type": "FederatedUser", "principalId": f"{ACCOUNT}:Bob",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/Bob", "accountId": ACCOUNT,
        "accessKeyId": "ASIAFED",
        "sessionContext": {
            "sessionIssuer": {"type": "IAMUser", "principalId": USER["UserId"],
                              "arn": USER["Arn"], "accountId": ACCOUNT, "userName": "alice"},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2022-04-08T14:11:34Z", "mfaAuthenticated": "false"}}}
    root_issuer = SessionIssuer("Root", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)
    by_root = federated_user_principal(
        account_id=ACCOUNT, name="Bob", access_key_id="ASIAFED", creation_date=CREATED,
        issuer=root_issuer, owner=PolicyOwner("root", ACCOUNT, None, ACCOUNT, root_issuer.arn),
        session_policies=None)
    assert by_root.user_identity()["sessionContext"]["sessionIssuer"] == {
        "type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT}


def test_web_identity_user_identity():
    caller = web_identity_user(account_id=ACCOUNT, identity_provider="accounts.google.com",
                               audience="app.apps.googleusercontent.com", subject="1000")
    assert caller.user_identity() == {
        "type": "WebIdentityUser",
        "principalId": "accounts.google.com:app.apps.googleusercontent.com:1000",
        "userName": "1000", "identityProvider": "accounts.google.com"}
    assert caller.account_id == ACCOUNT and caller.policy_owner is None


def test_session_credentials_of_users_and_root_add_a_session_context():
    context = SessionContext(CREATED)
    identity = user_principal(ACCOUNT, USER, "ASIAUSER", session=context,
                              credential_source="GetSessionToken").user_identity()
    assert identity["userName"] == "alice"
    assert identity["sessionContext"] == {
        "sessionIssuer": {}, "webIdFederationData": {},
        "attributes": {"creationDate": "2022-04-08T14:11:34Z", "mfaAuthenticated": "false"}}
    assert "sessionContext" in root_principal(ACCOUNT, "ASIAROOT", session=context).user_identity()


FEDERATED = federated_user_principal(
    account_id=ACCOUNT, name="Bob", access_key_id="ASIAFED", creation_date=CREATED,
    issuer=SessionIssuer("IAMUser", USER["UserId"], USER["Arn"], ACCOUNT, "alice"),
    owner=PolicyOwner("user", ACCOUNT, "alice", USER["UserId"], USER["Arn"]),
    session_policies=({"Statement": []},), tags={"project": "x"})


@pytest.mark.parametrize("principal, principal_type, userid, username, is_root", [
    (root_principal(ACCOUNT, "AKIA"), "Account", ACCOUNT, None, True),
    (user_principal(ACCOUNT, USER, "AKIA"), "User", USER["UserId"], "alice", False),
    (role_session(), "AssumedRole", f"{ROLE_ID}:test-user", None, False),
    (FEDERATED, "FederatedUser", f"{ACCOUNT}:Bob", None, False),
])
def test_condition_key_values(principal, principal_type, userid, username, is_root):
    assert (principal.principal_type, principal.userid, principal.username, principal.is_root) == (
        principal_type, userid, username, is_root)


def test_policy_owners():
    assert root_principal(ACCOUNT, "AKIA").policy_owner == PolicyOwner(
        "root", ACCOUNT, None, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")
    assert user_principal(ACCOUNT, USER, "AKIA").policy_owner == PolicyOwner(
        "user", ACCOUNT, "alice", USER["UserId"], USER["Arn"])
    assert role_session().policy_owner == PolicyOwner("role", ACCOUNT, "Admin", ROLE_ID, ROLE_ARN)
    assert FEDERATED.policy_owner.name == "alice"


def test_tags_session_policies_and_mfa():
    assert user_principal(ACCOUNT, USER, "AKIA").tags == {"team": "a"}
    assert FEDERATED.tags == {"project": "x"}
    assert FEDERATED.session_policies == ({"Statement": []},)
    assert role_session().session_policies is None
    assert role_session(mfa=True).mfa is True and role_session().mfa is False
    assert root_principal(ACCOUNT, "AKIA").mfa is False
    assert role_session(source_identity="si").source_identity == "si"
    assert role_session().issuer_arn == ROLE_ARN
    assert root_principal(ACCOUNT, "AKIA").is_temporary is False
    assert role_session().is_temporary is True


def test_principals_are_frozen_hashable_and_comparable():
    first, second = role_session(tags={"a": "1"}), role_session(tags={"a": "1"})
    assert first == second and hash(first) == hash(second)
    assert first != role_session(tags={"a": "2"})
    assert len({first, second, root_principal(ACCOUNT, "AKIA")}) == 2
    with pytest.raises(AttributeError):
        first.kind = "Root"  # type: ignore[misc]
