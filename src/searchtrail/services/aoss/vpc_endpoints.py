"""OpenSearch Serverless-managed interface VPC endpoints.

Like collections, an endpoint's status is derived lazily from stored times: PENDING until
`activeAt` (created + create time), then ACTIVE; once deletion was asked for, DELETING
until `goneAt` (requested + delete time), then gone (not listed, not found, name reusable).
Gone endpoints are purged by later write calls. Names are unique per account and Region
among endpoints that are not gone; at most `MAX_VPC_ENDPOINTS` exist at once.

An endpoint can be updated only while ACTIVE (subnets and security groups are added or
removed; at least one subnet and at most five security groups remain) and deleted only
while ACTIVE or FAILED (ConflictException otherwise).
"""

from __future__ import annotations

from typing import Any

from .common import (
    HEX_ALPHABET,
    KIND_VPC_ENDPOINT,
    TYPE_VPC_ENDPOINT,
    Timing,
    aoss_arn,
    conflict,
    epoch_ms,
    later_ms,
    lifecycle_status,
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

# OpenSearch Serverless-managed VPC endpoints per account and Region (quotas page).
MAX_VPC_ENDPOINTS = 50
MAX_SECURITY_GROUPS = 5
DELETABLE = ("ACTIVE", "FAILED")


def status_of(stored: dict[str, Any], now_ms: int) -> str | None:
    return lifecycle_status(stored, now_ms, "PENDING")


def _live_endpoints(call: Any) -> list[tuple[dict[str, Any], str]]:
    now_ms = epoch_ms(call.now)
    out = []
    for stored in call.resources.list(KIND_VPC_ENDPOINT):
        status = status_of(stored, now_ms)
        if status is not None:
            out.append((stored, status))
    return out


def _live(call: Any, endpoint_id: str) -> tuple[dict[str, Any], str] | None:
    stored = call.resources.get(KIND_VPC_ENDPOINT, endpoint_id)
    if stored is None:
        return None
    status = status_of(stored, epoch_ms(call.now))
    return None if status is None else (stored, status)


def _existing(call: Any, endpoint_id: str) -> tuple[dict[str, Any], str]:
    found = _live(call, endpoint_id)
    if found is None:
        raise not_found(f"VPC endpoint with ID {endpoint_id} cannot be found.")
    _reference(call, found[0])
    return found


def _purge_gone(call: Any) -> None:
    now_ms = epoch_ms(call.now)
    for stored in call.resources.list(KIND_VPC_ENDPOINT):
        if status_of(stored, now_ms) is None:
            call.resources.delete(KIND_VPC_ENDPOINT, stored["id"])


def _reference(call: Any, stored: dict[str, Any]) -> None:
    reference(call, aoss_arn(call.region, call.account_id, f"vpc-endpoint/{stored['id']}"),
              TYPE_VPC_ENDPOINT)


def _unique(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        duplicate = next(value for value in values if values.count(value) > 1)
        raise validation(f"Duplicate {what} {duplicate} in the request.")
    return list(values)


def _detail(stored: dict[str, Any], status: str) -> dict[str, Any]:
    return without_none(
        {
            "id": stored["id"],
            "name": stored["name"],
            "vpcId": stored["vpcId"],
            "subnetIds": list(stored["subnetIds"]),
            "securityGroupIds": list(stored["securityGroupIds"]) or None,
            "status": status,
            "createdDate": stored["createdDate"],
        }
    )


# --- operations -------------------------------------------------------------------------


def create_vpc_endpoint(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    name = params["name"]
    _purge_gone(call)
    endpoints = _live_endpoints(call)
    for stored, status in endpoints:
        if stored["name"] == name:
            raise conflict(f"VPC endpoint with name {name} already exists ({status})")
    subnets = _unique(params["subnetIds"], "subnet ID")
    groups = _unique(params.get("securityGroupIds") or [], "security group ID")
    if len(endpoints) >= MAX_VPC_ENDPOINTS:
        raise quota_exceeded(
            f"You have reached the quota of {MAX_VPC_ENDPOINTS} OpenSearch Serverless-managed "
            "VPC endpoints for this account and Region. Delete an endpoint you no longer need, "
            "or request a quota increase.",
            resourceType="vpc-endpoint",
        )
    now_ms = epoch_ms(call.now)
    endpoint_id = unused_id(call, KIND_VPC_ENDPOINT, lambda: "vpce-" + random_id(17, HEX_ALPHABET))
    stored = {
        "id": endpoint_id,
        "name": name,
        "vpcId": params["vpcId"],
        "subnetIds": subnets,
        "securityGroupIds": groups,
        "createdDate": now_ms,
        "lastModifiedDate": now_ms,
        "activeAt": now_ms + timing.create_ms,
        "goneAt": None,
    }
    call.resources.insert(KIND_VPC_ENDPOINT, endpoint_id, stored)
    _reference(call, stored)
    return {
        "createVpcEndpointDetail": {
            "id": endpoint_id,
            "name": name,
            "status": status_of(stored, now_ms),
        }
    }


def batch_get_vpc_endpoint(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    details, errors = [], []
    for endpoint_id in dict.fromkeys(params["ids"]):
        found = _live(call, endpoint_id)
        if found is None:
            errors.append(not_found_detail("VPC Endpoint", id=endpoint_id))
            continue
        _reference(call, found[0])
        details.append(_detail(*found))
    return {"vpcEndpointDetails": details, "vpcEndpointErrorDetails": errors}


def list_vpc_endpoints(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    wanted = (params.get("vpcEndpointFilters") or {}).get("status")
    rows = (
        ((stored["name"], stored["id"]), {"id": stored["id"], "name": stored["name"], "status": status})
        for stored, status in _live_endpoints(call)
        if wanted is None or status == wanted
    )
    page, token = paginate("ListVpcEndpoints", params, rows, 2)
    return listed("vpcEndpointSummaries", page, token)


def _changed(current: list[str], add: list[str], remove: list[str], what: str) -> list[str]:
    add, remove = _unique(add, what), _unique(remove, what)
    both = set(add) & set(remove)
    if both:
        raise validation(f"The {what} {sorted(both)[0]} can't be both added and removed.")
    for value in remove:
        if value not in current:
            raise validation(f"The {what} {value} is not associated with the VPC endpoint.")
    kept = [value for value in current if value not in remove]
    return kept + [value for value in add if value not in kept]


def update_vpc_endpoint(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    endpoint_id = params["id"]
    stored, status = _existing(call, endpoint_id)
    if status != "ACTIVE":
        raise conflict(
            f"VPC endpoint {endpoint_id} is in {status} state; it can be updated only when ACTIVE"
        )
    subnets = _changed(stored["subnetIds"], params.get("addSubnetIds") or [],
                       params.get("removeSubnetIds") or [], "subnet ID")
    groups = _changed(stored["securityGroupIds"], params.get("addSecurityGroupIds") or [],
                      params.get("removeSecurityGroupIds") or [], "security group ID")
    if not subnets:
        raise validation("A VPC endpoint needs at least one subnet; the update would remove all.")
    if len(groups) > MAX_SECURITY_GROUPS:
        raise validation(
            f"A VPC endpoint can have at most {MAX_SECURITY_GROUPS} security groups; the update "
            f"would leave {len(groups)}."
        )
    stored["subnetIds"], stored["securityGroupIds"] = subnets, groups
    stored["lastModifiedDate"] = later_ms(stored["lastModifiedDate"], call.now)
    call.resources.put(KIND_VPC_ENDPOINT, endpoint_id, stored)
    return {
        "UpdateVpcEndpointDetail": without_none(
            {
                "id": endpoint_id,
                "name": stored["name"],
                "status": status,
                "subnetIds": subnets,
                "securityGroupIds": groups or None,
                "lastModifiedDate": stored["lastModifiedDate"],
            }
        )
    }


def delete_vpc_endpoint(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    endpoint_id = params["id"]
    _purge_gone(call)
    stored, status = _existing(call, endpoint_id)
    if status not in DELETABLE:
        raise conflict(
            f"VPC endpoint {endpoint_id} is in {status} state; only endpoints in ACTIVE or "
            "FAILED state can be deleted"
        )
    now_ms = epoch_ms(call.now)
    stored["lastModifiedDate"] = later_ms(stored["lastModifiedDate"], call.now)
    stored["goneAt"] = now_ms + timing.delete_ms
    call.resources.put(KIND_VPC_ENDPOINT, endpoint_id, stored)
    return {"deleteVpcEndpointDetail": {"id": endpoint_id, "name": stored["name"], "status": "DELETING"}}
