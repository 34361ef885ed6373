"""Collections: creation against encryption policies, lazy status, listing, update, deletion.

A collection's status is never written by a background task. The stored document carries
`activeAt` (created + create time) and, once deletion was asked for, `goneAt`
(requested + delete time); the status is derived from them and `call.now` on every read:
CREATING before `activeAt`, then ACTIVE; DELETING before `goneAt`, then gone (not listed,
not found, name reusable). Gone documents are purged by later write calls, together with
the indexes, ingestion jobs and ingestion streams that lived in them.

A collection may belong to a collection group (`collectionGroupName`, which must exist):
it then takes the group's standby-replica setting and generation (NEXTGEN collections
have `on.aws` endpoints).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from searchtrail.auth.authorizer import resource_tag_keys
from searchtrail.store.api import Conflict

from . import collection_groups, policies, tags
from .common import (
    COLLECTION_CHILD_KINDS,
    KIND_COLLECTION,
    KIND_COLLECTION_DELETING,
    KIND_COLLECTION_NAME,
    TYPE_COLLECTION,
    Timing,
    collection_arn,
    collection_status,
    conflict,
    epoch_ms,
    ids_or_names,
    listed,
    not_found,
    not_found_detail,
    paginate,
    random_id,
    reference,
    unused_id,
    validation,
    without_none,
)

ID_LENGTH = 20
DELETABLE = ("ACTIVE", "FAILED", "UPDATE_FAILED")
# Regions with FIPS 140-3 endpoints for OpenSearch Serverless.
FIPS_REGION_PREFIXES = ("us-", "ca-")
# Tag ARN resource path of a collection.
TAG_PATH = re.compile(r"collection/([a-z0-9]{3,40})")


# --- reading state ----------------------------------------------------------------------

status_of = collection_status


def last_modified(stored: dict[str, Any], now_ms: int) -> int:
    """Becoming ACTIVE is a modification: it happened at `activeAt`."""
    if stored.get("goneAt") is None and now_ms >= stored["activeAt"]:
        return max(stored["lastModifiedDate"], stored["activeAt"])
    return stored["lastModifiedDate"]


def live(call: Any, collection_id: str) -> tuple[dict[str, Any], str] | None:
    """The stored collection and its status, unless unknown or gone."""
    stored = call.resources.get(KIND_COLLECTION, collection_id)
    if stored is None:
        return None
    status = status_of(stored, epoch_ms(call.now))
    return None if status is None else (stored, status)


def live_each(call: Any, field: str, values: list[str]) -> dict[str, tuple[dict[str, Any], str]]:
    """The live collections of those ids or names (``field``), by value; two reads at most."""
    if field == "id":
        ids = {value: value for value in values}
    else:
        index = call.resources.get_many(KIND_COLLECTION_NAME, values)
        ids = {name: entry["id"] for name, entry in index.items()}
    stored = call.resources.get_many(KIND_COLLECTION, list(dict.fromkeys(ids.values())))
    now_ms = epoch_ms(call.now)
    found = {}
    for value, collection_id in ids.items():
        document = stored.get(collection_id)
        status = None if document is None else status_of(document, now_ms)
        if status is not None:
            found[value] = (document, status)
    return found


def live_or_not_found(call: Any, collection_id: str) -> tuple[dict[str, Any], str]:
    """The live collection, or the ResourceNotFoundException the collection APIs give."""
    found = live(call, collection_id)
    if found is None:
        raise not_found_error(collection_id)
    return found


def tag_target(call: Any, match: "re.Match[str]") -> tags.TagTarget | None:
    """Tag finder for `collection/<id>`: a live collection's tags and how to save them."""
    found = live(call, match.group(1))
    if found is None:
        return None
    stored, status = found

    def save(new_tags: list[dict[str, str]]) -> None:
        stored["tags"] = new_tags
        call.resources.put(KIND_COLLECTION, stored["id"], stored)

    return tags.TagTarget(stored["arn"], TYPE_COLLECTION, status, list(stored["tags"]), save)


