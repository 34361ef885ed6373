"""aoss tags on collections against the real SQLite store, with a controlled clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.unit.aoss_harness import ACCOUNT, AossHarness

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)  # this file's clock starts on the whole second


@pytest.fixture
def aoss(conn):
    return AossHarness(conn, clock=[T0]).encrypt_all()


def tag(key, value=""):
    return {"key": key, "value": value}


@pytest.fixture
def arn(aoss):
    return aoss("CreateCollection", name="tagged")["createCollectionDetail"]["arn"]


def test_create_collection_tags_are_listed(aoss):
    detail = aoss("CreateCollection", name="with-tags",
                  tags=[tag("env", "prod"), tag("team", "search"), tag("empty")])["createCollectionDetail"]
    assert aoss.tags(detail["arn"]) == [tag("env", "prod"), tag("team", "search"), tag("empty", "")]
    assert aoss.last.referenced_resources == [
        {"ARN": detail["arn"], "accountId": ACCOUNT, "type": "AWS::AOSS::Collection"}
    ]


def test_untagged_collection_has_empty_list(aoss, arn):
    assert aoss("ListTagsForResource", resourceArn=arn) == {"tags": []}


def test_tag_resource_adds_and_overwrites(aoss, arn):
    assert aoss("TagResource", resourceArn=arn, tags=[tag("a", "1"), tag("b", "2")]) == {}
    assert aoss.last.referenced_resources[0]["ARN"] == arn
    aoss("TagResource", resourceArn=arn, tags=[tag("b", "20"), tag("c", "3")])
    assert aoss.tags(arn) == [tag("a", "1"), tag("b", "20"), tag("c", "3")]


def test_tags_work_while_creating(aoss, arn):
    aoss("TagResource", resourceArn=arn, tags=[tag("early", "yes")])
    assert aoss.tags(arn) == [tag("early", "yes")]


def test_untag_removes_keys_and_ignores_unknown_ones(aoss, arn):
    aoss("TagResource", resourceArn=arn, tags=[tag("a", "1"), tag("b", "2"), tag("c", "3")])
    assert aoss("UntagResource", resourceArn=arn, tagKeys=["b", "zzz"]) == {}
    assert aoss.tags(arn) == [tag("a", "1"), tag("c", "3")]
    aoss("UntagResource", resourceArn=arn, tagKeys=[])
    assert aoss.tags(arn) == [tag("a", "1"), tag("c", "3")]


def test_tag_keys_are_case_sensitive(aoss, arn):
    aoss("TagResource", resourceArn=arn, tags=[tag("Env", "1"), tag("env", "2")])
    aoss("UntagResource", resourceArn=arn, tagKeys=["ENV"])
    assert aoss.tags(arn) == [tag("Env", "1"), tag("env", "2")]


def test_fifty_tags_is_the_limit(aoss, arn):
    aoss("TagResource", resourceArn=arn, tags=[tag(f"k{i:02d}", "v") for i in range(50)])
    assert len(aoss.tags(arn)) == 50
    # overwriting existing keys stays within the limit
    aoss("TagResource", resourceArn=arn, tags=[tag("k00", "changed")])
    err = aoss.fail("TagResource", resourceArn=arn, tags=[tag("one-more", "v")])
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields["serviceCode"] == "aoss"
    assert err.fields["resourceId"] == arn
    assert "at most 50 tags" in err.message and "with 51" in err.message
    assert len(aoss.tags(arn)) == 50


def test_limit_counts_existing_tags_from_create(aoss):
    detail = aoss("CreateCollection", name="many",
                  tags=[tag(f"k{i}", "v") for i in range(40)])["createCollectionDetail"]
    err = aoss.fail("TagResource", resourceArn=detail["arn"], tags=[tag(f"n{i}", "v") for i in range(11)])
    assert err.code == "ServiceQuotaExceededException"
    aoss("TagResource", resourceArn=detail["arn"], tags=[tag(f"n{i}", "v") for i in range(10)])
    assert len(aoss.tags(detail["arn"])) == 50


def test_duplicate_keys_in_a_request_are_rejected(aoss, arn):
    err = aoss.fail("TagResource", resourceArn=arn, tags=[tag("a", "1"), tag("a", "2")])
    assert (err.code, err.message) == (
        "ValidationException",
        "Duplicate tag key 'a' in the request. All tag keys in the request must be unique.",
    )
    err = aoss.fail("UntagResource", resourceArn=arn, tagKeys=["a", "a"])
    assert err.code == "ValidationException"
    err = aoss.fail("CreateCollection", name="dups", tags=[tag("x"), tag("x")])
    assert err.code == "ValidationException"
    assert aoss("ListCollections", collectionFilters={"name": "dups"}) == {"collectionSummaries": []}


@pytest.mark.parametrize("key", ["aws:createdBy", "AWS:thing", "aws:"])
def test_reserved_aws_prefix_is_rejected(aoss, arn, key):
    err = aoss.fail("TagResource", resourceArn=arn, tags=[tag(key, "x")])
    assert err.code == "ValidationException"
    assert "reserved for AWS use" in err.message
    assert aoss.fail("CreateCollection", name="reserved", tags=[tag(key, "x")]).code == "ValidationException"
    assert aoss.fail("UntagResource", resourceArn=arn, tagKeys=[key]).code == "ValidationException"


@pytest.mark.parametrize(
    "unknown",
    [
        "arn:aws:aoss:us-east-1:111122223333:collection/doesnotexist",
        "arn:aws:aoss:us-west-2:111122223333:collection/{id}",  # another Region
        "arn:aws:aoss:us-east-1:444455556666:collection/{id}",  # another account
        "arn:aws:aoss:us-east-1:111122223333:collection-group/{id}",  # another resource type
    ],
)
@pytest.mark.parametrize("operation", ["TagResource", "UntagResource", "ListTagsForResource"])
def test_unknown_resource_is_not_found(aoss, arn, unknown, operation):
    target = unknown.format(id=arn.rsplit("/", 1)[1])
    params = {"TagResource": {"tags": [tag("a")]}, "UntagResource": {"tagKeys": ["a"]}}.get(operation, {})
    err = aoss.fail(operation, resourceArn=target, **params)
    assert (err.code, err.message) == ("ResourceNotFoundException", f"Resource with ARN {target} is not found")


@pytest.mark.parametrize("bad", ["not-an-arn", "arn:aws:s3:::bucket", "arn:aws:aoss:us-east-1:123:collection/x",
                                 "collection/abc"])
def test_malformed_arn_is_validation_error(aoss, bad):
    err = aoss.fail("ListTagsForResource", resourceArn=bad)
    assert err.code == "ValidationException"
    assert err.message.startswith(f"Invalid resource ARN: {bad}.")


def test_deleting_collection_tags_cannot_change_but_can_be_read(aoss, arn):
    aoss("TagResource", resourceArn=arn, tags=[tag("a", "1")])
    aoss.advance(3)
    aoss("DeleteCollection", id=arn.rsplit("/", 1)[1])
    err = aoss.fail("TagResource", resourceArn=arn, tags=[tag("b")])
    assert (err.code, err.message) == ("ConflictException", f"Resource {arn} is being deleted; its tags can't be changed")
    assert aoss.fail("UntagResource", resourceArn=arn, tagKeys=["a"]).code == "ConflictException"
    assert aoss.tags(arn) == [tag("a", "1")]


def test_tags_disappear_with_the_collection(aoss):
    detail = aoss("CreateCollection", name="short-lived", tags=[tag("a", "1")])["createCollectionDetail"]
    aoss.advance(3)
    aoss("DeleteCollection", id=detail["id"])
    aoss.advance(3)
    assert aoss.fail("ListTagsForResource", resourceArn=detail["arn"]).code == "ResourceNotFoundException"
    again = aoss("CreateCollection", name="short-lived")["createCollectionDetail"]
    assert aoss.tags(again["arn"]) == []


def test_tagging_is_scoped_to_the_callers_region(aoss, arn):
    west = aoss.elsewhere(region="us-west-2")
    assert west.fail("ListTagsForResource", resourceArn=arn).code == "ResourceNotFoundException"


def test_tag_changes_keep_the_collection_intact(aoss, arn):
    before = aoss("BatchGetCollection", names=["tagged"])["collectionDetails"][0]
    aoss("TagResource", resourceArn=arn, tags=[tag("a", "1")])
    aoss("UntagResource", resourceArn=arn, tagKeys=["a"])
    after = aoss("BatchGetCollection", names=["tagged"])["collectionDetails"][0]
    assert after == before
