"""Inline policies of users and roles, managed policies with versions, and attachments.

Inline policies live on the user/role document (``InlinePolicies`` {name: text}); attached
managed policies too (``AttachedPolicies`` [ARN, …]), with the policy's own
``AttachmentCount`` kept in step (AWS managed policies count in ``iam-aws-policy-usage``).
Nothing here signals the credential cache: the authorizer reads policies live
(``auth.identities.policies_for``) inside each request's unit of work.
"""

from __future__ import annotations

from typing import Any, Callable

from searchtrail.auth.identities import (
    AWS_MANAGED_POLICIES,
    KIND_AWS_POLICY_USAGE,
    KIND_POLICY,
    KIND_POLICY_NAME,
    POLICY_ARN,
    default_document,
    iso,
    name_key,
    new_unique_id,
)
from searchtrail.store.api import Conflict

from .common import (
    already_exists,
    date,
    delete_conflict,
    encode_document,
    identities,
    invalid_input,
    limit_exceeded,
    merged_tags,
    no_such_entity,
    paginate,
    path_of,
    policy_size,
    require_role,
    require_user,
    under_prefix,
)
from .documents import IDENTITY, validate

USER_INLINE_SIZE = 2048  # aggregate of a user's inline policies, white space excluded
ROLE_INLINE_SIZE = 10240
MANAGED_SIZE = 6144
ATTACHED_PER_ENTITY = 10
VERSIONS_PER_POLICY = 5
ATTACHMENT_COUNT = "AttachmentCount"
BOUNDARY_COUNT = "PermissionsBoundaryUsageCount"


class Entity:
    """A user or a role, seen by the operations both have (inline and attached policies)."""

    def __init__(self, call: Any, kind: str, name: str) -> None:
        self.call = call
        self.kind = kind  # "user" | "role"
        self.doc = require_user(call, name) if kind == "user" else require_role(call, name)
        self.name = self.doc["UserName" if kind == "user" else "RoleName"]

    @property
    def name_member(self) -> str:
        return "UserName" if self.kind == "user" else "RoleName"

    def save(self) -> None:
        ids = identities(self.call)
        if self.kind == "user":
            ids.put_user(self.call.account_id, self.doc)
        else:
            ids.put_role(self.call.account_id, self.doc)


# --- inline policies -------------------------------------------------------------------------


def put_inline(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params["UserName" if kind == "user" else "RoleName"])
    text = params["PolicyDocument"]
    validate(text, IDENTITY)
    inline = dict(entity.doc.get("InlinePolicies", {}))
    inline[params["PolicyName"]] = text
    limit = USER_INLINE_SIZE if kind == "user" else ROLE_INLINE_SIZE
    if sum(policy_size(document) for document in inline.values()) > limit:
        raise limit_exceeded(f"Maximum policy size of {limit} bytes exceeded for {kind} "
                             f"{entity.name}")
    entity.doc["InlinePolicies"] = inline
    entity.save()
    return {}


def _inline(entity: Entity, policy_name: str) -> str:
    text = entity.doc.get("InlinePolicies", {}).get(policy_name)
    if text is None:
        raise no_such_entity(f"The {entity.kind} policy with name {policy_name} cannot be found.")
    return text


def get_inline(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params[("UserName" if kind == "user" else "RoleName")])
    text = _inline(entity, params["PolicyName"])
    return {entity.name_member: entity.name, "PolicyName": params["PolicyName"],
            "PolicyDocument": encode_document(text)}


def list_inline(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params[("UserName" if kind == "user" else "RoleName")])
    names = list(entity.doc.get("InlinePolicies", {}))
    operation = "ListUserPolicies" if kind == "user" else "ListRolePolicies"
    return paginate(names, lambda name: name, params, "PolicyNames", operation)


def delete_inline(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params[("UserName" if kind == "user" else "RoleName")])
    _inline(entity, params["PolicyName"])
    inline = dict(entity.doc["InlinePolicies"])
    del inline[params["PolicyName"]]
    entity.doc["InlinePolicies"] = inline
    entity.save()
    return {}


# --- managed policies ----------------------------------------------------------------------


def check_arn(arn: str) -> None:
    if not POLICY_ARN.match(arn):
        raise invalid_input(f"ARN {arn} is not valid.")


def require_policy(call: Any, arn: str) -> dict[str, Any]:
    check_arn(arn)
    policy = identities(call).get_managed_policy(call.account_id, arn)
    if policy is None:
        raise no_such_entity(f"Policy {arn} does not exist or is not attachable.")
    return policy


def _customer_policy(call: Any, arn: str) -> dict[str, Any]:
    policy = require_policy(call, arn)
    if arn in AWS_MANAGED_POLICIES:
        raise invalid_input(f"Policy {arn} is an AWS managed policy: it cannot be changed.")
    return policy


def _save(call: Any, policy: dict[str, Any]) -> None:
    identities(call).scope(call.account_id).put(KIND_POLICY, policy["Arn"], policy)


