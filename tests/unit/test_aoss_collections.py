"""aoss collections against the real SQLite store, with a controlled clock."""

from __future__ import annotations

import json
import re

import pytest

from searchtrail.services.aoss import OpenSearchServerlessProvider
from tests.unit.aoss_harness import ACCOUNT, KMS, NO_POLICY, T0_MS, AossHarness


@pytest.fixture
def aoss(conn):
    return AossHarness(conn).encrypt_all()


@pytest.fixture
def bare(conn):
    """No encryption policy at all."""
    return AossHarness(conn)


# --- create -----------------------------------------------------------------------------


def test_create_returns_every_create_detail_member(aoss):
    detail = aoss.create("logs", description="app logs", type="SEARCH")
    assert re.fullmatch(r"[a-z0-9]{20}", detail["id"])
    assert detail == {
        "id": detail["id"],
        "name": "logs",
        "status": "CREATING",
        "type": "SEARCH",
        "description": "app logs",
        "arn": f"arn:aws:aoss:us-east-1:111122223333:collection/{detail['id']}",
        "kmsKeyArn": "auto",
        "standbyReplicas": "ENABLED",
        "deletionProtection": "DISABLED",
        "createdDate": T0_MS,
        "lastModifiedDate": T0_MS,
    }


def test_create_defaults_type_to_timeseries_and_omits_unset_members(aoss):
    detail = aoss.create("logs")
    assert detail["type"] == "TIMESERIES"
    for member in ("description", "vectorOptions", "collectionGroupName"):
        assert member not in detail


def test_create_echoes_optional_members(aoss):
    aoss.group("group-a", standby="DISABLED")
    detail = aoss.create(
        "vectors",
        type="VECTORSEARCH",
        standbyReplicas="DISABLED",
        deletionProtection="ENABLED",
        vectorOptions={"ServerlessVectorAcceleration": "ALLOWED"},
        collectionGroupName="group-a",
    )
    assert detail["standbyReplicas"] == "DISABLED"
    assert detail["deletionProtection"] == "ENABLED"
    assert detail["vectorOptions"] == {"ServerlessVectorAcceleration": "ALLOWED"}
    assert detail["collectionGroupName"] == "group-a"
    full = aoss.get(detail["id"])
    assert full["vectorOptions"] == {"ServerlessVectorAcceleration": "ALLOWED"}
    assert full["collectionGroupName"] == "group-a"


def test_ids_are_unique(aoss):
    ids = {aoss.create(f"col-{i}")["id"] for i in range(30)}
    assert len(ids) == 30


def test_create_without_encryption_policy_fails_with_exact_text(bare):
    err = bare.fail("CreateCollection", name="orders")
    assert err.code == "ValidationException"
    assert err.message == NO_POLICY.format("orders")
    assert bare("ListCollections") == {"collectionSummaries": []}


def test_network_policy_does_not_satisfy_encryption_requirement(bare):
    policy = [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/orders"]}],
               "AllowFromPublic": True}]
    bare("CreateSecurityPolicy", type="network", name="orders", policy=json.dumps(policy))
    assert bare.fail("CreateCollection", name="orders").message == NO_POLICY.format("orders")


@pytest.mark.parametrize(
    "pattern,name,matches",
    [
        ("collection/orders", "orders", True),
        ("collection/orders", "orders2", False),
        ("collection/ord*", "orders", True),
        ("collection/orders*", "orders", True),
        ("collection/orders-*", "orders", False),
        ("collection/*", "anything", True),
        ("collection/x*", "orders", False),
    ],
)
def test_encryption_policy_matching(bare, pattern, name, matches):
    bare.policy("enc", pattern)
    if matches:
        assert bare.create(name)["kmsKeyArn"] == "auto"
    else:
        assert bare.fail("CreateCollection", name=name).message == NO_POLICY.format(name)


def test_kms_key_comes_from_the_matching_policy(bare):
    bare.policy("cmk", "collection/secure*", kms=KMS)
    assert bare.create("secure-logs")["kmsKeyArn"] == KMS


def test_most_specific_policy_wins(bare):
    other = KMS.replace("93fd", "0000")
    bare.policy("broad", "collection/*")
    bare.policy("prefix", "collection/log*", kms=KMS)
    bare.policy("longer", "collection/logs-special*", kms=other)
    bare.policy("exact", "collection/logs-special-one")
    assert bare.create("metrics")["kmsKeyArn"] == "auto"
    assert bare.create("logs")["kmsKeyArn"] == KMS
    assert bare.create("logs-special-two")["kmsKeyArn"] == other
    assert bare.create("logs-special-one")["kmsKeyArn"] == "auto"


