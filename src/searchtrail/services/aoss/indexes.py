"""Indexes created through the control plane (CreateIndex/GetIndex/UpdateIndex/DeleteIndex).

No search engine runs here: an index is its name and its schema, kept as the JSON document
the caller gave (mappings, settings, semantic-enrichment options). Indexes live in a
collection: creating one needs the collection ACTIVE (ConflictException while it is
CREATING or DELETING); changing or deleting one needs it ACTIVE too (ValidationException);
an unknown collection or index is a ResourceNotFoundException; the indexes go with their
collection. UpdateIndex merges the new schema into the stored one (objects are merged key
by key, anything else is replaced), so fields can be added and mappings changed. Index
names follow OpenSearch's rules. A collection holds at most `INDEX_QUOTAS[type]` indexes
(ServiceQuotaExceededException).
"""

from __future__ import annotations

import re
from typing import Any

from . import collections
from .common import (
    KIND_INDEX,
    TYPE_INDEX,
    aoss_arn,
    conflict,
    epoch_ms,
    later_ms,
    not_found,
    quota_exceeded,
    reference,
    validation,
)

# Indexes per collection (OpenSearch Serverless quotas page).
INDEX_QUOTAS = {"SEARCH": 800, "TIMESERIES": 1280, "VECTORSEARCH": 1280}
MAX_NAME_BYTES = 255
FORBIDDEN = re.compile(r'[\\/*?"<>| ,#:A-Z]')


def checked_name(name: str) -> str:
    """An OpenSearch index name: lowercase, no special characters, no leading - _ +."""
    problem = None
    if not name:
        problem = "it is empty"
    elif name in (".", ".."):
        problem = "it can't be . or .."
    elif name[0] in "-_+":
        problem = "it can't begin with -, _ or +"
    elif FORBIDDEN.search(name):
        problem = (
            'it must be lowercase and can\'t contain \\, /, *, ?, ", <, >, |, spaces, commas, '
            "# or :"
        )
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"it is longer than {MAX_NAME_BYTES} bytes"
    if problem is not None:
        raise validation(f"Invalid index name [{name}]: {problem}.")
    return name


def _checked_schema(schema: Any) -> dict[str, Any]:
    if schema is None:
        return {}
    if not isinstance(schema, dict):
        raise validation("indexSchema must be a JSON object, such as {\"mappings\": {...}}.")
    return schema


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _key(collection_id: str, name: str) -> str:
    return f"{collection_id}/{name}"


def _reference(call: Any, collection_id: str, name: str) -> None:
    reference(call, aoss_arn(call.region, call.account_id, f"collection/{collection_id}/index/{name}"),
              TYPE_INDEX)


def _index(call: Any, params: dict[str, Any], writable: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(collection, index) named by the request, or the error for them."""
    collection_id, name = params["id"], params["indexName"]
    collection, status = collections.live_or_not_found(call, collection_id)
    stored = call.resources.get(KIND_INDEX, _key(collection_id, name))
    if stored is None:
        raise not_found(f"Index {name} is not found in collection {collection_id}.")
    _reference(call, collection_id, name)
    if writable and status != "ACTIVE":
        raise validation(
            f"Collection {collection_id} is in {status} state; its indexes can be changed only "
            "when it is ACTIVE."
        )
    return collection, stored


def create_index(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    collection_id, name = params["id"], params["indexName"]
    collection, status = collections.live_or_not_found(call, collection_id)
    checked_name(name)
    schema = _checked_schema(params.get("indexSchema"))
    _reference(call, collection_id, name)
    if status != "ACTIVE":
        raise conflict(
            f"Collection {collection_id} is in {status} state; indexes can be created only when "
            "it is ACTIVE"
        )
    key = _key(collection_id, name)
    if call.resources.get(KIND_INDEX, key) is not None:
        raise conflict(f"Index {name} already exists in collection {collection_id}.")
    quota = INDEX_QUOTAS[collection["type"]]
    if len(call.resources.list(KIND_INDEX, f"{collection_id}/")) >= quota:
        raise quota_exceeded(
            f"Collection {collection_id} already has {quota} indexes, the quota for "
            f"{collection['type']} collections. Delete an index, or request a quota increase.",
            resourceId=collection_id,
            resourceType="index",
        )
    now_ms = epoch_ms(call.now)
    call.resources.insert(KIND_INDEX, key, {
        "key": key,
        "collectionId": collection_id,
        "name": name,
        "schema": schema,
        "createdDate": now_ms,
        "lastModifiedDate": now_ms,
    })
    return {}


def get_index(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    _, stored = _index(call, params, writable=False)
    return {"indexSchema": stored["schema"]}


def update_index(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    _, stored = _index(call, params, writable=True)
    update = _checked_schema(params.get("indexSchema"))
    stored["schema"] = merged(stored["schema"], update)
    stored["lastModifiedDate"] = later_ms(stored["lastModifiedDate"], call.now)
    call.resources.put(KIND_INDEX, stored["key"], stored)
    return {}


def delete_index(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    _, stored = _index(call, params, writable=True)
    call.resources.delete(KIND_INDEX, stored["key"])
    return {}