def condition_keys(repo: Any, operation: str, params: dict[str, Any],
                   resource: str) -> list[dict[str, Any]]:
    """The condition keys of the collections a call acts on, one dict each: ``aoss:collection``
    (the name), ``aoss:CollectionId`` and ``aws:ResourceTag/<key>`` of a stored collection;
    the name a create asks for; every collection a BatchGetCollection names (by name, or by
    id when it is stored); every collection (and index) an access or security policy's rules
    name."""
    if operation == "CreateCollection":
        return [{"aoss:collection": params.get("name")}]
    if operation == "BatchGetCollection":
        names = list(params.get("names") or [])
        stored = repo.get_many(KIND_COLLECTION, list(params.get("ids") or []))
        names += [document["name"] for document in stored.values()]
        return [{"aoss:collection": name} for name in dict.fromkeys(names)]
    if operation in POLICY_DOCUMENT_OPERATIONS:
        return _rule_targets(params.get("policy"))
    parts = resource.split(":", 5)
    match = TAG_PATH.fullmatch(parts[5]) if len(parts) == 6 and parts[2] == "aoss" else None
    if match is None:
        return []
    document = repo.scoped(parts[4], parts[3]).get(KIND_COLLECTION, match.group(1))
    if document is None:
        return []
    return [{"aoss:collection": document["name"], "aoss:CollectionId": document["id"],
             **resource_tag_keys(document.get("tags"))}]


# The Service Authorization Reference gives these aoss:collection (access policies also
# aoss:index); the user guide's example scopes CreateAccessPolicy and CreateSecurityPolicy
# to one collection with it.
POLICY_DOCUMENT_OPERATIONS = frozenset({"CreateAccessPolicy", "UpdateAccessPolicy",
                                        "CreateSecurityPolicy", "UpdateSecurityPolicy"})


def _rule_targets(text: Any) -> list[dict[str, str]]:
    """One dict of keys per resource pattern a policy document's rules name, as written:
    ``collection/logs*`` gives aoss:collection ``logs*``, ``index/logs/*`` aoss:collection
    ``logs`` and aoss:index ``*``. Read before the document is validated, so anything else
    is passed over (and the call then refused for it)."""
    try:
        document = orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        return []
    targets: dict[tuple[str, ...], dict[str, str]] = {}
    for statement in document if isinstance(document, list) else [document]:
        rules = statement.get("Rules") if isinstance(statement, dict) else None
        for rule in rules if isinstance(rules, list) else ():
            resources = rule.get("Resource") if isinstance(rule, dict) else None
            for resource in resources if isinstance(resources, list) else ():
                if not isinstance(resource, str):
                    continue
                kind, _, rest = resource.partition("/")
                if kind == "collection" and rest:
                    targets[(rest,)] = {"aoss:collection": rest}
                elif kind == "index" and rest:
                    collection, _, index = rest.partition("/")
                    targets[(collection, index)] = {"aoss:collection": collection,
                                                    "aoss:index": index}
    return list(targets.values())


def _reference(call: Any, stored: dict[str, Any]) -> None:
    reference(call, stored["arn"], TYPE_COLLECTION)


def not_found_error(collection_id: str) -> Exception:
    return not_found(f"Collection with ID {collection_id} cannot be found.")


def purge_gone(call: Any) -> None:
    """Drop collections whose deletion has completed, their name index entries and the
    documents that lived in them (indexes, ingestion jobs and streams)."""
    now_ms = epoch_ms(call.now)
    for pending in call.resources.list(KIND_COLLECTION_DELETING):
        if now_ms < pending["goneAt"]:
            continue
        stored = call.resources.get(KIND_COLLECTION, pending["id"])
        if stored is not None:
            index = call.resources.get(KIND_COLLECTION_NAME, stored["name"])
            if index is not None and index["id"] == stored["id"]:
                call.resources.delete(KIND_COLLECTION_NAME, stored["name"])
            call.resources.delete(KIND_COLLECTION, stored["id"])
        for kind in COLLECTION_CHILD_KINDS:
            for child in call.resources.list(kind, f"{pending['id']}/"):
                call.resources.delete(kind, child["key"])
        call.resources.delete(KIND_COLLECTION_DELETING, pending["id"])


# --- output shapes ----------------------------------------------------------------------


def _endpoints(collection_id: str, region: str, host: str = "aoss") -> dict[str, str]:
    base = f"https://{collection_id}.{region}.{host}.amazonaws.com"
    return {"collectionEndpoint": base, "dashboardEndpoint": f"{base}/_dashboards"}


def _nextgen_endpoints(collection_id: str, region: str) -> dict[str, str]:
    base = f"https://{collection_id}.aoss.{region}.on.aws"
    return {"collectionEndpoint": base, "dashboardEndpoint": f"{base}/_dashboards"}


