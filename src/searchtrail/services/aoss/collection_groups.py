"""Collection groups: collections sharing OCU capacity limits.

A group is created synchronously (it has no status). Collections join a group by naming it
at creation (`CreateCollection.collectionGroupName`); a group can be deleted only while no
live collection belongs to it (ConflictException otherwise). Capacity limits are checked
as the capacity-limits guide describes: each value is 1, 2, 4, 8, 16 or a multiple of 16
(minimums may also be 0), a minimum may not exceed its maximum, and no value may exceed the
per-group OCU quota (ServiceQuotaExceededException). UpdateCollectionGroup replaces the
limits as a whole ("not incremental"), as the API reference says. `currentCapacity` reports
the configured minimums with NO_ACTION: no engine scales anything here.
"""

from __future__ import annotations

import re
from typing import Any

from . import tags
from .common import (
    KIND_COLLECTION,
    KIND_COLLECTION_GROUP,
    TYPE_COLLECTION_GROUP,
    aoss_arn,
    collection_status,
    conflict,
    epoch_ms,
    ids_or_names,
    later_ms,
    listed,
    not_found,
    not_found_detail,
    paginate,
    quota_exceeded,
    random_id,
    reference,
    unused_id,
    validation,
    without_none,
)

ID_LENGTH = 20
# OCUs per collection group and dimension (the quota the capacity-limits guide refers to;
# the same 100 as the account-level maximum, see account.MAX_OCU).
MAX_GROUP_OCU = 100
TAG_PATH = re.compile(r"collection-group/([a-z0-9]{3,40})")
LIMIT_NAMES = (
    ("minIndexingCapacityInOCU", "maxIndexingCapacityInOCU"),
    ("minSearchCapacityInOCU", "maxSearchCapacityInOCU"),
)


# --- reading state ----------------------------------------------------------------------


def by_name(call: Any, name: str) -> dict[str, Any] | None:
    for stored in call.resources.list(KIND_COLLECTION_GROUP):
        if stored["name"] == name:
            return stored
    return None


def _by_id(call: Any, group_id: str) -> dict[str, Any] | None:
    return call.resources.get(KIND_COLLECTION_GROUP, group_id)


def number_of_collections(call: Any, name: str) -> int:
    """How many live collections belong to the group."""
    now_ms = epoch_ms(call.now)
    return sum(
        1
        for stored in call.resources.list(KIND_COLLECTION)
        if stored.get("collectionGroupName") == name
        and collection_status(stored, now_ms) is not None
    )


def tag_target(call: Any, match: "re.Match[str]") -> tags.TagTarget | None:
    """Tag finder for `collection-group/<id>`."""
    stored = _by_id(call, match.group(1))
    if stored is None:
        return None

    def save(new_tags: list[dict[str, str]]) -> None:
        stored["tags"] = new_tags
        call.resources.put(KIND_COLLECTION_GROUP, stored["id"], stored)

    return tags.TagTarget(stored["arn"], TYPE_COLLECTION_GROUP, "ACTIVE", list(stored["tags"]), save)


def _reference(call: Any, stored: dict[str, Any]) -> None:
    reference(call, stored["arn"], TYPE_COLLECTION_GROUP)


def _not_found(group_id: str) -> Exception:
    return not_found(f"Collection group with ID {group_id} cannot be found.")


# --- capacity limits --------------------------------------------------------------------


def _allowed(value: float, minimum: bool) -> bool:
    if value == 0:
        return minimum
    return value in (1, 2, 4, 8) or (value >= 16 and value % 16 == 0)


def checked_limits(limits: dict[str, Any] | None) -> dict[str, float] | None:
    """The capacity limits as stored (floats), or the error AWS gives for them."""
    if limits is None:
        return None
    out = {name: float(value) for name, value in limits.items() if value is not None}
    for name, value in out.items():
        if not _allowed(value, name.startswith("min")):
            raise validation(
                f"Invalid {name} {value:g}: capacity limits must be 1, 2, 4, 8, 16 or a multiple "
                "of 16 OCUs" + (" (or 0 for a minimum)." if name.startswith("min") else ".")
            )
    for low, high in LIMIT_NAMES:
        if low in out and high in out and out[low] > out[high]:
            raise validation(
                f"{low} ({out[low]:g}) can't be greater than {high} ({out[high]:g})."
            )
    for name, value in out.items():
        if value > MAX_GROUP_OCU:
            raise quota_exceeded(
                f"{name} {value:g} exceeds the quota of {MAX_GROUP_OCU} OCUs for a collection "
                "group. Request a quota increase to use more.",
                resourceType="collection-group",
            )
    return out