def test_exact_rule_beats_a_prefix_of_the_same_length(bare):
    # "a-prefix" is stored (and scanned) first; the exact rule must still win
    bare.policy("a-prefix", "collection/orders*")
    bare.policy("b-exact", "collection/orders", kms=KMS)
    assert bare.create("orders")["kmsKeyArn"] == KMS
    assert bare.create("orders2")["kmsKeyArn"] == "auto"


def test_encryption_config_replaces_the_policy_requirement(bare):
    assert bare.create("owned", encryptionConfig={"aWSOwnedKey": True})["kmsKeyArn"] == "auto"
    assert bare.create("cmk", encryptionConfig={"kmsKeyArn": KMS})["kmsKeyArn"] == KMS
    assert bare.create("cmk2", encryptionConfig={"aWSOwnedKey": False, "kmsKeyArn": KMS})["kmsKeyArn"] == KMS


@pytest.mark.parametrize(
    "config,text",
    [
        ({}, "encryptionConfig: set aWSOwnedKey to true or give the kmsKeyArn"),
        ({"aWSOwnedKey": False}, "encryptionConfig: set aWSOwnedKey to true or give the kmsKeyArn"),
        ({"aWSOwnedKey": True, "kmsKeyArn": KMS}, "specify either aWSOwnedKey true or a kmsKeyArn, not both"),
    ],
)
def test_invalid_encryption_config(bare, config, text):
    err = bare.fail("CreateCollection", name="bad-config", encryptionConfig=config)
    assert err.code == "ValidationException"
    assert text in err.message


def test_key_is_fixed_at_creation(bare):
    bare.policy("cmk", "collection/fixed", kms=KMS)
    detail = bare.create("fixed")
    version = bare("GetSecurityPolicy", type="encryption", name="cmk")["securityPolicyDetail"]["policyVersion"]
    bare("UpdateSecurityPolicy", type="encryption", name="cmk", policyVersion=version,
         policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/fixed"]}],
                            "AWSOwnedKey": True}))
    assert bare.get(detail["id"])["kmsKeyArn"] == KMS


# --- status over time -----------------------------------------------------------------------


def test_creating_then_active_after_create_seconds(aoss):
    detail = aoss.create("timed")
    assert aoss.status(detail["id"]) == "CREATING"
    aoss.advance(2.999)
    assert aoss.status(detail["id"]) == "CREATING"
    aoss.advance(0.001)
    full = aoss.get(detail["id"])
    assert full["status"] == "ACTIVE"
    assert full["createdDate"] == T0_MS
    assert full["lastModifiedDate"] == T0_MS + 3000  # becoming ACTIVE is the last modification


def test_create_seconds_zero_is_active_at_once(conn):
    fast = AossHarness(conn, provider=OpenSearchServerlessProvider(create_seconds=0, delete_seconds=0))
    fast.policy("enc", "collection/*")
    detail = fast.create("quick")
    assert detail["status"] == "ACTIVE"
    assert fast("DeleteCollection", id=detail["id"])["deleteCollectionDetail"]["status"] == "DELETING"
    assert fast.get(detail["id"]) is None


def test_provider_timings_are_configurable(conn):
    slow = AossHarness(conn, provider=OpenSearchServerlessProvider(create_seconds=60, delete_seconds=30))
    slow.policy("enc", "collection/*")
    detail = slow.create("slow")
    slow.advance(59)
    assert slow.status(detail["id"]) == "CREATING"
    slow.advance(1)
    assert slow.status(detail["id"]) == "ACTIVE"
    slow("DeleteCollection", id=detail["id"])
    slow.advance(29)
    assert slow.status(detail["id"]) == "DELETING"
    slow.advance(1)
    assert slow.get(detail["id"]) is None


# --- duplicates and idempotency -------------------------------------------------------------


def test_duplicate_name_while_creating_is_conflict(aoss):
    aoss.create("dup")
    err = aoss.fail("CreateCollection", name="dup")
    assert (err.code, err.message) == ("ConflictException", "Collection with name dup is already being created")


