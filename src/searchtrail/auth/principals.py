"""Who is calling: the principal behind a verified access key, and its CloudTrail userIdentity.

One frozen ``Principal`` covers every caller CloudTrail distinguishes:

=================  ====================================================================
``kind``           built by
=================  ====================================================================
Root               the account's own keys, or its GetSessionToken session
IAMUser            an IAM user's keys, or its GetSessionToken session
AssumedRole        AssumeRole / AssumeRoleWithWebIdentity sessions (``ASIA…`` keys)
FederatedUser      GetFederationToken sessions
WebIdentityUser    the caller of AssumeRoleWithWebIdentity itself (an unsigned request)
=================  ====================================================================

``user_identity()`` gives the CloudTrail ``userIdentity`` object with every key AWS gives
for that kind, in AWS's order. The other members and properties are what the authorizer
needs: ``policy_owner`` (whose identity policies apply), ``session_policies``, ``tags``
(principal tags, session tags included), ``mfa``, ``is_root`` and the values of the global
condition keys ``aws:PrincipalType`` (``principal_type``), ``aws:userid`` (``userid``) and
``aws:username`` (``username``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

# How the credential was obtained (``Principal.credential_source``).
LONG_TERM = "long-term"  # AKIA… access key of the root or an IAM user
SESSION_TOKEN = "GetSessionToken"
FEDERATION_TOKEN = "GetFederationToken"
ASSUME_ROLE = "AssumeRole"
ASSUME_ROLE_WITH_WEB_IDENTITY = "AssumeRoleWithWebIdentity"
WEB_IDENTITY_TOKEN = "WebIdentityToken"  # an unsigned caller presenting a JWT

_PRINCIPAL_TYPES = {
    "Root": "Account",
    "IAMUser": "User",
    "AssumedRole": "AssumedRole",
    "FederatedUser": "FederatedUser",
    "WebIdentityUser": "WebIdentityUser",
}


def cloudtrail_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, no fraction), CloudTrail's date format."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PolicyOwner:
    """The identity whose stored policies apply to a principal.

    ``kind`` is ``root``, ``user`` or ``role``; ``name`` is the user or role name (None for
    the root); ``unique_id`` the UserId/RoleId the credentials were issued for: a user or
    role deleted and re-created under the same name has another id and must not lend its
    policies to old sessions.
    """

    kind: str
    account_id: str
    name: str | None
    unique_id: str
    arn: str


@dataclass(frozen=True)
class SessionIssuer:
    """``sessionContext.sessionIssuer``: who the session was issued for/through."""

    type: str  # Role | IAMUser | Root
    principal_id: str
    arn: str
    account_id: str
    user_name: str | None = None

    def as_dict(self) -> dict[str, str]:
        issuer = {"type": self.type, "principalId": self.principal_id, "arn": self.arn,
                  "accountId": self.account_id}
        if self.user_name is not None:
            issuer["userName"] = self.user_name
        return issuer


@dataclass(frozen=True)
class SessionContext:
    """The parts of ``sessionContext`` that temporary credentials carry."""

    creation_date: datetime
    mfa_authenticated: bool = False
    issuer: SessionIssuer | None = None
    source_identity: str | None = None
    federated_provider: str | None = None  # web identity sessions: the OIDC provider ARN
    federated_attributes: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        context: dict[str, Any] = {
            "sessionIssuer": self.issuer.as_dict() if self.issuer else {},
            "webIdFederationData": (
                {"federatedProvider": self.federated_provider,
                 "attributes": dict(self.federated_attributes)}
                if self.federated_provider else {}),
            "attributes": {
                "creationDate": cloudtrail_time(self.creation_date),
                "mfaAuthenticated": "true" if self.mfa_authenticated else "false",
            },
        }
        if self.source_identity:
            context["sourceIdentity"] = self.source_identity
        return context


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``kind`` is CloudTrail's userIdentity type.

    ``session_policies`` is None when the credentials carry no session policy (nothing
    limits the owner's policies) and a tuple of parsed policy documents otherwise; an
    empty tuple (GetFederationToken without a policy) grants nothing. Effective
    permissions of a session are the intersection of the owner's identity policies (and
    boundary) with every session policy.
    """

    kind: str
    account_id: str
    arn: str
    principal_id: str
    access_key_id: str
    user_name: str | None = None  # IAMUser: the user name; WebIdentityUser: the token's sub
    session: SessionContext | None = None
    policy_owner: PolicyOwner | None = None
    session_policies: tuple[dict[str, Any], ...] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    credential_source: str = LONG_TERM
    session_name: str | None = None  # AssumedRole: RoleSessionName; FederatedUser: Name
    identity_provider: str | None = None  # WebIdentityUser only
    transitive_tag_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.policy_owner is None and self.kind in ("Root", "IAMUser"):
            owner = (PolicyOwner("root", self.account_id, None, self.account_id, self.arn)
                     if self.kind == "Root" else
                     PolicyOwner("user", self.account_id, self.user_name, self.principal_id,
                                 self.arn))
            object.__setattr__(self, "policy_owner", owner)

    def __hash__(self) -> int:  # tags and policies are mappings; the key names the caller
        return hash((self.kind, self.arn, self.access_key_id))

    # -- what the authorizer reads ---------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.kind == "Root"

    @property
    def mfa(self) -> bool:
        return bool(self.session and self.session.mfa_authenticated)

    @property
    def is_temporary(self) -> bool:
        return self.credential_source != LONG_TERM

    @property
    def principal_type(self) -> str:
        """``aws:PrincipalType``: Account, User, AssumedRole, FederatedUser."""
        return _PRINCIPAL_TYPES.get(self.kind, "Anonymous")

    @property
    def userid(self) -> str:
        """``aws:userid``: account id (root), AIDA… (user), AROA…:session, account:name."""
        return self.principal_id

    @property
    def username(self) -> str | None:
        """``aws:username``: only IAM users have one."""
        return self.user_name if self.kind == "IAMUser" else None

    @property
    def source_identity(self) -> str | None:
        return self.session.source_identity if self.session else None

    @property
    def issuer_arn(self) -> str | None:
        """The role (AssumedRole) or user/root (FederatedUser) behind a session."""
        return self.session.issuer.arn if self.session and self.session.issuer else None

    # -- CloudTrail ----------------------------------------------------------------------
    def user_identity(self) -> dict[str, Any]:
        if self.kind == "WebIdentityUser":
            return {"type": self.kind, "principalId": self.principal_id,
                    "userName": self.user_name, "identityProvider": self.identity_provider}
        identity: dict[str, Any] = {
            "type": self.kind,
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account_id,
            "accessKeyId": self.access_key_id,
        }
        if self.kind == "IAMUser" and self.user_name:
            identity["userName"] = self.user_name
        if self.session is not None:
            identity["sessionContext"] = self.session.as_dict()
        return identity


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def root_principal(account_id: str, access_key_id: str, *,
                   session: SessionContext | None = None,
                   credential_source: str = LONG_TERM) -> Principal:
    return Principal("Root", account_id, root_arn(account_id), account_id, access_key_id,
                     session=session, credential_source=credential_source)


