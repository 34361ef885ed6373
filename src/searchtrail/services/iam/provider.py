"""IAM (``iam``, query protocol) provider: the subset searchtrail serves, as a handler table.

Every handler is ``handler(call, params) -> output`` with the model's member names
(PascalCase), native types (``datetime`` for timestamps) and policy documents
percent-encoded as IAM sends them. Errors are ``ServiceError`` with IAM's codes and
statuses (NoSuchEntity 404, EntityAlreadyExists 409, MalformedPolicyDocument 400,
LimitExceeded 409, DeleteConflict 409, InvalidInput 400, ValidationError 400,
PasswordPolicyViolation 400).

IAM is global: state lives in the caller's account scope with region ``""``; CloudTrail
records IAM calls in us-east-1 (the gateway's concern).

``changed(access_key_id | None)`` is called, inside the changing call, whenever what the
credential resolver built for a key may be stale: a key deactivated, reactivated or
deleted (its id), or user/role tags changed or a role deleted (None: possibly many keys).
Wire it to ``CredentialResolver.forget``. Policy changes need no signal: the authorizer
reads policies live with ``auth.identities.policies_for``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from searchtrail.auth.authorizer import named_entity, resource_tag_keys
from searchtrail.auth.identities import (
    ACCESS_KEYS_PER_USER,
    KIND_KEY_REF,
    KIND_OIDC_PROVIDER,
    KIND_POLICY,
    KIND_ROLE,
    KIND_USER,
    key_ref,
)
from searchtrail.auth.password_threads import PasswordThreads
from searchtrail.services.registry import Preparer

from . import oidc, policies, roles, users
from .common import identities

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]
Changed = Callable[[str | None], None]


def _ignore(_: str | None) -> None:
    return None


def get_account_summary(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    scope = identities(call).scope(call.account_id)
    versions = sum(len(policy.get("Versions", ())) for policy in scope.list(KIND_POLICY))
    summary = {
        "Users": scope.count(KIND_USER),
        "UsersQuota": 5000,
        "Roles": scope.count(KIND_ROLE),
        "RolesQuota": 1000,
        "Policies": scope.count(KIND_POLICY),
        "PoliciesQuota": 1500,
        "PolicyVersionsInUse": versions,
        "PolicyVersionsInUseQuota": 10000,
        "VersionsPerPolicyQuota": policies.VERSIONS_PER_POLICY,
        "PolicySizeQuota": policies.MANAGED_SIZE,
        "UserPolicySizeQuota": policies.USER_INLINE_SIZE,
        "RolePolicySizeQuota": policies.ROLE_INLINE_SIZE,
        "AssumeRolePolicySizeQuota": roles.TRUST_POLICY_SIZE,
        "AttachedPoliciesPerUserQuota": policies.ATTACHED_PER_ENTITY,
        "AttachedPoliciesPerRoleQuota": policies.ATTACHED_PER_ENTITY,
        "AttachedPoliciesPerGroupQuota": policies.ATTACHED_PER_ENTITY,
        "AccessKeysPerUserQuota": ACCESS_KEYS_PER_USER,
        "AccountAccessKeysPresent": 1 if scope.list(KIND_KEY_REF, key_ref(None)) else 0,
        "AccountMFAEnabled": 0,
        "AccountSigningCertificatesPresent": 0,
        "Groups": 0,
        "GroupsQuota": 300,
        "GroupsPerUserQuota": 10,
        "GroupPolicySizeQuota": 5120,
        "InstanceProfiles": 0,
        "InstanceProfilesQuota": 1000,
        "MFADevices": 0,
        "MFADevicesInUse": 0,
        "Providers": scope.count(KIND_OIDC_PROVIDER),
        "ServerCertificates": 0,
        "ServerCertificatesQuota": 20,
        "SigningCertificatesPerUserQuota": 2,
        "GlobalEndpointTokenVersion": 1,
    }
    return {"SummaryMap": summary}


class IamProvider:
    """The IAM operations searchtrail implements, as a name -> handler table. A login
    profile's password is hashed before its call's unit of work, on ``password_threads``
    (without them, in the handler)."""

    def __init__(self, changed: Changed | None = None,
                 password_threads: PasswordThreads | None = None) -> None:
        self.changed: Changed = changed or _ignore
        self._password_threads = password_threads

    def preparers(self) -> dict[str, Preparer]:
        """Run before an operation's unit of work (ServiceRegistry.preparer)."""
        if self._password_threads is None:
            return {}
        return {name: self._hash_password for name in users.HASHES_PASSWORD}

    async def _hash_password(self, params: dict[str, Any]) -> dict[str, Any]:
        password = params.get("Password")
        if not password or self._password_threads is None:
            return {}
        return {users.PASSWORD_HASH: await self._password_threads.hash(password)}

    @staticmethod
    def resource_condition_keys(repo: Any, operation: str, params: dict[str, Any],
                                resource: str) -> list[dict[str, Any]]:
        """ServiceRegistry.resource_condition_keys: a user's or role's tags."""
        entity = named_entity(repo, resource)
        return [resource_tag_keys(entity.get("Tags"), iam=True)] if entity else []

    def handlers(self) -> dict[str, Handler]:
        changed = self.changed
        user, role = "user", "role"
        return {
            # users
            "CreateUser": users.create_user,
            "GetUser": users.get_user,
            "ListUsers": users.list_users,
            "DeleteUser": users.delete_user,
            "TagUser": partial(users.tag_user, changed=changed),
            "UntagUser": partial(users.untag_user, changed=changed),
            "ListUserTags": users.list_user_tags,
            # access keys
            "CreateAccessKey": users.create_access_key,
            "ListAccessKeys": users.list_access_keys,
            "UpdateAccessKey": partial(users.update_access_key, changed=changed),
            "DeleteAccessKey": partial(users.delete_access_key, changed=changed),
            "GetAccessKeyLastUsed": users.get_access_key_last_used,
            # login profiles
            "CreateLoginProfile": users.create_login_profile,
            "UpdateLoginProfile": users.update_login_profile,
            "GetLoginProfile": users.get_login_profile,
            "DeleteLoginProfile": users.delete_login_profile,
            # roles
            "CreateRole": roles.create_role,
            "GetRole": roles.get_role,
            "ListRoles": roles.list_roles,
            "UpdateRole": roles.update_role,
            "DeleteRole": partial(roles.delete_role, changed=changed),
            "UpdateAssumeRolePolicy": roles.update_assume_role_policy,
            "TagRole": partial(roles.tag_role, changed=changed),
            "UntagRole": partial(roles.untag_role, changed=changed),
            "ListRoleTags": roles.list_role_tags,
            # inline policies
            "PutUserPolicy": partial(_kind(policies.put_inline), user),
            "GetUserPolicy": partial(_kind(policies.get_inline), user),
            "ListUserPolicies": partial(_kind(policies.list_inline), user),
            "DeleteUserPolicy": partial(_kind(policies.delete_inline), user),
            "PutRolePolicy": partial(_kind(policies.put_inline), role),
            "GetRolePolicy": partial(_kind(policies.get_inline), role),
            "ListRolePolicies": partial(_kind(policies.list_inline), role),
            "DeleteRolePolicy": partial(_kind(policies.delete_inline), role),
            # managed policies
            "CreatePolicy": policies.create_policy,
            "GetPolicy": policies.get_policy,
            "ListPolicies": policies.list_policies,
            "DeletePolicy": policies.delete_policy,
            "CreatePolicyVersion": policies.create_policy_version,
            "GetPolicyVersion": policies.get_policy_version,
            "ListPolicyVersions": policies.list_policy_versions,
            "SetDefaultPolicyVersion": policies.set_default_policy_version,
            "DeletePolicyVersion": policies.delete_policy_version,
            # attachments
            "AttachUserPolicy": partial(_kind(policies.attach), user),
            "DetachUserPolicy": partial(_kind(policies.detach), user),
            "ListAttachedUserPolicies": partial(_kind(policies.list_attached), user),
            "AttachRolePolicy": partial(_kind(policies.attach), role),
            "DetachRolePolicy": partial(_kind(policies.detach), role),
            "ListAttachedRolePolicies": partial(_kind(policies.list_attached), role),
            # OIDC providers
            "CreateOpenIDConnectProvider": oidc.create_open_id_connect_provider,
            "GetOpenIDConnectProvider": oidc.get_open_id_connect_provider,
            "ListOpenIDConnectProviders": oidc.list_open_id_connect_providers,
            "DeleteOpenIDConnectProvider": oidc.delete_open_id_connect_provider,
            "AddClientIDToOpenIDConnectProvider": oidc.add_client_id,
            "RemoveClientIDFromOpenIDConnectProvider": oidc.remove_client_id,
            "UpdateOpenIDConnectProviderThumbprint": oidc.update_thumbprints,
            # account
            "GetAccountSummary": get_account_summary,
        }



def _kind(function: Callable[[Any, str, dict[str, Any]], dict[str, Any]]
          ) -> Callable[[str, Any, dict[str, Any]], dict[str, Any]]:
    """Adapt ``function(call, kind, params)`` to ``partial(adapted, kind)(call, params)``."""

    def adapted(kind: str, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return function(call, kind, params)

    adapted.__name__ = function.__name__
    return adapted