def test_duplicate_name_when_active_is_conflict(aoss):
    aoss.create("dup")
    aoss.advance(5)
    err = aoss.fail("CreateCollection", name="dup")
    assert (err.code, err.message) == ("ConflictException", "Collection with name dup already exists")
    assert len(aoss("ListCollections")["collectionSummaries"]) == 1


def test_name_is_reusable_only_after_deletion_completes(aoss):
    first = aoss.create("reuse")
    aoss.advance(3)
    aoss("DeleteCollection", id=first["id"])
    err = aoss.fail("CreateCollection", name="reuse")
    assert err.code == "ConflictException"
    assert "is being deleted" in err.message
    aoss.advance(3)
    second = aoss.create("reuse")
    assert second["id"] != first["id"]
    assert [s["id"] for s in aoss("ListCollections")["collectionSummaries"]] == [second["id"]]
    # the old collection's documents are purged
    assert aoss.repo.get("aoss.collection", first["id"]) is None


def test_same_name_in_another_region_is_independent(aoss):
    aoss.create("regional")
    west = aoss.elsewhere(region="us-west-2")
    west.policy("enc", "collection/*")
    assert west.create("regional")["arn"].startswith("arn:aws:aoss:us-west-2:111122223333:collection/")


def test_client_token_replays_the_first_response(aoss):
    first = aoss("CreateCollection", name="idem", clientToken="token-1")
    aoss.advance(10)
    again = aoss("CreateCollection", name="idem", clientToken="token-1")
    assert again == first
    assert again["createCollectionDetail"]["status"] == "CREATING"
    assert len(aoss("ListCollections")["collectionSummaries"]) == 1
    assert aoss.last.referenced_resources == []  # ListCollections
    aoss("CreateCollection", name="idem", clientToken="token-1")
    assert aoss.last.referenced_resources == [{
        "ARN": first["createCollectionDetail"]["arn"], "accountId": ACCOUNT, "type": "AWS::AOSS::Collection",
    }]


def test_client_token_with_a_different_request_is_conflict(aoss):
    aoss("CreateCollection", name="idem", clientToken="token-2")
    err = aoss.fail("CreateCollection", name="idem", description="changed", clientToken="token-2")
    assert err.code == "ConflictException"
    assert "client token token-2 was already used for a CreateCollection request" in err.message


def test_client_tokens_are_per_operation(aoss):
    created = aoss("CreateCollection", name="tok", clientToken="shared")["createCollectionDetail"]
    aoss.advance(3)
    out = aoss("DeleteCollection", id=created["id"], clientToken="shared")
    assert out["deleteCollectionDetail"]["status"] == "DELETING"


def test_delete_retry_with_same_token_replays(aoss):
    created = aoss.create("del-idem")
    aoss.advance(3)
    first = aoss("DeleteCollection", id=created["id"], clientToken="d1")
    aoss.advance(1)
    assert aoss("DeleteCollection", id=created["id"], clientToken="d1") == first
    assert aoss.fail("DeleteCollection", id=created["id"], clientToken="d2").code == "ConflictException"


# --- BatchGetCollection -----------------------------------------------------------------


def test_batch_get_by_ids_returns_full_details(aoss):
    created = aoss.create("full", description="d")
    out = aoss("BatchGetCollection", ids=[created["id"]])
    cid = created["id"]
    assert out == {
        "collectionDetails": [{
            **created,
            "collectionEndpoint": f"https://{cid}.us-east-1.aoss.amazonaws.com",
            "dashboardEndpoint": f"https://{cid}.us-east-1.aoss.amazonaws.com/_dashboards",
            "fipsEndpoints": {
                "collectionEndpoint": f"https://{cid}.us-east-1.aoss-fips.amazonaws.com",
                "dashboardEndpoint": f"https://{cid}.us-east-1.aoss-fips.amazonaws.com/_dashboards",
            },
        }],
        "collectionErrorDetails": [],
    }
    assert aoss.last.referenced_resources == [
        {"ARN": created["arn"], "accountId": ACCOUNT, "type": "AWS::AOSS::Collection"}
    ]


def test_batch_get_outside_fips_regions_has_no_fips_endpoints(aoss):
    eu = aoss.elsewhere(region="eu-west-1")
    eu.policy("enc", "collection/*")
    created = eu.create("euro")
    detail = eu.get(created["id"])
    assert "fipsEndpoints" not in detail
    assert detail["collectionEndpoint"] == f"https://{created['id']}.eu-west-1.aoss.amazonaws.com"
    assert detail["arn"] == f"arn:aws:aoss:eu-west-1:111122223333:collection/{created['id']}"


