"""Accounts, IAM users, roles, policies and access keys, kept as documents in the resource store.

Storage (every kind below is a JSON document; dates are ISO 8601 strings, whole seconds):

global scope (account "", region "")
  ``account``       key account id        {AccountId, CreateDate}
  ``setting``       key "default-account" {AccountId}
  ``access-key``    key access key id     long-term keys (AKIA…):
                    {AccessKeyId, SecretAccessKey, AccountId, UserName (None: root), Status,
                     CreateDate}
                    temporary credentials (ASIA…) add {SessionToken, Expiration (epoch
                    seconds), Session: see ``session_document``}
account scope (account, region "")
  ``iam-user``      key lower-cased UserName (IAM names are case-insensitive)
                    {UserName, UserId (AIDA…), Arn, Path, CreateDate, Tags?,
                     PermissionsBoundary? (policy ARN), InlinePolicies? {name: document},
                     AttachedPolicies? [policy ARN, …]}
  ``iam-access-key`` key "<lower user name>/<AccessKeyId>" ("/<id>" for the root): the
                    per-owner index of long-term keys {AccessKeyId, UserName}
  ``iam-role``      key lower-cased RoleName
                    {RoleName, RoleId (AROA…), Arn, Path, CreateDate, AssumeRolePolicyDocument,
                     Description?, MaxSessionDuration, Tags?, PermissionsBoundary?,
                     InlinePolicies?, AttachedPolicies?, RoleLastUsed?}
  ``iam-policy``    key policy ARN: customer managed policies
                    {PolicyName, PolicyId (ANPA…), Arn, Path, Description?, CreateDate,
                     UpdateDate, DefaultVersionId, NextVersion, AttachmentCount, Tags?,
                     Versions: [{VersionId, Document, CreateDate}, …]}
  ``iam-policy-name`` key lower-cased PolicyName → {Arn} (names are unique per account)
  ``iam-aws-policy-usage`` key ARN of an AWS managed policy → {AttachmentCount}
  ``iam-login-profile`` key lower-cased UserName
                    {UserName, CreateDate, PasswordResetRequired, MaxSigninSessionDuration?,
                     PasswordHash: {Algorithm "scrypt", N, R, P, Salt, Hash}} (never the password)
  ``iam-oidc-provider`` key provider ARN
                    {Arn, Url, ClientIDList, ThumbprintList, CreateDate, Tags?, Jwks?}

Policy documents are stored as sent (text); responses percent-encode them as IAM does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson

from searchtrail.auth.principals import (
    ASSUME_ROLE,
    LONG_TERM,
    Principal,
    PolicyOwner,
    SessionContext,
    SessionIssuer,
    federated_user_principal,
    role_session_principal,
    root_principal,
    user_principal,
)
from searchtrail.protocol.errors import ServiceError
from searchtrail.store import kinds
from searchtrail.store.api import Conflict, ResourceRepository

GLOBAL = ("", "")  # (account, region) scope of the access-key index and the account list
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

KIND_ACCOUNT = "account"
KIND_ACCESS_KEY = "access-key"
KIND_USER = "iam-user"
KIND_KEY_REF = "iam-access-key"
KIND_ROLE = "iam-role"
KIND_POLICY = "iam-policy"
KIND_POLICY_NAME = "iam-policy-name"
KIND_AWS_POLICY_USAGE = "iam-aws-policy-usage"
KIND_LOGIN_PROFILE = "iam-login-profile"
KIND_OIDC_PROVIDER = "iam-oidc-provider"

ACCESS_KEYS_PER_USER = 2


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    user_name: str | None  # None: the account's root
    status: str = "Active"

    def as_doc(self, created: datetime) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "AccountId": self.account_id,
            "UserName": self.user_name,
            "Status": self.status,
            "CreateDate": iso(created),
        }

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> "AccessKey":
        return AccessKey(doc["AccessKeyId"], doc["SecretAccessKey"], doc["AccountId"],
                         doc.get("UserName"), doc.get("Status", "Active"))


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + _random(_KEY_ALPHABET, 16)


def new_secret_access_key() -> str:
    return _random(_SECRET_ALPHABET, 40)


def new_unique_id(prefix: str) -> str:
    """IAM unique ids: AIDA… (users), AROA… (roles), ANPA… (policies); 21 characters."""
    return prefix + _random(_KEY_ALPHABET, 17)


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def iso(moment: datetime) -> str:
    """Stored date format: ISO 8601 UTC with whole seconds."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def parse_date(value: Any) -> datetime:
    """A stored date (ISO string, or epoch milliseconds) as an aware datetime."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def name_key(name: str) -> str:
    """Users, roles and policies are unique by name regardless of case."""
    return name.lower()


def key_ref(user_name: str | None, access_key_id: str = "") -> str:
    return f"{name_key(user_name) if user_name else ''}/{access_key_id}"


# --- AWS managed policies ----------------------------------------------------------------
# A few AWS managed policies, so that scripts attaching them work. Documents are those of
# AWS where short (AdministratorAccess, IAM*) and abridged to the services searchtrail
# serves otherwise (noted in the description).


def _aws_policy(name: str, description: str, statements: list[dict[str, Any]],
                path: str = "/") -> dict[str, Any]:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=4)
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    return {
        "PolicyName": name,
        "PolicyId": "ANPA" + digest[:17],
        "Arn": f"arn:aws:iam::aws:policy{path}{name}",
        "Path": path,
        "Description": description,
        "CreateDate": "2015-02-06T18:39:46+00:00",
        "UpdateDate": "2015-02-06T18:39:46+00:00",
        "DefaultVersionId": "v1",
        "IsAttachable": True,
        "Versions": [{"VersionId": "v1", "Document": document,
                      "CreateDate": "2015-02-06T18:39:46+00:00"}],
    }


AWS_MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    policy["Arn"]: policy for policy in (
        _aws_policy("AdministratorAccess",
                    "Provides full access to AWS services and resources.",
                    [{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
        _aws_policy("PowerUserAccess",
                    "Provides full access to AWS services and resources, but does not allow "
                    "management of Users and groups.",
                    [{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"],
                      "Resource": "*"},
                     {"Effect": "Allow",
                      "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole",
                                 "iam:ListRoles", "organizations:DescribeOrganization",
                                 "account:ListRegions", "account:GetAccountInformation"],
                      "Resource": "*"}]),
        _aws_policy("ReadOnlyAccess",
                    "Provides read-only access to AWS services and resources (abridged by "
                    "searchtrail to the services it serves).",
                    [{"Effect": "Allow",
                      "Action": ["aoss:BatchGet*", "aoss:Get*", "aoss:List*",
                                 "cloudtrail:Describe*", "cloudtrail:Get*", "cloudtrail:List*",
                                 "cloudtrail:LookupEvents", "iam:Generate*", "iam:Get*",
                                 "iam:List*", "iam:Simulate*", "sts:GetCallerIdentity"],
                      "Resource": "*"}]),
        _aws_policy("IAMFullAccess", "Provides full access to IAM via the AWS Management Console.",
                    [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]),
        _aws_policy("IAMReadOnlyAccess", "Provides read only access to IAM via the AWS "
                    "Management Console.",
                    [{"Effect": "Allow",
                      "Action": ["iam:GenerateCredentialReport",
                                 "iam:GenerateServiceLastAccessedDetails", "iam:Get*",
                                 "iam:List*", "iam:SimulateCustomPolicy",
                                 "iam:SimulatePrincipalPolicy"],
                      "Resource": "*"}]),
        _aws_policy("AWSCloudTrail_FullAccess", "Provides full access to AWS CloudTrail "
                    "(abridged by searchtrail to CloudTrail itself).",
                    [{"Effect": "Allow", "Action": "cloudtrail:*", "Resource": "*"}]),
        _aws_policy("AWSCloudTrail_ReadOnlyAccess", "Provides read only access to AWS "
                    "CloudTrail (abridged by searchtrail to CloudTrail itself).",
                    [{"Effect": "Allow",
                      "Action": ["cloudtrail:Get*", "cloudtrail:Describe*", "cloudtrail:List*",
                                 "cloudtrail:LookupEvents"],
                      "Resource": "*"}]),
    )
}

POLICY_ARN = re.compile(r"^arn:aws:iam::(\d{12}|aws):policy(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]+)$")


def default_document(policy: dict[str, Any]) -> str | None:
    """The text of a managed policy's default version."""
    for version in policy.get("Versions", ()):
        if version["VersionId"] == policy["DefaultVersionId"]:
            return version["Document"]
    return None


