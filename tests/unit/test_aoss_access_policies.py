"""aoss data access policies against the real SQLite store, with a controlled clock."""

from __future__ import annotations

import json

import pytest

from searchtrail.services.aoss.access_policies import ACCESS_POLICY_QUOTAS
from tests.unit.aoss_harness import ACCOUNT, T0_MS, AossHarness, version_of

ROLE = "arn:aws:iam::111122223333:role/admin"


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def statement(*rules, principals=(ROLE,), **extra):
    return {"Rules": list(rules), "Principal": list(principals), **extra}


def coll_rule(*resources, permissions=("aoss:DescribeCollectionItems",)):
    return {"ResourceType": "collection", "Resource": list(resources), "Permission": list(permissions)}


def index_rule(*resources, permissions=("aoss:ReadDocument",)):
    return {"ResourceType": "index", "Resource": list(resources), "Permission": list(permissions)}


def data(*statements):
    return json.dumps(list(statements))


SIMPLE = data(statement(coll_rule("collection/logs"), index_rule("index/logs/*")))


def create(aoss, name="readers", policy=SIMPLE, **params):
    return aoss("CreateAccessPolicy", type="data", name=name, policy=policy, **params)["accessPolicyDetail"]


# --- create / get -----------------------------------------------------------------------


def test_create_returns_full_detail_with_policy_as_json(aoss):
    detail = create(aoss, description="read logs")
    assert detail == {
        "type": "data",
        "name": "readers",
        "policyVersion": version_of(T0_MS),
        "description": "read logs",
        "policy": json.loads(SIMPLE),
        "createdDate": T0_MS,
        "lastModifiedDate": T0_MS,
    }
    assert aoss.last.referenced_resources == [{
        "ARN": "arn:aws:aoss:us-east-1:111122223333:access-policy/data/readers",
        "accountId": ACCOUNT, "type": "AWS::AOSS::AccessPolicy",
    }]
    assert aoss("GetAccessPolicy", type="data", name="readers") == {"accessPolicyDetail": detail}


def test_duplicate_is_conflict_and_unknown_is_not_found(aoss):
    create(aoss)
    err = aoss.fail("CreateAccessPolicy", type="data", name="readers", policy=SIMPLE)
    assert (err.code, err.message) == ("ConflictException", "Policy with name readers and type data already exists")
    err = aoss.fail("GetAccessPolicy", type="data", name="nobody")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Policy with name nobody and type data is not found")
    # a security policy of the same name is a different resource
    assert aoss.fail("GetSecurityPolicy", type="network", name="readers").code == "ResourceNotFoundException"


@pytest.mark.parametrize("policy", [
    data(statement(coll_rule("collection/*", permissions=("aoss:*",)))),
    data(statement(index_rule("index/*/*", permissions=("aoss:*",)))),
    data(statement(coll_rule("collection/logs*", permissions=(
        "aoss:CreateCollectionItems", "aoss:DeleteCollectionItems", "aoss:UpdateCollectionItems",
        "aoss:DescribeCollectionItems")))),
    data(statement(index_rule("index/logs*/app-*", "index/metrics/cpu", permissions=(
        "aoss:ReadDocument", "aoss:WriteDocument", "aoss:CreateIndex", "aoss:DeleteIndex",
        "aoss:UpdateIndex", "aoss:DescribeIndex")))),
    data(statement(coll_rule("collection/a"), principals=(
        "arn:aws:iam::444455556666:user/dale", "arn:aws:iam::111122223333:root",
        "saml/111122223333/okta/user/annie@example.com", "saml/111122223333/okta/group/admins",
        "iamidentitycenter/ssoins-1234567890abcdef/user/f1a2", "iamidentitycenter/ssoins-1/group/g9"))),
    data(statement(coll_rule("collection/a"), Description="first"), statement(index_rule("index/a/*"))),
])
def test_valid_documents_are_accepted(aoss, policy):
    assert create(aoss, policy=policy)["policy"] == json.loads(policy)