def user_principal(account_id: str, user: dict[str, Any], access_key_id: str, *,
                   session: SessionContext | None = None,
                   credential_source: str = LONG_TERM) -> Principal:
    tags = {tag["Key"]: tag["Value"] for tag in user.get("Tags", ())}
    return Principal("IAMUser", account_id, user["Arn"], user["UserId"], access_key_id,
                     user["UserName"], session=session, tags=tags,
                     credential_source=credential_source)


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


def federated_user_arn(account_id: str, name: str) -> str:
    return f"arn:aws:sts::{account_id}:federated-user/{name}"


def role_session_principal(*, account_id: str, role_name: str, role_id: str, role_arn: str,
                           session_name: str, access_key_id: str, creation_date: datetime,
                           mfa: bool = False, source_identity: str | None = None,
                           session_policies: tuple[dict[str, Any], ...] | None = None,
                           tags: Mapping[str, str] | None = None,
                           transitive_tag_keys: tuple[str, ...] = (),
                           federated_provider: str | None = None,
                           federated_attributes: Mapping[str, str] | None = None,
                           credential_source: str = ASSUME_ROLE) -> Principal:
    """An ``AssumedRole`` principal (AssumeRole and AssumeRoleWithWebIdentity sessions)."""
    issuer = SessionIssuer("Role", role_id, role_arn, account_id, role_name)
    session = SessionContext(creation_date, mfa, issuer, source_identity, federated_provider,
                             dict(federated_attributes or {}))
    return Principal(
        "AssumedRole", account_id, assumed_role_arn(account_id, role_name, session_name),
        f"{role_id}:{session_name}", access_key_id, session=session,
        policy_owner=PolicyOwner("role", account_id, role_name, role_id, role_arn),
        session_policies=session_policies, tags=dict(tags or {}),
        credential_source=credential_source, session_name=session_name,
        transitive_tag_keys=transitive_tag_keys)


def federated_user_principal(*, account_id: str, name: str, access_key_id: str,
                             creation_date: datetime, issuer: SessionIssuer,
                             owner: PolicyOwner,
                             session_policies: tuple[dict[str, Any], ...] | None,
                             tags: Mapping[str, str] | None = None) -> Principal:
    """A ``FederatedUser`` principal (GetFederationToken sessions)."""
    return Principal(
        "FederatedUser", account_id, federated_user_arn(account_id, name),
        f"{account_id}:{name}", access_key_id,
        session=SessionContext(creation_date, False, issuer),
        policy_owner=owner, session_policies=session_policies, tags=dict(tags or {}),
        credential_source=FEDERATION_TOKEN, session_name=name)


def web_identity_user(*, account_id: str, identity_provider: str, audience: str,
                      subject: str) -> Principal:
    """The caller of AssumeRoleWithWebIdentity (no AWS credentials: nothing to authorize).

    ``account_id`` is the role's account, where the call is recorded.
    """
    return Principal("WebIdentityUser", account_id, "", f"{identity_provider}:{audience}:{subject}",
                     "", user_name=subject, identity_provider=identity_provider,
                     credential_source=WEB_IDENTITY_TOKEN)
