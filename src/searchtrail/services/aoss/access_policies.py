"""Data access policies (type `data`): who may do what to collections and indexes.

A policy is an array of statements `{"Description", "Rules", "Principal"}`. Each rule names
a `ResourceType` (`collection` or `index`), resource patterns of that type
(`collection/<name|prefix*>`, `index/<collection|prefix*>/<index|prefix*>`) and permissions
valid for that type (or `aoss:*`). Principals are IAM users and roles (`arn:aws:iam::<account>:
user/..`, `..:role/..`, `..:root`), SAML users and groups (`saml/<account>/<provider>/user/..`,
`../group/..`) and IAM Identity Center users and groups (`iamidentitycenter/<instance id>/
user/..`, `../group/..`). Many data access policies may name the same resources.
"""

from __future__ import annotations

import re
from typing import Any

from .common import (
    COLLECTION_RESOURCE,
    COLLECTION_RESOURCE_TEXT,
    INDEX_RESOURCE,
    INDEX_RESOURCE_TEXT,
    KIND_ACCESS_POLICY,
    TYPE_ACCESS_POLICY,
    Array,
    Object,
    String,
)
from .policy_engine import PolicyFamily

# Per account and Region (OpenSearch Serverless quotas page).
ACCESS_POLICY_QUOTAS = {"data": 500}

PERMISSIONS = {
    "collection": (
        "aoss:CreateCollectionItems",
        "aoss:DeleteCollectionItems",
        "aoss:UpdateCollectionItems",
        "aoss:DescribeCollectionItems",
        "aoss:*",
    ),
    "index": (
        "aoss:ReadDocument",
        "aoss:WriteDocument",
        "aoss:CreateIndex",
        "aoss:DeleteIndex",
        "aoss:UpdateIndex",
        "aoss:DescribeIndex",
        "aoss:*",
    ),
}
RESOURCES = {
    "collection": (COLLECTION_RESOURCE, COLLECTION_RESOURCE_TEXT),
    "index": (INDEX_RESOURCE, INDEX_RESOURCE_TEXT),
}
PRINCIPAL = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::\d{12}:(?:root|(?:user|role)/\S+)"
    r"|saml/\d{12}/[a-z][a-z0-9-]+/(?:user|group)/\S+"
    r"|iamidentitycenter/[^/\s]+/(?:user|group)/\S+"
)
PRINCIPAL_TEXT = (
    "an IAM user or role ARN (arn:aws:iam::<account>:role/<name>), "
    "saml/<account>/<provider>/user|group/<name> or "
    "iamidentitycenter/<instance id>/user|group/<id>"
)


def _resources_match_type(rule: dict[str, Any], path: str, errors: list[str]) -> None:
    """Resources and permissions must be those of the rule's resource type."""
    resource_type = rule.get("ResourceType")
    if resource_type not in RESOURCES:
        return  # reported by the enum check
    pattern, describe = RESOURCES[resource_type]
    for index, resource in enumerate(rule.get("Resource") or []):
        if isinstance(resource, str) and not pattern.fullmatch(resource):
            errors.append(f"{path}.Resource[{index}]: {resource} is not valid; expected {describe}")
    allowed = PERMISSIONS[resource_type]
    for index, permission in enumerate(rule.get("Permission") or []):
        if isinstance(permission, str) and permission not in allowed:
            errors.append(
                f"{path}.Permission[{index}]: does not have a value in the enumeration "
                f"[{', '.join(allowed)}] for ResourceType {resource_type}"
            )


DATA_SCHEMA = Array(
    Object(
        {
            "Description": String(),
            "Rules": Array(
                Object(
                    {
                        "ResourceType": String(enum=tuple(RESOURCES)),
                        "Resource": Array(String(), min_items=1),
                        "Permission": Array(String(), min_items=1),
                    },
                    required=("ResourceType", "Resource", "Permission"),
                    rules=(_resources_match_type,),
                ),
                min_items=1,
            ),
            "Principal": Array(String(pattern=PRINCIPAL, describe=PRINCIPAL_TEXT), min_items=1),
        },
        required=("Rules", "Principal"),
    ),
    min_items=1,
)


def policy_resources(policy_type: str, doc: Any) -> list[str]:
    return [
        resource for statement in doc for rule in statement["Rules"] for resource in rule["Resource"]
    ]


ACCESS_POLICIES = PolicyFamily(
    kind=KIND_ACCESS_POLICY,
    arn_word="access-policy",
    resource_type=TYPE_ACCESS_POLICY,
    detail_member="accessPolicyDetail",
    summaries_member="accessPolicySummaries",
    list_operation="ListAccessPolicies",
    schemas={"data": DATA_SCHEMA},
    quotas=ACCESS_POLICY_QUOTAS,
    resources_of=policy_resources,
)


def create_access_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return ACCESS_POLICIES.create(call, params)


def get_access_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return ACCESS_POLICIES.get(call, params)


def update_access_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return ACCESS_POLICIES.update(call, params)


def delete_access_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return ACCESS_POLICIES.delete(call, params)


def list_access_policies(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return ACCESS_POLICIES.list(call, params, "resource")