@pytest.mark.parametrize("policy, message", [
    ("[", "Policy json is invalid, error: [Expecting value at line 1 column 2]"),
    ("{}", "Policy json is invalid, error: [$: object found, array expected]"),
    ("[]", "Policy json is invalid, error: [$: there must be a minimum of 1 items in the array]"),
    (json.dumps([{"Rules": []}]),
     "Policy json is invalid, error: [$[0].Principal: is missing but it is required, "
     "$[0].Rules: there must be a minimum of 1 items in the array]"),
    (data(statement(coll_rule("collection/a"), Effect="Allow")),
     "Policy json is invalid, error: [$[0].Effect: is not defined in the schema and the schema "
     "does not allow additional properties]"),
    (data(statement({"ResourceType": "dashboard", "Resource": ["collection/a"], "Permission": ["aoss:*"]})),
     "Policy json is invalid, error: [$[0].Rules[0].ResourceType: does not have a value in the "
     "enumeration [collection, index]]"),
    (data(statement({"ResourceType": "collection", "Resource": ["collection/a"]})),
     "Policy json is invalid, error: [$[0].Rules[0].Permission: is missing but it is required]"),
    (data(statement(coll_rule("index/a/b"))),
     "Policy json is invalid, error: [$[0].Rules[0].Resource[0]: index/a/b is not valid; expected "
     "collection/<collection name> or collection/<prefix>* (the wildcard * is allowed only at the end)]"),
    (data(statement(index_rule("index/a"))),
     "Policy json is invalid, error: [$[0].Rules[0].Resource[0]: index/a is not valid; expected "
     "index/<collection name or prefix*>/<index name or prefix*> (the wildcard * is allowed only at "
     "the end of each part)]"),
    (data(statement(index_rule("index/a*b/c"))), None),
    (data(statement(coll_rule("collection/a", permissions=("aoss:ReadDocument",)))),
     "Policy json is invalid, error: [$[0].Rules[0].Permission[0]: does not have a value in the "
     "enumeration [aoss:CreateCollectionItems, aoss:DeleteCollectionItems, aoss:UpdateCollectionItems, "
     "aoss:DescribeCollectionItems, aoss:*] for ResourceType collection]"),
    (data(statement(index_rule("index/a/b", permissions=("aoss:DescribeCollectionItems",)))), None),
    (data(statement(index_rule("index/a/b", permissions=("es:*",)))), None),
    (data(statement(coll_rule("collection/a"), principals=())),
     "Policy json is invalid, error: [$[0].Principal: there must be a minimum of 1 items in the array]"),
    (data(statement(coll_rule("collection/a"), principals=("*",))), None),
    (data(statement(coll_rule("collection/a"), principals=("arn:aws:iam::111122223333:group/devs",))), None),
    (data(statement(coll_rule("collection/a"), principals=("saml/123/okta/user/x",))), None),
])
def test_invalid_documents_are_rejected(aoss, policy, message):
    err = aoss.fail("CreateAccessPolicy", type="data", name="bad", policy=policy)
    assert err.code == "ValidationException"
    assert err.message.startswith("Policy json is invalid, error: [")
    if message is not None:
        assert err.message == message
    assert aoss("ListAccessPolicies", type="data") == {"accessPolicySummaries": []}


def test_many_policies_may_name_the_same_resources(aoss):
    create(aoss, name="one")
    create(aoss, name="two")
    assert len(aoss("ListAccessPolicies", type="data")["accessPolicySummaries"]) == 2


def test_policy_size_is_limited_to_10240_bytes(aoss):
    principals = tuple(f"arn:aws:iam::111122223333:role/r{i:04d}-{'x' * 60}" for i in range(200))
    big = data(statement(coll_rule("collection/a"), principals=principals))
    assert len(big) > 10240
    err = aoss.fail("CreateAccessPolicy", type="data", name="big", policy=big)
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields["serviceCode"] == "aoss"
    assert "at most 10240 bytes" in err.message


# --- update / delete --------------------------------------------------------------------


def test_update_changes_document_and_version(aoss):
    first = create(aoss)
    aoss.advance(2)
    new_policy = data(statement(coll_rule("collection/metrics")))
    out = aoss("UpdateAccessPolicy", type="data", name="readers", policyVersion=first["policyVersion"],
               policy=new_policy)["accessPolicyDetail"]
    assert out["policy"] == json.loads(new_policy)
    assert out["lastModifiedDate"] == T0_MS + 2000
    assert out["policyVersion"] == version_of(T0_MS + 2000)
    assert out["createdDate"] == T0_MS
    err = aoss.fail("UpdateAccessPolicy", type="data", name="readers", policyVersion=first["policyVersion"],
                    description="late")
    assert (err.code, err.message) == (
        "ValidationException",
        "Policy version specified in the request refers to an older version and policy has since changed",
    )


