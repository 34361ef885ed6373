"""Security policies (types `encryption` and `network`): documents, matching, operations.

Policy documents arrive as strings and are stored (and returned) as parsed JSON. They are
checked against a small declarative schema per type; every problem found is reported in
one ValidationException, worded like AWS's JSON-schema messages:
``Policy json is invalid, error: [$.Rules: is missing but it is required, ...]``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from searchtrail.store.api import Conflict

from .common import (
    KIND_POLICY,
    TYPE_SECURITY_POLICY,
    conflict,
    decode_token,
    encode_token,
    epoch_ms,
    not_found,
    page_size,
    quota_exceeded,
    reference,
    security_policy_arn,
    validation,
    without_none,
)

# Per account and Region (OpenSearch Serverless quotas page).
POLICY_QUOTAS = {"encryption": 50, "network": 500}

# `collection/<name>`, `collection/<prefix>*` or `collection/*`: the wildcard only at the end.
RESOURCE_PATTERN = re.compile(r"collection/(?:[^*\s/]+\*?|\*)")
VPCE_PATTERN = re.compile(r"vpce-[0-9a-z]+")
SERVICE_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com")


# --- a tiny JSON-schema -------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Schema:
    type_name = ""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        found = _json_type(value)
        if found != self.type_name:
            errors.append(f"{path}: {found} found, {self.type_name} expected")
            return
        self.check_value(value, path, errors)

    def check_value(self, value: Any, path: str, errors: list[str]) -> None:
        pass


class Boolean(Schema):
    type_name = "boolean"


@dataclass
class String(Schema):
    pattern: re.Pattern[str] | None = None
    enum: tuple[str, ...] = ()
    describe: str = ""  # what a valid value looks like, for the message
    type_name = "string"

    def check_value(self, value: str, path: str, errors: list[str]) -> None:
        if self.enum and value not in self.enum:
            errors.append(
                f"{path}: does not have a value in the enumeration [{', '.join(self.enum)}]"
            )
        elif self.pattern is not None and not self.pattern.fullmatch(value):
            errors.append(f"{path}: {value} is not valid; expected {self.describe}")


@dataclass
class Array(Schema):
    items: Schema
    min_items: int = 0
    type_name = "array"

    def check_value(self, value: list[Any], path: str, errors: list[str]) -> None:
        if len(value) < self.min_items:
            errors.append(f"{path}: there must be a minimum of {self.min_items} items in the array")
        for index, item in enumerate(value):
            self.items.check(item, f"{path}[{index}]", errors)


@dataclass
class Object(Schema):
    properties: dict[str, Schema]
    required: tuple[str, ...] = ()
    rules: tuple[Callable[[dict[str, Any], str, list[str]], None], ...] = field(default=())
    type_name = "object"

    def check_value(self, value: dict[str, Any], path: str, errors: list[str]) -> None:
        for name in self.required:
            if name not in value:
                errors.append(f"{path}.{name}: is missing but it is required")
        for name, item in value.items():
            schema = self.properties.get(name)
            if schema is None:
                errors.append(
                    f"{path}.{name}: is not defined in the schema and the schema does not "
                    "allow additional properties"
                )
            else:
                schema.check(item, f"{path}.{name}", errors)
        for rule in self.rules:
            rule(value, path, errors)


def _resource_list() -> Array:
    return Array(
        String(
            pattern=RESOURCE_PATTERN,
            describe="collection/<collection name> or collection/<prefix>* "
            "(the wildcard * is allowed only at the end)",
        ),
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


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _DuplicateKey(key)
        doc[key] = value
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_policy(policy_type: str, text: str) -> Any:
    """The document as JSON, or a ValidationException that says what is wrong with it."""
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        raise validation(f"Policy json is invalid, error: [duplicate key {exc.args[0]!r}]") from None
    except json.JSONDecodeError as exc:
        raise validation(
            f"Policy json is invalid, error: [{exc.msg} at line {exc.lineno} column {exc.colno}]"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise validation(f"Policy json is invalid, error: [{exc}]") from None
    errors: list[str] = []
    SCHEMAS[policy_type].check(doc, "$", errors)
    if errors:
        raise validation(f"Policy json is invalid, error: [{', '.join(errors)}]")
    return doc


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


def patterns_overlap(first: str, second: str) -> bool:
    """Whether two resource strings can name a common resource (`*` only at the end)."""
    first_prefix, first_wild = (first[:-1], True) if first.endswith("*") else (first, False)
    second_prefix, second_wild = (second[:-1], True) if second.endswith("*") else (second, False)
    if first_wild and second_wild:
        return first_prefix.startswith(second_prefix) or second_prefix.startswith(first_prefix)
    if first_wild:
        return second_prefix.startswith(first_prefix)
    if second_wild:
        return first_prefix.startswith(second_prefix)
    return first == second


def match_specificity(pattern: str, resource: str) -> tuple[int, int] | None:
    """How specifically `pattern` names `resource`: exact beats any prefix, longer prefix wins."""
    if pattern == resource:
        return (1, len(pattern))
    if pattern.endswith("*") and resource.startswith(pattern[:-1]):
        return (0, len(pattern) - 1)
    return None


def matching_encryption_policy(call: Any, collection_name: str) -> dict[str, Any] | None:
    """The encryption policy whose most specific rule matches `collection/<name>`."""
    resource = f"collection/{collection_name}"
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for stored in call.resources.list(KIND_POLICY, "encryption/"):
        for pattern in stored["resources"]:
            score = match_specificity(pattern, resource)
            if score is not None and (best is None or score > best[0]):
                best = (score, stored)
    return None if best is None else best[1]


def kms_key_of(policy_doc: dict[str, Any]) -> str:
    """`auto` for AWS owned keys, otherwise the policy's KMS key ARN."""
    return policy_doc.get("KmsARN") or "auto"


