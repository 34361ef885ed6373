"""aoss control-plane indexes (CreateIndex/GetIndex/UpdateIndex/DeleteIndex) against SQLite."""

from __future__ import annotations

import pytest

from searchtrail.services.aoss.indexes import INDEX_QUOTAS
from tests.unit.aoss_harness import ACCOUNT, AossHarness

SCHEMA = {"mappings": {"properties": {"title": {"type": "text",
                                                "semantic_enrichment": {"status": "ENABLED"}}}}}


@pytest.fixture
def aoss(conn):
    return AossHarness(conn).encrypt_all()


@pytest.fixture
def active(aoss):
    detail = aoss.create("docs", type="SEARCH")
    aoss.advance(3)
    return detail["id"]


def test_create_get_update_delete(aoss, active):
    assert aoss("CreateIndex", id=active, indexName="books", indexSchema=SCHEMA) == {}
    assert aoss.last.referenced_resources == [{
        "ARN": f"arn:aws:aoss:us-east-1:111122223333:collection/{active}/index/books",
        "accountId": ACCOUNT, "type": "AWS::AOSS::Index",
    }]
    assert aoss("GetIndex", id=active, indexName="books") == {"indexSchema": SCHEMA}
    update = {"mappings": {"properties": {"year": {"type": "integer"},
                                          "title": {"semantic_enrichment": {"status": "DISABLED"}}}}}
    assert aoss("UpdateIndex", id=active, indexName="books", indexSchema=update) == {}
    assert aoss("GetIndex", id=active, indexName="books") == {"indexSchema": {"mappings": {"properties": {
        "title": {"type": "text", "semantic_enrichment": {"status": "DISABLED"}},
        "year": {"type": "integer"},
    }}}}
    assert aoss("DeleteIndex", id=active, indexName="books") == {}
    err = aoss.fail("GetIndex", id=active, indexName="books")
    assert (err.code, err.message) == ("ResourceNotFoundException", f"Index books is not found in collection {active}.")
    assert aoss.fail("DeleteIndex", id=active, indexName="books").code == "ResourceNotFoundException"
    assert aoss.fail("UpdateIndex", id=active, indexName="books").code == "ResourceNotFoundException"


def test_index_without_schema_has_an_empty_one(aoss, active):
    aoss("CreateIndex", id=active, indexName="plain")
    assert aoss("GetIndex", id=active, indexName="plain") == {"indexSchema": {}}


def test_duplicate_is_conflict(aoss, active):
    aoss("CreateIndex", id=active, indexName="books")
    err = aoss.fail("CreateIndex", id=active, indexName="books")
    assert (err.code, err.message) == ("ConflictException", f"Index books already exists in collection {active}.")


def test_collection_must_exist_and_be_active(aoss):
    err = aoss.fail("CreateIndex", id="doesnotexist", indexName="books")
    assert (err.code, err.message) == ("ResourceNotFoundException", "Collection with ID doesnotexist cannot be found.")
    creating = aoss.create("young")["id"]
    err = aoss.fail("CreateIndex", id=creating, indexName="books")
    assert (err.code, err.message) == (
        "ConflictException", f"Collection {creating} is in CREATING state; indexes can be created only when it is ACTIVE")
    assert aoss.fail("GetIndex", id="doesnotexist", indexName="x").code == "ResourceNotFoundException"


def test_deleting_collection_freezes_its_indexes_and_takes_them_along(aoss, active):
    aoss("CreateIndex", id=active, indexName="books")
    aoss("DeleteCollection", id=active)
    assert aoss("GetIndex", id=active, indexName="books") == {"indexSchema": {}}
    err = aoss.fail("UpdateIndex", id=active, indexName="books", indexSchema={})
    assert err.code == "ValidationException" and "DELETING" in err.message
    assert aoss.fail("DeleteIndex", id=active, indexName="books").code == "ValidationException"
    assert aoss.fail("CreateIndex", id=active, indexName="more").code == "ConflictException"
    aoss.advance(3)
    assert aoss.fail("GetIndex", id=active, indexName="books").code == "ResourceNotFoundException"
    aoss.create("other")  # a write purges the gone collection and its indexes
    assert aoss.repo.list("aoss.index") == []


@pytest.mark.parametrize("name", ["", "Books", "_hidden", "-dash", "+plus", ".", "..", "a b", "a,b", "a*",
                                  "a/b", "a:b", "a#b", "x" * 256])
def test_invalid_names(aoss, active, name):
    err = aoss.fail("CreateIndex", id=active, indexName=name)
    assert err.code == "ValidationException"
    assert err.message.startswith(f"Invalid index name [{name}]: ")


@pytest.mark.parametrize("name", ["books", ".hidden-ok", "logs-2024.01", "a" * 255, "ünïcode"])
def test_valid_names(aoss, active, name):
    aoss("CreateIndex", id=active, indexName=name)


@pytest.mark.parametrize("schema", [["mappings"], "text", 3, True])
def test_schema_must_be_an_object(aoss, active, schema):
    err = aoss.fail("CreateIndex", id=active, indexName="books", indexSchema=schema)
    assert err.code == "ValidationException"


def test_quota_per_collection(aoss, active, monkeypatch):
    assert INDEX_QUOTAS == {"SEARCH": 800, "TIMESERIES": 1280, "VECTORSEARCH": 1280}
    monkeypatch.setitem(INDEX_QUOTAS, "SEARCH", 3)
    for i in range(3):
        aoss("CreateIndex", id=active, indexName=f"i{i}")
    err = aoss.fail("CreateIndex", id=active, indexName="i3")
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields == {"serviceCode": "aoss", "resourceId": active, "resourceType": "index"}
    aoss("DeleteIndex", id=active, indexName="i0")
    aoss("CreateIndex", id=active, indexName="i3")