# --- login profiles (passwords are hashed with scrypt, never stored) ---------------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=32)
    return {"Algorithm": "scrypt", "N": SCRYPT_N, "R": SCRYPT_R, "P": SCRYPT_P,
            "Salt": base64.b64encode(salt).decode(), "Hash": base64.b64encode(digest).decode()}


def verify_password(stored: dict[str, Any], password: str) -> bool:
    """Constant-time check of a password against ``hash_password``'s output."""
    if stored.get("Algorithm") != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(stored["Salt"]),
                            n=stored["N"], r=stored["R"], p=stored["P"], dklen=32)
    return hmac.compare_digest(digest, base64.b64decode(stored["Hash"]))


# --- the store ---------------------------------------------------------------------------


class Identities:
    """Creates and finds accounts, users, roles, policies and keys; every method runs in the
    caller's unit of work."""

    def __init__(self, repo: ResourceRepository) -> None:
        self._global = repo.scoped(*GLOBAL)
        self._repo = repo

    def scope(self, account_id: str) -> ResourceRepository:
        return self._repo.scoped(account_id, "")

    # accounts --------------------------------------------------------------------------
    def default_account(self) -> str | None:
        return kinds.default_account(self._global)

    def accounts(self) -> list[str]:
        return [doc["AccountId"] for doc in self._global.list(KIND_ACCOUNT)]

    def account(self, account_id: str) -> dict[str, Any] | None:
        return self._global.get(KIND_ACCOUNT, account_id)

    def account_exists(self, account_id: str) -> bool:
        return self.account(account_id) is not None

    def create_account(self, now: datetime, *, account_id: str | None = None,
                       make_default: bool = False) -> str:
        account_id = account_id or new_account_id()
        self._global.insert(KIND_ACCOUNT, account_id,
                            {"AccountId": account_id, "CreateDate": iso(now)})
        if make_default:
            kinds.set_default_account(self._global, account_id)
        return account_id

    def require_account(self, account_id: str) -> None:
        if not self.account_exists(account_id):
            raise ServiceError("NoSuchEntity", f"The account {account_id} does not exist.",
                               status=404)

    # users -----------------------------------------------------------------------------
    def create_user(self, account_id: str, user_name: str, now: datetime, path: str = "/", *,
                    tags: list[dict[str, str]] | None = None,
                    permissions_boundary: str | None = None) -> dict:
        self.require_account(account_id)
        user: dict[str, Any] = {
            "UserName": user_name,
            "UserId": new_unique_id("AIDA"),
            "Arn": f"arn:aws:iam::{account_id}:user{path}{user_name}",
            "Path": path,
            "CreateDate": iso(now),
        }
        if tags:
            user["Tags"] = [dict(tag) for tag in tags]
        if permissions_boundary:
            user["PermissionsBoundary"] = permissions_boundary
        try:
            self.scope(account_id).insert(KIND_USER, name_key(user_name), user)
        except Conflict:
            raise ServiceError("EntityAlreadyExists",
                               f"User with name {user_name} already exists.", status=409) from None
        return dict(user)

    def get_user(self, account_id: str, user_name: str) -> dict | None:
        return self.scope(account_id).get(KIND_USER, name_key(user_name))

    def put_user(self, account_id: str, user: dict[str, Any]) -> None:
        self.scope(account_id).put(KIND_USER, name_key(user["UserName"]), user)

    def delete_user(self, account_id: str, user_name: str) -> bool:
        return self.scope(account_id).delete(KIND_USER, name_key(user_name))

    def list_users(self, account_id: str) -> list[dict]:
        return self.scope(account_id).list(KIND_USER)

    # long-term access keys ---------------------------------------------------------------
    def create_access_key(self, account_id: str, user_name: str | None, now: datetime) -> AccessKey:
        self.require_account(account_id)
        if user_name is not None:
            user = self.get_user(account_id, user_name)
            if user is None:
                raise ServiceError("NoSuchEntity",
                                   f"The user with name {user_name} cannot be found.", status=404)
            user_name = user["UserName"]
        scope = self.scope(account_id)
        if len(scope.list(KIND_KEY_REF, key_ref(user_name))) >= ACCESS_KEYS_PER_USER:
            raise ServiceError("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: "
                               f"{ACCESS_KEYS_PER_USER}", status=409)
        key = AccessKey(new_access_key_id(), new_secret_access_key(), account_id, user_name)
        self._global.insert(KIND_ACCESS_KEY, key.access_key_id, key.as_doc(now))
        scope.put(KIND_KEY_REF, key_ref(user_name, key.access_key_id),
                  {"AccessKeyId": key.access_key_id, "UserName": user_name})
        return key

    def find_access_key(self, access_key_id: str) -> AccessKey | None:
        doc = self._global.get(KIND_ACCESS_KEY, access_key_id)
        return AccessKey.from_doc(doc) if doc else None

    def access_key_doc(self, access_key_id: str) -> dict[str, Any] | None:
        return self._global.get(KIND_ACCESS_KEY, access_key_id)

    def owned_access_key(self, account_id: str, user_name: str | None,
                         access_key_id: str) -> dict[str, Any] | None:
        """A long-term key of this user (None: the root), or None when it is not theirs."""
        if self.scope(account_id).get(KIND_KEY_REF, key_ref(user_name, access_key_id)) is None:
            return None
        return self._global.get(KIND_ACCESS_KEY, access_key_id)

    def list_access_keys(self, account_id: str, user_name: str | None) -> list[dict[str, Any]]:
        docs = []
        for ref in self.scope(account_id).list(KIND_KEY_REF, key_ref(user_name)):
            doc = self._global.get(KIND_ACCESS_KEY, ref["AccessKeyId"])
            if doc is not None:
                docs.append(doc)
        return docs

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        doc = self._global.get(KIND_ACCESS_KEY, access_key_id)
        if doc is not None:
            doc["Status"] = status
            self._global.put(KIND_ACCESS_KEY, access_key_id, doc)

    def delete_access_key(self, account_id: str, user_name: str | None, access_key_id: str) -> bool:
        self.scope(account_id).delete(KIND_KEY_REF, key_ref(user_name, access_key_id))
        return self._global.delete(KIND_ACCESS_KEY, access_key_id)

    # temporary credentials --------------------------------------------------------------
    def store_session_credentials(self, doc: dict[str, Any]) -> None:
        self._global.insert(KIND_ACCESS_KEY, doc["AccessKeyId"], doc)

    def purge_expired_sessions(self, before_epoch: int, limit: int | None = None) -> int:
        """Delete temporary credentials that expired before ``before_epoch`` (keep a grace
        period: until purged, an expired key answers ExpiredTokenException rather than
        UnrecognizedClientException), at most ``limit`` of them. Returns how many were
        deleted. Scans every key."""
        purged = 0
        for doc in self._global.list(KIND_ACCESS_KEY, "ASIA"):
            if limit is not None and purged >= limit:
                break
            if doc.get("SessionToken") and doc.get("Expiration", before_epoch) < before_epoch:
                purged += self._global.delete(KIND_ACCESS_KEY, doc["AccessKeyId"])
        return purged

    # data written by earlier versions ------------------------------------------------------
    def upgrade(self) -> int:
        """Bring documents of earlier versions to this layout (idempotent; run at start-up):
        users keyed by their lower-cased name, and the per-owner index of long-term keys.
        Returns how many documents were written."""
        written = 0
        for account_id in self.accounts():
            scope = self.scope(account_id)
            for user in scope.list(KIND_USER):
                key = name_key(user["UserName"])
                if scope.get(KIND_USER, key) is None:
                    scope.put(KIND_USER, key, user)
                    scope.delete(KIND_USER, user["UserName"])
                    written += 1
        for doc in self._global.list(KIND_ACCESS_KEY):
            if doc.get("SessionToken"):
                continue
            scope = self.scope(doc["AccountId"])
            ref = key_ref(doc.get("UserName"), doc["AccessKeyId"])
            if scope.get(KIND_KEY_REF, ref) is None:
                scope.put(KIND_KEY_REF, ref, {"AccessKeyId": doc["AccessKeyId"],
                                              "UserName": doc.get("UserName")})
                written += 1
        return written

    # roles -----------------------------------------------------------------------------
    def get_role(self, account_id: str, role_name: str) -> dict | None:
        return self.scope(account_id).get(KIND_ROLE, name_key(role_name))

    def insert_role(self, account_id: str, role: dict[str, Any]) -> None:
        try:
            self.scope(account_id).insert(KIND_ROLE, name_key(role["RoleName"]), role)
        except Conflict:
            raise ServiceError("EntityAlreadyExists",
                               f"Role with name {role['RoleName']} already exists.",
                               status=409) from None

    def put_role(self, account_id: str, role: dict[str, Any]) -> None:
        self.scope(account_id).put(KIND_ROLE, name_key(role["RoleName"]), role)

    def delete_role(self, account_id: str, role_name: str) -> bool:
        return self.scope(account_id).delete(KIND_ROLE, name_key(role_name))

    def list_roles(self, account_id: str) -> list[dict]:
        return self.scope(account_id).list(KIND_ROLE)

    # managed policies ---------------------------------------------------------------------
    def get_managed_policy(self, account_id: str, arn: str) -> dict | None:
        """A customer managed policy of this account, or an AWS managed policy."""
        if arn in AWS_MANAGED_POLICIES:
            return dict(AWS_MANAGED_POLICIES[arn])
        return self.scope(account_id).get(KIND_POLICY, arn)

    # OIDC providers --------------------------------------------------------------------
    def get_oidc_provider(self, account_id: str, arn: str) -> dict | None:
        return self.scope(account_id).get(KIND_OIDC_PROVIDER, arn)

    def set_oidc_jwks(self, account_id: str, arn: str, jwks: dict[str, Any]) -> None:
        """Give an OIDC provider the signing keys (a JWKS) its tokens are checked against.

        searchtrail never fetches keys from the network: this (or StsProvider's ``jwks``
        setting) is the only source of verification keys.
        """
        provider = self.get_oidc_provider(account_id, arn)
        if provider is None:
            raise ServiceError("NoSuchEntity", f"OpenIDConnect Provider not found for arn {arn}",
                               status=404)
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
            raise ServiceError("InvalidInput", "A JWKS is a JSON object with a \"keys\" list.",
                               status=400)
        provider["Jwks"] = {"keys": keys}
        self.scope(account_id).put(KIND_OIDC_PROVIDER, arn, provider)