def test_batch_get_by_names_without_spurious_errors(aoss):
    a = aoss.create("alpha")
    aoss.create("beta")
    aoss.create("gamma")
    out = aoss("BatchGetCollection", names=["alpha", "missing"])
    assert [d["id"] for d in out["collectionDetails"]] == [a["id"]]
    assert out["collectionErrorDetails"] == [
        {"name": "missing", "errorCode": "NOT_FOUND", "errorMessage": "The specified Collection is not found."}
    ]


def test_batch_get_unknown_ids(aoss):
    a = aoss.create("alpha")
    out = aoss("BatchGetCollection", ids=["nosuchid000", a["id"], "nosuchid000", "other111"])
    assert [d["name"] for d in out["collectionDetails"]] == ["alpha"]
    assert out["collectionErrorDetails"] == [
        {"id": "nosuchid000", "errorCode": "NOT_FOUND", "errorMessage": "The specified Collection is not found."},
        {"id": "other111", "errorCode": "NOT_FOUND", "errorMessage": "The specified Collection is not found."},
    ]


def test_batch_get_with_ids_and_names_is_rejected(aoss):
    a = aoss.create("alpha")
    err = aoss.fail("BatchGetCollection", ids=[a["id"]], names=["alpha"])
    assert (err.code, err.message) == (
        "ValidationException",
        "You need to provide IDs or names. You can't provide both IDs and names in the same request",
    )


def test_batch_get_with_neither_is_rejected(aoss):
    err = aoss.fail("BatchGetCollection")
    assert (err.code, err.message) == ("ValidationException", "You need to provide IDs or names.")


