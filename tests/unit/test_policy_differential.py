"""A8: random (policy set, request) pairs, searchtrail's evaluator vs the reference evaluator.

The reference (tests/unit/reference_evaluator.py) is independent code written from AWS's
policy-evaluation documentation. Both must agree on allowed / reason / policy type for every
example; a separate test checks that the generator yields plenty of allows and of every kind of
deny, so agreement is not reached by generating only trivial cases.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from searchtrail.auth.policy import AuthorizationRequest, PolicySet, evaluate
from tests.unit.reference_evaluator import reference_evaluate

ACCOUNT, OTHER = "111122223333", "444455556666"

REQUEST_ACTIONS = [
    "aoss:CreateCollection", "aoss:DeleteCollection", "aoss:ListCollections",
    "aoss:BatchGetCollection", "cloudtrail:LookupEvents", "cloudtrail:CreateTrail",
    "iam:GetUser", "sts:AssumeRole",
]
REQUEST_RESOURCES = [
    "*",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/abc",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/ABC",
    f"arn:aws:aoss:eu-west-1:{ACCOUNT}:collection/abc",
    f"arn:aws:aoss:us-east-1:{OTHER}:collection/abc",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/*",
    f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:user/bob",
]
ACTION_PATTERNS = [
    "*", "*", "aoss:*", "aoss:*", "cloudtrail:*", "aoss:Create*", "aoss:createcollection", "AOSS:DELETECOLLECTION",
    "aoss:*Collection*", "aoss:?eleteCollection", "aoss:List*", "cloudtrail:*",
    "cloudtrail:LookupEvents", "iam:Get*", "sts:AssumeRole", "s3:*", "aoss:Batch?et*",
]
RESOURCE_PATTERNS = [
    "*", "*", "*", "*", "arn:aws:*", f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/*",
    f"arn:aws:aoss:*:{ACCOUNT}:collection/abc", "arn:aws:aoss:us-east-1:*:collection/a?c",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/ABC", "arn:aws:aoss:*", "arn:aws:*",
    "arn:aws:cloudtrail:*:*:trail/*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
    f"arn:aws:iam::{ACCOUNT}:user/${{aws:PrincipalTag/team, 'alice'}}",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/${{aws:userid}}",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/${{*}}", "arn:aws:iam::*:user/*",
    f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/${{bad",
]

STRING_OPERATORS = ["StringEquals", "StringNotEquals", "StringEqualsIgnoreCase",
                    "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike"]
NUMERIC_OPERATORS = ["NumericEquals", "NumericNotEquals", "NumericLessThan",
                     "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"]
DATE_OPERATORS = ["DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
                  "DateGreaterThan", "DateGreaterThanEquals"]
ARN_OPERATORS = ["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"]
IP_OPERATORS = ["IpAddress", "NotIpAddress"]

# family -> (operators, {condition key: policy values})
_NUMBERS = ["1700000000", "5", "-3", 10, "abc", "2.5", 1700000001]
_DATES = ["2023-11-14T22:13:20Z", "2020-01-01", "2030-01-01T00:00:00+00:00", 1700000000,
          "1700000000", "not-a-date"]
_BOOLS = ["true", "false", True, False, "yes", "TRUE"]
_ARNS = [f"arn:aws:iam::{ACCOUNT}:user/*", "arn:aws:iam::*:user/alice",
         f"arn:aws:iam::{ACCOUNT}:*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}", "*",
         f"arn:aws:iam::{ACCOUNT}:role/a?min", "arn:aws:iam::*", "arn:aws:*:*:*:app:*",
         "arn:aws:logs:*:*:*", "arn:aws:logs:us-east-1:*:log-group:app:*",
         f"arn:aws:IAM::{ACCOUNT}:user/alice"]
_NULLS = ["true", "false", True, "maybe"]
FAMILIES = {
    "string": (STRING_OPERATORS, {
        "aws:RequestedRegion": ["us-east-1", "US-EAST-1", "us-*", "eu-*", "*", "?s-east-1"],
        "aws:username": ["alice", "ALICE", "a?ice", "a*", "${aws:username}", "bob",
                         "${aws:missing, 'alice'}", "${aws:PrincipalTag/team}"],
        "aws:PrincipalTag/team": ["team-a", "Team-A", "team-*", "${aws:PrincipalTag/team}",
                                  "alice"],
        "aws:userid": ["abc", "ABC", "a*", "${aws:userid}"],
        "aws:TagKeys": ["alice", "bob", "team-a", "ALICE", "a*", "us-east-1"],
        "aws:PrincipalType": ["User", "user", "Assumed*"],
        "aws:MultiFactorAuthPresent": ["true", "TRUE", "false", True],
        "aws:CurrentTime": ["2023-11-14T22:13:20Z", "2023-*", 7],
    }),
    "numeric": (NUMERIC_OPERATORS, {"aws:EpochTime": _NUMBERS, "svc:count": _NUMBERS,
                                    "aws:username": _NUMBERS}),
    "date": (DATE_OPERATORS, {"aws:CurrentTime": _DATES, "aws:EpochTime": _DATES,
                              "svc:when": _DATES}),
    "bool": (["Bool"], {"aws:MultiFactorAuthPresent": _BOOLS, "aws:SecureTransport": _BOOLS,
                        "svc:flag": _BOOLS}),
    "ip": (IP_OPERATORS, {"aws:SourceIp": [
        "10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "0.0.0.0/0", "::/0", "10.1.2.3/99",
        "not-ip", "192.168.0.0/16"]}),
    "arn": (ARN_OPERATORS, {"aws:PrincipalArn": _ARNS, "aws:SourceArn": _ARNS}),
    "null": (["Null"], {"aws:MultiFactorAuthPresent": _NULLS, "aws:PrincipalTag/team": _NULLS,
                        "aws:SourceIp": _NULLS, "aws:TagKeys": _NULLS}),
    "unknown": (["StringEqualz", "stringequals", "NullIfExists", "ForAnyValue:Null", "Foo",
                 "IfExists"], {"aws:username": ["alice"], "aws:RequestedRegion": ["us-east-1"]}),
}

# context key -> possible values (lists are multivalued keys)
CONTEXT_VALUES = {
    "aws:RequestedRegion": ["us-east-1", "eu-west-1", "US-EAST-1", ["us-east-1", "eu-west-1"]],
    "aws:username": ["alice", "bob", "ALICE", "17", "a*", "al?ce", "*", ["alice", "bob"]],
    "aws:userid": ["abc", "AIDAEXAMPLE", "ABC", ["abc", "ABC"]],
    "aws:PrincipalTag/team": ["team-a", "Team-A", "alice", ["team-a"], "a*",
                              ["team-a", "Team-A"]],
    "aws:TagKeys": [["alice", "bob"], ["team-a"], [], ["us-east-1", "eu-west-1"], "alice",
                    ["alice", "ALICE"], ["bob"]],
    "aws:PrincipalType": ["User", "AssumedRole", "user"],
    "aws:MultiFactorAuthPresent": [True, False, "true"],
    "aws:SecureTransport": [True, False],
    "aws:CurrentTime": [datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc),
                        datetime(2019, 6, 1, tzinfo=timezone.utc),
                        datetime(2031, 1, 1, 12, 0, 0)],
    "aws:EpochTime": [1700000000, 1500000000, 1999999999, "1700000000"],
    "svc:count": [5, 10, "-3", "2.5", "x", 0, [1, 7]],
    "svc:when": ["2020-01-01", "garbage", "1700000000"],
    "svc:flag": ["TRUE", "nope", "false"],
    "aws:SourceIp": ["10.1.2.3", "192.168.1.1", "2001:db8::1", "fe80::1", "garbage",
                     ["10.1.2.3", "2001:db8::1"]],
    "aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{OTHER}:user/alice",
                         f"arn:aws:iam::{ACCOUNT}:role/admin",
                         f"arn:aws:iam::{ACCOUNT}:user/path/alice", "notanarn"],
    "aws:SourceArn": [f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/abc",
                      f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app:stream",
                      "arn:aws:logs:us-east-1:x:y"],
}


# Strategies are built once, here: building them inside every draw (hypothesis validates each
# new one) took most of this file's run time. The draws, and so the examples, are unchanged.
FEW_CONDITIONS = st.sampled_from((0, 0, 1, 1, 2))
SOME_CONDITIONS = st.sampled_from((1, 1, 2, 3))
FAMILY = st.sampled_from(sorted(FAMILIES))
OPERATOR = {family: st.sampled_from(operators) for family, (operators, _) in FAMILIES.items()}
CONDITION_KEY = {family: st.sampled_from(sorted(keys)) for family, (_, keys) in FAMILIES.items()}
CONDITION_VALUES = {(family, key): st.lists(st.sampled_from(values), min_size=1, max_size=3)
                    for family, (_, keys) in FAMILIES.items() for key, values in keys.items()}
IF_EXISTS = st.sampled_from([False] * 7 + [True] * 3)
SET_PREFIX = st.sampled_from(["", "", "ForAllValues:", "ForAnyValue:"])
ONE_IN_FIVE = st.sampled_from([False] * 4 + [True])
ONE_IN_THREE = st.sampled_from([False, False, True])
ONE_IN_FOUR = st.sampled_from([False, False, False, True])
ONE_IN_TWELVE = st.sampled_from([False] * 11 + [True])
TWO_IN_THREE = st.sampled_from([True, True, False])
EFFECT = st.sampled_from(["Allow", "Allow", "Allow", "Deny"])
CONDITION_EFFECT = st.sampled_from(["Allow", "Allow", "Deny"])
ACTIONS = st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3)
RESOURCES = st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3)
VERSION = st.sampled_from(["2012-10-17", "2012-10-17", "2008-10-17", None])
CONDITION_VERSION = st.sampled_from(["2012-10-17", "2012-10-17", "2008-10-17"])
IDENTITY_COUNT = st.sampled_from([1, 1, 1, 2, 2, 3, 0])
SESSION_COUNT = st.sampled_from([1, 1, 2, 0])
CONDITION_STATEMENTS = st.sampled_from([1, 1, 2])
CONTEXT = {key: st.sampled_from(values) for key, values in CONTEXT_VALUES.items()}
ACTION = st.sampled_from(REQUEST_ACTIONS)
RESOURCE = st.sampled_from(REQUEST_RESOURCES)
PRINCIPAL_ACCOUNT = st.sampled_from([ACCOUNT, ACCOUNT, ACCOUNT, OTHER])
INSERT_AT = {count: st.sampled_from([0, count]) for count in range(1, 5)}  # before or after


@st.composite
def conditions(draw, counts=FEW_CONDITIONS):
    block: dict[str, dict[str, object]] = {}
    for _ in range(draw(counts)):
        family = draw(FAMILY)
        operator = draw(OPERATOR[family])
        if family not in ("null", "unknown"):
            if draw(IF_EXISTS):
                operator += "IfExists"
            operator = draw(SET_PREFIX) + operator
        key = draw(CONDITION_KEY[family])
        chosen = draw(CONDITION_VALUES[family, key])
        block.setdefault(operator, {})[key] = chosen if len(chosen) > 1 or draw(st.booleans()) \
            else chosen[0]
    return block


@st.composite
def statements(draw):
    statement: dict[str, object] = {"Effect": draw(EFFECT)}
    actions = draw(ACTIONS)
    statement["NotAction" if draw(ONE_IN_FIVE) else "Action"] = (
        actions if len(actions) > 1 else actions[0])
    resources = draw(RESOURCES)
    statement["NotResource" if draw(ONE_IN_FIVE) else "Resource"] = (
        resources if len(resources) > 1 else resources[0])
    block = draw(CONDITIONS)
    if block:
        statement["Condition"] = block
    return statement


@st.composite
def documents(draw):
    body = draw(STATEMENTS)
    if draw(ONE_IN_THREE):
        # a broad grant (like "AdministratorAccess", maybe conditional) next to the random
        # statements, so that explicit denies and the other layers get something to override
        broad: dict[str, object] = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        block = draw(CONDITIONS)
        if block:
            broad["Condition"] = block
        body.insert(draw(INSERT_AT[len(body)]), broad)
        body = body[:4]
    document: dict[str, object] = {"Statement": body if len(body) > 1 or draw(st.booleans())
                                   else body[0]}
    version = draw(VERSION)
    if version:
        document["Version"] = version
    return json.dumps(document) if draw(st.booleans()) else document


CONDITIONS = conditions()
STATEMENTS = st.lists(statements(), min_size=1, max_size=4)
DOCUMENTS = documents()
DENSE_CONDITIONS = conditions(counts=SOME_CONDITIONS)


@st.composite
def policy_sets(draw):
    # Counts and flags come from sampled_from lists rather than integer ranges: Hypothesis
    # favours boundary integers (0, the minimum), which would flood the sample with empty
    # policy sets and root callers.
    identity = [draw(DOCUMENTS) for _ in range(draw(IDENTITY_COUNT))]
    session = None
    if draw(ONE_IN_FOUR):
        session = [draw(DOCUMENTS) for _ in range(draw(SESSION_COUNT))]
    boundary = draw(DOCUMENTS) if draw(ONE_IN_FOUR) else None
    is_root = draw(ONE_IN_TWELVE)
    return PolicySet(identity, session, boundary, is_root)


@st.composite
def requests(draw):
    context = {}
    for key, values in CONTEXT.items():
        if draw(TWO_IN_THREE):
            context[key] = draw(values)
    return AuthorizationRequest(
        action=draw(ACTION),
        resource=draw(RESOURCE),
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_account=draw(PRINCIPAL_ACCOUNT),
        context=context,
    )


@st.composite
def condition_documents(draw):
    """Statements on every action and resource whose outcome hangs on 1-3 conditions."""
    body = []
    for _ in range(draw(CONDITION_STATEMENTS)):
        block = draw(DENSE_CONDITIONS)
        body.append({"Effect": draw(CONDITION_EFFECT),
                     "Action": "*", "Resource": "*", "Condition": block})
    return {"Version": draw(CONDITION_VERSION), "Statement": body}


def reference(policies: PolicySet, request: AuthorizationRequest) -> tuple:
    return reference_evaluate(policies.identity, policies.session, policies.boundary,
                              policies.is_root, request.action, request.resource,
                              request.principal_account, "", request.context)


def ours(policies: PolicySet, request: AuthorizationRequest) -> tuple:
    decision = evaluate(policies, request)
    return (decision.allowed, decision.reason, decision.denied_by)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies=policy_sets(), request=requests())
def test_evaluator_agrees_with_reference(policies: PolicySet, request: AuthorizationRequest) -> None:
    assert ours(policies, request) == reference(policies, request)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=documents(), request=requests())
def test_single_identity_policy_agrees(document, request: AuthorizationRequest) -> None:
    """One identity policy alone: the condition/matching logic without the policy-set layers."""
    policies = PolicySet([document])
    assert ours(policies, request) == reference(policies, request)


@settings(max_examples=1500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=condition_documents(), request=requests())
def test_conditions_agree(document, request: AuthorizationRequest) -> None:
    """Condition operators, IfExists and set operators, densely: each example is decided by
    its conditions alone."""
    policies = PolicySet([document, {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"svc:never": "x"}}}}])
    assert ours(policies, request) == reference(policies, request)


def test_generator_yields_a_rich_mix_of_decisions() -> None:
    outcomes: Counter[str] = Counter()
    allowed: Counter[bool] = Counter()
    condition_verdicts: Counter[str] = Counter()

    @settings(max_examples=600, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(policies=policy_sets(), request=requests())
    def sample(policies: PolicySet, request: AuthorizationRequest) -> None:
        decision = evaluate(policies, request)
        outcomes[decision.reason] += 1
        allowed[decision.allowed] += 1
        for document in policies.identity:
            text = document if isinstance(document, str) else json.dumps(document)
            condition_verdicts["with conditions" if "Condition" in text else "plain"] += 1

    sample()
    total = sum(allowed.values())
    assert total >= 500
    assert allowed[True] >= total * 0.2, (allowed, outcomes)
    assert allowed[False] >= total * 0.2, (allowed, outcomes)
    for reason in ("allowed", "explicit_deny", "no_identity_allow", "no_session_allow",
                   "no_boundary_allow", "no_resource_allow", "root"):
        assert outcomes[reason] >= 5, (reason, outcomes)
    assert condition_verdicts["with conditions"] >= 100, condition_verdicts


# ------------------------------------------------------------------ moto, the weaker reference

# moto's evaluator knows only Action/Resource globs with "*" (case-sensitive, "?" is no
# wildcard) and mishandles conditions, NotAction/NotResource and variables, so it is asked only
# about documents inside that subset.
MOTO_ACTIONS = ["*", "aoss:*", "aoss:Create*", "aoss:CreateCollection", "aoss:*Collection*",
                "aoss:Delete*", "cloudtrail:*", "iam:Get*", "s3:*", "aoss:List*"]
MOTO_RESOURCES = ["*", f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/*",
                  f"arn:aws:aoss:*:{ACCOUNT}:collection/abc", "arn:aws:aoss:*", "arn:aws:*",
                  "arn:aws:cloudtrail:*:*:trail/*", "arn:aws:iam::*:user/*",
                  f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/ABC"]


MOTO_STATEMENTS = st.sampled_from([1, 1, 1, 2, 3])
MOTO_ACTION_LISTS = st.lists(st.sampled_from(MOTO_ACTIONS), min_size=1, max_size=2)
MOTO_RESOURCE_LISTS = st.lists(st.sampled_from(MOTO_RESOURCES), min_size=1, max_size=1)


@st.composite
def moto_documents(draw):
    body = []
    for _ in range(draw(MOTO_STATEMENTS)):
        acts = draw(MOTO_ACTION_LISTS)
        res = draw(MOTO_RESOURCE_LISTS)
        body.append({"Effect": draw(CONDITION_EFFECT), "Action": acts, "Resource": res})
    return {"Version": "2012-10-17", "Statement": body}


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(document=moto_documents(), action=st.sampled_from(REQUEST_ACTIONS),
       resource=st.sampled_from([r for r in REQUEST_RESOURCES if f":{OTHER}:" not in r]))
def test_moto_agrees_on_the_subset_it_supports(document, action: str, resource: str) -> None:
    access_control = pytest.importorskip("moto.iam.access_control")
    verdict = access_control.IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
    expected = {access_control.PermissionResult.PERMITTED: "allowed",
                access_control.PermissionResult.DENIED: "explicit_deny",
                access_control.PermissionResult.NEUTRAL: "no_identity_allow"}[verdict]
    decision = evaluate(PolicySet([document]),
                        AuthorizationRequest(action, resource, f"arn:aws:iam::{ACCOUNT}:user/a",
                                             ACCOUNT))
    assert decision.reason == expected