# --- what the authorizer reads -----------------------------------------------------------


ROOT_IDENTITY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

_ROOT_IDENTITY_POLICY_JSON = orjson.dumps(ROOT_IDENTITY_POLICY)


class PolicySet(NamedTuple):
    identity: list[dict[str, Any]]  # inline + attached managed (default versions), parsed
    boundary: dict[str, Any] | None  # the permissions boundary's default version, parsed


def policies_for(repo: ResourceRepository, principal: Principal) -> PolicySet:
    """The identity policies and permissions boundary of the principal's user or role.

    Read live inside the caller's unit of work, so a detached policy stops applying on the
    very next call. An owner of kind ``root`` (the root itself, its sessions, federated
    users it issued) has no stored policies: the root is allowed everything, which this
    answers with one allow-all document (``ROOT_IDENTITY_POLICY``), so that only session
    policies limit a federated user the root issued. A user or role that was deleted — or
    re-created under the
    same name, with another unique id — yields no policies: its old sessions can do nothing.
    Session policies are not stored here: they travel with the credentials as
    ``principal.session_policies`` (None: no session policy; a tuple, possibly empty: the
    documents every request must also be allowed by).
    """
    owner = principal.policy_owner
    if owner is None:
        return PolicySet([], None)
    if owner.kind == "root":
        return PolicySet([orjson.loads(_ROOT_IDENTITY_POLICY_JSON)], None)  # a fresh copy
    identities = Identities(repo)
    if owner.kind == "user":
        entity = identities.get_user(owner.account_id, owner.name or "")
        unique_id = entity and entity.get("UserId")
    else:
        entity = identities.get_role(owner.account_id, owner.name or "")
        unique_id = entity and entity.get("RoleId")
    if entity is None or unique_id != owner.unique_id:
        return PolicySet([], None)
    documents = [json.loads(text) for text in entity.get("InlinePolicies", {}).values()]
    for arn in entity.get("AttachedPolicies", ()):
        policy = identities.get_managed_policy(owner.account_id, arn)
        text = default_document(policy) if policy else None
        if text is not None:
            documents.append(json.loads(text))
    boundary = None
    if entity.get("PermissionsBoundary"):
        policy = identities.get_managed_policy(owner.account_id, entity["PermissionsBoundary"])
        text = default_document(policy) if policy else None
        boundary = json.loads(text) if text is not None else {"Statement": []}
    return PolicySet(documents, boundary)