def test_update_validates_and_unknown_is_not_found(aoss):
    first = create(aoss)
    err = aoss.fail("UpdateAccessPolicy", type="data", name="readers", policyVersion=first["policyVersion"],
                    policy="[]")
    assert err.code == "ValidationException"
    err = aoss.fail("UpdateAccessPolicy", type="data", name="ghost", policyVersion=first["policyVersion"])
    assert err.code == "ResourceNotFoundException"


def test_delete(aoss):
    create(aoss)
    assert aoss("DeleteAccessPolicy", type="data", name="readers") == {}
    assert aoss.last.referenced_resources[0]["ARN"].endswith(":access-policy/data/readers")
    err = aoss.fail("DeleteAccessPolicy", type="data", name="readers")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Policy with name readers and type data is not found")


# --- list -------------------------------------------------------------------------------


def test_list_omits_policy_and_filters_by_resource(aoss):
    create(aoss, name="logs-readers", policy=data(statement(coll_rule("collection/logs*"))))
    create(aoss, name="app-index", policy=data(statement(index_rule("index/app/orders-*"))))
    create(aoss, name="everything", policy=data(statement(coll_rule("collection/*"), index_rule("index/*/*"))))
    out = aoss("ListAccessPolicies", type="data")
    assert [s["name"] for s in out["accessPolicySummaries"]] == ["app-index", "everything", "logs-readers"]
    assert all("policy" not in s for s in out["accessPolicySummaries"])

    def names(*resources):
        page = aoss("ListAccessPolicies", type="data", resource=list(resources))
        return [s["name"] for s in page["accessPolicySummaries"]]

    assert names("collection/logs-2024") == ["everything", "logs-readers"]
    assert names("index/app/orders-1") == ["app-index", "everything"]
    assert names("index/app/*") == ["app-index", "everything"]
    assert names("index/other/x") == ["everything"]
    assert names("collection/app") == ["everything"]


def test_list_paginates(aoss):
    for i in range(25):
        create(aoss, name=f"p-{i:02d}")
    first = aoss("ListAccessPolicies", type="data")
    assert len(first["accessPolicySummaries"]) == 20
    rest = aoss("ListAccessPolicies", type="data", nextToken=first["nextToken"])
    assert [s["name"] for s in rest["accessPolicySummaries"]] == [f"p-{i:02d}" for i in range(20, 25)]
    assert "nextToken" not in rest
    err = aoss.fail("ListAccessPolicies", type="data", nextToken="garbage")
    assert err.code == "ValidationException"
    sec_token = None
    for i in range(3):
        aoss("CreateSecurityPolicy", type="network", name=f"n-{i}", policy=json.dumps(
            [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/a"]}], "AllowFromPublic": True}]))
    sec_token = aoss("ListSecurityPolicies", type="network", maxResults=1)["nextToken"]
    assert aoss.fail("ListAccessPolicies", type="data", nextToken=sec_token).code == "ValidationException"


# --- quota, idempotency, scope ----------------------------------------------------------


def test_quota_is_500_data_policies(aoss):
    assert ACCESS_POLICY_QUOTAS == {"data": 500}
    for i in range(500):
        create(aoss, name=f"p-{i:03d}")
    err = aoss.fail("CreateAccessPolicy", type="data", name="p-500", policy=SIMPLE)
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields == {"serviceCode": "aoss", "resourceType": "access-policy"}
    assert "500 data policies" in err.message


def test_client_token_replays(aoss):
    first = aoss("CreateAccessPolicy", type="data", name="idem", policy=SIMPLE, clientToken="t1")
    aoss.advance(1)
    assert aoss("CreateAccessPolicy", type="data", name="idem", policy=SIMPLE, clientToken="t1") == first
    err = aoss.fail("CreateAccessPolicy", type="data", name="idem2", policy=SIMPLE, clientToken="t1")
    assert err.code == "ConflictException"


def test_policies_are_per_account_and_region(aoss):
    create(aoss)
    assert aoss.elsewhere(region="eu-west-1").fail("GetAccessPolicy", type="data", name="readers").code == \
        "ResourceNotFoundException"
    assert aoss.elsewhere(account="444455556666").fail("GetAccessPolicy", type="data", name="readers").code == \
        "ResourceNotFoundException"