def _usage(call: Any, arn: str) -> dict[str, int]:
    if arn in AWS_MANAGED_POLICIES:
        doc = identities(call).scope(call.account_id).get(KIND_AWS_POLICY_USAGE, arn) or {}
    else:
        doc = identities(call).scope(call.account_id).get(KIND_POLICY, arn) or {}
    return {ATTACHMENT_COUNT: doc.get(ATTACHMENT_COUNT, 0),
            BOUNDARY_COUNT: doc.get(BOUNDARY_COUNT, 0)}


def count_use(call: Any, arn: str, member: str, delta: int) -> None:
    scope = identities(call).scope(call.account_id)
    kind = KIND_AWS_POLICY_USAGE if arn in AWS_MANAGED_POLICIES else KIND_POLICY
    doc = scope.get(kind, arn)
    if doc is None:
        if kind == KIND_POLICY:
            return
        doc = {}
    doc[member] = max(0, doc.get(member, 0) + delta)
    scope.put(kind, arn, doc)


def use_as_boundary(call: Any, arn: str, delta: int) -> None:
    """Count a permissions boundary's use (the policy must exist to be set)."""
    if delta > 0:
        require_policy(call, arn)
    count_use(call, arn, BOUNDARY_COUNT, delta)


def policy_view(call: Any, policy: dict[str, Any], *, description: bool = True,
                tags: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "PolicyName": policy["PolicyName"],
        "PolicyId": policy["PolicyId"],
        "Arn": policy["Arn"],
        "Path": policy.get("Path", "/"),
        "DefaultVersionId": policy["DefaultVersionId"],
        **_usage(call, policy["Arn"]),
        "IsAttachable": True,
        "CreateDate": date(policy["CreateDate"]),
        "UpdateDate": date(policy["UpdateDate"]),
    }
    if description and policy.get("Description"):
        view["Description"] = policy["Description"]
    if tags and policy.get("Tags"):
        view["Tags"] = [dict(tag) for tag in policy["Tags"]]
    return view


def _check_managed_size(text: str) -> None:
    if policy_size(text) > MANAGED_SIZE:
        raise limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_SIZE}")


def create_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    text = params["PolicyDocument"]
    validate(text, IDENTITY)
    _check_managed_size(text)
    name = params["PolicyName"]
    path = path_of(params)
    arn = f"arn:aws:iam::{call.account_id}:policy{path}{name}"
    scope = identities(call).scope(call.account_id)
    try:
        scope.insert(KIND_POLICY_NAME, name_key(name), {"Arn": arn})
    except Conflict:
        raise already_exists(f"A policy called {name} already exists. Duplicate names are not "
                             "allowed.") from None
    created = iso(call.now)
    policy: dict[str, Any] = {
        "PolicyName": name,
        "PolicyId": new_unique_id("ANPA"),
        "Arn": arn,
        "Path": path,
        "CreateDate": created,
        "UpdateDate": created,
        "DefaultVersionId": "v1",
        "NextVersion": 2,
        ATTACHMENT_COUNT: 0,
        BOUNDARY_COUNT: 0,
        "Versions": [{"VersionId": "v1", "Document": text, "CreateDate": created}],
    }
    if params.get("Description"):
        policy["Description"] = params["Description"]
    tags = merged_tags([], params.get("Tags") or [], "TagsPerPolicy")
    if tags:
        policy["Tags"] = tags
    scope.insert(KIND_POLICY, arn, policy)
    return {"Policy": policy_view(call, policy)}


def get_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": policy_view(call, require_policy(call, params["PolicyArn"]))}


