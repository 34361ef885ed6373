"""aoss collection groups (and collections in them) against the real SQLite store."""

from __future__ import annotations

import re

import pytest

from tests.unit.aoss_harness import ACCOUNT, T0_MS, AossHarness


@pytest.fixture
def aoss(conn):
    return AossHarness(conn).encrypt_all()


LIMITS = {"minIndexingCapacityInOCU": 2.0, "maxIndexingCapacityInOCU": 16.0,
          "minSearchCapacityInOCU": 2.0, "maxSearchCapacityInOCU": 32.0}


def batch(aoss, **params):
    return aoss("BatchGetCollectionGroup", **params)


def test_create_returns_detail(aoss):
    detail = aoss.group("shared", standby="DISABLED", description="prod", capacityLimits=LIMITS,
                        tags=[{"key": "env", "value": "prod"}])
    assert re.fullmatch(r"[a-z0-9]{20}", detail["id"])
    assert detail == {
        "id": detail["id"],
        "arn": f"arn:aws:aoss:us-east-1:111122223333:collection-group/{detail['id']}",
        "name": "shared", "standbyReplicas": "DISABLED", "description": "prod",
        "tags": [{"key": "env", "value": "prod"}], "createdDate": T0_MS, "capacityLimits": LIMITS,
        "generation": "CLASSIC",
    }
    assert aoss.last.referenced_resources == [{"ARN": detail["arn"], "accountId": ACCOUNT,
                                               "type": "AWS::AOSS::CollectionGroup"}]


def test_duplicate_name_is_conflict(aoss):
    aoss.group("shared")
    err = aoss.fail("CreateCollectionGroup", name="shared", standbyReplicas="ENABLED")
    assert (err.code, err.message) == ("ConflictException", "Collection group with name shared already exists")


@pytest.mark.parametrize("limits, code, text", [
    ({"maxIndexingCapacityInOCU": 3}, "ValidationException",
     "Invalid maxIndexingCapacityInOCU 3: capacity limits must be 1, 2, 4, 8, 16 or a multiple of 16 OCUs."),
    ({"minSearchCapacityInOCU": 24}, "ValidationException",
     "Invalid minSearchCapacityInOCU 24: capacity limits must be 1, 2, 4, 8, 16 or a multiple of 16 OCUs "
     "(or 0 for a minimum)."),
    ({"minIndexingCapacityInOCU": 8, "maxIndexingCapacityInOCU": 4}, "ValidationException",
     "minIndexingCapacityInOCU (8) can't be greater than maxIndexingCapacityInOCU (4)."),
    ({"maxSearchCapacityInOCU": 112}, "ServiceQuotaExceededException",
     "maxSearchCapacityInOCU 112 exceeds the quota of 100 OCUs for a collection group. Request a quota "
     "increase to use more."),
])
def test_capacity_limits_are_checked(aoss, limits, code, text):
    err = aoss.fail("CreateCollectionGroup", name="bad", standbyReplicas="ENABLED", capacityLimits=limits)
    assert (err.code, err.message) == (code, text)


def test_zero_minimum_and_multiples_of_16_are_fine(aoss):
    detail = aoss.group("fine", capacityLimits={"minIndexingCapacityInOCU": 0, "maxIndexingCapacityInOCU": 96})
    assert detail["capacityLimits"] == {"minIndexingCapacityInOCU": 0.0, "maxIndexingCapacityInOCU": 96.0}


def test_collections_join_groups(aoss):
    group = aoss.group("shared", standby="DISABLED", generation="NEXTGEN", capacityLimits=LIMITS)
    member = aoss.create("member", collectionGroupName="shared")
    assert member["standbyReplicas"] == "DISABLED"  # from the group
    assert member["collectionGroupName"] == "shared"
    full = aoss.get(member["id"])
    assert full["collectionEndpoint"] == f"https://{member['id']}.aoss.us-east-1.on.aws"
    assert full["dashboardEndpoint"] == f"https://{member['id']}.aoss.us-east-1.on.aws/_dashboards"
    assert "fipsEndpoints" not in full
    err = aoss.fail("CreateCollection", name="other", collectionGroupName="shared", standbyReplicas="ENABLED")
    assert err.code == "ValidationException" and "standbyReplicas" in err.message
    err = aoss.fail("CreateCollection", name="other", collectionGroupName="nope")
    assert (err.code, err.message) == (
        "ValidationException",
        "Collection group nope does not exist. Create the collection group first, or leave collectionGroupName out.",
    )
    out = batch(aoss, ids=[group["id"]])
    assert out["collectionGroupErrorDetails"] == []
    detail = out["collectionGroupDetails"][0]
    assert detail["numberOfCollections"] == 1
    assert detail["currentCapacity"] == {
        "search": {"capacityInOcu": 2.0, "autoscalingStatus": "NO_ACTION"},
        "indexing": {"capacityInOcu": 2.0, "autoscalingStatus": "NO_ACTION"},
    }


