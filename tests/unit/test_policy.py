"""IAM authorization at evaluator level: the deny matrix A1-A6 (plan section 3.6), messages,
malformed documents, trust policies and the action / resource-ARN tables."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import botocore.session
import pytest

from searchtrail.auth import actions
from searchtrail.auth.policy import (
    AuthorizationRequest,
    Decision,
    MalformedPolicyError,
    PolicySet,
    TrustRequest,
    access_denied,
    access_denied_message,
    authorize,
    authorize_assume_role,
    compile_policy,
    evaluate,
    evaluate_trust,
    names_key,
    request_context,
    validate_policy_document,
)
from searchtrail.protocol.errors import ServiceError

ACCT, OTHER, REGION = "111122223333", "444455556666", "us-east-1"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
COLLECTION = f"arn:aws:aoss:{REGION}:{ACCT}:collection/abc123"
NEW_COLLECTION = f"arn:aws:aoss:{REGION}:{ACCT}:collection/*"
ROLE = f"arn:aws:iam::{ACCT}:role/deployer"


def doc(*statements: dict, version: str | None = "2012-10-17") -> dict:
    document: dict = {"Statement": list(statements)}
    if version:
        document["Version"] = version
    return document


def allow(action: object = "*", resource: object = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: object = "*", resource: object = "*", **extra: object) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def request(action: str = "aoss:CreateCollection", resource: str = NEW_COLLECTION,
            context: dict | None = None, account: str = ACCT,
            principal: str = ALICE) -> AuthorizationRequest:
    return AuthorizationRequest(action, resource, principal, account, context=context or {})


def decide(*identity: dict | str, **kwargs: object) -> Decision:
    req = kwargs.pop("req", None) or request(**kwargs)  # type: ignore[arg-type]
    return evaluate(PolicySet(list(identity)), req)


def allowed(*identity: dict | str, **kwargs: object) -> bool:
    return decide(*identity, **kwargs).allowed


ADMIN = doc(allow())


# ------------------------------------------------------------------------------------- A1


def test_a1_no_policy_at_all_is_an_implicit_deny() -> None:
    decision = evaluate(PolicySet([]), request())
    assert decision == Decision(False, "no_identity_allow", "identity-based policy")
    error = access_denied(ALICE, "aoss:CreateCollection", NEW_COLLECTION, decision)
    assert (error.code, error.status) == ("AccessDeniedException", 403)
    assert error.message == (
        f"User: {ALICE} is not authorized to perform: aoss:CreateCollection on resource: "
        f"{NEW_COLLECTION} because no identity-based policy allows the aoss:CreateCollection "
        "action")


def test_a1_a_policy_for_other_actions_grants_nothing_here() -> None:
    assert decide(doc(allow("cloudtrail:*"))).reason == "no_identity_allow"
    assert decide(doc(allow("aoss:ListCollections"))).reason == "no_identity_allow"


# ------------------------------------------------------------------------------------- A2


def test_a2_explicit_deny_beats_allow_star() -> None:
    policy = doc(allow(), deny("aoss:CreateCollection"))
    decision = decide(policy)
    assert decision == Decision(False, "explicit_deny", "identity-based policy")
    assert access_denied(ALICE, "aoss:CreateCollection", NEW_COLLECTION, decision).message == (
        f"User: {ALICE} is not authorized to perform: aoss:CreateCollection on resource: "
        f"{NEW_COLLECTION} with an explicit deny in an identity-based policy")
    assert allowed(policy, action="aoss:DeleteCollection", resource=COLLECTION)


def test_a2_deny_in_another_policy_and_in_any_order() -> None:
    assert decide(ADMIN, doc(deny("aoss:CreateCollection"))).reason == "explicit_deny"
    assert decide(doc(deny("aoss:CreateCollection")), ADMIN).reason == "explicit_deny"
    assert decide(doc(deny("aoss:CreateCollection"), allow())).reason == "explicit_deny"


def test_deny_sid_is_reported() -> None:
    policy = doc(allow(), {**deny("aoss:*"), "Sid": "NoAoss"})
    assert decide(policy).statement == "NoAoss"


# ------------------------------------------------------------------------------------- A3


@pytest.mark.parametrize("pattern, action, expected", [
    ("aoss:Create*", "aoss:CreateCollection", True),
    ("aoss:Create*", "aoss:DeleteCollection", False),
    ("aoss:*", "aoss:DeleteCollection", True),
    ("aoss:*", "cloudtrail:LookupEvents", False),
    ("*", "cloudtrail:LookupEvents", True),
    ("aoss:*Collection", "aoss:CreateCollection", True),
    ("aoss:?reateCollection", "aoss:CreateCollection", True),
    ("aoss:?Collection", "aoss:CreateCollection", False),
    ("aoss:Create", "aoss:CreateCollection", False),
    ("aoss", "aoss:CreateCollection", False),
    ("AOSS:createCOLLECTION", "aoss:CreateCollection", True),
    ("aoss:CreateCollection", "AOSS:CREATECOLLECTION", True),
    ("AOSS:CREATE*", "aoss:CreateCollection", True),
    ("aoss:Create.*", "aoss:CreateCollection", False),  # no regex meaning
])
def test_a3_action_wildcards_are_case_insensitive(pattern: str, action: str, expected: bool) -> None:
    assert allowed(doc(allow(pattern)), action=action) is expected


def test_a3_not_action() -> None:
    policy = doc({"Effect": "Allow", "NotAction": "aoss:Delete*", "Resource": "*"})
    assert allowed(policy, action="aoss:CreateCollection")
    assert not allowed(policy, action="aoss:DeleteCollection", resource=COLLECTION)
    only_lists = doc(allow(), {"Effect": "Deny", "NotAction": ["aoss:List*", "aoss:BatchGet*"],
                               "Resource": "*"})
    assert allowed(only_lists, action="aoss:ListCollections", resource="*")
    assert allowed(only_lists, action="AOSS:batchgetcollection", resource="*")
    assert decide(only_lists).reason == "explicit_deny"


def test_a3_not_resource() -> None:
    secret = f"arn:aws:aoss:{REGION}:{ACCT}:collection/secret"
    policy = doc({"Effect": "Allow", "Action": "aoss:*", "NotResource": secret})
    assert allowed(policy, action="aoss:DeleteCollection", resource=COLLECTION)
    assert not allowed(policy, action="aoss:DeleteCollection", resource=secret)
    guarded = doc(allow(), {"Effect": "Deny", "Action": "aoss:*", "NotResource": [COLLECTION]})
    assert allowed(guarded, action="aoss:DeleteCollection", resource=COLLECTION)
    assert decide(guarded, action="aoss:DeleteCollection", resource=secret).reason == "explicit_deny"


@pytest.mark.parametrize("pattern, resource, expected", [
    (COLLECTION, COLLECTION, True),
    (f"arn:aws:aoss:{REGION}:{ACCT}:collection/ABC123", COLLECTION, False),  # case-sensitive
    (f"arn:aws:AOSS:{REGION}:{ACCT}:collection/abc123", COLLECTION, False),
    (f"arn:aws:aoss:{REGION}:{ACCT}:collection/*", COLLECTION, True),
    (f"arn:aws:aoss:{REGION}:{ACCT}:collection/abc12?", COLLECTION, True),
    (f"arn:aws:aoss:{REGION}:{ACCT}:collection/abc1?", COLLECTION, False),
    (f"arn:aws:aoss:*:{ACCT}:collection/abc123", COLLECTION, True),
    ("arn:aws:aoss:*", COLLECTION, True),  # a trailing * runs over the colons
    ("*", COLLECTION, True),
    ("*", "*", True),
    (f"arn:aws:aoss:{REGION}:{ACCT}:*", "*", False),  # unscoped operations need Resource "*"
    (f"arn:aws:aoss:{REGION}:{ACCT}:collection/[a]bc123", COLLECTION, False),  # no char classes
])
def test_a3_resource_arns_match_case_sensitively(pattern: str, resource: str, expected: bool) -> None:
    assert allowed(doc(allow("aoss:*", pattern)), resource=resource) is expected


def test_a3_string_or_list_forms_and_json_text() -> None:
    as_text = json.dumps({"Version": "2012-10-17",
                          "Statement": {"Effect": "Allow", "Action": "aoss:CreateCollection",
                                        "Resource": NEW_COLLECTION}})
    assert allowed(as_text)
    assert allowed(as_text.encode())
    assert allowed(doc(allow(["s3:*", "aoss:CreateCollection"], ["arn:aws:s3:::b", "*"])))


# ------------------------------------------------------------------------------------- A4


def test_a4_other_collection_region_account() -> None:
    policy = doc(allow("aoss:*", COLLECTION))
    assert allowed(policy, action="aoss:DeleteCollection", resource=COLLECTION)
    for other in (f"arn:aws:aoss:{REGION}:{ACCT}:collection/zzz999",
                  f"arn:aws:aoss:eu-west-1:{ACCT}:collection/abc123",
                  f"arn:aws:aoss:{REGION}:{OTHER}:collection/abc123"):
        decision = decide(policy, action="aoss:DeleteCollection", resource=other)
        assert decision.reason == "no_identity_allow", other


def test_a4_another_accounts_resource_needs_a_resource_based_policy() -> None:
    foreign = f"arn:aws:aoss:{REGION}:{OTHER}:collection/abc123"
    decision = decide(ADMIN, action="aoss:TagResource", resource=foreign)
    assert decision == Decision(False, "no_resource_allow", "resource-based policy")
    assert access_denied_message(ALICE, "aoss:TagResource", foreign, decision) == (
        f"User: {ALICE} is not authorized to perform: aoss:TagResource on resource: {foreign} "
        "because no resource-based policy allows the aoss:TagResource action")
    # the account comes from the ARN; "*" and account-less ARNs belong to the caller
    assert request(resource=foreign).resource_account == OTHER
    assert request(resource="*").resource_account == ACCT
    assert request(resource="arn:aws:s3:::bucket").resource_account == ACCT


# ------------------------------------------------------------------------------------- A5


def ctx(**values: object) -> dict:
    return {key.replace("__", ":").replace("_SLASH_", "/"): value for key, value in values.items()}


def test_a5_not_ip_address_with_ipv4_and_ipv6_cidrs() -> None:
    policy = doc(allow(), deny(Condition={"NotIpAddress": {
        "aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32", "203.0.113.7"]}}))
    assert allowed(policy, context={"aws:SourceIp": "10.1.2.3"})
    assert allowed(policy, context={"aws:SourceIp": "2001:db8::5"})
    assert allowed(policy, context={"aws:SourceIp": "203.0.113.7"})  # bare address = /32
    assert not allowed(policy, context={"aws:SourceIp": "203.0.113.8"})
    assert not allowed(policy, context={"aws:SourceIp": "192.0.2.1"})
    assert not allowed(policy, context={"aws:SourceIp": "2001:db9::1"})
    assert not allowed(policy, context={})  # negated operator, key missing: true -> deny


def test_a5_ip_address_allow() -> None:
    policy = doc(allow(Condition={"IpAddress": {"aws:SourceIp": "192.168.0.0/16"}}))
    assert allowed(policy, context={"aws:SourceIp": "192.168.4.4"})
    assert not allowed(policy, context={"aws:SourceIp": "192.169.0.1"})
    assert not allowed(policy, context={"aws:SourceIp": "::ffff:192.168.4.4"})
    assert not allowed(policy, context={"aws:SourceIp": "not an ip"})
    assert not allowed(policy, context={})
    v6 = doc(allow(Condition={"IpAddress": {"aws:SourceIp": "::/0"}}))
    assert allowed(v6, context={"aws:SourceIp": "fe80::1"})
    assert not allowed(v6, context={"aws:SourceIp": "10.0.0.1"})  # versions never mix


def test_a5_date_greater_than_on_current_time() -> None:
    policy = doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}))
    assert allowed(policy, context={"aws:CurrentTime": datetime(2025, 3, 1, tzinfo=timezone.utc)})
    assert not allowed(policy, context={"aws:CurrentTime": datetime(2023, 3, 1, tzinfo=timezone.utc)})
    assert not allowed(policy, context={"aws:CurrentTime": datetime(2024, 1, 1, tzinfo=timezone.utc)})
    assert allowed(policy, context={"aws:CurrentTime": datetime(2024, 1, 1, 0, 0, 1)})  # naive=UTC
    assert not allowed(policy, context={})


@pytest.mark.parametrize("operator, value, expected", [
    ("DateEquals", "2024-06-01T12:00:00Z", True),
    ("DateEquals", "2024-06-01T14:00:00+02:00", True),
    ("DateNotEquals", "2024-06-01T12:00:00Z", False),
    ("DateLessThan", "2024-06-01T12:00:01Z", True),
    ("DateLessThan", "2024-06-01T12:00:00Z", False),
    ("DateLessThanEquals", "2024-06-01T12:00:00Z", True),
    ("DateGreaterThan", "2024-06-01", True),  # date only: midnight UTC
    ("DateGreaterThanEquals", 1717243200, True),  # epoch seconds (number)
    ("DateGreaterThan", "1717243200", False),  # epoch seconds (text)
    ("DateLessThan", "2024-13-01", None),  # unreadable policy value
])
def test_a5_date_operators(operator: str, value: object, expected: bool | None) -> None:
    now = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
    condition = {operator: {"aws:CurrentTime": value}}
    got_allow = allowed(doc(allow(Condition=condition)), context={"aws:CurrentTime": now})
    got_deny = decide(doc(allow(), deny(Condition=condition)),
                      context={"aws:CurrentTime": now}).reason == "explicit_deny"
    if expected is None:  # unreadable: never allows, always denies
        assert (got_allow, got_deny) == (False, True)
    else:
        assert (got_allow, got_deny) == (expected, expected)
    assert allowed(doc(allow(Condition={"DateLessThan": {"aws:EpochTime": "2030-01-01"}})),
                   context={"aws:EpochTime": 1717243200})


@pytest.mark.parametrize("operator, value, expected", [
    ("NumericEquals", "5", True), ("NumericEquals", 5, True), ("NumericEquals", "5.0", True),
    ("NumericNotEquals", "5", False), ("NumericNotEquals", "6", True),
    ("NumericLessThan", "6", True), ("NumericLessThan", "5", False),
    ("NumericLessThanEquals", "5", True), ("NumericGreaterThan", "4.5", True),
    ("NumericGreaterThan", "5", False), ("NumericGreaterThanEquals", "5", True),
    ("NumericGreaterThanEquals", "-1", True), ("NumericEquals", "five", None),
    ("NumericEquals", True, None),
])
def test_a5_numeric_operators(operator: str, value: object, expected: bool | None) -> None:
    condition = {operator: {"svc:count": value}}
    got_allow = allowed(doc(allow(Condition=condition)), context={"svc:count": 5})
    got_deny = decide(doc(allow(), deny(Condition=condition)),
                      context={"svc:count": "5"}).reason == "explicit_deny"
    if expected is None:
        assert (got_allow, got_deny) == (False, True)
    else:
        assert (got_allow, got_deny) == (expected, expected)


def test_a5_unreadable_request_values_match_nothing() -> None:
    assert not allowed(doc(allow(Condition={"NumericLessThan": {"svc:count": "10"}})),
                       context={"svc:count": "lots"})
    assert allowed(doc(allow(Condition={"NumericNotEquals": {"svc:count": "10"}})),
                   context={"svc:count": "lots"})
    assert not allowed(doc(allow(Condition={"Bool": {"svc:flag": "true"}})),
                       context={"svc:flag": "yes"})


def test_a5_requested_region() -> None:
    policy = doc(allow(), deny(Condition={"StringNotEquals": {
        "aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}))
    assert allowed(policy, context={"aws:RequestedRegion": "us-east-1"})
    assert allowed(policy, context={"aws:RequestedRegion": "eu-west-1"})
    assert not allowed(policy, context={"aws:RequestedRegion": "ap-south-1"})
    assert not allowed(policy, context={"aws:RequestedRegion": "US-EAST-1"})  # case-sensitive
    like = doc(allow(Condition={"StringLike": {"aws:RequestedRegion": "eu-*"}}))
    assert allowed(like, context={"aws:RequestedRegion": "eu-central-1"})
    assert not allowed(like, context={"aws:RequestedRegion": "EU-central-1"})


def test_a5_principal_tag_keys_are_case_insensitive_values_are_not() -> None:
    policy = doc(allow(Condition={"StringEquals": {"aws:PrincipalTag/Team": "search"}}))
    assert allowed(policy, context={"aws:principaltag/team": "search"})
    assert allowed(policy, context={"AWS:PRINCIPALTAG/TEAM": "search"})
    assert not allowed(policy, context={"aws:PrincipalTag/Team": "Search"})
    assert not allowed(policy, context={"aws:PrincipalTag/Other": "search"})
    ignore_case = doc(allow(Condition={"StringEqualsIgnoreCase": {"aws:PrincipalTag/Team": "SEARCH"}}))
    assert allowed(ignore_case, context={"aws:PrincipalTag/Team": "Search"})
    not_ignore = doc(allow(Condition={"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/Team": "x"}}))
    assert not allowed(not_ignore, context={"aws:PrincipalTag/Team": "X"})


def test_a5_multi_factor_auth_present_missing() -> None:
    # the AWS-recommended form: BoolIfExists also denies long-term keys (key missing)
    if_exists = doc(allow(), deny(Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}))
    assert not allowed(if_exists, context={})
    assert not allowed(if_exists, context={"aws:MultiFactorAuthPresent": False})
    assert allowed(if_exists, context={"aws:MultiFactorAuthPresent": True})
    assert allowed(if_exists, context={"aws:MultiFactorAuthPresent": "TRUE"})
    # the classic trap: plain Bool does not match a missing key, so the deny does not apply
    plain = doc(allow(), deny(Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}))
    assert allowed(plain, context={})
    assert not allowed(plain, context={"aws:MultiFactorAuthPresent": False})
    # Null: "true" means the key is missing
    null = doc(allow(), deny(Condition={"Null": {"aws:MultiFactorAuthPresent": "true"}}))
    assert not allowed(null, context={})
    assert allowed(null, context={"aws:MultiFactorAuthPresent": False})
    present = doc(allow(Condition={"Null": {"aws:MultiFactorAuthPresent": False}}))
    assert allowed(present, context={"aws:MultiFactorAuthPresent": False})
    assert not allowed(present, context={"aws:MultiFactorAuthPresent": []})  # empty = missing


@pytest.mark.parametrize("operator, missing, present_match, present_other", [
    ("StringEquals", False, True, False),
    ("StringEqualsIfExists", True, True, False),
    ("StringNotEquals", True, False, True),
    ("StringNotEqualsIfExists", True, False, True),
    ("StringLikeIfExists", True, True, False),
    ("NumericLessThanIfExists", True, True, False),
    ("ArnLikeIfExists", True, True, False),
    ("IpAddressIfExists", True, True, False),
])
def test_a5_if_exists_with_missing_keys(operator: str, missing: bool, present_match: bool,
                                        present_other: bool) -> None:
    key, good, value, bad = {
        "String": ("svc:k", "v1", "v1", "v2"),
        "Numeri": ("svc:k", 1, "2", 3),
        "ArnLik": ("svc:k", ALICE, f"arn:aws:iam::{ACCT}:user/*", f"arn:aws:iam::{OTHER}:user/a"),
        "IpAddr": ("svc:k", "10.0.0.1", "10.0.0.0/8", "11.0.0.1"),
    }[operator[:6]]
    policy = doc(allow(Condition={operator: {key: value}}))
    assert allowed(policy, context={}) is missing
    assert allowed(policy, context={key: good}) is present_match
    assert allowed(policy, context={key: bad}) is present_other


def test_a5_for_all_values_and_for_any_value() -> None:
    all_of = doc(allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}))
    assert allowed(all_of, context={"aws:TagKeys": ["team"]})
    assert allowed(all_of, context={"aws:TagKeys": ["team", "env"]})
    assert not allowed(all_of, context={"aws:TagKeys": ["team", "owner"]})
    assert allowed(all_of, context={})  # vacuously true: a missing key passes
    assert allowed(all_of, context={"aws:TagKeys": []})
    assert allowed(all_of, context={"aws:TagKeys": "team"})  # a single value is a set of one

    any_of = doc(allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "env"]}}))
    assert allowed(any_of, context={"aws:TagKeys": ["owner", "team"]})
    assert not allowed(any_of, context={"aws:TagKeys": ["owner"]})
    assert not allowed(any_of, context={})
    any_if_exists = doc(allow(Condition={
        "ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["team"]}}))
    assert not allowed(any_if_exists, context={})  # ForAnyValue ignores IfExists

    none_of = doc(allow(Condition={"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}))
    assert allowed(none_of, context={"aws:TagKeys": ["team", "env"]})
    assert not allowed(none_of, context={"aws:TagKeys": ["team", "secret"]})
    some_not = doc(allow(Condition={"ForAnyValue:StringNotLike": {"aws:TagKeys": ["t*"]}}))
    assert allowed(some_not, context={"aws:TagKeys": ["team", "env"]})
    assert not allowed(some_not, context={"aws:TagKeys": ["team", "tier"]})
    assert not allowed(some_not, context={})


def test_a5_multivalued_key_without_set_operator() -> None:
    positive = doc(allow(Condition={"StringEquals": {"aws:TagKeys": "team"}}))
    assert allowed(positive, context={"aws:TagKeys": ["owner", "team"]})
    negative = doc(allow(Condition={"StringNotEquals": {"aws:TagKeys": "team"}}))
    assert not allowed(negative, context={"aws:TagKeys": ["owner", "team"]})
    assert allowed(negative, context={"aws:TagKeys": ["owner"]})


def test_a5_values_or_keys_and_operators_and() -> None:
    policy = doc(allow(Condition={
        "StringEquals": {"aws:username": ["alice", "bob"], "aws:PrincipalType": "User"},
        "Bool": {"aws:SecureTransport": "true"},
    }))
    good = {"aws:username": "bob", "aws:PrincipalType": "User", "aws:SecureTransport": True}
    assert allowed(policy, context=good)
    assert not allowed(policy, context={**good, "aws:username": "carol"})
    assert not allowed(policy, context={**good, "aws:PrincipalType": "AssumedRole"})
    assert not allowed(policy, context={**good, "aws:SecureTransport": False})


@pytest.mark.parametrize("pattern, value, expected", [
    ("arn:aws:iam::*:user/alice", ALICE, True),
    (f"arn:aws:iam::{ACCT}:*", ALICE, True),
    (f"arn:aws:iam::{ACCT}:user/al?ce", ALICE, True),
    ("arn:aws:iam::*", ALICE, False),  # fewer than six parts never matches
    ("*", ALICE, False),
    ("arn:aws:*:*:*:app:*", f"arn:aws:logs:{REGION}:{ACCT}:log-group:app:stream", False),
    ("arn:aws:logs:*:*:log-group:app:*", f"arn:aws:logs:{REGION}:{ACCT}:log-group:app:s", True),
    (f"arn:aws:IAM::{ACCT}:user/alice", ALICE, False),
    (ALICE, "not-an-arn", False),
])
def test_a5_arn_operators_match_part_by_part(pattern: str, value: str, expected: bool) -> None:
    for operator in ("ArnLike", "ArnEquals"):
        policy = doc(allow(Condition={operator: {"aws:PrincipalArn": pattern}}))
        assert allowed(policy, context={"aws:PrincipalArn": value}) is expected
    negated = doc(allow(Condition={"ArnNotLike": {"aws:PrincipalArn": pattern}}))
    assert allowed(negated, context={"aws:PrincipalArn": value}) is not expected


def test_a5_binary_equals() -> None:
    policy = doc(allow(Condition={"BinaryEquals": {"svc:blob": "aGVsbG8="}}))
    assert allowed(policy, context={"svc:blob": b"hello"})
    assert allowed(policy, context={"svc:blob": "aGVsbG8="})
    assert not allowed(policy, context={"svc:blob": b"hullo"})


@pytest.mark.parametrize("operator", [
    "StringEqualz", "stringequals", "StringEquals ", "NullIfExists", "ForAnyValue:Null",
    "ForSomeValues:StringEquals", "IfExists", "Boolean",
])
def test_a5_unknown_operator_can_deny_but_never_allow(operator: str) -> None:
    condition = {operator: {"aws:username": "alice"}}
    context = {"aws:username": "alice"}
    assert decide(doc(allow(Condition=condition)), context=context).reason == "no_identity_allow"
    # fail-safe: a Deny with an unknown operator applies when its other conditions hold ...
    assert decide(ADMIN, doc(deny(Condition=condition)), context=context).reason == "explicit_deny"
    assert decide(ADMIN, doc(deny(Condition=condition)), context={}).reason == "explicit_deny"
    # ... and not when another of its conditions is false
    both = {**condition, "StringEquals": {"aws:RequestedRegion": "eu-west-1"}}
    assert allowed(ADMIN, doc(deny(Condition=both)),
                   context={**context, "aws:RequestedRegion": REGION})


@pytest.mark.parametrize("operator, value", [
    ("IpAddress", "10.0.0.0/33"), ("IpAddress", "ten"), ("NotIpAddress", "300.1.1.1"),
    ("Bool", "yes"), ("Null", "maybe"), ("DateEquals", "yesterday"),
])
def test_a5_unreadable_policy_values_are_treated_like_unknown_operators(operator: str,
                                                                         value: str) -> None:
    condition = {operator: {"aws:SourceIp": value}}
    context = {"aws:SourceIp": "10.0.0.1"}
    assert not allowed(doc(allow(Condition=condition)), context=context)
    assert decide(ADMIN, doc(deny(Condition=condition)), context=context).reason == "explicit_deny"


def test_conditions_on_request_context_built_by_the_helper() -> None:
    context = request_context(
        principal_arn=ALICE, principal_account=ACCT, principal_type="User", userid="AIDAX",
        username="alice", now=datetime(2025, 1, 2, 3, 4, 5), region="eu-west-1",
        source_ip="10.9.8.7", secure_transport=True, principal_tags={"team": "search"})
    assert context["aws:EpochTime"] == int(datetime(2025, 1, 2, 3, 4, 5,
                                                    tzinfo=timezone.utc).timestamp())
    assert "aws:MultiFactorAuthPresent" not in context  # long-term keys
    policy = doc(allow(Condition={
        "StringEquals": {"aws:PrincipalAccount": ACCT, "aws:userid": "AIDAX",
                         "aws:username": "alice", "aws:PrincipalType": "User",
                         "aws:RequestedRegion": "eu-west-1", "aws:PrincipalTag/team": "search"},
        "ArnEquals": {"aws:PrincipalArn": ALICE},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        "Bool": {"aws:SecureTransport": True},
        "DateLessThan": {"aws:CurrentTime": "2025-01-02T03:04:06Z"},
        "NumericGreaterThan": {"aws:EpochTime": 1700000000},
        "StringLike": {"aws:CurrentTime": "2025-01-02T*Z"},
    }))
    assert allowed(policy, context=context)
    assert not allowed(policy, context={**context, "aws:userid": "AIDAY"})


# ------------------------------------------------------------------------------ policy variables


def test_policy_variables_in_resources() -> None:
    own = doc(allow("iam:*", f"arn:aws:iam::{ACCT}:user/${{aws:username}}"))
    assert allowed(own, action="iam:GetUser", resource=ALICE, context={"aws:username": "alice"})
    assert not allowed(own, action="iam:GetUser", resource=f"arn:aws:iam::{ACCT}:user/bob",
                       context={"aws:username": "alice"})
    assert not allowed(own, action="iam:GetUser", resource=ALICE, context={})  # unresolvable
    # a substituted value is literal text: a "*" in it is no wildcard
    assert not allowed(own, action="iam:GetUser", resource=ALICE, context={"aws:username": "*"})
    defaulted = doc(allow("iam:*", f"arn:aws:iam::{ACCT}:user/${{aws:PrincipalTag/u, 'alice'}}"))
    assert allowed(defaulted, action="iam:GetUser", resource=ALICE, context={})
    legacy = doc(allow("iam:*", f"arn:aws:iam::{ACCT}:user/${{aws:username}}"), version="2008-10-17")
    assert not allowed(legacy, action="iam:GetUser", resource=ALICE,
                       context={"aws:username": "alice"})
    assert allowed(legacy, action="iam:GetUser", resource=f"arn:aws:iam::{ACCT}:user/${{aws:username}}",
                   context={"aws:username": "alice"})
    star = doc(allow("aoss:*", f"arn:aws:aoss:{REGION}:{ACCT}:collection/${{*}}"))
    assert allowed(star, resource=NEW_COLLECTION)
    assert not allowed(star, resource=COLLECTION)


def test_policy_variables_in_condition_values() -> None:
    policy = doc(allow(Condition={"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}))
    assert allowed(policy, context={"aws:username": "alice", "aws:PrincipalTag/owner": "alice"})
    assert not allowed(policy, context={"aws:username": "alice", "aws:PrincipalTag/owner": "bob"})
    assert not allowed(policy, context={"aws:PrincipalTag/owner": "${aws:username}"})
    multi = {"aws:username": ["alice"], "aws:PrincipalTag/owner": "alice"}
    assert not allowed(policy, context=multi)  # multivalued keys never substitute


# ------------------------------------------------------------------------------ A6: layers


def test_a6_session_policy_narrower_than_the_role_policy() -> None:
    role = [doc(allow("aoss:*"))]
    session = [doc(allow("aoss:List*"))]
    policies = PolicySet(role, session=session)
    decision = evaluate(policies, request())
    assert decision == Decision(False, "no_session_allow", "session policy")
    assert access_denied_message(ALICE, "aoss:CreateCollection", NEW_COLLECTION, decision) == (
        f"User: {ALICE} is not authorized to perform: aoss:CreateCollection on resource: "
        f"{NEW_COLLECTION} because no session policy allows the aoss:CreateCollection action")
    assert evaluate(policies, request("aoss:ListCollections", "*")).allowed
    # the session policy never grants more than the role
    assert evaluate(PolicySet([doc(allow("aoss:List*"))], session=[ADMIN]),
                    request()).reason == "no_identity_allow"


def test_a6_session_policy_none_vs_empty_and_several() -> None:
    assert evaluate(PolicySet([ADMIN], session=None), request()).allowed
    assert evaluate(PolicySet([ADMIN], session=[]), request()).reason == "no_session_allow"
    several = PolicySet([ADMIN], session=[doc(allow("cloudtrail:*")), doc(allow("aoss:Create*"))])
    assert evaluate(several, request()).allowed


def test_a6_session_policy_explicit_deny() -> None:
    policies = PolicySet([ADMIN], session=[doc(allow(), deny("aoss:Create*"))])
    decision = evaluate(policies, request())
    assert decision == Decision(False, "explicit_deny", "session policy")
    assert access_denied_message(ALICE, "aoss:CreateCollection", NEW_COLLECTION, decision).endswith(
        "with an explicit deny in a session policy")


def test_a6_permissions_boundary_intersects() -> None:
    policies = PolicySet([doc(allow("aoss:*"))], boundary=doc(allow("aoss:Create*")))
    assert evaluate(policies, request()).allowed
    decision = evaluate(policies, request("aoss:DeleteCollection", COLLECTION))
    assert decision == Decision(False, "no_boundary_allow", "permissions boundary")
    assert access_denied_message(ALICE, "aoss:DeleteCollection", COLLECTION, decision) == (
        f"User: {ALICE} is not authorized to perform: aoss:DeleteCollection on resource: "
        f"{COLLECTION} because no permissions boundary allows the aoss:DeleteCollection action")
    # a boundary grants nothing on its own
    assert evaluate(PolicySet([], boundary=ADMIN), request()).reason == "no_identity_allow"
    denying = PolicySet([ADMIN], boundary=doc(allow(), deny("aoss:*")))
    decision = evaluate(denying, request())
    assert decision == Decision(False, "explicit_deny", "permissions boundary")
    assert access_denied_message(ALICE, "aoss:CreateCollection", NEW_COLLECTION, decision).endswith(
        "with an explicit deny in a permissions boundary")


def test_a6_report_order_identity_then_boundary_then_session() -> None:
    everything_denied = doc(deny())
    policies = PolicySet([everything_denied], session=[everything_denied],
                         boundary=everything_denied)
    assert evaluate(policies, request()).denied_by == "identity-based policy"
    policies = PolicySet([ADMIN], session=[everything_denied], boundary=everything_denied)
    assert evaluate(policies, request()).denied_by == "permissions boundary"
    policies = PolicySet([ADMIN], session=[doc(allow("s3:*"))], boundary=doc(allow("s3:*")))
    assert evaluate(policies, request()).reason == "no_boundary_allow"


def test_root_may_do_everything_in_its_own_account_only() -> None:
    root = f"arn:aws:iam::{ACCT}:root"
    policies = PolicySet([doc(deny())], is_root=True)
    assert evaluate(policies, request(principal=root)) == Decision(True, "root")
    foreign = f"arn:aws:aoss:{REGION}:{OTHER}:collection/abc123"
    decision = evaluate(PolicySet(is_root=True), request("aoss:TagResource", foreign,
                                                         principal=root))
    assert decision.reason == "no_resource_allow"


# ------------------------------------------------------------------------------ messages


def test_messages_and_codes_per_service() -> None:
    deny_all = Decision(False, "no_identity_allow", "identity-based policy")
    listing = access_denied(ALICE, "aoss:ListCollections", "*", deny_all)
    assert listing.message == (f"User: {ALICE} is not authorized to perform: "
                               "aoss:ListCollections because no identity-based policy allows "
                               "the aoss:ListCollections action")
    assert access_denied(ALICE, "cloudtrail:LookupEvents", "*", deny_all).code == \
        "AccessDeniedException"
    iam = access_denied(ALICE, "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/bob", deny_all)
    assert (iam.code, iam.status) == ("AccessDenied", 403)
    assert access_denied(ALICE, "sts:GetCallerIdentity", "*", deny_all).code == "AccessDenied"
    assert isinstance(iam, ServiceError)


def test_authorize_raises_on_the_first_denied_resource() -> None:
    policies = PolicySet([doc(allow("cloudtrail:ListTags", "arn:aws:cloudtrail:*:*:trail/a"))])
    trail = f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/"
    one = AuthorizationRequest("cloudtrail:ListTags", trail + "a", ALICE, ACCT)
    two = AuthorizationRequest("cloudtrail:ListTags", trail + "b", ALICE, ACCT)
    assert authorize(policies, [one]).allowed
    with pytest.raises(ServiceError) as raised:
        authorize(policies, [one, two])
    assert raised.value.code == "AccessDeniedException"
    assert f"on resource: {trail}b because" in raised.value.message


# ------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize("document", [
    "{not json",
    "[]",
    json.dumps({"Version": "2012-10-17"}),
    json.dumps({"Version": "2020-01-01", "Statement": []}),
    doc({"Effect": "allow", "Action": "*", "Resource": "*"}),
    doc({"Effect": "Allow", "Resource": "*"}),
    doc({"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}),
    doc({"Effect": "Allow", "Action": [], "Resource": "*"}),
    doc({"Effect": "Allow", "Action": [5], "Resource": "*"}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": "x"}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": "x"}}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"k:k": {"nested": 1}}}}),
    doc("not a statement"),
])
def test_malformed_documents_raise(document: object) -> None:
    with pytest.raises(MalformedPolicyError):
        compile_policy(document)  # type: ignore[arg-type]
    with pytest.raises(MalformedPolicyError):
        evaluate(PolicySet([document]), request())  # type: ignore[list-item]


def test_statement_without_resource_fails_safe() -> None:
    no_resource_allow = doc({"Effect": "Allow", "Action": "*"})
    assert not allowed(no_resource_allow)
    no_resource_deny = doc({"Effect": "Deny", "Action": "aoss:*"})
    assert decide(ADMIN, no_resource_deny).reason == "explicit_deny"


def test_documents_are_compiled_once() -> None:
    text = json.dumps(doc(allow("aoss:*")))
    assert compile_policy(text) is compile_policy(text)
    first = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    reordered = {"Statement": [{"Resource": "*", "Action": "*", "Effect": "Allow"}],
                 "Version": "2012-10-17"}
    assert compile_policy(first) is compile_policy(reordered)
    compiled = compile_policy(first)
    assert compile_policy(compiled) is compiled
    assert evaluate(PolicySet([compiled]), request()).allowed
    assert compile_policy(doc(allow(), version=None)).version == "2008-10-17"


# ------------------------------------------------------------------------------ validation


def test_valid_documents_have_no_problems() -> None:
    assert validate_policy_document(json.dumps(doc(
        allow("aoss:*", COLLECTION, Sid="One"),
        deny(["aoss:Delete*"], "*", Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}),
    ))) == []
    trust = doc({"Effect": "Allow", "Principal": {"AWS": [ACCT, ALICE, "*"]},
                 "Action": "sts:AssumeRole"})
    assert validate_policy_document(trust, kind="trust") == []
    assert validate_policy_document(json.dumps(ADMIN), kind="session") == []


@pytest.mark.parametrize("document, kind, expected", [
    ("{", "identity", "Syntax errors in policy."),
    ("[1]", "identity", "Syntax errors in policy."),
    (json.dumps({"Version": "2012-10-17"}), "identity", "Statement is required"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "identity", "Statement is empty"),
    (json.dumps({"Version": "2011-01-01", "Statement": [allow()]}), "identity", "legacy parsing"),
    (json.dumps({"Versoin": "2012-10-17", "Statement": [allow()]}), "identity", "unknown field"),
    (doc({"Effect": "Permit", "Action": "*", "Resource": "*"}), "identity", "Invalid effect"),
    (doc({"Effect": "Allow", "Resource": "*"}), "identity", "must contain actions"),
    (doc({"Effect": "Allow", "Action": "*"}), "identity", "must contain resources"),
    (doc({"Effect": "Allow", "Action": "*"}), "session", "must contain resources"),
    (doc(allow(Principal="*")), "identity", "should not specify a principal"),
    (doc(allow("CreateCollection")), "identity", "prefaced by a vendor"),
    (doc(allow("aoss:*", "collection/abc")), "identity", "must be in ARN format"),
    (doc(allow(Sid="has space")), "identity", "alpha-numeric"),
    (doc(allow(Sid="A"), deny(Sid="A")), "identity", "must be unique"),
    (doc(allow(Condition={"StringEqualz": {"aws:username": "a"}})), "identity",
     "Invalid Condition type : StringEqualz"),
    (doc(allow(Condition={"NumericLessThan": {"svc:n": "ten"}})), "identity", "Invalid value"),
    (doc(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/40"}})), "identity",
     "Invalid value"),
    (doc(allow(Condition={"StringEquals": {"username": "a"}})), "identity", "prefixed"),
    (doc(allow(Condition={"StringEquals": {"aws:username": []}})), "identity", "has no values"),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole"}), "trust", "Missing required field Principal"),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": ACCT},
          "Resource": "*"}), "trust", "Has prohibited field Resource"),
    (doc({"Effect": "Allow", "Action": "aoss:*", "Principal": {"AWS": ACCT}}), "trust",
     "may only specify STS AssumeRole actions"),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "bob"}}), "trust",
     "Invalid principal"),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Robot": "x"}}), "trust",
     "Invalid principal"),
    # a name repeated in an object: which value would run? (Effect Deny, then Allow)
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*",'
     '"Effect":"Allow"}]}', "identity", "Syntax errors in policy."),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",'
     '"Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":NaN}}}]}', "identity",
     "Syntax errors in policy."),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",'
     '"Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":Infinity}}}]}', "session",
     "Syntax errors in policy."),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole",
          "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCT}:user/bob"}}), "trust",
     "NotPrincipal cannot be used in a role trust policy"),
    (doc({"Effect": "Allow", "Action": "sts:AssumeRole",
          "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/*"}}), "trust",
     f'Invalid principal in policy: "AWS":"arn:aws:iam::{ACCT}:user/*"'),
])
def test_malformed_policy_document_problems(document: object, kind: str, expected: str) -> None:
    problems = validate_policy_document(document, kind=kind)  # type: ignore[arg-type]
    assert any(expected in problem for problem in problems), problems


def test_validation_size_limit_ignores_white_space() -> None:
    text = json.dumps(ADMIN, indent=8)
    compact = len(json.dumps(ADMIN, separators=(",", ":")))
    assert validate_policy_document(text, max_size=compact) == []
    assert validate_policy_document(text, max_size=compact - 1) == [
        f"Cannot exceed quota for PolicySize: {compact - 1}"]


# ------------------------------------------------------------------------------ trust policies


def trust(*statements: dict) -> dict:
    return doc(*statements)


def assume(principal: str, account: str, caller_policies: PolicySet | None = None,
           trust_policy: dict | None = None, role: str = ROLE, context: dict | None = None) -> Decision:
    trust_request = TrustRequest(role, principal_arn=principal, principal_account=account,
                                 context=context or {})
    caller_request = AuthorizationRequest("sts:AssumeRole", role, principal, account,
                                          context=context or {})
    return authorize_assume_role(trust_policy, trust_request, caller_policies or PolicySet(),
                                 caller_request)


def test_a6_trust_policy_naming_the_caller_needs_no_identity_policy() -> None:
    policy = trust({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    assert assume(ALICE, ACCT, trust_policy=policy).allowed
    bob = f"arn:aws:iam::{ACCT}:user/bob"
    decision = assume(bob, ACCT, PolicySet([ADMIN]), trust_policy=policy)
    assert decision == Decision(False, "no_trust_allow", "trust policy")
    error = access_denied(bob, "sts:AssumeRole", ROLE, decision)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == f"User: {bob} is not authorized to perform: sts:AssumeRole on resource: {ROLE}"


def test_a6_trust_policy_naming_the_account_also_needs_an_identity_allow() -> None:
    for principal in (ACCT, f"arn:aws:iam::{ACCT}:root"):
        policy = trust({"Effect": "Allow", "Principal": {"AWS": principal},
                        "Action": "sts:AssumeRole"})
        assert assume(ALICE, ACCT, trust_policy=policy).reason == "no_identity_allow"
        assert assume(ALICE, ACCT, PolicySet([doc(allow("sts:AssumeRole", ROLE))]),
                      trust_policy=policy).allowed
        assert evaluate_trust(policy, TrustRequest(ROLE, principal_arn=ALICE,
                                                   principal_account=ACCT)).grant == "account"


def test_a6_cross_account_assume_role() -> None:
    outsider = f"arn:aws:iam::{OTHER}:user/eve"
    trusting = trust({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                      "Action": "sts:AssumeRole"})
    may_assume = PolicySet([doc(allow("sts:AssumeRole", ROLE))])
    assert assume(outsider, OTHER, may_assume, trusting).allowed
    assert assume(outsider, OTHER, PolicySet(), trusting).reason == "no_identity_allow"
    naming = trust({"Effect": "Allow", "Principal": {"AWS": outsider}, "Action": "sts:AssumeRole"})
    assert assume(outsider, OTHER, PolicySet(), naming).reason == "no_identity_allow"
    assert assume(outsider, OTHER, may_assume, naming).allowed
    not_trusting = trust({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "sts:AssumeRole"})
    assert assume(outsider, OTHER, may_assume, not_trusting).reason == "no_trust_allow"


def test_a6_trust_policy_deny_and_identity_deny_win() -> None:
    policy = trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
                   {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "sts:*"})
    decision = assume(ALICE, ACCT, PolicySet([ADMIN]), policy)
    assert decision == Decision(False, "explicit_deny", "trust policy")
    assert access_denied_message(ALICE, "sts:AssumeRole", ROLE, decision) == (
        f"User: {ALICE} is not authorized to perform: sts:AssumeRole on resource: {ROLE}")
    open_trust = trust({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    decision = assume(ALICE, ACCT, PolicySet([ADMIN, doc(deny("sts:*"))]), open_trust)
    assert decision == Decision(False, "explicit_deny", "identity-based policy")


def test_trust_policy_conditions_and_role_sessions() -> None:
    policy = trust({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/ops/chain"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "xyz"}}})
    session = f"arn:aws:sts::{ACCT}:assumed-role/chain/build-42"
    assert assume(session, ACCT, trust_policy=policy, context={"sts:ExternalId": "xyz"}).allowed
    assert not assume(session, ACCT, trust_policy=policy, context={"sts:ExternalId": "no"}).allowed
    other_session = f"arn:aws:sts::{ACCT}:assumed-role/other/build-42"
    assert not assume(other_session, ACCT, trust_policy=policy,
                      context={"sts:ExternalId": "xyz"}).allowed
    anyone_here = trust({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                         "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCT}}})
    assert assume(ALICE, ACCT, trust_policy=anyone_here,
                  context={"aws:PrincipalAccount": ACCT}).allowed
    assert not assume(ALICE, ACCT, trust_policy=anyone_here,
                      context={"aws:PrincipalAccount": OTHER}).allowed


def test_root_cannot_assume_roles() -> None:
    policy = trust({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "sts:AssumeRole"})
    root = f"arn:aws:iam::{ACCT}:root"
    decision = assume(root, ACCT, PolicySet(is_root=True), policy)
    assert decision.reason == "root_cannot_assume_role"
    assert access_denied(root, "sts:AssumeRole", ROLE, decision).message == \
        "Roles may not be assumed by root accounts."


GITHUB = f"arn:aws:iam::{ACCT}:oidc-provider/token.actions.githubusercontent.com"


def web_identity(context: dict, provider: str = GITHUB, action: str = "sts:AssumeRoleWithWebIdentity",
                 statement_action: str = "sts:AssumeRoleWithWebIdentity") -> Decision:
    policy = trust({
        "Effect": "Allow", "Principal": {"Federated": GITHUB}, "Action": statement_action,
        "Condition": {
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/search:*"},
        }})
    return authorize_assume_role(policy, TrustRequest(ROLE, action=action, federated=provider,
                                                      context=context))


def test_web_identity_trust() -> None:
    good = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:acme/search:ref:refs/heads/main"}
    assert web_identity(good).allowed
    assert not web_identity({**good, "token.actions.githubusercontent.com:sub": "repo:evil/x:ref"}).allowed
    assert not web_identity({**good, "token.actions.githubusercontent.com:aud": "other"}).allowed
    assert not web_identity({"token.actions.githubusercontent.com:sub": "repo:acme/search:x"}).allowed
    assert not web_identity(good, provider="accounts.google.com").allowed
    assert not web_identity(good, statement_action="sts:AssumeRole").allowed
    decision = web_identity({})
    assert decision == Decision(False, "no_trust_allow", "trust policy")
    error = access_denied("", "sts:AssumeRoleWithWebIdentity", ROLE, decision)
    assert (error.code, error.message) == (
        "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")


def test_not_principal_with_allow_grants_nobody() -> None:
    """AWS supports NotPrincipal with Deny only; refused on write, and one stored before that
    never grants (it granted everyone but the named principal)."""
    policy = trust({"Effect": "Allow", "NotPrincipal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    bob = f"arn:aws:iam::{ACCT}:user/bob"
    assert not evaluate_trust(policy, TrustRequest(ROLE, principal_arn=bob,
                                                   principal_account=ACCT)).allowed


def test_service_principal_and_not_principal() -> None:
    policy = trust({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole"})
    assert evaluate_trust(policy, TrustRequest(ROLE, service="ec2.amazonaws.com")).allowed
    assert not evaluate_trust(policy, TrustRequest(ROLE, service="lambda.amazonaws.com")).allowed
    assert not evaluate_trust(policy, TrustRequest(ROLE, principal_arn=ALICE,
                                                   principal_account=ACCT)).allowed
    fenced = trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
                   {"Effect": "Deny", "NotPrincipal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    assert evaluate_trust(fenced, TrustRequest(ROLE, principal_arn=ALICE, principal_account=ACCT)).allowed
    bob = f"arn:aws:iam::{ACCT}:user/bob"
    assert evaluate_trust(fenced, TrustRequest(ROLE, principal_arn=bob,
                                               principal_account=ACCT)).reason == "explicit_deny"


# ------------------------------------------------------------------------------ action table

MODELS = ("opensearchserverless", "cloudtrail", "iam", "sts", "organizations")


@pytest.fixture(scope="module")
def session() -> botocore.session.Session:
    return botocore.session.get_session()


@pytest.mark.parametrize("service", MODELS)
def test_every_model_operation_has_exactly_one_rule(session: botocore.session.Session,
                                                    service: str) -> None:
    model = session.get_service_model(service)
    assert set(actions.RULES[service]) == set(model.operation_names)


def _dummy_params(shape: object) -> dict:
    params = {}
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        if member.type_name == "string":
            params[name] = f"arn:aws:svc:{REGION}:{ACCT}:thing/x" if name.endswith("Arn") else "x1"
        elif member.type_name == "list" and member.member.type_name == "string":
            params[name] = ["x1", "x2"]
    return params


@pytest.mark.parametrize("service", MODELS)
def test_every_rule_yields_arns(session: botocore.session.Session, service: str) -> None:
    model = session.get_service_model(service)
    prefix = actions.SERVICE_PREFIXES[service]
    for operation in model.operation_names:
        assert actions.action_name(service, operation) == f"{prefix}:{operation}"
        shape = model.operation_model(operation).input_shape
        for params in ({}, _dummy_params(shape) if shape else {}):
            arns = actions.resource_arns(service, operation, params, ACCT, REGION,
                                         caller_arn=ALICE)
            assert arns, operation
            for arn in arns:
                assert arn in ("*", "x1", "x2") or arn.startswith("arn:aws:"), (operation, arn)


@pytest.mark.parametrize("service, operation, params, expected", [
    # the Service Authorization Reference gives CreateCollection no resource type: only "*"
    ("opensearchserverless", "CreateCollection", {"name": "logs"}, "*"),
    ("aoss", "DeleteCollection", {"id": "abc123"}, COLLECTION),
    ("aoss", "UpdateCollection", {"id": "abc123"}, COLLECTION),
    ("aoss", "CreateIndex", {"id": "abc123", "indexName": "i"}, COLLECTION),
    ("aoss", "ListIngestionJobs", {"collectionId": "abc123"}, COLLECTION),
    ("aoss", "TagResource", {"resourceArn": COLLECTION, "tags": []}, COLLECTION),
    ("aoss", "BatchGetCollection", {"ids": ["abc123"]}, "*"),
    ("aoss", "ListCollections", {}, "*"),
    ("aoss", "CreateSecurityPolicy", {"name": "p", "type": "encryption"}, "*"),
    ("aoss", "GetAccountSettings", {}, "*"),
    ("aoss", "DeleteCollection", {}, "*"),
    ("cloudtrail", "CreateTrail", {"Name": "main", "S3BucketName": "b"},
     f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/main"),
    ("cloudtrail", "GetTrailStatus", {"Name": f"arn:aws:cloudtrail:eu-west-1:{ACCT}:trail/t"},
     f"arn:aws:cloudtrail:eu-west-1:{ACCT}:trail/t"),
    ("cloudtrail", "PutEventSelectors", {"TrailName": "main"},
     f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/main"),
    ("cloudtrail", "GetInsightSelectors", {"EventDataStore": "eds1"},
     f"arn:aws:cloudtrail:{REGION}:{ACCT}:eventdatastore/eds1"),
    ("cloudtrail", "GetInsightSelectors", {}, "*"),
    ("cloudtrail", "LookupEvents", {}, "*"),
    ("cloudtrail", "ListTrails", {}, "*"),
    ("cloudtrail", "DescribeTrails", {"trailNameList": ["main"]}, "*"),
    ("cloudtrail", "ListPublicKeys", {}, "*"),
    ("cloudtrail", "AddTags", {"ResourceId": f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/main"},
     f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/main"),
    ("iam", "CreateUser", {"UserName": "bob"}, f"arn:aws:iam::{ACCT}:user/bob"),
    ("iam", "CreateUser", {"UserName": "bob", "Path": "/ops/"}, f"arn:aws:iam::{ACCT}:user/ops/bob"),
    ("iam", "AttachUserPolicy", {"UserName": "bob", "PolicyArn": "arn:aws:iam::aws:policy/X"},
     f"arn:aws:iam::{ACCT}:user/bob"),
    ("iam", "GetUser", {}, ALICE),
    ("iam", "CreateAccessKey", {"UserName": "bob"}, f"arn:aws:iam::{ACCT}:user/bob"),
    ("iam", "AddUserToGroup", {"GroupName": "devs", "UserName": "bob"},
     f"arn:aws:iam::{ACCT}:group/devs"),
    ("iam", "PutRolePolicy", {"RoleName": "deployer"}, ROLE),
    ("iam", "CreatePolicy", {"PolicyName": "p"}, f"arn:aws:iam::{ACCT}:policy/p"),
    ("iam", "GetPolicy", {"PolicyArn": f"arn:aws:iam::{ACCT}:policy/p"},
     f"arn:aws:iam::{ACCT}:policy/p"),
    ("iam", "CreateOpenIDConnectProvider", {"Url": "https://token.actions.githubusercontent.com"},
     GITHUB),
    ("iam", "ListRoles", {}, f"arn:aws:iam::{ACCT}:role/"),
    ("iam", "ListUsers", {"PathPrefix": "/ops/"}, f"arn:aws:iam::{ACCT}:user/ops/"),
    ("iam", "GetAccountSummary", {}, "*"),
    ("sts", "AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "s"}, ROLE),
    ("sts", "AssumeRoleWithWebIdentity", {"RoleArn": ROLE}, ROLE),
    ("sts", "GetFederationToken", {"Name": "fed"}, f"arn:aws:sts::{ACCT}:federated-user/fed"),
    ("sts", "GetCallerIdentity", {}, "*"),
])
def test_resource_arn_table(service: str, operation: str, params: dict, expected: str) -> None:
    assert actions.resource_arn(service, operation, params, ACCT, REGION, caller_arn=ALICE) == expected


def test_several_resources_and_partitions() -> None:
    trails = [f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/a", f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/b"]
    assert actions.resource_arns("cloudtrail", "ListTags", {"ResourceIdList": trails}, ACCT,
                                 REGION) == trails
    assert actions.resource_arn("cloudtrail", "ListTags", {"ResourceIdList": trails}, ACCT,
                                REGION) == "*"
    assert actions.resource_arns("cloudtrail", "GenerateQuery", {"EventDataStores": ["e1"]}, ACCT,
                                 REGION) == [f"arn:aws:cloudtrail:{REGION}:{ACCT}:eventdatastore/e1"]
    assert actions.resource_arn("aoss", "DeleteCollection", {"id": "c"}, ACCT, "cn-north-1") == \
        f"arn:aws-cn:aoss:cn-north-1:{ACCT}:collection/c"
    assert actions.resource_arn("iam", "GetUser", {}, ACCT, REGION) == "*"  # no caller known


def test_unknown_services_and_operations_are_refused() -> None:
    with pytest.raises(KeyError):
        actions.action_name("aoss", "MadeUpOperation")
    with pytest.raises(KeyError):
        actions.resource_arns("s3", "GetObject", {}, ACCT, REGION)
    with pytest.raises(KeyError):
        actions.resource_arns("iam", "MadeUpOperation", {}, ACCT, REGION)


def test_table_and_evaluator_together() -> None:
    """What the gateway does per request: action + ARN from the table, then evaluate."""
    policies = PolicySet([doc(allow("aoss:*", f"arn:aws:aoss:{REGION}:{ACCT}:collection/*"))])
    for operation, params, expected in [("CreateCollection", {"name": "n"}, False),
                                        ("DeleteCollection", {"id": "abc123"}, True),
                                        ("ListCollections", {}, False)]:
        action = actions.action_name("opensearchserverless", operation)
        arn = actions.resource_arn("opensearchserverless", operation, params, ACCT, REGION)
        assert evaluate(policies, AuthorizationRequest(action, arn, ALICE, ACCT)).allowed is expected


def test_names_key_sees_condition_keys_and_variables_in_any_policy_of_the_set() -> None:
    """The authorizer reads a resource's stored state only when some policy can ask for it."""
    plain = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                      "Resource": "*"}]}
    tagged = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Stage": "prod"}}}]}
    variable = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "*", "Resource": "arn:aws:aoss:*:*:${aoss:collection}"}]}
    prefixes = ("aws:resourcetag/", "aoss:collection")
    assert not names_key(PolicySet(identity=[plain]), prefixes)
    assert names_key(PolicySet(identity=[plain, tagged]), prefixes)
    assert names_key(PolicySet(identity=[plain], session=[variable]), prefixes)
    assert names_key(PolicySet(identity=[plain], boundary=tagged), prefixes)
    assert not names_key(PolicySet(identity=[{**variable, "Version": "2008-10-17"}]),
                                prefixes)  # no variables before 2012-10-17