# --- operations -------------------------------------------------------------------------


def _key(policy_type: str, name: str) -> str:
    return f"{policy_type}/{name}"


def _version(modified_ms: int) -> str:
    return base64.b64encode(f"{modified_ms}_1".encode()).decode()


def _detail(stored: dict[str, Any], with_policy: bool = True) -> dict[str, Any]:
    return without_none(
        {
            "type": stored["type"],
            "name": stored["name"],
            "policyVersion": stored["policyVersion"],
            "description": stored.get("description"),
            "policy": stored["policy"] if with_policy else None,
            "createdDate": stored["createdDate"],
            "lastModifiedDate": stored["lastModifiedDate"],
        }
    )


def _reference(call: Any, policy_type: str, name: str) -> None:
    arn = security_policy_arn(call.region, call.account_id, policy_type, name)
    reference(call, arn, TYPE_SECURITY_POLICY)


def _not_found(policy_type: str, name: str) -> Exception:
    return not_found(f"Policy with name {name} and type {policy_type} is not found")


def _check_unique_encryption_patterns(call: Any, name: str, resources: list[str]) -> None:
    wanted = set(resources)
    for other in call.resources.list(KIND_POLICY, "encryption/"):
        if other["name"] == name:
            continue
        for pattern in other["resources"]:
            if pattern in wanted:
                raise validation(
                    f"Resource pattern {pattern} is already used in encryption policy "
                    f"{other['name']}. A collection name or prefix can appear in only one "
                    "encryption policy."
                )


def create_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy_type, name = params["type"], params["name"]
    key = _key(policy_type, name)
    _reference(call, policy_type, name)
    if call.resources.get(KIND_POLICY, key) is not None:
        raise conflict(f"Policy with name {name} and type {policy_type} already exists")
    doc = parse_policy(policy_type, params["policy"])
    resources = policy_resources(policy_type, doc)
    if policy_type == "encryption":
        _check_unique_encryption_patterns(call, name, resources)
    quota = POLICY_QUOTAS[policy_type]
    if len(call.resources.list(KIND_POLICY, f"{policy_type}/")) >= quota:
        raise quota_exceeded(
            f"You have reached the quota of {quota} {policy_type} policies for this account "
            "and Region. Delete a policy you no longer need, or request a quota increase.",
            resourceType="security-policy",
        )
    now = epoch_ms(call.now)
    stored = {
        "type": policy_type,
        "name": name,
        "policyVersion": _version(now),
        "description": params.get("description"),
        "policy": doc,
        "resources": resources,
        "createdDate": now,
        "lastModifiedDate": now,
    }
    try:
        call.resources.insert(KIND_POLICY, key, stored)
    except Conflict:
        raise conflict(f"Policy with name {name} and type {policy_type} already exists") from None
    return {"securityPolicyDetail": _detail(stored)}


def get_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy_type, name = params["type"], params["name"]
    stored = call.resources.get(KIND_POLICY, _key(policy_type, name))
    if stored is None:
        raise _not_found(policy_type, name)
    _reference(call, policy_type, name)
    return {"securityPolicyDetail": _detail(stored)}


def update_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy_type, name = params["type"], params["name"]
    key = _key(policy_type, name)
    stored = call.resources.get(KIND_POLICY, key)
    if stored is None:
        raise _not_found(policy_type, name)
    _reference(call, policy_type, name)
    if params["policyVersion"] != stored["policyVersion"]:
        raise validation(
            "Policy version specified in the request refers to an older version and policy "
            "has since changed"
        )
    changed = False
    if params.get("policy") is not None:
        doc = parse_policy(policy_type, params["policy"])
        resources = policy_resources(policy_type, doc)
        if policy_type == "encryption":
            _check_unique_encryption_patterns(call, name, resources)
        if doc != stored["policy"]:
            stored["policy"], stored["resources"] = doc, resources
            changed = True
    if "description" in params and params["description"] != stored.get("description"):
        stored["description"] = params["description"]
        changed = True
    if changed:
        # Strictly later than before, so a change always yields a new policyVersion.
        modified = max(epoch_ms(call.now), stored["lastModifiedDate"] + 1)
        stored["lastModifiedDate"] = modified
        stored["policyVersion"] = _version(modified)
        call.resources.put(KIND_POLICY, key, stored)
    return {"securityPolicyDetail": _detail(stored)}


def delete_security_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy_type, name = params["type"], params["name"]
    if not call.resources.delete(KIND_POLICY, _key(policy_type, name)):
        raise _not_found(policy_type, name)
    _reference(call, policy_type, name)
    return {}


def list_security_policies(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy_type = params["type"]
    filters = params.get("resource") or []
    limit = page_size(params)
    after = None
    if params.get("nextToken") is not None:
        after = decode_token("ListSecurityPolicies", params["nextToken"], 1)[0]
    summaries: list[dict[str, Any]] = []
    next_token = None
    for stored in call.resources.list(KIND_POLICY, f"{policy_type}/"):
        if after is not None and stored["name"] <= after:
            continue
        if filters and not any(
            patterns_overlap(wanted, pattern)
            for wanted in filters
            for pattern in stored["resources"]
        ):
            continue
        if len(summaries) == limit:
            next_token = encode_token("ListSecurityPolicies", [summaries[-1]["name"]])
            break
        summaries.append(_detail(stored, with_policy=False))
    output: dict[str, Any] = {"securityPolicySummaries": summaries}
    if next_token is not None:
        output["nextToken"] = next_token
    return output