def create_detail(stored: dict[str, Any], status: str, now_ms: int) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "name": stored["name"],
            "status": status,
            "type": stored["type"],
            "description": stored.get("description"),
            "arn": stored["arn"],
            "kmsKeyArn": stored["kmsKeyArn"],
            "standbyReplicas": stored["standbyReplicas"],
            "deletionProtection": stored["deletionProtection"],
            "vectorOptions": stored.get("vectorOptions"),
            "createdDate": stored["createdDate"],
            "lastModifiedDate": last_modified(stored, now_ms),
            "collectionGroupName": stored.get("collectionGroupName"),
        }
    )


def collection_detail(
    stored: dict[str, Any], status: str, now_ms: int, region: str
) -> dict[str, Any]:
    detail = create_detail(stored, status, now_ms)
    if stored.get("generation") == "NEXTGEN":
        detail.update(_nextgen_endpoints(stored["id"], region))
        return detail
    detail.update(_endpoints(stored["id"], region))
    if region.startswith(FIPS_REGION_PREFIXES):
        detail["fipsEndpoints"] = _endpoints(stored["id"], region, "aoss-fips")
    return detail


def update_detail(stored: dict[str, Any], status: str, now_ms: int) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "name": stored["name"],
            "status": status,
            "type": stored["type"],
            "description": stored.get("description"),
            "vectorOptions": stored.get("vectorOptions"),
            "kmsKeyArn": stored["kmsKeyArn"],
            "arn": stored["arn"],
            "createdDate": stored["createdDate"],
            "lastModifiedDate": last_modified(stored, now_ms),
            "deletionProtection": stored["deletionProtection"],
        }
    )


def summary(stored: dict[str, Any], status: str) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "name": stored["name"],
            "status": status,
            "arn": stored["arn"],
            "kmsKeyArn": stored["kmsKeyArn"],
            "collectionGroupName": stored.get("collectionGroupName"),
        }
    )


# --- operations -------------------------------------------------------------------------


def _kms_key(call: Any, name: str, config: dict[str, Any] | None) -> str:
    if config is not None:
        owned, key_arn = config.get("aWSOwnedKey"), config.get("kmsKeyArn")
        if owned and key_arn:
            raise validation(
                "encryptionConfig: specify either aWSOwnedKey true or a kmsKeyArn, not both."
            )
        if key_arn:
            return key_arn
        if owned:
            return "auto"
        raise validation(
            "encryptionConfig: set aWSOwnedKey to true or give the kmsKeyArn of a customer "
            "managed key."
        )
    policy = policies.matching_encryption_policy(call, name)
    if policy is None:
        raise validation(
            f"No matching security policy of encryption type found for collection name: {name}. "
            "Please create security policy of encryption type for this collection."
        )
    return policies.kms_key_of(policy["policy"])


def _new_id(call: Any) -> str:
    return unused_id(call, KIND_COLLECTION, lambda: random_id(ID_LENGTH))


def _group_settings(
    call: Any, name: str, group_name: str | None, standby: str | None
) -> tuple[str, str | None]:
    """(standbyReplicas, generation): from the collection group when there is one."""
    if group_name is None:
        return standby or "ENABLED", None
    group = collection_groups.by_name(call, group_name)
    if group is None:
        raise validation(
            f"Collection group {group_name} does not exist. Create the collection group first, "
            "or leave collectionGroupName out."
        )
    if standby is not None and standby != group["standbyReplicas"]:
        raise validation(
            f"Collection {name} can't use standbyReplicas {standby}: collection group "
            f"{group_name} uses {group['standbyReplicas']}, and its collections must match."
        )
    return group["standbyReplicas"], group.get("generation")


def _name_taken(name: str, status: str) -> Exception:
    if status == "CREATING":
        return conflict(f"Collection with name {name} is already being created")
    if status == "DELETING":
        return conflict(
            f"Collection with name {name} is being deleted; the name can be reused once the "
            "deletion has completed"
        )
    return conflict(f"Collection with name {name} already exists")