def test_batch_get_by_names_and_errors(aoss):
    group = aoss.group("one")
    out = batch(aoss, names=["one", "two"])
    assert [d["id"] for d in out["collectionGroupDetails"]] == [group["id"]]
    assert out["collectionGroupErrorDetails"] == [{
        "name": "two", "errorCode": "NOT_FOUND", "errorMessage": "The specified Collection Group is not found."}]
    err = aoss.fail("BatchGetCollectionGroup", ids=[group["id"]], names=["one"])
    assert err.code == "ValidationException"
    assert aoss.fail("BatchGetCollectionGroup").code == "ValidationException"


def test_list_summaries(aoss):
    b = aoss.group("bravo")
    a = aoss.group("alpha", capacityLimits={"maxSearchCapacityInOCU": 4})
    aoss.create("in-bravo", collectionGroupName="bravo")
    out = aoss("ListCollectionGroups")
    assert out == {"collectionGroupSummaries": [
        {"id": a["id"], "arn": a["arn"], "name": "alpha", "numberOfCollections": 0, "createdDate": T0_MS,
         "capacityLimits": {"maxSearchCapacityInOCU": 4.0}, "generation": "CLASSIC"},
        {"id": b["id"], "arn": b["arn"], "name": "bravo", "numberOfCollections": 1, "createdDate": T0_MS,
         "generation": "CLASSIC"},
    ]}
    page = aoss("ListCollectionGroups", maxResults=1)
    rest = aoss("ListCollectionGroups", maxResults=1, nextToken=page["nextToken"])
    assert [s["name"] for s in page["collectionGroupSummaries"] + rest["collectionGroupSummaries"]] == [
        "alpha", "bravo"]


def test_update_replaces_limits_as_a_whole(aoss):
    group = aoss.group("shared", capacityLimits=LIMITS, description="old")
    aoss.advance(1)
    out = aoss("UpdateCollectionGroup", id=group["id"], capacityLimits={"maxSearchCapacityInOCU": 8})
    assert out == {"updateCollectionGroupDetail": {
        "id": group["id"], "arn": group["arn"], "name": "shared", "description": "old",
        "capacityLimits": {"maxSearchCapacityInOCU": 8.0}, "createdDate": T0_MS,
        "lastModifiedDate": T0_MS + 1000, "generation": "CLASSIC",
    }}
    out = aoss("UpdateCollectionGroup", id=group["id"], description="new")
    assert out["updateCollectionGroupDetail"]["capacityLimits"] == {"maxSearchCapacityInOCU": 8.0}
    assert out["updateCollectionGroupDetail"]["description"] == "new"
    assert aoss.fail("UpdateCollectionGroup", id=group["id"],
                     capacityLimits={"maxSearchCapacityInOCU": 5}).code == "ValidationException"
    err = aoss.fail("UpdateCollectionGroup", id="doesnotexist")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Collection group with ID doesnotexist cannot be found.")


def test_only_empty_groups_can_be_deleted(aoss):
    group = aoss.group("shared")
    member = aoss.create("member", collectionGroupName="shared")
    err = aoss.fail("DeleteCollectionGroup", id=group["id"])
    assert (err.code, err.message) == (
        "ConflictException",
        f"Collection group {group['id']} still contains 1 collection(s). Only empty collection groups can be deleted.",
    )
    aoss.advance(3)
    aoss("DeleteCollection", id=member["id"])
    assert aoss.fail("DeleteCollectionGroup", id=group["id"]).code == "ConflictException"  # still DELETING
    aoss.advance(3)
    assert aoss("DeleteCollectionGroup", id=group["id"]) == {}
    assert batch(aoss, ids=[group["id"]])["collectionGroupDetails"] == []
    assert aoss.fail("DeleteCollectionGroup", id=group["id"]).code == "ResourceNotFoundException"


def test_group_tags(aoss):
    group = aoss.group("tagged", tags=[{"key": "a", "value": "1"}])
    assert aoss("ListTagsForResource", resourceArn=group["arn"]) == {"tags": [{"key": "a", "value": "1"}]}
    aoss("TagResource", resourceArn=group["arn"], tags=[{"key": "b", "value": "2"}])
    aoss("UntagResource", resourceArn=group["arn"], tagKeys=["a"])
    assert batch(aoss, ids=[group["id"]])["collectionGroupDetails"][0]["tags"] == [{"key": "b", "value": "2"}]
    assert aoss.last.referenced_resources[0]["type"] == "AWS::AOSS::CollectionGroup"
    aoss("DeleteCollectionGroup", id=group["id"])
    assert aoss.fail("ListTagsForResource", resourceArn=group["arn"]).code == "ResourceNotFoundException"


def test_client_token_replays(aoss):
    first = aoss("CreateCollectionGroup", name="idem", standbyReplicas="ENABLED", clientToken="t")
    assert aoss("CreateCollectionGroup", name="idem", standbyReplicas="ENABLED", clientToken="t") == first
