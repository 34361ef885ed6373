"""Data lifecycle policies (type `retention`) and the effective policy of an index.

A policy is `{"Rules": [...]}`; each rule has `ResourceType` `index`, index patterns
(`index/<collection|prefix*>/<index|prefix*>`) and exactly one retention setting:
`"MinIndexRetention": "<n>d"|"<n>h"` (24h to 3650d) or `"NoMinIndexRetention": true`.
A pattern may appear in one retention policy only. When rules overlap, the one with the
more specific pattern applies to an index (the collection part first, then the index part;
an exact name beats any prefix, a longer prefix beats a shorter one) — that is what
BatchGetEffectiveLifecyclePolicy reports.
"""

from __future__ import annotations

import re
from typing import Any

from .common import (
    INDEX_RESOURCE,
    INDEX_RESOURCE_TEXT,
    KIND_LIFECYCLE_POLICY,
    TYPE_LIFECYCLE_POLICY,
    Array,
    Boolean,
    Object,
    String,
    not_found_detail,
    resource_specificity,
)
from .policy_engine import PolicyFamily

# Retention policies per account and Region (not on the quotas page we read: unverified).
LIFECYCLE_POLICY_QUOTAS = {"retention": 100}
RETENTION = re.compile(r"([1-9][0-9]*)([dh])")
MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 3650 * 24


def _one_retention(rule: dict[str, Any], path: str, errors: list[str]) -> None:
    minimum = rule.get("MinIndexRetention")
    unbounded = rule.get("NoMinIndexRetention")
    if minimum is None and unbounded is None:
        errors.append(
            f"{path}: one of MinIndexRetention or NoMinIndexRetention is required"
        )
    elif minimum is not None and unbounded is not None:
        errors.append(f"{path}: MinIndexRetention and NoMinIndexRetention can't both be set")
    elif unbounded is False:
        errors.append(f"{path}.NoMinIndexRetention: must be true when given")
    if isinstance(minimum, str):
        match = RETENTION.fullmatch(minimum)
        hours = None if match is None else int(match[1]) * (24 if match[2] == "d" else 1)
        if hours is None or not MIN_RETENTION_HOURS <= hours <= MAX_RETENTION_HOURS:
            errors.append(
                f"{path}.MinIndexRetention: {minimum} is not valid; expected a period from 24h "
                "to 3650d, such as 24h or 15d"
            )


RETENTION_SCHEMA = Object(
    {
        "Rules": Array(
            Object(
                {
                    "ResourceType": String(enum=("index",)),
                    "Resource": Array(
                        String(pattern=INDEX_RESOURCE, describe=INDEX_RESOURCE_TEXT), min_items=1
                    ),
                    "MinIndexRetention": String(),
                    "NoMinIndexRetention": Boolean(),
                },
                required=("ResourceType", "Resource"),
                rules=(_one_retention,),
            ),
            min_items=1,
        )
    },
    required=("Rules",),
)


def policy_resources(policy_type: str, doc: Any) -> list[str]:
    return [resource for rule in doc["Rules"] for resource in rule["Resource"]]


LIFECYCLE_POLICIES = PolicyFamily(
    kind=KIND_LIFECYCLE_POLICY,
    arn_word="lifecycle-policy",
    resource_type=TYPE_LIFECYCLE_POLICY,
    detail_member="lifecyclePolicyDetail",
    summaries_member="lifecyclePolicySummaries",
    list_operation="ListLifecyclePolicies",
    schemas={"retention": RETENTION_SCHEMA},
    quotas=LIFECYCLE_POLICY_QUOTAS,
    resources_of=policy_resources,
    unique_types={
        "retention": "An index name or pattern can appear in only one retention policy."
    },
    page_default=10,
)


def create_lifecycle_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return LIFECYCLE_POLICIES.create(call, params)


def update_lifecycle_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return LIFECYCLE_POLICIES.update(call, params)


def delete_lifecycle_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return LIFECYCLE_POLICIES.delete(call, params)


def list_lifecycle_policies(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return LIFECYCLE_POLICIES.list(call, params, "resources")


def batch_get_lifecycle_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    details, errors = LIFECYCLE_POLICIES.batch_get(call, params["identifiers"], "Lifecycle Policy")
    return {"lifecyclePolicyDetails": details, "lifecyclePolicyErrorDetails": errors}


def effective_rule(
    call: Any, policy_type: str, resource: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(policy, rule) of the most specific rule naming `resource`, if any."""
    best = None
    for stored in LIFECYCLE_POLICIES.stored(call, policy_type):
        for rule in stored["policy"]["Rules"]:
            for pattern in rule["Resource"]:
                score = resource_specificity(pattern, resource)
                if score is not None and (best is None or score > best[0]):
                    best = (score, stored, rule)
    return None if best is None else (best[1], best[2])


def batch_get_effective_lifecycle_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    details, errors = [], []
    wanted = dict.fromkeys((ident["type"], ident["resource"]) for ident in params["resourceIdentifiers"])
    for policy_type, resource in wanted:
        found = effective_rule(call, policy_type, resource)
        if found is None:
            errors.append(not_found_detail("Index resource", type=policy_type, resource=resource))
            continue
        stored, rule = found
        LIFECYCLE_POLICIES.reference(call, policy_type, stored["name"])
        detail = {
            "type": policy_type,
            "resource": resource,
            "policyName": stored["name"],
            "resourceType": "index",
        }
        if rule.get("NoMinIndexRetention"):
            detail["noMinRetentionPeriod"] = True
        else:
            detail["retentionPeriod"] = rule["MinIndexRetention"]
        details.append(detail)
    return {
        "effectiveLifecyclePolicyDetails": details,
        "effectiveLifecyclePolicyErrorDetails": errors,
    }
