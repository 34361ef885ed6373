"""aoss lifecycle (retention) policies and effective policies against the real SQLite store."""

from __future__ import annotations

import json

import pytest

from tests.unit.aoss_harness import ACCOUNT, T0_MS, AossHarness


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def rule(*resources, keep=None, forever=False):
    out = {"ResourceType": "index", "Resource": list(resources)}
    if forever:
        out["NoMinIndexRetention"] = True
    else:
        out["MinIndexRetention"] = keep or "15d"
    return out


def policy(*rules):
    return json.dumps({"Rules": list(rules)})


def create(aoss, name, *rules, **params):
    return aoss("CreateLifecyclePolicy", type="retention", name=name, policy=policy(*rules),
                **params)["lifecyclePolicyDetail"]


# --- create / batch get -----------------------------------------------------------------


def test_create_and_batch_get(aoss):
    doc = policy(rule("index/marketing/*", keep="15d"), rule("index/finance/log*", forever=True))
    detail = aoss("CreateLifecyclePolicy", type="retention", name="my-policy", policy=doc,
                  description="keep logs")["lifecyclePolicyDetail"]
    assert detail == {
        "type": "retention", "name": "my-policy", "policyVersion": detail["policyVersion"],
        "description": "keep logs", "policy": json.loads(doc), "createdDate": T0_MS,
        "lastModifiedDate": T0_MS,
    }
    assert aoss.last.referenced_resources == [{
        "ARN": "arn:aws:aoss:us-east-1:111122223333:lifecycle-policy/retention/my-policy",
        "accountId": ACCOUNT, "type": "AWS::AOSS::LifecyclePolicy",
    }]
    out = aoss("BatchGetLifecyclePolicy", identifiers=[
        {"type": "retention", "name": "my-policy"},
        {"type": "retention", "name": "missing"},
        {"type": "retention", "name": "my-policy"},
    ])
    assert out == {
        "lifecyclePolicyDetails": [detail],
        "lifecyclePolicyErrorDetails": [{
            "type": "retention", "name": "missing", "errorCode": "NOT_FOUND",
            "errorMessage": "The specified Lifecycle Policy is not found.",
        }],
    }
    assert len(aoss.last.referenced_resources) == 1


def test_duplicate_name_is_conflict(aoss):
    create(aoss, "dup", rule("index/a/*"))
    err = aoss.fail("CreateLifecyclePolicy", type="retention", name="dup", policy=policy(rule("index/b/*")))
    assert (err.code, err.message) == ("ConflictException", "Policy with name dup and type retention already exists")


@pytest.mark.parametrize("keep", ["24h", "1d", "15d", "3650d", "87600h", "100h"])
def test_valid_retention_periods(aoss, keep):
    create(aoss, "okay", rule("index/a/*", keep=keep))


@pytest.mark.parametrize("doc, message", [
    ({"Rules": []}, "Policy json is invalid, error: [$.Rules: there must be a minimum of 1 items in the array]"),
    ({}, "Policy json is invalid, error: [$.Rules: is missing but it is required]"),
    ({"Rules": [{"ResourceType": "index", "Resource": ["index/a/*"]}]},
     "Policy json is invalid, error: [$.Rules[0]: one of MinIndexRetention or NoMinIndexRetention is required]"),
    ({"Rules": [{"ResourceType": "index", "Resource": ["index/a/*"], "MinIndexRetention": "2d",
                 "NoMinIndexRetention": True}]},
     "Policy json is invalid, error: [$.Rules[0]: MinIndexRetention and NoMinIndexRetention can't both be set]"),
    ({"Rules": [{"ResourceType": "index", "Resource": ["index/a/*"], "NoMinIndexRetention": False}]},
     "Policy json is invalid, error: [$.Rules[0].NoMinIndexRetention: must be true when given]"),
    ({"Rules": [rule("index/a/*", keep="23h")]},
     "Policy json is invalid, error: [$.Rules[0].MinIndexRetention: 23h is not valid; expected a period "
     "from 24h to 3650d, such as 24h or 15d]"),
    ({"Rules": [rule("index/a/*", keep="3651d")]}, None),
    ({"Rules": [rule("index/a/*", keep="15 days")]}, None),
    ({"Rules": [rule("index/a/*", keep="0d")]}, None),
    ({"Rules": [{"ResourceType": "collection", "Resource": ["collection/a"], "MinIndexRetention": "2d"}]}, None),
    ({"Rules": [rule("collection/a")]}, None),
    ({"Rules": [rule("index/a")]}, None),
    ({"Rules": [rule("index/a/*")], "Extra": 1}, None),
])
def test_invalid_documents(aoss, doc, message):
    err = aoss.fail("CreateLifecyclePolicy", type="retention", name="bad", policy=json.dumps(doc))
    assert err.code == "ValidationException"
    assert err.message.startswith("Policy json is invalid, error: [")
    if message is not None:
        assert err.message == message


def test_a_pattern_belongs_to_one_policy(aoss):
    create(aoss, "first", rule("index/logs/*"))
    err = aoss.fail("CreateLifecyclePolicy", type="retention", name="second", policy=policy(rule("index/logs/*")))
    assert (err.code, err.message) == (
        "ValidationException",
        "Resource pattern index/logs/* is already used in retention policy first. An index name or pattern "
        "can appear in only one retention policy.",
    )
    err = aoss.fail("CreateLifecyclePolicy", type="retention", name="twice",
                    policy=policy(rule("index/x/*"), rule("index/x/*", keep="30d")))
    assert err.code == "ValidationException" and "appears more than once" in err.message
    # overlapping but different patterns are fine
    create(aoss, "second", rule("index/logs/app*"))


