"""The chain's authorize step: the caller's policies, read live inside the call's unit of work.

A denial raises AccessDenied(Exception) before the provider runs, so there is no side effect
and the call is recorded with that error, as on AWS.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from itertools import repeat
from typing import Any, Callable, Iterable, Mapping

from searchtrail.auth import actions, policy
from searchtrail.auth.identities import Identities, policies_for
from searchtrail.auth.principals import FEDERATION_TOKEN, SESSION_TOKEN, Principal
from searchtrail.protocol.errors import ServiceError
from searchtrail.store.api import ResourceRepository

# Callable by anyone authenticated, as on AWS (no policy can deny them).
UNGUARDED = frozenset({("sts", "GetCallerIdentity"), ("sts", "GetSessionToken")})
# Unsigned: the role's trust policy, checked by the STS provider, is the whole decision.
TRUST_ONLY = frozenset({("sts", "AssumeRoleWithWebIdentity"), ("sts", "AssumeRoleWithSAML")})
# Condition keys a resource's stored state gives (its tags; a collection's name and id; the
# collections and indexes a policy document names). They can cost a store read, so they are
# computed only when one of the caller's policies names one.
RESOURCE_STATE_KEYS = ("aws:resourcetag/", "iam:resourcetag/", "aoss:collection", "aoss:index")


def _session_extras(principal: Principal, params: Mapping[str, Any]) -> list[str]:
    """The permissions-only actions a new session's request needs besides its own (AWS: "Pass
    session tags in AWS STS", "Monitor and control actions taken with assumed roles"):
    sts:TagSession to pass tags, its caller's transitive ones included, and
    sts:SetSourceIdentity to set a source identity. The caller's policies must allow them as
    they allow the call, and a Deny of them refuses it."""
    extras = []
    if params.get("Tags") or any(key in principal.tags for key in principal.transitive_tag_keys):
        extras.append("sts:TagSession")
    if params.get("SourceIdentity"):
        extras.append("sts:SetSourceIdentity")
    return extras


# Names a policy among the caller's that cannot be evaluated (written before the check that
# refuses its flaw): it denies, as a Deny would, rather than fail the call with a 500.
UNUSABLE_POLICY = "policy that cannot be evaluated"

# Calls that make a session: (service, operation) -> the other actions they may need.
SESSION_EXTRAS = {("sts", "AssumeRole"): _session_extras,
                  ("sts", "GetFederationToken"): _session_extras}

# (repo, service, operation, params, resource ARN) -> one dict of condition keys per resource
# the call acts on there (ServiceRegistry.resource_condition_keys).
ResourceKeys = Callable[[ResourceRepository, str, str, Mapping[str, Any], str],
                        list[dict[str, Any]]]


# (repo, service, operation, resource ARN, caller's account) -> what a resource of another
# account grants that account by itself (ServiceRegistry.resource_grant).
ResourceGrants = Callable[[ResourceRepository, str, str, str, str], "policy.ResourceGrant"]


class Authorizer:
    def __init__(self, resource_keys: ResourceKeys | None = None,
                 resource_grants: ResourceGrants | None = None,
                 organization_id: str = "") -> None:
        self._resource_keys = resource_keys
        self._resource_grants = resource_grants
        self._organization_id = organization_id

    def check(self, repo: ResourceRepository, ctx: Any, now: datetime) -> None:
        service, operation = ctx.service_name, ctx.operation_name
        if (service, operation) in UNGUARDED or (service, operation) in TRUST_ONLY:
            return
        principal: Principal = ctx.principal
        action = actions.action_name(service, operation)
        if service == "iam" and principal.credential_source == SESSION_TOKEN and not principal.mfa:
            # AWS: GetSessionToken credentials call no IAM API unless MFA was given for them
            raise ServiceError("AccessDenied", f"User: {principal.arn} is not authorized to "
                               f"perform: {action} with credentials from GetSessionToken "
                               "without MFA authentication", status=403)
        if service in ("iam", "sts") and principal.credential_source == FEDERATION_TOKEN:
            # AWS: GetFederationToken credentials call no IAM API and no STS API but
            # GetCallerIdentity, whatever the policies (else one could make long-term keys
            # for the user who issued them)
            raise ServiceError("AccessDenied", f"User: {principal.arn} is not authorized to "
                               f"perform: {action} with credentials from GetFederationToken",
                               status=403)
        resources = actions.resource_arns(service, operation, ctx.params or {},
                                          principal.account_id, ctx.region,
                                          caller_arn=principal.arn)
        if service == "iam":
            resources = [_stored_entity_arn(repo, arn) for arn in resources]
        policies = _policy_set(repo, principal)
        assume_role = (service, operation) == ("sts", "AssumeRole")
        # The root in its own account is allowed without conditions: skip building them.
        context = ({} if policies.is_root and not assume_role
                   else self._context(principal, now=now, region=ctx.region,
                                      source_ip=ctx.source_ip,
                                      secure_transport=ctx.tls is not None,
                                      user_agent=ctx.user_agent,
                                      extra=request_keys(ctx.operation_name, ctx.params or {})))
        stored_state = False
        if not policies.is_root:
            policies = policy.compiled(policies)  # once, not at each resource's evaluation
            stored_state = (self._resource_keys is not None
                            and policy.names_key(policies, RESOURCE_STATE_KEYS))
        questions = (self._with_stored_state(repo, ctx, resources, context) if stored_state
                     else zip(resources, repeat(context)))
        extras = SESSION_EXTRAS.get((service, operation))
        also = extras(principal, ctx.params or {}) if extras is not None else None
        for resource, each in questions:
            owner = policy.owning_account(resource) if each else ""  # the root needs no keys
            if owner and owner != principal.account_id:
                each = {**each, "aws:ResourceAccount": owner}
            request = policy.AuthorizationRequest(action, resource, principal.arn,
                                                  principal.account_id, context=each)
            self._decide(repo, ctx, principal, policies, request, assume_role)
            for extra in also or ():
                self._decide(repo, ctx, principal, policies, replace(request, action=extra),
                             assume_role)

    def require(self, repo: ResourceRepository, principal: Principal, action: str,
                resource: str, now: datetime, *, region: str, source_ip: str | None,
                secure_transport: bool, user_agent: str | None,
                extra: Mapping[str, Any] | None = None) -> None:
        """Raise AccessDenied unless ``principal``'s policies allow ``action`` on ``resource``
        of its own account: for requests that are no API operation (the read-only S3 API's
        s3:ListBucket, s3:GetObject ...). ``extra``: the request's own condition keys."""
        policies = _policy_set(repo, principal)
        context = ({} if policies.is_root
                   else self._context(principal, now=now, region=region, source_ip=source_ip,
                                      secure_transport=secure_transport, user_agent=user_agent,
                                      extra=extra or {}))
        request = policy.AuthorizationRequest(action, resource, principal.arn,
                                              principal.account_id, context=context)
        self._decide(repo, None, principal, policies, request, assume_role=False)

    def _context(self, principal: Principal, *, now: datetime, region: str,
                 source_ip: str | None, secure_transport: bool, user_agent: str | None,
                 extra: Mapping[str, Any]) -> dict[str, Any]:
        """The condition keys of a request by ``principal`` on a resource of its own account
        (another account's resource is named per resource: ``check``)."""
        context = caller_context(principal, now=now, region=region, source_ip=source_ip,
                                 secure_transport=secure_transport, user_agent=user_agent,
                                 organization_id=self._organization_id, extra=extra)
        context["aws:ResourceAccount"] = principal.account_id
        if self._organization_id:  # every account is in the installation's organization
            context["aws:ResourceOrgID"] = self._organization_id
        return context

    def _decide(self, repo: ResourceRepository, ctx: Any, principal: Principal,
                policies: policy.PolicySet, request: policy.AuthorizationRequest,
                assume_role: bool) -> None:
        """Raise AccessDenied unless the policies allow ``request`` (``ctx`` None: no API
        operation, so no resource of another account grants it)."""
        try:
            if assume_role:
                decision = self._assume_role(repo, principal, policies, request,
                                             ctx.params or {})
            else:
                grant = self._grant(repo, ctx, request) if ctx is not None else None
                decision = policy.evaluate(policies, request, resource_grant=grant)
        except policy.MalformedPolicyError:  # stored before its flaw was refused
            decision = policy.Decision(False, "explicit_deny", UNUSABLE_POLICY)
        if not decision.allowed:
            raise policy.access_denied(principal.arn, request.action, request.resource,
                                       decision)

    def _grant(self, repo: ResourceRepository, ctx: Any,
               request: policy.AuthorizationRequest) -> policy.ResourceGrant:
        """What the resource grants the caller by itself when it is another account's."""
        if (self._resource_grants is None
                or request.resource_account == request.principal_account):
            return None
        return self._resource_grants(repo, ctx.service_name, ctx.operation_name,
                                     request.resource, request.principal_account)

    def _with_stored_state(self, repo: ResourceRepository, ctx: Any, resources: list[str],
                           context: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(resource, context) questions with the keys of the stored resources the call acts
        on: one per resource, or one per collection a batch names under ``*``."""
        assert self._resource_keys is not None
        questions = []
        for resource in resources:
            found = self._resource_keys(repo, ctx.service_name, ctx.operation_name,
                                        ctx.params or {}, resource)
            questions += [(resource, {**context, **keys}) for keys in found] or [
                (resource, context)]
        return questions

    def _assume_role(self, repo: ResourceRepository, principal: Principal,
                     policies: policy.PolicySet, request: policy.AuthorizationRequest,
                     params: dict[str, Any]) -> policy.Decision:
        """AWS's rule: the trust policy may grant the call by itself when it names the caller."""
        role = _role(repo, request.resource)
        if role is None:
            return policy.evaluate(policies, request)  # the provider answers NoSuchEntity
        request_keys = {"sts:ExternalId": params.get("ExternalId"),
                        "sts:RoleSessionName": params.get("RoleSessionName"),
                        "sts:SourceIdentity": params.get("SourceIdentity")}
        trust = policy.TrustRequest(
            role_arn=request.resource, action=request.action, principal_arn=principal.arn,
            principal_account=principal.account_id,
            context={**request.context, **{k: v for k, v in request_keys.items() if v is not None}})
        return policy.authorize_assume_role(json.loads(role["AssumeRolePolicyDocument"]), trust,
                                            policies, request)


def _policy_set(repo: ResourceRepository, principal: Principal) -> policy.PolicySet:
    """The principal's identity and session policies and its boundary."""
    identity, boundary = policies_for(repo, principal)
    return policy.PolicySet(identity=identity, session=principal.session_policies,
                            boundary=boundary, is_root=principal.is_root)


def caller_context(principal: Principal, *, now: datetime, region: str, source_ip: str | None,
                   secure_transport: bool, user_agent: str | None, organization_id: str,
                   extra: Mapping[str, Any]) -> dict[str, Any]:
    """The global condition keys of a signed call by ``principal``, with ``extra`` keys of
    the request's own: for the authorizer's policies and for STS's trust policies alike.
    Every account of an installation is in its one organization (``organization_id``)."""
    session = principal.session
    return policy.request_context(
        extra=extra,
        principal_arn=principal.issuer_arn if principal.kind == "AssumedRole" else principal.arn,
        principal_account=principal.account_id, principal_type=principal.principal_type,
        userid=principal.userid, now=now, region=region, source_ip=source_ip,
        secure_transport=secure_transport, username=principal.username,
        mfa_present=principal.mfa if session is not None else None,
        token_issue_time=session.creation_date if session is not None else None,
        source_identity=principal.source_identity,
        federated_provider=session.federated_provider if session is not None else None,
        user_agent=user_agent, organization_id=organization_id, principal_tags=principal.tags)


# IAM actions whose request names a managed policy by iam:PolicyARN.
_POLICY_ARN_ACTIONS = frozenset({"AttachUserPolicy", "DetachUserPolicy", "AttachRolePolicy",
                                 "DetachRolePolicy", "AttachGroupPolicy", "DetachGroupPolicy"})


def request_keys(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The condition keys a request's own members give: the tags it sets (aws:RequestTag/<key>,
    aws:TagKeys) or removes (aws:TagKeys), the managed policy it attaches or detaches
    (iam:PolicyARN) and the permissions boundary it sets (iam:PermissionsBoundary). Keys a
    resource's stored state gives (aws:ResourceTag/<key>) come from its provider instead
    (ServiceRegistry.resource_condition_keys)."""
    keys: dict[str, Any] = {}
    tags = params.get("Tags", params.get("tags", params.get("TagsList")))
    if isinstance(tags, list):
        pairs = _tag_pairs(tags)
        keys.update({f"aws:RequestTag/{key}": value for key, value in pairs})
        keys["aws:TagKeys"] = [key for key, _ in pairs]
    removed = params.get("TagKeys", params.get("tagKeys"))
    if isinstance(removed, list):
        keys["aws:TagKeys"] = list(removed)
    if operation in _POLICY_ARN_ACTIONS and params.get("PolicyArn"):
        keys["iam:PolicyARN"] = params["PolicyArn"]
    if params.get("PermissionsBoundary"):
        keys["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    return keys


def resource_tag_keys(tags: list[dict[str, str]] | None, *, iam: bool = False) -> dict[str, str]:
    """aws:ResourceTag/<key> (and iam:ResourceTag/<key> for IAM entities) of a resource's
    stored tags, a list of {Key, Value} or {key, value}."""
    keys: dict[str, str] = {}
    for key, value in _tag_pairs(tags or ()):
        keys[f"aws:ResourceTag/{key}"] = value
        if iam:
            keys[f"iam:ResourceTag/{key}"] = value
    return keys


def _tag_pairs(tags: Iterable[Any]) -> list[tuple[str, str]]:
    """(key, value) of each {Key, Value} or {key, value} tag that has a key (value "" if none)."""
    pairs = [(tag.get("Key", tag.get("key")), tag.get("Value", tag.get("value", "")))
             for tag in tags if isinstance(tag, dict)]
    return [(key, value) for key, value in pairs if key is not None]


def _stored_entity_arn(repo: ResourceRepository, arn: str) -> str:
    """The ARN of the IAM user or role a request names by name, as stored: with its path and
    its name's own case (names are looked up whatever their case), which is what a policy's
    Resource names. ``arn`` as it is when it names no such entity (the call then fails as
    NoSuchEntity, or creates it)."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[5].count("/") != 1:
        return arn  # a request's ARN has no path; a stored one is kept as it is
    entity = named_entity(repo, arn)
    return entity.get("Arn", arn) if entity else arn


def named_entity(repo: ResourceRepository, arn: str) -> dict[str, Any] | None:
    """The stored IAM user or role an ARN names (by its last name segment, any case)."""
    parts = arn.split(":", 5)
    kind, _, name = parts[5].partition("/") if len(parts) == 6 else ("", "", "")
    name = name.rsplit("/", 1)[-1]
    if kind not in ("user", "role") or not name:
        return None
    identities = Identities(repo)
    return (identities.get_user if kind == "user" else identities.get_role)(parts[4], name)


def _role(repo: ResourceRepository, role_arn: str) -> dict | None:
    parts = role_arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return None
    return Identities(repo).get_role(parts[4], parts[5].rsplit("/", 1)[-1])