# --- output shapes ----------------------------------------------------------------------


def _create_detail(stored: dict[str, Any]) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "arn": stored["arn"],
            "name": stored["name"],
            "standbyReplicas": stored["standbyReplicas"],
            "description": stored.get("description"),
            "tags": [dict(tag) for tag in stored["tags"]],
            "createdDate": stored["createdDate"],
            "capacityLimits": stored.get("capacityLimits"),
            "generation": stored["generation"],
        }
    )


def _current(limits: dict[str, float] | None, name: str) -> dict[str, Any]:
    return {"capacityInOcu": (limits or {}).get(name, 0.0), "autoscalingStatus": "NO_ACTION"}


def _detail(call: Any, stored: dict[str, Any]) -> dict[str, Any]:
    detail = _create_detail(stored)
    limits = stored.get("capacityLimits")
    detail["currentCapacity"] = {
        "search": _current(limits, "minSearchCapacityInOCU"),
        "indexing": _current(limits, "minIndexingCapacityInOCU"),
    }
    detail["numberOfCollections"] = number_of_collections(call, stored["name"])
    return detail


def _summary(call: Any, stored: dict[str, Any]) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "arn": stored["arn"],
            "name": stored["name"],
            "numberOfCollections": number_of_collections(call, stored["name"]),
            "createdDate": stored["createdDate"],
            "capacityLimits": stored.get("capacityLimits"),
            "generation": stored["generation"],
        }
    )


def _update_detail(stored: dict[str, Any]) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "arn": stored["arn"],
            "name": stored["name"],
            "description": stored.get("description"),
            "capacityLimits": stored.get("capacityLimits"),
            "createdDate": stored["createdDate"],
            "lastModifiedDate": stored["lastModifiedDate"],
            "generation": stored["generation"],
        }
    )


# --- operations -------------------------------------------------------------------------


def create_collection_group(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    name = params["name"]
    if by_name(call, name) is not None:
        raise conflict(f"Collection group with name {name} already exists")
    limits = checked_limits(params.get("capacityLimits"))
    group_tags = tags.checked(params.get("tags") or [])
    group_id = unused_id(call, KIND_COLLECTION_GROUP, lambda: random_id(ID_LENGTH))
    now_ms = epoch_ms(call.now)
    stored = {
        "id": group_id,
        "arn": aoss_arn(call.region, call.account_id, f"collection-group/{group_id}"),
        "name": name,
        "standbyReplicas": params["standbyReplicas"],
        "description": params.get("description"),
        "tags": group_tags,
        "capacityLimits": limits,
        "generation": params.get("generation") or "CLASSIC",
        "createdDate": now_ms,
        "lastModifiedDate": now_ms,
    }
    call.resources.insert(KIND_COLLECTION_GROUP, group_id, stored)
    _reference(call, stored)
    return {"createCollectionGroupDetail": _create_detail(stored)}


def batch_get_collection_group(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    field, wanted = ids_or_names(params)
    details, errors = [], []
    for value in dict.fromkeys(wanted):
        stored = _by_id(call, value) if field == "id" else by_name(call, value)
        if stored is None:
            errors.append(not_found_detail("Collection Group", **{field: value}))
            continue
        _reference(call, stored)
        details.append(_detail(call, stored))
    return {"collectionGroupDetails": details, "collectionGroupErrorDetails": errors}


def list_collection_groups(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    rows = (((s["name"], s["id"]), s) for s in call.resources.list(KIND_COLLECTION_GROUP))
    page, token = paginate("ListCollectionGroups", params, rows, 2)
    return listed("collectionGroupSummaries", [_summary(call, s) for s in page], token)


def update_collection_group(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    group_id = params["id"]
    stored = _by_id(call, group_id)
    if stored is None:
        raise _not_found(group_id)
    _reference(call, stored)
    if "capacityLimits" in params:
        stored["capacityLimits"] = checked_limits(params["capacityLimits"])
    if "description" in params:
        stored["description"] = params["description"]
    stored["lastModifiedDate"] = later_ms(stored["lastModifiedDate"], call.now)
    call.resources.put(KIND_COLLECTION_GROUP, group_id, stored)
    return {"updateCollectionGroupDetail": _update_detail(stored)}


def delete_collection_group(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    group_id = params["id"]
    stored = _by_id(call, group_id)
    if stored is None:
        raise _not_found(group_id)
    _reference(call, stored)
    members = number_of_collections(call, stored["name"])
    if members:
        raise conflict(
            f"Collection group {group_id} still contains {members} collection(s). Only empty "
            "collection groups can be deleted."
        )
    call.resources.delete(KIND_COLLECTION_GROUP, group_id)
    return {}