def list_policies(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    scope_filter = params.get("Scope") or "All"
    found: list[dict[str, Any]] = []
    if scope_filter in ("All", "AWS"):
        found.extend(dict(policy) for policy in AWS_MANAGED_POLICIES.values())
    if scope_filter in ("All", "Local"):
        found.extend(identities(call).scope(call.account_id).list(KIND_POLICY))
    views = []
    for policy in found:
        if not under_prefix(policy, params):
            continue
        view = policy_view(call, policy, description=False, tags=False)
        if params.get("OnlyAttached") and not view[ATTACHMENT_COUNT]:
            continue
        usage = params.get("PolicyUsageFilter")
        if usage == "PermissionsPolicy" and not view[ATTACHMENT_COUNT]:
            continue
        if usage == "PermissionsBoundary" and not view[BOUNDARY_COUNT]:
            continue
        views.append(view)
    return paginate(views, lambda view: f"{name_key(view['PolicyName'])}\x00{view['Arn']}",
                    params, "Policies", "ListPolicies")


def delete_policy(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = _customer_policy(call, params["PolicyArn"])
    if policy.get(ATTACHMENT_COUNT, 0):
        raise delete_conflict("Cannot delete a policy attached to entities.")
    if policy.get(BOUNDARY_COUNT, 0):
        raise delete_conflict("Cannot delete a policy used as a permissions boundary.")
    if len(policy["Versions"]) > 1:
        raise delete_conflict("This policy has more than one version. Before you delete a "
                              "policy, you must delete the policy's versions. The default "
                              "version is deleted with the policy.")
    scope = identities(call).scope(call.account_id)
    scope.delete(KIND_POLICY, policy["Arn"])
    scope.delete(KIND_POLICY_NAME, name_key(policy["PolicyName"]))
    return {}


def _version_view(policy: dict[str, Any], version: dict[str, Any], *,
                  document: bool) -> dict[str, Any]:
    view: dict[str, Any] = {}
    if document:
        view["Document"] = encode_document(version["Document"])
    view.update({"VersionId": version["VersionId"],
                 "IsDefaultVersion": version["VersionId"] == policy["DefaultVersionId"],
                 "CreateDate": date(version["CreateDate"])})
    return view


def _version(policy: dict[str, Any], version_id: str) -> dict[str, Any]:
    for version in policy["Versions"]:
        if version["VersionId"] == version_id:
            return version
    raise no_such_entity(f"Policy {policy['Arn']} version {version_id} does not exist or is "
                         "not attachable.")


def create_policy_version(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = _customer_policy(call, params["PolicyArn"])
    text = params["PolicyDocument"]
    validate(text, IDENTITY)
    _check_managed_size(text)
    if len(policy["Versions"]) >= VERSIONS_PER_POLICY:
        raise limit_exceeded(f"A managed policy can have up to {VERSIONS_PER_POLICY} versions. "
                             "Before you create a new version, you must delete an existing "
                             "version.")
    version_id = f"v{policy['NextVersion']}"
    version = {"VersionId": version_id, "Document": text, "CreateDate": iso(call.now)}
    policy["NextVersion"] += 1
    policy["Versions"].append(version)
    if params.get("SetAsDefault"):
        policy["DefaultVersionId"] = version_id
    policy["UpdateDate"] = iso(call.now)
    _save(call, policy)
    return {"PolicyVersion": _version_view(policy, version, document=False)}


def get_policy_version(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = require_policy(call, params["PolicyArn"])
    version = _version(policy, params["VersionId"])
    return {"PolicyVersion": _version_view(policy, version, document=True)}


def list_policy_versions(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = require_policy(call, params["PolicyArn"])
    versions = [_version_view(policy, version, document=False) for version in policy["Versions"]]
    return paginate(versions,  # newest first, as IAM lists them
                    lambda view: f"{10**9 - int(view['VersionId'][1:].split('.')[0]):010d}",
                    params, "Versions", "ListPolicyVersions")


def set_default_policy_version(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = _customer_policy(call, params["PolicyArn"])
    _version(policy, params["VersionId"])
    policy["DefaultVersionId"] = params["VersionId"]
    policy["UpdateDate"] = iso(call.now)
    _save(call, policy)
    return {}


def delete_policy_version(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    policy = _customer_policy(call, params["PolicyArn"])
    _version(policy, params["VersionId"])
    if params["VersionId"] == policy["DefaultVersionId"]:
        raise delete_conflict("Cannot delete the default version of a policy.")
    policy["Versions"] = [version for version in policy["Versions"]
                          if version["VersionId"] != params["VersionId"]]
    _save(call, policy)
    return {}


# --- attachments -----------------------------------------------------------------------------


def attach(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params["UserName" if kind == "user" else "RoleName"])
    arn = params["PolicyArn"]
    require_policy(call, arn)
    attached = list(entity.doc.get("AttachedPolicies", []))
    if arn in attached:
        return {}
    if len(attached) >= ATTACHED_PER_ENTITY:
        quota = "PoliciesPerUser" if kind == "user" else "PoliciesPerRole"
        raise limit_exceeded(f"Cannot exceed quota for {quota}: {ATTACHED_PER_ENTITY}.")
    entity.doc["AttachedPolicies"] = attached + [arn]
    entity.save()
    count_use(call, arn, ATTACHMENT_COUNT, +1)
    return {}


def detach(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params["UserName" if kind == "user" else "RoleName"])
    arn = params["PolicyArn"]
    check_arn(arn)
    attached = list(entity.doc.get("AttachedPolicies", []))
    if arn not in attached:
        raise no_such_entity(f"Policy {arn} was not found.")
    attached.remove(arn)
    entity.doc["AttachedPolicies"] = attached
    entity.save()
    count_use(call, arn, ATTACHMENT_COUNT, -1)
    return {}


def list_attached(call: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    entity = Entity(call, kind, params["UserName" if kind == "user" else "RoleName"])
    items = []
    for arn in entity.doc.get("AttachedPolicies", []):
        policy = identities(call).get_managed_policy(call.account_id, arn)
        if policy is None or not under_prefix(policy, params):
            continue
        # keyed by ARN, not by position: a detach between pages would shift the positions
        items.append((arn, {"PolicyName": policy["PolicyName"], "PolicyArn": arn}))
    operation = "ListAttachedUserPolicies" if kind == "user" else "ListAttachedRolePolicies"
    output = paginate(items, lambda item: item[0], params, "AttachedPolicies", operation)
    output["AttachedPolicies"] = [item[1] for item in output["AttachedPolicies"]]
    return output


def default_text(call: Any, arn: str) -> str:
    """The default version's text of a managed policy (NoSuchEntity when unknown)."""
    policy = require_policy(call, arn)
    text = default_document(policy)
    assert text is not None
    return text


Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]