def test_batch_get_shows_deleting_then_not_found(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    aoss("DeleteCollection", id=a["id"])
    assert aoss.status(a["id"]) == "DELETING"
    assert aoss("BatchGetCollection", names=["alpha"])["collectionDetails"][0]["status"] == "DELETING"
    aoss.advance(3)
    out = aoss("BatchGetCollection", names=["alpha"])
    assert out["collectionDetails"] == []
    assert out["collectionErrorDetails"][0]["name"] == "alpha"


def test_other_accounts_cannot_see_collections(aoss):
    a = aoss.create("alpha")
    other = aoss.elsewhere(account="444455556666")
    out = other("BatchGetCollection", ids=[a["id"]])
    assert out["collectionDetails"] == []
    assert other("ListCollections") == {"collectionSummaries": []}
    assert other.fail("DeleteCollection", id=a["id"]).code == "ResourceNotFoundException"


# --- ListCollections ------------------------------------------------------------------------


def test_list_returns_summaries_sorted_by_name(aoss):
    aoss.group("grp")
    b = aoss.create("bravo", collectionGroupName="grp")
    a = aoss.create("alpha")
    out = aoss("ListCollections")
    assert out == {
        "collectionSummaries": [
            {"id": a["id"], "name": "alpha", "status": "CREATING", "arn": a["arn"], "kmsKeyArn": "auto"},
            {"id": b["id"], "name": "bravo", "status": "CREATING", "arn": b["arn"], "kmsKeyArn": "auto",
             "collectionGroupName": "grp"},
        ]
    }


def test_list_filters(aoss):
    aoss.group("grp")
    old = aoss.create("old-one")
    aoss.advance(3)
    aoss.create("new-one", collectionGroupName="grp")
    aoss.create("other", collectionGroupName="grp")
    doomed = aoss.create("doomed")
    aoss.advance(3)
    aoss.create("fresh")
    aoss("DeleteCollection", id=doomed["id"])

    def names(**filters):
        out = aoss("ListCollections", collectionFilters=filters)
        return [s["name"] for s in out["collectionSummaries"]]

    assert names(name="old-one") == ["old-one"]
    assert names(name="nothing") == []
    assert names(status="ACTIVE") == ["new-one", "old-one", "other"]
    assert names(status="CREATING") == ["fresh"]
    assert names(status="DELETING") == ["doomed"]
    assert names(status="FAILED") == []
    assert names(collectionGroupName="grp") == ["new-one", "other"]
    assert names(collectionGroupName="grp", status="ACTIVE", name="other") == ["other"]
    assert names() == ["doomed", "fresh", "new-one", "old-one", "other"]
    assert old["name"] == "old-one"


def test_list_default_page_is_20_and_pages_cover_everything(aoss):
    names = sorted(f"col-{i:02d}" for i in range(45))
    for name in reversed(names):
        aoss.create(name)
    first = aoss("ListCollections")
    assert len(first["collectionSummaries"]) == 20
    seen = [s["name"] for s in first["collectionSummaries"]]
    token = first["nextToken"]
    while token:
        out = aoss("ListCollections", maxResults=7, nextToken=token)
        assert len(out["collectionSummaries"]) <= 7
        seen += [s["name"] for s in out["collectionSummaries"]]
        token = out.get("nextToken")
    assert seen == names


def test_list_pagination_with_filters_and_exact_fit(aoss):
    aoss.group("even")
    aoss.group("odd")
    for i in range(6):
        aoss.create(f"c-{i}", collectionGroupName="even" if i % 2 == 0 else "odd")
    page = aoss("ListCollections", collectionFilters={"collectionGroupName": "even"}, maxResults=2)
    assert [s["name"] for s in page["collectionSummaries"]] == ["c-0", "c-2"]
    rest = aoss("ListCollections", collectionFilters={"collectionGroupName": "even"}, maxResults=2,
                nextToken=page["nextToken"])
    assert [s["name"] for s in rest["collectionSummaries"]] == ["c-4"]
    assert "nextToken" not in rest
    exact = aoss("ListCollections", maxResults=6)
    assert len(exact["collectionSummaries"]) == 6 and "nextToken" not in exact


@pytest.mark.parametrize("token", ["garbage", "0", "eyJ2IjoxfQ", "eyJ2IjoxLCJvcCI6Ikxpc3RDb2xsZWN0aW9ucyJ9",
                                   "%%%", "\u00e9t\u00e9"])
def test_list_rejects_garbage_tokens(aoss, token):
    err = aoss.fail("ListCollections", nextToken=token)
    assert err.code == "ValidationException"
    assert err.message == (
        "The nextToken is invalid. Pass the nextToken returned by a previous ListCollections call, unchanged."
    )


def test_list_rejects_a_security_policy_token(aoss):
    for i in range(3):
        aoss.policy(f"extra-{i}", f"collection/x{i}")
    token = aoss("ListSecurityPolicies", type="encryption", maxResults=1)["nextToken"]
    assert aoss.fail("ListCollections", nextToken=token).code == "ValidationException"


def test_list_hides_collections_once_deleted(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    aoss("DeleteCollection", id=a["id"])
    assert [s["status"] for s in aoss("ListCollections")["collectionSummaries"]] == ["DELETING"]
    aoss.advance(3)
    assert aoss("ListCollections") == {"collectionSummaries": []}


# --- UpdateCollection -------------------------------------------------------------------


def test_update_while_creating_is_conflict(aoss):
    a = aoss.create("alpha")
    err = aoss.fail("UpdateCollection", id=a["id"], description="new")
    assert err.code == "ConflictException"
    assert err.message == f"Collection {a['id']} is in CREATING state; it can be updated only when ACTIVE"


def test_update_description_when_active(aoss):
    a = aoss.create("alpha", description="old", type="SEARCH")
    aoss.advance(10)
    out = aoss("UpdateCollection", id=a["id"], description="new")
    assert out == {
        "updateCollectionDetail": {
            "id": a["id"],
            "name": "alpha",
            "status": "ACTIVE",
            "type": "SEARCH",
            "description": "new",
            "kmsKeyArn": "auto",
            "arn": a["arn"],
            "createdDate": T0_MS,
            "lastModifiedDate": T0_MS + 10000,
            "deletionProtection": "DISABLED",
        }
    }
    assert aoss.get(a["id"])["description"] == "new"
    assert aoss.get(a["id"])["lastModifiedDate"] == T0_MS + 10000
    assert aoss.last.referenced_resources[0]["ARN"] == a["arn"]


def test_update_other_settings(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    out = aoss("UpdateCollection", id=a["id"], deletionProtection="ENABLED",
               vectorOptions={"ServerlessVectorAcceleration": "ENABLED"},
               encryptionConfig={"kmsKeyArn": KMS})["updateCollectionDetail"]
    assert out["deletionProtection"] == "ENABLED"
    assert out["vectorOptions"] == {"ServerlessVectorAcceleration": "ENABLED"}
    assert out["kmsKeyArn"] == KMS
    assert "description" not in out
    detail = aoss.get(a["id"])
    assert (detail["deletionProtection"], detail["kmsKeyArn"]) == ("ENABLED", KMS)


def test_update_unknown_is_not_found(aoss):
    err = aoss.fail("UpdateCollection", id="nosuchcollection", description="x")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Collection with ID nosuchcollection cannot be found.")


def test_update_while_deleting_is_conflict(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    aoss("DeleteCollection", id=a["id"])
    err = aoss.fail("UpdateCollection", id=a["id"], description="x")
    assert err.code == "ConflictException" and "DELETING" in err.message


# --- DeleteCollection -------------------------------------------------------------------


def test_delete_returns_deleting_detail_then_collection_is_gone(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    out = aoss("DeleteCollection", id=a["id"])
    assert out == {"deleteCollectionDetail": {
        "id": a["id"], "name": "alpha", "status": "DELETING", "deletionProtection": "DISABLED"}}
    assert aoss.last.referenced_resources == [
        {"ARN": a["arn"], "accountId": ACCOUNT, "type": "AWS::AOSS::Collection"}
    ]
    aoss.advance(2.999)
    assert aoss.status(a["id"]) == "DELETING"
    aoss.advance(0.001)
    assert aoss.get(a["id"]) is None
    err = aoss.fail("DeleteCollection", id=a["id"])
    assert (err.code, err.message) == ("ResourceNotFoundException", f"Collection with ID {a['id']} cannot be found.")


def test_delete_unknown_is_not_found(aoss):
    err = aoss.fail("DeleteCollection", id="abc123")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Collection with ID abc123 cannot be found.")


def test_delete_while_creating_is_conflict(aoss):
    a = aoss.create("alpha")
    err = aoss.fail("DeleteCollection", id=a["id"])
    assert err.code == "ConflictException"
    assert err.message == (
        f"Collection {a['id']} is in CREATING state; only collections in ACTIVE, FAILED or "
        "UPDATE_FAILED state can be deleted"
    )
    assert aoss.status(a["id"]) == "CREATING"


def test_delete_while_deleting_is_conflict(aoss):
    a = aoss.create("alpha")
    aoss.advance(3)
    aoss("DeleteCollection", id=a["id"])
    err = aoss.fail("DeleteCollection", id=a["id"])
    assert err.code == "ConflictException" and "DELETING state" in err.message


def test_deletion_protection_blocks_delete(aoss):
    a = aoss.create("guarded", deletionProtection="ENABLED")
    aoss.advance(3)
    err = aoss.fail("DeleteCollection", id=a["id"])
    assert err.code == "ValidationException"
    assert err.message == (
        f"Collection {a['id']} cannot be deleted because deletion protection is enabled. "
        "Disable it with UpdateCollection (deletionProtection DISABLED) first."
    )
    assert aoss.status(a["id"]) == "ACTIVE"
    aoss("UpdateCollection", id=a["id"], deletionProtection="DISABLED")
    out = aoss("DeleteCollection", id=a["id"])
    assert out["deleteCollectionDetail"]["deletionProtection"] == "DISABLED"


def test_delete_bumps_last_modified(aoss):
    a = aoss.create("alpha")
    aoss.advance(7)
    aoss("DeleteCollection", id=a["id"])
    assert aoss.get(a["id"])["lastModifiedDate"] == T0_MS + 7000


def test_gone_collections_are_purged_from_storage(aoss):
    ids = []
    for i in range(3):
        ids.append(aoss.create(f"c-{i}")["id"])
    aoss.advance(3)
    for cid in ids[:2]:
        aoss("DeleteCollection", id=cid)
    aoss.advance(3)
    aoss.create("trigger")  # any later create or delete purges
    stored = {doc["id"] for doc in aoss.repo.list("aoss.collection")}
    assert ids[0] not in stored and ids[1] not in stored and ids[2] in stored
    assert [doc["id"] for doc in aoss.repo.list("aoss.collection-deleting")] == []
    assert {name for name in ("c-0", "c-1") if aoss.repo.get("aoss.collection-name", name)} == set()


def test_failed_create_leaves_nothing_behind(bare):
    bare.fail("CreateCollection", name="nothing", tags=[{"key": "a", "value": "1"}])
    assert bare.repo.list("aoss.collection") == []
    assert bare.repo.list("aoss.collection-name") == []