def test_update_and_delete(aoss):
    first = create(aoss, "pol", rule("index/a/*"))
    aoss.advance(1)
    out = aoss("UpdateLifecyclePolicy", type="retention", name="pol", policyVersion=first["policyVersion"],
               policy=policy(rule("index/a/*", keep="30d")))["lifecyclePolicyDetail"]
    assert out["policy"]["Rules"][0]["MinIndexRetention"] == "30d"
    assert out["policyVersion"] != first["policyVersion"]
    stale = aoss.fail("UpdateLifecyclePolicy", type="retention", name="pol", policyVersion=first["policyVersion"])
    assert stale.code == "ValidationException"
    same = aoss("UpdateLifecyclePolicy", type="retention", name="pol", policyVersion=out["policyVersion"])
    assert same["lifecyclePolicyDetail"] == out
    assert aoss("DeleteLifecyclePolicy", type="retention", name="pol") == {}
    assert aoss.fail("DeleteLifecyclePolicy", type="retention", name="pol").code == "ResourceNotFoundException"
    assert aoss.fail("UpdateLifecyclePolicy", type="retention", name="pol",
                     policyVersion=out["policyVersion"]).code == "ResourceNotFoundException"


def test_list_default_page_is_10_and_filters(aoss):
    for i in range(12):
        create(aoss, f"p-{i:02d}", rule(f"index/c{i}/*"))
    first = aoss("ListLifecyclePolicies", type="retention")
    assert len(first["lifecyclePolicySummaries"]) == 10
    assert "policy" not in first["lifecyclePolicySummaries"][0]
    rest = aoss("ListLifecyclePolicies", type="retention", nextToken=first["nextToken"])
    assert [s["name"] for s in rest["lifecyclePolicySummaries"]] == ["p-10", "p-11"]
    hit = aoss("ListLifecyclePolicies", type="retention", resources=["index/c3/anything"])
    assert [s["name"] for s in hit["lifecyclePolicySummaries"]] == ["p-03"]
    wide = aoss("ListLifecyclePolicies", type="retention", resources=["index/c1*/x"], maxResults=100)
    assert [s["name"] for s in wide["lifecyclePolicySummaries"]] == ["p-01", "p-10", "p-11"]


# --- effective policies -----------------------------------------------------------------


def effective(aoss, *resources):
    return aoss("BatchGetEffectiveLifecyclePolicy",
                resourceIdentifiers=[{"type": "retention", "resource": r} for r in resources])


def test_effective_policy_is_the_most_specific_rule(aoss):
    create(aoss, "broad", rule("index/*/*", keep="365d"))
    create(aoss, "sales", rule("index/sales/*", keep="30d"), rule("index/sales/log*", forever=True))
    create(aoss, "exact", rule("index/sales/logs-archive", keep="3650d"))
    create(aoss, "sales-prefix", rule("index/sal*/orders", keep="7d"))
    out = effective(aoss, "index/sales/orders", "index/sales/logs-1", "index/sales/logs-archive",
                    "index/other/x", "index/salty/orders")
    assert out["effectiveLifecyclePolicyErrorDetails"] == []
    assert out["effectiveLifecyclePolicyDetails"] == [
        {"type": "retention", "resource": "index/sales/orders", "policyName": "sales",
         "resourceType": "index", "retentionPeriod": "30d"},
        {"type": "retention", "resource": "index/sales/logs-1", "policyName": "sales",
         "resourceType": "index", "noMinRetentionPeriod": True},
        {"type": "retention", "resource": "index/sales/logs-archive", "policyName": "exact",
         "resourceType": "index", "retentionPeriod": "3650d"},
        {"type": "retention", "resource": "index/other/x", "policyName": "broad",
         "resourceType": "index", "retentionPeriod": "365d"},
        {"type": "retention", "resource": "index/salty/orders", "policyName": "sales-prefix",
         "resourceType": "index", "retentionPeriod": "7d"},
    ]


def test_no_matching_rule_is_an_error_detail(aoss):
    create(aoss, "sales", rule("index/sales/*"))
    out = effective(aoss, "index/hr/people", "index/sales/x")
    assert out["effectiveLifecyclePolicyErrorDetails"] == [{
        "type": "retention", "resource": "index/hr/people", "errorCode": "NOT_FOUND",
        "errorMessage": "The specified Index resource is not found.",
    }]
    assert [d["policyName"] for d in out["effectiveLifecyclePolicyDetails"]] == ["sales"]
    assert [r["ARN"].rsplit(":", 1)[1] for r in aoss.last.referenced_resources] == [
        "lifecycle-policy/retention/sales"]


def test_a_policy_several_resources_resolve_to_is_one_record_resource(aoss):
    create(aoss, "sales", rule("index/sales/*"))
    out = effective(aoss, "index/sales/a", "index/sales/b")
    assert [d["policyName"] for d in out["effectiveLifecyclePolicyDetails"]] == ["sales", "sales"]
    assert [r["ARN"].rsplit(":", 1)[1] for r in aoss.last.referenced_resources] == [
        "lifecycle-policy/retention/sales"]


def test_stats_count_retention_policies(aoss):
    create(aoss, "one", rule("index/a/*"))
    stats = aoss("GetPoliciesStats")
    assert stats["LifecyclePolicyStats"] == {"RetentionPolicyCount": 1}
