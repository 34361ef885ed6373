"""IAM roles: trust policies, session duration, tags."""

from __future__ import annotations

import re
from typing import Any, Callable

from searchtrail.auth.identities import iso, name_key, new_unique_id

from . import policies
from .common import (
    date,
    delete_conflict,
    encode_document,
    identities,
    limit_exceeded,
    malformed,
    merged_tags,
    paginate,
    path_of,
    policy_size,
    require_role,
    under_prefix,
    without_tags,
)
from .documents import TRUST, validate

Changed = Callable[[str | None], None]

DEFAULT_MAX_SESSION = 3600
TRUST_POLICY_SIZE = 2048  # AssumeRolePolicySizeQuota, white space excluded
_LOCAL_ARN = re.compile(r"^arn:aws:iam::(\d{12}):(user|role)(?:/[\x21-\x7e]*)?/([\w+=,.@-]+)$")


def role_view(role: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Path": role.get("Path", "/"),
        "RoleName": role["RoleName"],
        "RoleId": role["RoleId"],
        "Arn": role["Arn"],
        "CreateDate": date(role["CreateDate"]),
        "AssumeRolePolicyDocument": encode_document(role["AssumeRolePolicyDocument"]),
    }
    if role.get("Description") is not None:
        view["Description"] = role["Description"]
    view["MaxSessionDuration"] = role.get("MaxSessionDuration", DEFAULT_MAX_SESSION)
    if full:
        if role.get("PermissionsBoundary"):
            view["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": role["PermissionsBoundary"]}
        if role.get("Tags"):
            view["Tags"] = [dict(tag) for tag in role["Tags"]]
        last = role.get("RoleLastUsed")
        view["RoleLastUsed"] = ({"LastUsedDate": date(last["LastUsedDate"]),
                                 "Region": last["Region"]} if last else {})
    return view


def _aws_principals(document: dict[str, Any]) -> list[str]:
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements or []
    found: list[str] = []
    for statement in statements:
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        if isinstance(principal, dict):
            value = principal.get("AWS")
            found.extend([value] if isinstance(value, str) else
                         [item for item in value or [] if isinstance(item, str)])
    return found


def check_trust_policy(call: Any, text: str) -> None:
    """Validate a trust policy; like IAM, refuse user/role principals that do not exist
    (checked for accounts this server holds)."""
    document = validate(text, TRUST)
    if policy_size(text) > TRUST_POLICY_SIZE:
        raise limit_exceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")
    ids = identities(call)
    for arn in _aws_principals(document):
        match = _LOCAL_ARN.match(arn)
        if match is None or not ids.account_exists(match.group(1)):
            continue
        account, kind, name = match.groups()
        entity = ids.get_user(account, name) if kind == "user" else ids.get_role(account, name)
        if entity is None or entity["Arn"] != arn:
            raise malformed(f'Invalid principal in policy: "AWS":"{arn}"')


def create_role(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    text = params["AssumeRolePolicyDocument"]
    check_trust_policy(call, text)
    name, path = params["RoleName"], path_of(params)
    role: dict[str, Any] = {
        "RoleName": name,
        "RoleId": new_unique_id("AROA"),
        "Arn": f"arn:aws:iam::{call.account_id}:role{path}{name}",
        "Path": path,
        "CreateDate": iso(call.now),
        "AssumeRolePolicyDocument": text,
        "MaxSessionDuration": params.get("MaxSessionDuration") or DEFAULT_MAX_SESSION,
    }
    if params.get("Description") is not None:
        role["Description"] = params["Description"]
    tags = merged_tags([], params.get("Tags") or [], "TagsPerRole")
    if tags:
        role["Tags"] = tags
    if params.get("PermissionsBoundary"):
        policies.use_as_boundary(call, params["PermissionsBoundary"], +1)
        role["PermissionsBoundary"] = params["PermissionsBoundary"]
    identities(call).insert_role(call.account_id, role)
    view = role_view(role, full=False)
    if role.get("Tags"):
        view["Tags"] = [dict(tag) for tag in role["Tags"]]
    return {"Role": view}


def get_role(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"Role": role_view(require_role(call, params["RoleName"]))}


def list_roles(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    roles = [role for role in identities(call).list_roles(call.account_id)
             if under_prefix(role, params)]
    output = paginate(roles, lambda role: name_key(role["RoleName"]), params, "Roles",
                      "ListRoles")
    output["Roles"] = [role_view(role, full=False) for role in output["Roles"]]
    return output


def update_role(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    if params.get("Description") is not None:
        role["Description"] = params["Description"]
    if params.get("MaxSessionDuration") is not None:
        role["MaxSessionDuration"] = params["MaxSessionDuration"]
    identities(call).put_role(call.account_id, role)
    return {}


def delete_role(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    if role.get("InlinePolicies"):
        raise delete_conflict("Cannot delete entity, must delete policies first.")
    if role.get("AttachedPolicies"):
        raise delete_conflict("Cannot delete entity, must detach all policies first.")
    if role.get("PermissionsBoundary"):
        policies.use_as_boundary(call, role["PermissionsBoundary"], -1)
    identities(call).delete_role(call.account_id, role["RoleName"])
    changed(None)  # its sessions lose the role's tags
    return {}


def update_assume_role_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    check_trust_policy(call, params["PolicyDocument"])
    role["AssumeRolePolicyDocument"] = params["PolicyDocument"]
    identities(call).put_role(call.account_id, role)
    return {}


def tag_role(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    role["Tags"] = merged_tags(role.get("Tags", []), params["Tags"], "TagsPerRole")
    identities(call).put_role(call.account_id, role)
    changed(None)  # principal tags of the role's sessions
    return {}


def untag_role(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    role["Tags"] = without_tags(role.get("Tags", []), params["TagKeys"])
    identities(call).put_role(call.account_id, role)
    changed(None)
    return {}


def list_role_tags(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    role = require_role(call, params["RoleName"])
    return paginate(role.get("Tags", []), lambda tag: tag["Key"], params, "Tags", "ListRoleTags")