def create_collection(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    name = params["name"]
    purge_gone(call)
    index = call.resources.get(KIND_COLLECTION_NAME, name)
    if index is not None:
        existing = live(call, index["id"])
        if existing is not None:
            raise _name_taken(name, existing[1])
        call.resources.delete(KIND_COLLECTION_NAME, name)  # a stale entry
    group_name = params.get("collectionGroupName")
    standby, generation = _group_settings(call, name, group_name, params.get("standbyReplicas"))
    kms_key_arn = _kms_key(call, name, params.get("encryptionConfig"))
    collection_tags = tags.checked(params.get("tags") or [])
    now_ms = epoch_ms(call.now)
    collection_id = _new_id(call)
    stored = {
        "id": collection_id,
        "name": name,
        "type": params.get("type") or "TIMESERIES",
        "description": params.get("description"),
        "arn": collection_arn(call.region, call.account_id, collection_id),
        "kmsKeyArn": kms_key_arn,
        "standbyReplicas": standby,
        "deletionProtection": params.get("deletionProtection") or "DISABLED",
        "vectorOptions": params.get("vectorOptions"),
        "collectionGroupName": group_name,
        "generation": generation,
        "createdDate": now_ms,
        "lastModifiedDate": now_ms,
        "activeAt": now_ms + timing.create_ms,
        "goneAt": None,
        "tags": collection_tags,
    }
    try:
        call.resources.insert(KIND_COLLECTION_NAME, name, {"id": collection_id})
        call.resources.insert(KIND_COLLECTION, collection_id, stored)
    except Conflict:
        raise conflict(f"Collection with name {name} already exists") from None
    _reference(call, stored)
    return {"createCollectionDetail": create_detail(stored, status_of(stored, now_ms), now_ms)}


def batch_get_collection(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    field, wanted = ids_or_names(params)
    now_ms = epoch_ms(call.now)
    details: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    unique = list(dict.fromkeys(wanted))  # each asked-for collection once, in order
    live_ones = live_each(call, field, unique)
    for value in unique:
        found = live_ones.get(value)
        if found is None:
            errors.append(not_found_detail("Collection", **{field: value}))
            continue
        stored, status = found
        _reference(call, stored)
        details.append(collection_detail(stored, status, now_ms, call.region))
    return {"collectionDetails": details, "collectionErrorDetails": errors}


def list_collections(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    filters = params.get("collectionFilters") or {}
    now_ms = epoch_ms(call.now)

    def rows():  # type: ignore[no-untyped-def]
        for stored in call.resources.list(KIND_COLLECTION):
            status = status_of(stored, now_ms)
            if status is None:
                continue
            if filters.get("name") is not None and stored["name"] != filters["name"]:
                continue
            if filters.get("status") is not None and status != filters["status"]:
                continue
            group = filters.get("collectionGroupName")
            if group is not None and stored.get("collectionGroupName") != group:
                continue
            yield (stored["name"], stored["id"]), summary(stored, status)

    page, token = paginate("ListCollections", params, rows(), 2)
    return listed("collectionSummaries", page, token)


def update_collection(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    collection_id = params["id"]
    stored, status = live_or_not_found(call, collection_id)
    _reference(call, stored)
    if status != "ACTIVE":
        raise conflict(
            f"Collection {collection_id} is in {status} state; it can be updated only when ACTIVE"
        )
    if "description" in params:
        stored["description"] = params["description"]
    if params.get("vectorOptions") is not None:
        stored["vectorOptions"] = params["vectorOptions"]
    if params.get("deletionProtection") is not None:
        stored["deletionProtection"] = params["deletionProtection"]
    if params.get("encryptionConfig") is not None:
        stored["kmsKeyArn"] = _kms_key(call, stored["name"], params["encryptionConfig"])
    now_ms = epoch_ms(call.now)
    stored["lastModifiedDate"] = max(now_ms, last_modified(stored, now_ms))
    call.resources.put(KIND_COLLECTION, collection_id, stored)
    return {"updateCollectionDetail": update_detail(stored, status, now_ms)}


def delete_collection(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    collection_id = params["id"]
    purge_gone(call)
    stored, status = live_or_not_found(call, collection_id)
    _reference(call, stored)
    if status not in DELETABLE:
        raise conflict(
            f"Collection {collection_id} is in {status} state; only collections in ACTIVE, "
            "FAILED or UPDATE_FAILED state can be deleted"
        )
    if stored["deletionProtection"] == "ENABLED":
        raise validation(
            f"Collection {collection_id} cannot be deleted because deletion protection is "
            "enabled. Disable it with UpdateCollection (deletionProtection DISABLED) first."
        )
    now_ms = epoch_ms(call.now)
    stored["lastModifiedDate"] = max(now_ms, last_modified(stored, now_ms))
    stored["goneAt"] = now_ms + timing.delete_ms
    call.resources.put(KIND_COLLECTION, collection_id, stored)
    call.resources.put(
        KIND_COLLECTION_DELETING, collection_id, {"id": collection_id, "goneAt": stored["goneAt"]}
    )
    return {
        "deleteCollectionDetail": {
            "id": stored["id"],
            "name": stored["name"],
            "status": "DELETING",
            "deletionProtection": stored["deletionProtection"],
        }
    }