# --- temporary credentials: the stored session and the principal it becomes --------------


def session_document(*, access_key_id: str, secret_access_key: str, session_token: str,
                     expiration: int, account_id: str, user_name: str | None,
                     created: datetime, session: dict[str, Any]) -> dict[str, Any]:
    """The ``access-key`` document of temporary credentials.

    ``session`` holds: Type (AssumedRole | FederatedUser | IAMUser | Root), Source (the STS
    operation), CreationDate, Mfa, SourceIdentity?, Policies (list of policy texts, or None
    for no session policy), PolicyArns, Tags {key: value}, TransitiveTagKeys, and per type:
    RoleName/RoleId/RoleArn/SessionName (+ FederatedProvider, FederatedAttributes for web
    identity); Name + Issuer {type, principalId, arn, accountId, userName?} + Owner
    {kind, name, id, arn} (federated users); UserId/Arn (IAMUser). CallerArn and
    CallerAccessKeyId name who asked STS for it.
    """
    return {
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret_access_key,
        "AccountId": account_id,
        "UserName": user_name,
        "Status": "Active",
        "CreateDate": iso(created),
        "SessionToken": session_token,
        "Expiration": expiration,
        "Session": session,
    }


def _session_policies(session: dict[str, Any]) -> tuple[dict[str, Any], ...] | None:
    texts = session.get("Policies")
    return None if texts is None else tuple(json.loads(text) for text in texts)


