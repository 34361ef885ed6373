"""The IAM action and the resource ARN(s) each API operation is authorized against.

One table per service (botocore names ``opensearchserverless``, ``cloudtrail``, ``iam``,
``sts``; ``aoss`` is accepted for the first), following the Service Authorization Reference as
far as it is known here:

* aoss: operations on one collection (``id`` / ``collectionId``) ->
  ``arn:<p>:aoss:<region>:<acct>:collection/<id>``; tag operations -> their ``resourceArn``;
  CreateCollection, list, batch, policy, security-config, VPC-endpoint, collection-group and
  account operations -> ``*`` (not resource-scoped).
* cloudtrail: trail operations -> the trail ARN (a name becomes
  ``arn:<p>:cloudtrail:<region>:<acct>:trail/<name>``, an ARN is kept); event data stores,
  channels and dashboards likewise; AddTags/RemoveTags/ListTags and the resource-policy
  operations -> the ARNs they name; LookupEvents, ListTrails, DescribeTrails, ListPublicKeys,
  imports and other account-wide operations -> ``*``.
* iam: the user / group / role / policy / instance profile / provider / certificate / MFA
  device the operation acts on (``arn:<p>:iam::<acct>:user/<name>``; the Path is used when the
  operation carries one, otherwise the ARN has no path). Operations whose UserName is optional
  act on the caller. ListUsers/ListRoles/... -> ``user<PathPrefix>`` (``user/`` by default), as
  AWS reports them; account-wide operations -> ``*``.
* sts: AssumeRole* -> the RoleArn; GetFederationToken -> ``federated-user/<Name>``; the rest
  ``*``.
* organizations: ``*`` (only DescribeOrganization is served).

An operation that names several resources (cloudtrail ListTags, GenerateQuery) yields one ARN
per resource from :func:`resource_arns`; authorize every one of them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from searchtrail.arns import partition as _partition

SERVICE_PREFIXES: dict[str, str] = {
    "opensearchserverless": "aoss",
    "cloudtrail": "cloudtrail",
    "iam": "iam",
    "sts": "sts",
    "organizations": "organizations",
}
_ALIASES = {"aoss": "opensearchserverless"}
ANY = "*"


@dataclass(frozen=True)
class _Scope:
    """What a rule needs to build ARNs: the ARN head of the service and the caller."""

    head: str  # "arn:aws:aoss:us-east-1:123456789012:" / "arn:aws:iam::123456789012:"
    params: Mapping[str, Any]
    caller_arn: str | None


class _Rule:
    def arns(self, scope: _Scope) -> list[str]:
        raise NotImplementedError


_FORMATTER = string.Formatter()


class _Template(_Rule):
    """``head + template`` with ``{Member}`` fields taken from the request parameters.

    ``defaults`` fill optional members (``Path`` -> ``/``); when a member is still missing the
    rule answers the caller's own ARN (``caller=True``) or ``*``.
    """

    def __init__(self, template: str, *, caller: bool = False,
                 convert: Mapping[str, Callable[[str], str]] | None = None, **defaults: str) -> None:
        self.template = template
        self.fields = [name for _, name, _, _ in _FORMATTER.parse(template) if name]
        self.caller = caller
        self.convert = dict(convert or {})
        self.defaults = defaults

    def arns(self, scope: _Scope) -> list[str]:
        values: dict[str, str] = {}
        for name in self.fields:
            value = scope.params.get(name)
            if not isinstance(value, str) or value == "":
                value = self.defaults.get(name)
            if value is None:
                if self.caller and scope.caller_arn:
                    return [scope.caller_arn]
                return [ANY]
            values[name] = self.convert.get(name, str)(value)
        return [scope.head + self.template.format(**values)]


class _ArnOrName(_Rule):
    """A member holding an ARN (kept as is) or a name/id (put into ``template``)."""

    def __init__(self, member: str, template: str | None = None) -> None:
        self.member = member
        self.template = template

    def one(self, value: Any, scope: _Scope) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        if value.startswith("arn:") or self.template is None:
            return value
        return scope.head + self.template.format(value)

    def arns(self, scope: _Scope) -> list[str]:
        arn = self.one(scope.params.get(self.member), scope)
        return [arn] if arn is not None else [ANY]


class _EachArnOrName(_ArnOrName):
    """A list member: one ARN per element."""

    def arns(self, scope: _Scope) -> list[str]:
        values = scope.params.get(self.member)
        if not isinstance(values, list) or not values:
            return [ANY]
        arns = [self.one(value, scope) for value in values]
        return [arn if arn is not None else ANY for arn in arns]


class _FirstOf(_Rule):
    """The first rule whose member is present (TrailName or EventDataStore ...), else ``*``."""

    def __init__(self, *rules: _ArnOrName) -> None:
        self.rules = rules

    def arns(self, scope: _Scope) -> list[str]:
        for rule in self.rules:
            if scope.params.get(rule.member):
                return rule.arns(scope)
        return [ANY]


class _Any(_Rule):
    def arns(self, scope: _Scope) -> list[str]:
        return [ANY]


_ANY = _Any()


def _table(*groups: tuple[_Rule, str]) -> dict[str, _Rule]:
    """Operation -> rule, from (rule, "Op1 Op2 ...") groups; an operation may appear once."""
    table: dict[str, _Rule] = {}
    for rule, operations in groups:
        for operation in operations.split():
            if operation in table:
                raise ValueError(f"{operation} is mapped twice")
            table[operation] = rule
    return table


def _host(url: str) -> str:
    return re.sub(r"^https?://", "", url).rstrip("/")


# ------------------------------------------------------------------------------ aoss
_AOSS = _table(
    (_Template("collection/{id}"),
     "DeleteCollection UpdateCollection CreateIndex DeleteIndex GetIndex UpdateIndex"),
    (_Template("collection/{collectionId}"),
     "CancelIngestionJob CreateIngestionJob CreateIngestionStream DeleteIngestionStream "
     "GetIngestionJob GetIngestionStream ListIngestionJobs ListIngestionStreams"),
    (_ArnOrName("resourceArn"), "TagResource UntagResource ListTagsForResource"),
    (_ANY,  # CreateCollection too: the reference gives it no resource type, only "*" grants it
     "CreateCollection BatchGetCollection BatchGetCollectionGroup BatchGetEffectiveLifecyclePolicy "
     "BatchGetLifecyclePolicy BatchGetVpcEndpoint ListCollections ListCollectionGroups "
     "CreateCollectionGroup DeleteCollectionGroup UpdateCollectionGroup "
     "CreateAccessPolicy DeleteAccessPolicy GetAccessPolicy ListAccessPolicies UpdateAccessPolicy "
     "CreateLifecyclePolicy DeleteLifecyclePolicy ListLifecyclePolicies UpdateLifecyclePolicy "
     "CreateSecurityPolicy DeleteSecurityPolicy GetSecurityPolicy ListSecurityPolicies "
     "UpdateSecurityPolicy CreateSecurityConfig DeleteSecurityConfig GetSecurityConfig "
     "ListSecurityConfigs UpdateSecurityConfig CreateVpcEndpoint DeleteVpcEndpoint "
     "ListVpcEndpoints UpdateVpcEndpoint GetAccountSettings UpdateAccountSettings "
     "GetPoliciesStats"),
)

# ------------------------------------------------------------------------------ cloudtrail
_TRAIL_NAME = _ArnOrName("Name", "trail/{}")
_TRAIL = _ArnOrName("TrailName", "trail/{}")
_EVENT_DATA_STORE = _ArnOrName("EventDataStore", "eventdatastore/{}")
_CLOUDTRAIL = _table(
    (_TRAIL_NAME, "CreateTrail DeleteTrail GetTrail GetTrailStatus StartLogging StopLogging "
                  "UpdateTrail"),
    (_TRAIL, "GetEventSelectors PutEventSelectors ListInsightsMetricData"),
    (_FirstOf(_TRAIL, _EVENT_DATA_STORE),
     "GetInsightSelectors PutInsightSelectors GetEventConfiguration PutEventConfiguration"),
    (_EVENT_DATA_STORE,
     "DeleteEventDataStore GetEventDataStore RestoreEventDataStore StartEventDataStoreIngestion "
     "StopEventDataStoreIngestion UpdateEventDataStore DisableFederation EnableFederation "
     "ListQueries CancelQuery DescribeQuery GetQueryResults"),
    (_Template("eventdatastore/*"), "CreateEventDataStore"),
    (_EachArnOrName("EventDataStores", "eventdatastore/{}"), "GenerateQuery"),
    (_Template("channel/*"), "CreateChannel"),
    (_ArnOrName("Channel", "channel/{}"), "DeleteChannel GetChannel UpdateChannel"),
    (_Template("dashboard/{Name}"), "CreateDashboard"),
    (_ArnOrName("DashboardId", "dashboard/{}"),
     "DeleteDashboard GetDashboard UpdateDashboard StartDashboardRefresh"),
    (_ArnOrName("ResourceId"), "AddTags RemoveTags"),
    (_EachArnOrName("ResourceIdList"), "ListTags"),
    (_ArnOrName("ResourceArn"), "DeleteResourcePolicy GetResourcePolicy PutResourcePolicy"),
    (_ANY,
     "DescribeTrails ListTrails LookupEvents ListPublicKeys ListEventDataStores ListChannels "
     "ListDashboards ListImports ListImportFailures GetImport StartImport StopImport StartQuery "
     "ListInsightsData SearchSampleQueries RegisterOrganizationDelegatedAdmin "
     "DeregisterOrganizationDelegatedAdmin"),
)

# ------------------------------------------------------------------------------ iam
_USER = _Template("user/{UserName}")
_SELF_USER = _Template("user/{UserName}", caller=True)
_GROUP = _Template("group/{GroupName}")
_ROLE = _Template("role/{RoleName}")
_INSTANCE_PROFILE = _Template("instance-profile/{InstanceProfileName}")
_SERVER_CERTIFICATE = _Template("server-certificate/{ServerCertificateName}")
_IAM = _table(
    (_Template("user{Path}{UserName}", Path="/"), "CreateUser"),
    (_USER,
     "DeleteUser UpdateUser GetUserPolicy PutUserPolicy DeleteUserPolicy ListUserPolicies "
     "AttachUserPolicy DetachUserPolicy ListAttachedUserPolicies ListGroupsForUser "
     "PutUserPermissionsBoundary DeleteUserPermissionsBoundary TagUser UntagUser ListUserTags "
     "EnableMFADevice ResyncMFADevice CreateServiceSpecificCredential UploadSSHPublicKey "
     "GetSSHPublicKey UpdateSSHPublicKey DeleteSSHPublicKey"),
    (_SELF_USER,
     "GetUser ChangePassword CreateAccessKey DeleteAccessKey UpdateAccessKey ListAccessKeys "
     "CreateLoginProfile GetLoginProfile UpdateLoginProfile DeleteLoginProfile ListMFADevices "
     "DeactivateMFADevice ListSSHPublicKeys ListSigningCertificates UploadSigningCertificate "
     "UpdateSigningCertificate DeleteSigningCertificate ListServiceSpecificCredentials "
     "ResetServiceSpecificCredential UpdateServiceSpecificCredential "
     "DeleteServiceSpecificCredential"),
    (_Template("group{Path}{GroupName}", Path="/"), "CreateGroup"),
    (_GROUP,
     "DeleteGroup GetGroup UpdateGroup AddUserToGroup RemoveUserFromGroup AttachGroupPolicy "
     "DetachGroupPolicy ListAttachedGroupPolicies PutGroupPolicy GetGroupPolicy "
     "DeleteGroupPolicy ListGroupPolicies"),
    (_Template("role{Path}{RoleName}", Path="/"), "CreateRole"),
    (_ROLE,
     "DeleteRole GetRole UpdateRole UpdateRoleDescription UpdateAssumeRolePolicy "
     "AttachRolePolicy DetachRolePolicy ListAttachedRolePolicies PutRolePolicy GetRolePolicy "
     "DeleteRolePolicy ListRolePolicies PutRolePermissionsBoundary "
     "DeleteRolePermissionsBoundary TagRole UntagRole ListRoleTags ListInstanceProfilesForRole "
     "DeleteServiceLinkedRole"),
    (_Template("role/aws-service-role/{AWSServiceName}/*"), "CreateServiceLinkedRole"),
    (_Template("instance-profile{Path}{InstanceProfileName}", Path="/"), "CreateInstanceProfile"),
    (_INSTANCE_PROFILE,
     "DeleteInstanceProfile GetInstanceProfile AddRoleToInstanceProfile "
     "RemoveRoleFromInstanceProfile TagInstanceProfile UntagInstanceProfile "
     "ListInstanceProfileTags"),
    (_Template("policy{Path}{PolicyName}", Path="/"), "CreatePolicy"),
    (_ArnOrName("PolicyArn", "policy/{}"),
     "GetPolicy DeletePolicy CreatePolicyVersion GetPolicyVersion DeletePolicyVersion "
     "ListPolicyVersions SetDefaultPolicyVersion ListEntitiesForPolicy TagPolicy UntagPolicy "
     "ListPolicyTags"),
    (_Template("oidc-provider/{Url}", convert={"Url": _host}), "CreateOpenIDConnectProvider"),
    (_ArnOrName("OpenIDConnectProviderArn", "oidc-provider/{}"),
     "GetOpenIDConnectProvider DeleteOpenIDConnectProvider UpdateOpenIDConnectProvider "
     "UpdateOpenIDConnectProviderThumbprint AddClientIDToOpenIDConnectProvider "
     "RemoveClientIDFromOpenIDConnectProvider TagOpenIDConnectProvider "
     "UntagOpenIDConnectProvider ListOpenIDConnectProviderTags"),
    (_Template("saml-provider/{Name}"), "CreateSAMLProvider"),
    (_ArnOrName("SAMLProviderArn", "saml-provider/{}"),
     "GetSAMLProvider DeleteSAMLProvider UpdateSAMLProvider TagSAMLProvider UntagSAMLProvider "
     "ListSAMLProviderTags"),
    (_Template("server-certificate{Path}{ServerCertificateName}", Path="/"),
     "UploadServerCertificate"),
    (_SERVER_CERTIFICATE,
     "GetServerCertificate DeleteServerCertificate UpdateServerCertificate "
     "TagServerCertificate UntagServerCertificate ListServerCertificateTags"),
    (_Template("mfa{Path}{VirtualMFADeviceName}", Path="/"), "CreateVirtualMFADevice"),
    (_ArnOrName("SerialNumber", "mfa/{}"),
     "DeleteVirtualMFADevice GetMFADevice TagMFADevice UntagMFADevice ListMFADeviceTags"),
    (_ArnOrName("PolicySourceArn"), "SimulatePrincipalPolicy GetContextKeysForPrincipalPolicy"),
    (_ArnOrName("Arn"), "GenerateServiceLastAccessedDetails ListPoliciesGrantingServiceAccess"),
    (_ArnOrName("EntityArn"), "GetHumanReadableSummary"),
    (_Template("user{PathPrefix}", PathPrefix="/"), "ListUsers"),
    (_Template("group{PathPrefix}", PathPrefix="/"), "ListGroups"),
    (_Template("role{PathPrefix}", PathPrefix="/"), "ListRoles"),
    (_Template("policy{PathPrefix}", PathPrefix="/"), "ListPolicies"),
    (_Template("instance-profile{PathPrefix}", PathPrefix="/"), "ListInstanceProfiles"),
    (_Template("server-certificate{PathPrefix}", PathPrefix="/"), "ListServerCertificates"),
    (_ANY,
     "AcceptDelegationRequest AcquireRole AssociateDelegationRequest CreateAccountAlias "
     "CreateDelegationRequest DeleteAccountAlias DeleteAccountPasswordPolicy "
     "DisableOrganizationsRootCredentialsManagement DisableOrganizationsRootSessions "
     "DisableOutboundWebIdentityFederation EnableOrganizationsRootCredentialsManagement "
     "EnableOrganizationsRootSessions EnableOutboundWebIdentityFederation "
     "GenerateCredentialReport GenerateOrganizationsAccessReport GetAccessKeyLastUsed "
     "GetAccountAuthorizationDetails GetAccountPasswordPolicy GetAccountProperties "
     "GetAccountSummary GetContextKeysForCustomPolicy GetCredentialReport GetDelegationRequest "
     "GetOrganizationsAccessReport GetOutboundWebIdentityFederationInfo GetRoleTemplateVersion "
     "GetServiceLastAccessedDetails GetServiceLastAccessedDetailsWithEntities "
     "GetServiceLinkedRoleDeletionStatus ListAccountAliases ListDelegationRequests "
     "ListOpenIDConnectProviders ListOrganizationsFeatures ListSAMLProviders "
     "ListVirtualMFADevices PutAccountProperties RejectDelegationRequest SendDelegationToken "
     "SetSecurityTokenServicePreferences SimulateCustomPolicy UpdateAccountPasswordPolicy "
     "UpdateDelegationRequest"),
)

# ------------------------------------------------------------------------------ sts
_STS = _table(
    (_ArnOrName("RoleArn"), "AssumeRole AssumeRoleWithSAML AssumeRoleWithWebIdentity"),
    (_Template("federated-user/{Name}"), "GetFederationToken"),
    (_ANY,
     "AssumeRoot DecodeAuthorizationMessage GetAccessKeyInfo GetCallerIdentity "
     "GetDelegatedAccessToken GetScopedCredentials GetSessionToken GetWebIdentityToken"),
)

# ------------------------------------------------------------------------------ organizations
# Only DescribeOrganization is served, which is account-wide; the rest answer "not supported"
# after authorization, so their accounts, units and policies are not modelled as resources.
_ORGANIZATIONS = _table((_ANY, (
    "AcceptHandshake AttachPolicy CancelHandshake CloseAccount CreateAccount "
    "CreateGovCloudAccount CreateOrganization CreateOrganizationalUnit CreatePolicy "
    "DeclineHandshake DeleteOrganization DeleteOrganizationalUnit DeletePolicy "
    "DeleteResourcePolicy DeregisterDelegatedAdministrator DescribeAccount "
    "DescribeCreateAccountStatus DescribeEffectivePolicy DescribeHandshake "
    "DescribeOrganization DescribeOrganizationalUnit DescribePolicy DescribeResourcePolicy "
    "DescribeResponsibilityTransfer DetachPolicy DisableAWSServiceAccess DisablePolicyType "
    "EnableAWSServiceAccess EnableAllFeatures EnablePolicyType InviteAccountToOrganization "
    "InviteOrganizationToTransferResponsibility LeaveOrganization "
    "ListAWSServiceAccessForOrganization ListAccounts ListAccountsForParent "
    "ListAccountsWithInvalidEffectivePolicy ListChildren ListCreateAccountStatus "
    "ListDelegatedAdministrators ListDelegatedServicesForAccount "
    "ListEffectivePolicyValidationErrors ListHandshakesForAccount "
    "ListHandshakesForOrganization ListInboundResponsibilityTransfers "
    "ListOrganizationalUnitsForParent ListOutboundResponsibilityTransfers ListParents "
    "ListPolicies ListPoliciesForTarget ListRoots ListTagsForResource ListTargetsForPolicy "
    "MoveAccount PutResourcePolicy RegisterDelegatedAdministrator "
    "RemoveAccountFromOrganization TagResource TerminateResponsibilityTransfer UntagResource "
    "UpdateOrganizationalUnit UpdatePolicy UpdateResponsibilityTransfer")))

RULES: dict[str, dict[str, _Rule]] = {
    "opensearchserverless": _AOSS,
    "cloudtrail": _CLOUDTRAIL,
    "iam": _IAM,
    "sts": _STS,
    "organizations": _ORGANIZATIONS,
}
_GLOBAL_SERVICES = frozenset({"iam", "sts", "organizations"})


def _service(service: str) -> str:
    name = _ALIASES.get(service, service)
    if name not in RULES:
        raise KeyError(f"no authorization table for service {service!r}")
    return name


def action_name(service: str, operation: str) -> str:
    """``aoss:CreateCollection`` for (``opensearchserverless``, ``CreateCollection``).

    KeyError for an operation the table does not know (never authorize an unknown operation).
    """
    name = _service(service)
    if operation not in RULES[name]:
        raise KeyError(f"no authorization rule for {service}.{operation}")
    return f"{SERVICE_PREFIXES[name]}:{operation}"


def resource_arns(service: str, operation: str, params: Mapping[str, Any], account: str,
                  region: str, *, caller_arn: str | None = None) -> list[str]:
    """Every resource ARN the request acts on (``["*"]`` when it is not resource-scoped).

    ``params`` are the parsed request members; ``caller_arn`` is the calling IAM user's ARN
    (IAM operations whose UserName is optional act on the caller).
    """
    name = _service(service)
    rule = RULES[name].get(operation)
    if rule is None:
        raise KeyError(f"no authorization rule for {service}.{operation}")
    prefix = SERVICE_PREFIXES[name]
    scoped_region = "" if name in _GLOBAL_SERVICES else region
    head = f"arn:{_partition(region)}:{prefix}:{scoped_region}:{account}:"
    return rule.arns(_Scope(head, params, caller_arn))


def resource_arn(service: str, operation: str, params: Mapping[str, Any], account: str,
                 region: str, *, caller_arn: str | None = None) -> str:
    """The one resource ARN of the request; ``*`` when it names several (use resource_arns)."""
    arns = resource_arns(service, operation, params, account, region, caller_arn=caller_arn)
    return arns[0] if len(arns) == 1 else ANY
