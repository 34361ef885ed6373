"""aoss security policies against the real SQLite store, with a controlled clock."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from searchtrail.services.aoss import OpenSearchServerlessProvider
from searchtrail.services.aoss.idempotency import PrunedDays
from searchtrail.services.aoss.policies import POLICY_QUOTAS
from tests.unit.aoss_harness import ACCOUNT, KMS, T0_MS, AossHarness, version_of


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def enc(*resources, owned=True, kms=None):
    doc = {"Rules": [{"ResourceType": "collection", "Resource": list(resources)}]}
    if kms is not None:
        doc["AWSOwnedKey"] = False
        doc["KmsARN"] = kms
    else:
        doc["AWSOwnedKey"] = owned
    return json.dumps(doc)


def net(*resources, public=True, **extra):
    rule = {
        "Rules": [
            {"ResourceType": "collection", "Resource": list(resources)},
            {"ResourceType": "dashboard", "Resource": list(resources)},
        ],
        "AllowFromPublic": public,
        **extra,
    }
    return json.dumps([rule])


# --- create / get -----------------------------------------------------------------------


def test_create_encryption_policy_returns_full_detail(aoss):
    out = aoss("CreateSecurityPolicy", type="encryption", name="logs-enc",
               policy=enc("collection/logs*"), description="for logs")
    assert out == {
        "securityPolicyDetail": {
            "type": "encryption",
            "name": "logs-enc",
            "policyVersion": version_of(T0_MS),
            "description": "for logs",
            "policy": {
                "Rules": [{"ResourceType": "collection", "Resource": ["collection/logs*"]}],
                "AWSOwnedKey": True,
            },
            "createdDate": T0_MS,
            "lastModifiedDate": T0_MS,
        }
    }


def test_policy_version_is_base64_of_millis_and_1(aoss):
    out = aoss("CreateSecurityPolicy", type="encryption", name="p-one", policy=enc("collection/a"))
    version = out["securityPolicyDetail"]["policyVersion"]
    assert base64.b64decode(version).decode() == f"{T0_MS}_1"
    assert 20 <= len(version) <= 36


def test_description_omitted_when_not_given(aoss):
    out = aoss("CreateSecurityPolicy", type="network", name="net", policy=net("collection/a"))
    assert "description" not in out["securityPolicyDetail"]
    assert aoss("GetSecurityPolicy", type="network", name="net")["securityPolicyDetail"] == (
        out["securityPolicyDetail"]
    )


def test_get_returns_policy_as_json_document(aoss):
    aoss("CreateSecurityPolicy", type="network", name="net", policy=net("collection/a*"))
    detail = aoss("GetSecurityPolicy", type="network", name="net")["securityPolicyDetail"]
    assert isinstance(detail["policy"], list)
    assert detail["policy"][0]["AllowFromPublic"] is True
    assert detail["policy"][0]["Rules"][1]["ResourceType"] == "dashboard"


def test_duplicate_name_and_type_is_conflict(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="dup", policy=enc("collection/a"))
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="dup", policy=enc("collection/b"))
    assert (err.code, err.message) == (
        "ConflictException", "Policy with name dup and type encryption already exists"
    )


def test_same_name_different_type_is_allowed(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="same", policy=enc("collection/a"))
    aoss("CreateSecurityPolicy", type="network", name="same", policy=net("collection/a"))
    assert aoss("GetSecurityPolicy", type="network", name="same")["securityPolicyDetail"]["type"] == "network"


def test_get_unknown_is_not_found(aoss):
    err = aoss.fail("GetSecurityPolicy", type="network", name="nope")
    assert (err.code, err.message) == (
        "ResourceNotFoundException", "Policy with name nope and type network is not found"
    )


def test_get_of_wrong_type_is_not_found(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="only-enc", policy=enc("collection/a"))
    err = aoss.fail("GetSecurityPolicy", type="network", name="only-enc")
    assert err.code == "ResourceNotFoundException"


def test_policies_are_scoped_per_region_and_account(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="scoped", policy=enc("collection/a"))
    assert aoss.elsewhere(region="eu-west-1").fail(
        "GetSecurityPolicy", type="encryption", name="scoped").code == "ResourceNotFoundException"
    assert aoss.elsewhere(account="444455556666").fail(
        "GetSecurityPolicy", type="encryption", name="scoped").code == "ResourceNotFoundException"
    # and the same name is free there, including the same resource pattern
    aoss.elsewhere(region="eu-west-1")(
        "CreateSecurityPolicy", type="encryption", name="scoped", policy=enc("collection/a"))


# --- policy document validation ---------------------------------------------------------

VALID_ENCRYPTION = [
    enc("collection/logs"),
    enc("collection/logs*"),
    enc("collection/*"),
    enc("collection/a", "collection/b*"),
    enc("collection/a", kms=KMS),
    # KmsARN present: AWSOwnedKey is ignored (documented), so it may be absent or true
    json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/x"]}], "KmsARN": KMS}),
    json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/x"]}],
                "AWSOwnedKey": True, "KmsARN": KMS}),
    # several rules, whitespace and newlines in the text
    '{\n "Rules": [\n  {"ResourceType": "collection", "Resource": ["collection/a"]},\n'
    '  {"ResourceType": "collection", "Resource": ["collection/b"]}\n ],\n "AWSOwnedKey": true\n}',
]


@pytest.mark.parametrize("policy", VALID_ENCRYPTION)
def test_valid_encryption_documents_are_accepted(aoss, policy):
    out = aoss("CreateSecurityPolicy", type="encryption", name="valid", policy=policy)
    assert out["securityPolicyDetail"]["policy"] == json.loads(policy)


RULE = {"ResourceType": "collection", "Resource": ["collection/a"]}

INVALID_ENCRYPTION = [
    ("not json", "Policy json is invalid, error: [Expecting value at line 1 column 1]"),
    ('{"Rules": [', "Policy json is invalid, error: [Expecting value at line 1 column 12]"),
    ('{"Rules": [], "AWSOwnedKey": true,}', "Policy json is invalid, error: [Expecting property name"),
    ('{"AWSOwnedKey": true, "AWSOwnedKey": false, "Rules": []}',
     "Policy json is invalid, error: [duplicate key 'AWSOwnedKey']"),
    ('{"Rules": [{"ResourceType": "collection", "Resource": ["collection/a", "collection/a"],'
     ' "ResourceType": "collection"}], "AWSOwnedKey": true}',
     "Policy json is invalid, error: [duplicate key 'ResourceType']"),
    ('\ufeff{"Rules": [], "AWSOwnedKey": true}',
     "Policy json is invalid, error: [Unexpected UTF-8 BOM (decode using utf-8-sig) at line 1"),
    ('{"Rules": [{"ResourceType": "collection", "Resource": ["collection/a"]}], "AWSOwnedKey": NaN}',
     "Policy json is invalid, error: [NaN is not valid JSON]"),
    (json.dumps([{"Rules": [RULE], "AWSOwnedKey": True}]),
     "Policy json is invalid, error: [$: array found, object expected]"),
    ('"just a string"', "Policy json is invalid, error: [$: string found, object expected]"),
    (json.dumps({"AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules: is missing but it is required]"),
    (json.dumps({"Rules": [RULE]}),
     "Policy json is invalid, error: [$.AWSOwnedKey: is missing but it is required]"),
    (json.dumps({"Rules": [RULE], "AWSOwnedKey": False}),
     "Policy json is invalid, error: [$.KmsARN: is missing but it is required when AWSOwnedKey is false]"),
    (json.dumps({"Rules": [RULE], "AWSOwnedKey": "true"}),
     "Policy json is invalid, error: [$.AWSOwnedKey: string found, boolean expected]"),
    (json.dumps({"Rules": [], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules: there must be a minimum of 1 items in the array]"),
    (json.dumps({"Rules": RULE, "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules: object found, array expected]"),
    (json.dumps({"Rules": [RULE], "AWSOwnedKey": True, "Extra": 1}),
     "Policy json is invalid, error: [$.Extra: is not defined in the schema and the schema does not "
     "allow additional properties]"),
    (json.dumps({"Rules": [{"ResourceType": "dashboard", "Resource": ["collection/a"]}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].ResourceType: does not have a value in the "
     "enumeration [collection]]"),
    (json.dumps({"Rules": [{"Resource": ["collection/a"]}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].ResourceType: is missing but it is required]"),
    (json.dumps({"Rules": [{"ResourceType": "collection"}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].Resource: is missing but it is required]"),
    (json.dumps({"Rules": [{"ResourceType": "collection", "Resource": []}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].Resource: there must be a minimum of 1 items in the array]"),
    (json.dumps({"Rules": [{"ResourceType": "collection", "Resource": "collection/a"}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].Resource: string found, array expected]"),
    (json.dumps({"Rules": [{"ResourceType": "collection", "Resource": [7]}], "AWSOwnedKey": True}),
     "Policy json is invalid, error: [$.Rules[0].Resource[0]: integer found, string expected]"),
    (enc("collection/a*b"),
     "Policy json is invalid, error: [$.Rules[0].Resource[0]: collection/a*b is not valid; expected "
     "collection/<collection name> or collection/<prefix>* (the wildcard * is allowed only at the end)]"),
    (enc("collection/*a"), "$.Rules[0].Resource[0]: collection/*a is not valid"),
    (enc("collection/a**"), "$.Rules[0].Resource[0]: collection/a** is not valid"),
    (enc("collection/"), "$.Rules[0].Resource[0]: collection/ is not valid"),
    (enc("index/logs/*"), "$.Rules[0].Resource[0]: index/logs/* is not valid"),
    (enc("logs"), "$.Rules[0].Resource[0]: logs is not valid"),
    (enc("collection/a", kms="not-an-arn"),
     "Policy json is invalid, error: [$.KmsARN: not-an-arn is not valid; expected a KMS key ARN"),
    # every problem is reported, not only the first
    (json.dumps({"Rules": [{"ResourceType": "x", "Resource": ["bad"]}], "Extra": 1}),
     "Policy json is invalid, error: [$.Rules[0].ResourceType: does not have a value in the "
     "enumeration [collection], $.Rules[0].Resource[0]: bad is not valid; expected collection/<collection "
     "name> or collection/<prefix>* (the wildcard * is allowed only at the end), $.Extra: is not defined "
     "in the schema and the schema does not allow additional properties, $.AWSOwnedKey: is missing but "
     "it is required]"),
]


@pytest.mark.parametrize("policy,message", INVALID_ENCRYPTION)
def test_invalid_encryption_documents_are_rejected(aoss, policy, message):
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="bad", policy=policy)
    assert err.code == "ValidationException"
    assert message in err.message
    assert aoss.fail("GetSecurityPolicy", type="encryption", name="bad").code == "ResourceNotFoundException"


VALID_NETWORK = [
    net("collection/logs*"),
    net("collection/*", public=False, SourceVPCEs=["vpce-050f79086ee71ac05"]),
    net("collection/a", public=False, SourceServices=["bedrock.amazonaws.com"]),
    net("collection/a", Description="public access"),
    json.dumps([
        {"Description": "dashboards public", "Rules": [{"ResourceType": "dashboard", "Resource": ["collection/a"]}],
         "AllowFromPublic": True},
        {"Rules": [{"ResourceType": "collection", "Resource": ["collection/a"]}], "AllowFromPublic": False,
         "SourceVPCEs": ["vpce-1", "vpce-2"]},
    ]),
]


@pytest.mark.parametrize("policy", VALID_NETWORK)
def test_valid_network_documents_are_accepted(aoss, policy):
    out = aoss("CreateSecurityPolicy", type="network", name="valid", policy=policy)
    assert out["securityPolicyDetail"]["policy"] == json.loads(policy)


NET_RULE = {"ResourceType": "collection", "Resource": ["collection/a"]}

INVALID_NETWORK = [
    ("[", "Policy json is invalid, error: [Expecting value at line 1 column 2]"),
    (json.dumps({"Rules": [NET_RULE], "AllowFromPublic": True}),
     "Policy json is invalid, error: [$: object found, array expected]"),
    ("[]", "Policy json is invalid, error: [$: there must be a minimum of 1 items in the array]"),
    ("[1]", "Policy json is invalid, error: [$[0]: integer found, object expected]"),
    (json.dumps([{"Rules": [NET_RULE]}]),
     "Policy json is invalid, error: [$[0].AllowFromPublic: is missing but it is required]"),
    (json.dumps([{"AllowFromPublic": True}]),
     "Policy json is invalid, error: [$[0].Rules: is missing but it is required]"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": "yes"}]),
     "Policy json is invalid, error: [$[0].AllowFromPublic: string found, boolean expected]"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": False}]),
     "Policy json is invalid, error: [$[0]: SourceVPCEs or SourceServices is required when "
     "AllowFromPublic is false]"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": False, "SourceVPCEs": []}]),
     "$[0].SourceVPCEs: there must be a minimum of 1 items in the array"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": False, "SourceVPCEs": ["vpc-123"]}]),
     "$[0].SourceVPCEs[0]: vpc-123 is not valid; expected a VPC endpoint id (vpce-...)"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": False, "SourceServices": ["bedrock"]}]),
     "$[0].SourceServices[0]: bedrock is not valid"),
    (json.dumps([{"Rules": [{"ResourceType": "index", "Resource": ["collection/a"]}], "AllowFromPublic": True}]),
     "$[0].Rules[0].ResourceType: does not have a value in the enumeration [collection, dashboard]"),
    (json.dumps([{"Rules": [{"ResourceType": "dashboard", "Resource": ["dashboard/a"]}], "AllowFromPublic": True}]),
     "$[0].Rules[0].Resource[0]: dashboard/a is not valid"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": True, "Description": 5}]),
     "$[0].Description: integer found, string expected"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": True, "AWSOwnedKey": True}]),
     "$[0].AWSOwnedKey: is not defined in the schema"),
    (json.dumps([{"Rules": [NET_RULE], "AllowFromPublic": True}, {"Rules": [], "AllowFromPublic": True}]),
     "$[1].Rules: there must be a minimum of 1 items in the array"),
    (enc("collection/a"), "Policy json is invalid, error: [$: object found, array expected]"),
]


@pytest.mark.parametrize("policy,message", INVALID_NETWORK)
def test_invalid_network_documents_are_rejected(aoss, policy, message):
    err = aoss.fail("CreateSecurityPolicy", type="network", name="bad", policy=policy)
    assert err.code == "ValidationException"
    assert message in err.message


def test_same_pattern_in_two_encryption_policies_is_rejected(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="first", policy=enc("collection/logs*", "collection/x"))
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="second", policy=enc("collection/logs*"))
    assert err.code == "ValidationException"
    assert err.message == (
        "Resource pattern collection/logs* is already used in encryption policy first. "
        "A collection name or prefix can appear in only one encryption policy."
    )


def test_overlapping_but_different_patterns_are_allowed_in_encryption_policies(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="broad", policy=enc("collection/log*"))
    aoss("CreateSecurityPolicy", type="encryption", name="narrow", policy=enc("collection/logspecial"))


def test_network_policies_may_share_patterns(aoss):
    aoss("CreateSecurityPolicy", type="network", name="one", policy=net("collection/a*"))
    aoss("CreateSecurityPolicy", type="network", name="two", policy=net("collection/a*"))
    # and an encryption policy may use a pattern a network policy uses
    aoss("CreateSecurityPolicy", type="encryption", name="one", policy=enc("collection/a*"))


# --- update -----------------------------------------------------------------------------


def test_update_with_current_version_changes_policy_and_version(aoss):
    created = aoss("CreateSecurityPolicy", type="encryption", name="upd", policy=enc("collection/a"))
    aoss.advance(5)
    out = aoss("UpdateSecurityPolicy", type="encryption", name="upd",
               policyVersion=created["securityPolicyDetail"]["policyVersion"],
               policy=enc("collection/a", "collection/b*"), description="wider")
    detail = out["securityPolicyDetail"]
    assert detail["lastModifiedDate"] == T0_MS + 5000
    assert detail["createdDate"] == T0_MS
    assert detail["policyVersion"] == version_of(T0_MS + 5000)
    assert detail["policy"]["Rules"][0]["Resource"] == ["collection/a", "collection/b*"]
    assert detail["description"] == "wider"
    assert aoss("GetSecurityPolicy", type="encryption", name="upd")["securityPolicyDetail"] == detail


def test_update_with_stale_version_is_validation_error(aoss):
    created = aoss("CreateSecurityPolicy", type="encryption", name="upd", policy=enc("collection/a"))
    old = created["securityPolicyDetail"]["policyVersion"]
    aoss.advance(1)
    aoss("UpdateSecurityPolicy", type="encryption", name="upd", policyVersion=old, policy=enc("collection/b"))
    err = aoss.fail("UpdateSecurityPolicy", type="encryption", name="upd", policyVersion=old,
                    policy=enc("collection/c"))
    assert (err.code, err.message) == (
        "ValidationException",
        "Policy version specified in the request refers to an older version and policy has since changed",
    )
    stored = aoss("GetSecurityPolicy", type="encryption", name="upd")["securityPolicyDetail"]
    assert stored["policy"]["Rules"][0]["Resource"] == ["collection/b"]


def test_update_without_change_keeps_version_and_date(aoss):
    created = aoss("CreateSecurityPolicy", type="network", name="same", policy=net("collection/a"),
                   description="d")["securityPolicyDetail"]
    aoss.advance(10)
    out = aoss("UpdateSecurityPolicy", type="network", name="same", policyVersion=created["policyVersion"],
               policy=net("collection/a"), description="d")["securityPolicyDetail"]
    assert out == created
    out = aoss("UpdateSecurityPolicy", type="network", name="same", policyVersion=created["policyVersion"])
    assert out["securityPolicyDetail"] == created


def test_update_of_description_only_is_a_change(aoss):
    created = aoss("CreateSecurityPolicy", type="network", name="desc", policy=net("collection/a"))
    aoss.advance(2)
    out = aoss("UpdateSecurityPolicy", type="network", name="desc",
               policyVersion=created["securityPolicyDetail"]["policyVersion"], description="new")
    detail = out["securityPolicyDetail"]
    assert detail["description"] == "new"
    assert detail["policy"] == created["securityPolicyDetail"]["policy"]
    assert detail["policyVersion"] == version_of(T0_MS + 2000)


def test_two_changes_in_the_same_millisecond_still_get_new_versions(aoss):
    v0 = aoss("CreateSecurityPolicy", type="encryption", name="fast", policy=enc("collection/a"))
    v0 = v0["securityPolicyDetail"]["policyVersion"]
    v1 = aoss("UpdateSecurityPolicy", type="encryption", name="fast", policyVersion=v0,
              policy=enc("collection/b"))["securityPolicyDetail"]
    assert v1["policyVersion"] != v0
    assert v1["policyVersion"] == version_of(T0_MS + 1)
    err = aoss.fail("UpdateSecurityPolicy", type="encryption", name="fast", policyVersion=v0,
                    policy=enc("collection/c"))
    assert err.code == "ValidationException"


def test_update_unknown_is_not_found(aoss):
    err = aoss.fail("UpdateSecurityPolicy", type="network", name="ghost", policyVersion=version_of(T0_MS),
                    policy=net("collection/a"))
    assert (err.code, err.message) == (
        "ResourceNotFoundException", "Policy with name ghost and type network is not found"
    )


def test_update_validates_the_new_document(aoss):
    created = aoss("CreateSecurityPolicy", type="network", name="val", policy=net("collection/a"))
    version = created["securityPolicyDetail"]["policyVersion"]
    err = aoss.fail("UpdateSecurityPolicy", type="network", name="val", policyVersion=version,
                    policy=enc("collection/a"))
    assert err.code == "ValidationException"
    assert err.message.startswith("Policy json is invalid, error: [$: object found, array expected]")
    detail = aoss("GetSecurityPolicy", type="network", name="val")["securityPolicyDetail"]
    assert detail == created["securityPolicyDetail"]


def test_update_may_keep_own_patterns_but_not_take_anothers(aoss):
    a = aoss("CreateSecurityPolicy", type="encryption", name="pol-a", policy=enc("collection/a*"))
    aoss("CreateSecurityPolicy", type="encryption", name="pol-b", policy=enc("collection/b*"))
    version = a["securityPolicyDetail"]["policyVersion"]
    # keeping its own pattern is fine
    out = aoss("UpdateSecurityPolicy", type="encryption", name="pol-a", policyVersion=version,
               policy=enc("collection/a*", "collection/c"))
    version = out["securityPolicyDetail"]["policyVersion"]
    err = aoss.fail("UpdateSecurityPolicy", type="encryption", name="pol-a", policyVersion=version,
                    policy=enc("collection/b*"))
    assert err.code == "ValidationException"
    assert "collection/b* is already used in encryption policy pol-b" in err.message


def test_update_changes_which_collections_the_policy_matches(aoss):
    created = aoss("CreateSecurityPolicy", type="encryption", name="mover", policy=enc("collection/old"))
    aoss("UpdateSecurityPolicy", type="encryption", name="mover",
         policyVersion=created["securityPolicyDetail"]["policyVersion"], policy=enc("collection/new*"))
    aoss("CreateCollection", name="new-one")
    err = aoss.fail("CreateCollection", name="old")
    assert err.message.startswith("No matching security policy of encryption type")


# --- delete -----------------------------------------------------------------------------


def test_delete_removes_the_policy(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="gone", policy=enc("collection/a"))
    assert aoss("DeleteSecurityPolicy", type="encryption", name="gone") == {}
    assert aoss.fail("GetSecurityPolicy", type="encryption", name="gone").code == "ResourceNotFoundException"
    # its pattern is free again, and the name too
    aoss("CreateSecurityPolicy", type="encryption", name="other", policy=enc("collection/a"))
    aoss("CreateSecurityPolicy", type="encryption", name="gone", policy=enc("collection/b"))


def test_delete_unknown_is_not_found(aoss):
    err = aoss.fail("DeleteSecurityPolicy", type="encryption", name="never")
    assert (err.code, err.message) == (
        "ResourceNotFoundException", "Policy with name never and type encryption is not found"
    )


def test_delete_does_not_touch_existing_collections(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="key-pol", policy=enc("collection/col-one", kms=KMS))
    aoss("CreateCollection", name="col-one")
    aoss("DeleteSecurityPolicy", type="encryption", name="key-pol")
    details = aoss("BatchGetCollection", names=["col-one"])["collectionDetails"]
    assert details[0]["kmsKeyArn"] == KMS


# --- list -------------------------------------------------------------------------------


def test_list_filters_by_type_and_omits_policy(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="e-b", policy=enc("collection/b"), description="x")
    aoss("CreateSecurityPolicy", type="encryption", name="e-a", policy=enc("collection/a"))
    aoss("CreateSecurityPolicy", type="network", name="n-a", policy=net("collection/a"))
    out = aoss("ListSecurityPolicies", type="encryption")
    assert "nextToken" not in out
    summaries = out["securityPolicySummaries"]
    assert [s["name"] for s in summaries] == ["e-a", "e-b"]
    assert all("policy" not in s for s in summaries)
    assert summaries[1] == {
        "type": "encryption", "name": "e-b", "policyVersion": version_of(T0_MS), "description": "x",
        "createdDate": T0_MS, "lastModifiedDate": T0_MS,
    }
    assert [s["name"] for s in aoss("ListSecurityPolicies", type="network")["securityPolicySummaries"]] == ["n-a"]


def test_list_empty(aoss):
    assert aoss("ListSecurityPolicies", type="network") == {"securityPolicySummaries": []}


def test_list_paginates_with_opaque_token(aoss):
    names = [f"pol-{i:02d}" for i in range(7)]
    for name in reversed(names):
        aoss("CreateSecurityPolicy", type="network", name=name, policy=net(f"collection/{name}"))
    seen, token, pages = [], None, 0
    while True:
        params = {"type": "network", "maxResults": 3}
        if token:
            params["nextToken"] = token
        out = aoss("ListSecurityPolicies", **params)
        pages += 1
        assert len(out["securityPolicySummaries"]) <= 3
        seen += [s["name"] for s in out["securityPolicySummaries"]]
        token = out.get("nextToken")
        if token is None:
            break
        assert "pol-" not in token  # opaque: not the raw name
    assert seen == names
    assert pages == 3


def test_a_token_pages_only_through_the_policy_type_it_was_issued_for(aoss):
    """A network listing's token used to be taken by an encryption listing, which then left
    out every encryption policy sorting before it."""
    for i in range(3):
        aoss("CreateSecurityPolicy", type="network", name=f"n-{i}", policy=net("collection/a"))
    token = aoss("ListSecurityPolicies", type="network", maxResults=1)["nextToken"]
    assert aoss.fail("ListSecurityPolicies", type="encryption",
                     nextToken=token).code == "ValidationException"
    assert [s["name"] for s in aoss("ListSecurityPolicies", type="network", nextToken=token)[
        "securityPolicySummaries"]] == ["n-1", "n-2"]


def test_list_exact_page_has_no_next_token(aoss):
    for i in range(3):
        aoss("CreateSecurityPolicy", type="network", name=f"p-{i}", policy=net("collection/a"))
    out = aoss("ListSecurityPolicies", type="network", maxResults=3)
    assert len(out["securityPolicySummaries"]) == 3
    assert "nextToken" not in out


def test_list_default_page_size_is_20(aoss):
    for i in range(21):
        aoss("CreateSecurityPolicy", type="network", name=f"p-{i:02d}", policy=net("collection/a"))
    out = aoss("ListSecurityPolicies", type="network")
    assert len(out["securityPolicySummaries"]) == 20
    rest = aoss("ListSecurityPolicies", type="network", nextToken=out["nextToken"])
    assert [s["name"] for s in rest["securityPolicySummaries"]] == ["p-20"]
    assert "nextToken" not in rest


def test_list_continues_correctly_when_a_listed_policy_is_deleted(aoss):
    for i in range(4):
        aoss("CreateSecurityPolicy", type="network", name=f"p-{i}", policy=net("collection/a"))
    first = aoss("ListSecurityPolicies", type="network", maxResults=2)
    aoss("DeleteSecurityPolicy", type="network", name="p-1")
    rest = aoss("ListSecurityPolicies", type="network", nextToken=first["nextToken"])
    assert [s["name"] for s in rest["securityPolicySummaries"]] == ["p-2", "p-3"]


@pytest.mark.parametrize("token", ["garbage", "", "e30", "!!!", base64.b64encode(b'{"v":1}').decode()])
def test_list_rejects_invalid_token(aoss, token):
    err = aoss.fail("ListSecurityPolicies", type="network", nextToken=token)
    assert err.code == "ValidationException"
    assert "nextToken is invalid" in err.message


def test_list_rejects_a_token_of_another_operation(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="enc", policy=enc("collection/*"))
    for i in range(3):
        aoss("CreateCollection", name=f"col-{i}")
    token = aoss("ListCollections", maxResults=1)["nextToken"]
    assert aoss.fail("ListSecurityPolicies", type="encryption", nextToken=token).code == "ValidationException"


def test_list_rejects_a_well_formed_token_of_another_operation(aoss):
    for i in range(3):
        aoss("CreateSecurityPolicy", type="network", name=f"pol-{i}", policy=net("collection/a"))
    token = aoss("ListSecurityPolicies", type="network", maxResults=1)["nextToken"]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert payload["op"] == "ListSecurityPolicies"
    payload["op"] = "ListCollections"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    assert aoss.fail("ListSecurityPolicies", type="network", nextToken=forged).code == "ValidationException"
    # the genuine token still works
    assert aoss("ListSecurityPolicies", type="network", nextToken=token)["securityPolicySummaries"]


@pytest.mark.parametrize(
    "resource,expected",
    [
        (["collection/logs-app"], ["all", "by-prefix", "exact"]),
        (["collection/logs-web"], ["all", "by-prefix"]),
        (["collection/logs*"], ["all", "by-prefix", "exact", "longer-prefix"]),
        (["collection/logs-app*"], ["all", "by-prefix", "exact", "longer-prefix"]),
        (["collection/logs-app-x1"], ["all", "by-prefix", "longer-prefix"]),
        (["collection/metrics"], ["all", "metrics"]),
        (["collection/metrics-2"], ["all"]),
        (["collection/*"], ["all", "by-prefix", "exact", "longer-prefix", "metrics"]),
        (["collection/metrics", "collection/logs-app"], ["all", "by-prefix", "exact", "metrics"]),
        (["collection/lo"], ["all"]),
        (["collection/lo*"], ["all", "by-prefix", "exact", "longer-prefix"]),
    ],
)
def test_list_resource_filter_understands_wildcards(aoss, resource, expected):
    aoss("CreateSecurityPolicy", type="network", name="exact", policy=net("collection/logs-app"))
    aoss("CreateSecurityPolicy", type="network", name="by-prefix", policy=net("collection/logs*"))
    aoss("CreateSecurityPolicy", type="network", name="longer-prefix", policy=net("collection/logs-app-x*"))
    aoss("CreateSecurityPolicy", type="network", name="metrics", policy=net("collection/metrics"))
    aoss("CreateSecurityPolicy", type="network", name="all", policy=net("collection/other", "collection/*"))
    out = aoss("ListSecurityPolicies", type="network", resource=resource)
    assert sorted(s["name"] for s in out["securityPolicySummaries"]) == expected


def test_list_resource_filter_with_no_match(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="enc", policy=enc("collection/logs*"))
    out = aoss("ListSecurityPolicies", type="encryption", resource=["collection/metrics"])
    assert out == {"securityPolicySummaries": []}


def test_list_resource_filter_paginates(aoss):
    for i in range(5):
        pattern = "collection/hit*" if i % 2 == 0 else "collection/miss"
        aoss("CreateSecurityPolicy", type="network", name=f"p-{i}", policy=net(pattern))
    first = aoss("ListSecurityPolicies", type="network", resource=["collection/hit-1"], maxResults=2)
    assert [s["name"] for s in first["securityPolicySummaries"]] == ["p-0", "p-2"]
    rest = aoss("ListSecurityPolicies", type="network", resource=["collection/hit-1"],
                maxResults=2, nextToken=first["nextToken"])
    assert [s["name"] for s in rest["securityPolicySummaries"]] == ["p-4"]
    assert "nextToken" not in rest


# --- quotas -----------------------------------------------------------------------------


def test_quota_values():
    assert POLICY_QUOTAS == {"encryption": 50, "network": 500}


def test_encryption_policy_quota_is_50(aoss):
    for i in range(50):
        aoss("CreateSecurityPolicy", type="encryption", name=f"enc-{i:02d}", policy=enc(f"collection/c{i}"))
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="enc-50", policy=enc("collection/c50"))
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields["serviceCode"] == "aoss"
    assert "50 encryption policies" in err.message
    # network policies and other regions are counted separately
    aoss("CreateSecurityPolicy", type="network", name="net-0", policy=net("collection/a"))
    aoss.elsewhere(region="us-west-2")(
        "CreateSecurityPolicy", type="encryption", name="enc-50", policy=enc("collection/c50"))
    # freeing one makes room again
    aoss("DeleteSecurityPolicy", type="encryption", name="enc-00")
    aoss("CreateSecurityPolicy", type="encryption", name="enc-50", policy=enc("collection/c50"))


def test_network_policy_quota_is_500(aoss):
    for i in range(500):
        aoss("CreateSecurityPolicy", type="network", name=f"net-{i:03d}", policy=net("collection/a"))
    err = aoss.fail("CreateSecurityPolicy", type="network", name="net-500", policy=net("collection/a"))
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields["serviceCode"] == "aoss"
    assert "500 network policies" in err.message


# --- idempotency and CloudTrail resources -------------------------------------------------


def test_create_with_same_client_token_is_idempotent(aoss):
    first = aoss("CreateSecurityPolicy", type="encryption", name="idem", policy=enc("collection/a"),
                 clientToken="tok-1")
    aoss.advance(1)
    again = aoss("CreateSecurityPolicy", type="encryption", name="idem", policy=enc("collection/a"),
                 clientToken="tok-1")
    assert again == first
    assert aoss.last.referenced_resources == [{
        "ARN": "arn:aws:aoss:us-east-1:111122223333:security-policy/encryption/idem",
        "accountId": ACCOUNT, "type": "AWS::AOSS::SecurityPolicy",
    }]
    # without the token the duplicate is a conflict
    assert aoss.fail("CreateSecurityPolicy", type="encryption", name="idem",
                     policy=enc("collection/a")).code == "ConflictException"


def test_client_token_reused_with_other_parameters_is_conflict(aoss):
    aoss("CreateSecurityPolicy", type="encryption", name="idem", policy=enc("collection/a"), clientToken="tok")
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="idem2", policy=enc("collection/b"),
                    clientToken="tok")
    assert err.code == "ConflictException"
    assert "client token tok was already used" in err.message
    assert aoss.fail("GetSecurityPolicy", type="encryption", name="idem2").code == "ResourceNotFoundException"


def test_update_retry_with_same_token_does_not_fail_on_version(aoss):
    created = aoss("CreateSecurityPolicy", type="network", name="retry", policy=net("collection/a"))
    version = created["securityPolicyDetail"]["policyVersion"]
    aoss.advance(1)
    first = aoss("UpdateSecurityPolicy", type="network", name="retry", policyVersion=version,
                 policy=net("collection/b"), clientToken="upd-1")
    aoss.advance(1)
    again = aoss("UpdateSecurityPolicy", type="network", name="retry", policyVersion=version,
                 policy=net("collection/b"), clientToken="upd-1")
    assert again == first


def test_failed_call_does_not_consume_the_token(aoss):
    err = aoss.fail("CreateSecurityPolicy", type="encryption", name="later", policy="{", clientToken="t")
    assert err.code == "ValidationException"
    aoss("CreateSecurityPolicy", type="encryption", name="later", policy=enc("collection/a"), clientToken="t")


def test_token_used_before_midnight_replays_after_midnight(aoss):
    aoss.clock[0] = datetime(2025, 3, 1, 23, 59, 59, tzinfo=timezone.utc)
    first = aoss("CreateSecurityPolicy", type="network", name="midnight", policy=net("collection/a"),
                 clientToken="late")
    aoss.advance(2)  # now the next UTC day
    again = aoss("CreateSecurityPolicy", type="network", name="midnight", policy=net("collection/a"),
                 clientToken="late")
    assert again == first
    err = aoss.fail("CreateSecurityPolicy", type="network", name="midnight2", policy=net("collection/a"),
                    clientToken="late")
    assert err.code == "ConflictException"


def test_token_expires_after_a_day(aoss):
    aoss("CreateSecurityPolicy", type="network", name="pol", policy=net("collection/a"), clientToken="day")
    aoss("DeleteSecurityPolicy", type="network", name="pol", clientToken="del")
    aoss.advance(24 * 3600 + 1)
    # the same token now creates again instead of replaying the old response
    aoss("CreateSecurityPolicy", type="network", name="pol", policy=net("collection/a"), clientToken="day")
    assert aoss("GetSecurityPolicy", type="network", name="pol")["securityPolicyDetail"]["name"] == "pol"


def test_expired_token_records_are_pruned(aoss):
    aoss("CreateSecurityPolicy", type="network", name="pol-1", policy=net("collection/a"), clientToken="old")
    assert len(aoss.repo.list("aoss.idempotency")) == 1
    aoss.advance(3 * 24 * 3600)
    aoss("CreateSecurityPolicy", type="network", name="pol-2", policy=net("collection/a"), clientToken="new")
    records = aoss.repo.list("aoss.idempotency")
    assert len(records) == 1 and records[0]["key"].endswith("/CreateSecurityPolicy/new")
    aoss.advance(90 * 24 * 3600)  # a long pause: pruned in one pass
    aoss("CreateSecurityPolicy", type="network", name="pol-3", policy=net("collection/a"), clientToken="newer")
    assert [r["key"].split("/")[-1] for r in aoss.repo.list("aoss.idempotency")] == ["newer"]


def test_pruning_keeps_the_records_of_today_and_yesterday(aoss):
    aoss("CreateSecurityPolicy", type="network", name="pol-1", policy=net("collection/a"), clientToken="one")
    aoss.advance(24 * 3600)  # the next UTC day (or the one after): "one" may still be live
    aoss("CreateSecurityPolicy", type="network", name="pol-2", policy=net("collection/a"), clientToken="two")
    tokens = [r["key"].split("/")[-1] for r in aoss.repo.list("aoss.idempotency")]
    days = {r["key"][:6] for r in aoss.repo.list("aoss.idempotency")}
    assert tokens == ["one", "two"] and len(days) == 2
    aoss.advance(24 * 3600)  # now "one" is two days old: expired, and its day goes
    aoss("CreateSecurityPolicy", type="network", name="pol-3", policy=net("collection/a"), clientToken="three")
    assert [r["key"].split("/")[-1] for r in aoss.repo.list("aoss.idempotency")] == ["two", "three"]


def test_the_prune_marker_is_read_once_a_day_and_pruning_goes_on(aoss, conn):
    marker_reads = []
    conn.set_trace_callback(
        lambda sql: marker_reads.append(sql) if "idempotency-pruned" in sql and
        sql.lstrip().upper().startswith("SELECT") else None)
    tokens = []
    for day in range(4):
        for call in range(3):
            tokens.append(f"d{day}c{call}")
            aoss("CreateSecurityPolicy", type="network", name=tokens[-1],
                 policy=net("collection/a"), clientToken=tokens[-1])
        # each day the first call prunes and moves the marker, the second reads and
        # remembers it, the third reads nothing
        assert len(marker_reads) == 2 * (day + 1)
        aoss.advance(24 * 3600)
    conn.set_trace_callback(None)
    kept = {r["key"].split("/")[-1] for r in aoss.repo.list("aoss.idempotency")}
    assert kept == {f"d{day}c{call}" for day in (2, 3) for call in range(3)}


def test_expired_records_are_pruned_a_chunk_at_a_time(conn):
    """However many records a day left (a load test's millions), a call deletes one chunk at
    most, and a process one chunk a scope per interval; the marker moves once they are gone."""
    aoss = AossHarness(conn, provider=OpenSearchServerlessProvider(
        3.0, 3.0, pruned=PrunedDays(chunk=3, interval_ms=100)))
    for n in range(7):
        aoss("CreateSecurityPolicy", type="network", name=f"old-{n}", policy=net("collection/a"),
             clientToken=f"old-{n}")
    aoss.advance(3 * 24 * 3600)

    def marker() -> int:
        return aoss.repo.get("aoss.idempotency-pruned", "marker")["throughDay"]

    before = marker()

    def left() -> list[str]:
        return [r["key"].split("/")[-1] for r in aoss.repo.list("aoss.idempotency")]

    def create(token: str) -> None:
        aoss("CreateSecurityPolicy", type="network", name=token, policy=net("collection/a"),
             clientToken=token)

    create("new-1")  # a chunk of three: the oldest keys first
    assert left() == ["old-3", "old-4", "old-5", "old-6", "new-1"]
    create("new-2")  # within the interval: no chunk
    assert len(left()) == 6 and marker() == before
    aoss.advance(0.1)
    create("new-3")
    assert left() == ["old-6", "new-1", "new-2", "new-3"]
    aoss.advance(0.1)
    create("new-4")  # the last one: fewer than a chunk, so the marker moves
    assert left() == ["new-1", "new-2", "new-3", "new-4"]
    assert marker() == before + 3


@pytest.mark.parametrize("operation", ["GetSecurityPolicy", "DeleteSecurityPolicy"])
def test_policy_operations_reference_the_policy(aoss, operation):
    aoss("CreateSecurityPolicy", type="network", name="ref", policy=net("collection/a"))
    assert aoss.last.referenced_resources == [{
        "ARN": "arn:aws:aoss:us-east-1:111122223333:security-policy/network/ref",
        "accountId": ACCOUNT, "type": "AWS::AOSS::SecurityPolicy",
    }]
    aoss(operation, type="network", name="ref")
    assert aoss.last.referenced_resources[0]["ARN"].endswith(":security-policy/network/ref")


def test_list_references_nothing(aoss):
    aoss("CreateSecurityPolicy", type="network", name="ref", policy=net("collection/a"))
    aoss("ListSecurityPolicies", type="network")
    assert aoss.last.referenced_resources == []