def session_principal(doc: dict[str, Any], identities: Identities) -> Principal:
    """The principal behind stored temporary credentials.

    Principal tags are read live: a role session's are the role's tags overridden by the
    session tags; a user session's are the user's tags; a federated user's are its session
    tags.
    """
    session = doc["Session"]
    account_id = doc["AccountId"]
    key_id = doc["AccessKeyId"]
    created = parse_date(session["CreationDate"])
    kind = session["Type"]
    if kind == "AssumedRole":
        role = identities.get_role(account_id, session["RoleName"])
        tags = {}
        if role is not None and role.get("RoleId") == session["RoleId"]:
            tags = {tag["Key"]: tag["Value"] for tag in role.get("Tags", ())}
        tags.update(session.get("Tags") or {})
        return role_session_principal(
            account_id=account_id, role_name=session["RoleName"], role_id=session["RoleId"],
            role_arn=session["RoleArn"], session_name=session["SessionName"],
            access_key_id=key_id, creation_date=created, mfa=bool(session.get("Mfa")),
            source_identity=session.get("SourceIdentity"),
            session_policies=_session_policies(session), tags=tags,
            transitive_tag_keys=tuple(session.get("TransitiveTagKeys") or ()),
            federated_provider=session.get("FederatedProvider"),
            federated_attributes=session.get("FederatedAttributes"),
            credential_source=session.get("Source", ASSUME_ROLE))
    if kind == "FederatedUser":
        issuer = session["Issuer"]
        owner = session["Owner"]
        return federated_user_principal(
            account_id=account_id, name=session["Name"], access_key_id=key_id,
            creation_date=created,
            issuer=SessionIssuer(issuer["type"], issuer["principalId"], issuer["arn"],
                                 issuer["accountId"], issuer.get("userName")),
            owner=PolicyOwner(owner["kind"], account_id, owner.get("name"), owner["id"],
                              owner["arn"]),
            session_policies=_session_policies(session), tags=session.get("Tags") or {})
    context = SessionContext(created, bool(session.get("Mfa")))
    if kind == "Root":
        return root_principal(account_id, key_id, session=context,
                              credential_source=session.get("Source", LONG_TERM))
    user = identities.get_user(account_id, doc["UserName"] or "")
    if user is None or user.get("UserId") != session.get("UserId"):
        user = {"UserName": doc["UserName"], "UserId": session.get("UserId", ""),
                "Arn": session.get("Arn", "")}
    return user_principal(account_id, user, key_id, session=context,
                          credential_source=session.get("Source", LONG_TERM))

