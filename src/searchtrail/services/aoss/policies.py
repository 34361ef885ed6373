"""Security policies (types `encryption` and `network`): documents, matching, operations.

The operations are the shared policy machinery (`policy_engine`); this module defines the
two document schemas, the quotas, and how a collection finds its encryption policy.
"""

from __future__ import annotations

import re
from typing import Any

from .common import (
    COLLECTION_RESOURCE,
    COLLECTION_RESOURCE_TEXT,
    KIND_POLICY,
    TYPE_SECURITY_POLICY,
    Array,
    Boolean,
    Object,
    Schema,
    String,
    match_specificity,
)
from .policy_engine import PolicyFamily

# Per account and Region (OpenSearch Serverless quotas page).
POLICY_QUOTAS = {"encryption": 50, "network": 500}

VPCE_PATTERN = re.compile(r"vpce-[0-9a-z]+")
SERVICE_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com")


def _resource_list() -> Array:
    return Array(
        String(pattern=COLLECTION_RESOURCE, describe=COLLECTION_RESOURCE_TEXT),
        min_items=1,
    )


def _rules(*resource_types: str) -> Array:
    return Array(
        Object(
            {"ResourceType": String(enum=resource_types), "Resource": _resource_list()},
            required=("ResourceType", "Resource"),
        ),
        min_items=1,
    )


def _key_choice(doc: dict[str, Any], path: str, errors: list[str]) -> None:
    if "KmsARN" in doc:
        return  # a customer managed key; AWSOwnedKey is then ignored
    if "AWSOwnedKey" not in doc:
        errors.append(f"{path}.AWSOwnedKey: is missing but it is required")
    elif doc["AWSOwnedKey"] is False:
        errors.append(f"{path}.KmsARN: is missing but it is required when AWSOwnedKey is false")


def _private_sources(doc: dict[str, Any], path: str, errors: list[str]) -> None:
    if doc.get("AllowFromPublic") is False and not (
        doc.get("SourceVPCEs") or doc.get("SourceServices")
    ):
        errors.append(
            f"{path}: SourceVPCEs or SourceServices is required when AllowFromPublic is false"
        )


ENCRYPTION_SCHEMA = Object(
    {
        "Rules": _rules("collection"),
        "AWSOwnedKey": Boolean(),
        "KmsARN": String(
            pattern=re.compile(r"arn:[a-z0-9-]+:[a-z0-9-]+:[a-z0-9-]*:\d{12}:key/\S+"),
            describe="a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)",
        ),
    },
    required=("Rules",),
    rules=(_key_choice,),
)

NETWORK_SCHEMA = Array(
    Object(
        {
            "Description": String(),
            "Rules": _rules("collection", "dashboard"),
            "AllowFromPublic": Boolean(),
            "SourceVPCEs": Array(
                String(pattern=VPCE_PATTERN, describe="a VPC endpoint id (vpce-...)"), min_items=1
            ),
            "SourceServices": Array(
                String(pattern=SERVICE_PATTERN, describe="a service principal such as "
                       "bedrock.amazonaws.com"),
                min_items=1,
            ),
        },
        required=("Rules", "AllowFromPublic"),
        rules=(_private_sources,),
    ),
    min_items=1,
)

SCHEMAS: dict[str, Schema] = {"encryption": ENCRYPTION_SCHEMA, "network": NETWORK_SCHEMA}


# --- resource patterns ------------------------------------------------------------------


def policy_resources(policy_type: str, doc: Any) -> list[str]:
    """Every resource pattern a (valid) policy document names, in document order."""
    statements = [doc] if policy_type == "encryption" else doc
    return [
        resource
        for statement in statements
        for rule in statement["Rules"]
        for resource in rule["Resource"]
    ]


def matching_encryption_policy(call: Any, collection_name: str) -> dict[str, Any] | None:
    """The encryption policy whose most specific rule matches `collection/<name>`."""
    resource = f"collection/{collection_name}"
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for stored in SECURITY_POLICIES.stored(call, "encryption"):
        for pattern in stored["resources"]:
            score = match_specificity(pattern, resource)
            if score is not None and (best is None or score > best[0]):
                best = (score, stored)
    return None if best is None else best[1]


def kms_key_of(policy_doc: dict[str, Any]) -> str:
    """`auto` for AWS owned keys, otherwise the policy's KMS key ARN."""
    return policy_doc.get("KmsARN") or "auto"


# --- operations -------------------------------------------------------------------------

SECURITY_POLICIES = PolicyFamily(
    kind=KIND_POLICY,
    arn_word="security-policy",
    resource_type=TYPE_SECURITY_POLICY,
    detail_member="securityPolicyDetail",
    summaries_member="securityPolicySummaries",
    list_operation="ListSecurityPolicies",
    schemas=SCHEMAS,
    quotas=POLICY_QUOTAS,
    resources_of=policy_resources,
    unique_types={
        "encryption": "A collection name or prefix can appear in only one encryption policy."
    },
)


def create_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return SECURITY_POLICIES.create(call, params)


def get_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return SECURITY_POLICIES.get(call, params)


def update_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return SECURITY_POLICIES.update(call, params)


def delete_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return SECURITY_POLICIES.delete(call, params)


def list_security_policies(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return SECURITY_POLICIES.list(call, params, "resource")
