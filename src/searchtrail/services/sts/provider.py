"""STS (``sts``, query protocol) provider: caller identity and temporary credentials.

Handlers are ``handler(call, params) -> output`` with the model's member names and native
types (``Expiration`` is a ``datetime``). Errors use STS's codes: AccessDenied (403),
ValidationError, MalformedPolicyDocument, PackedPolicyTooLarge, InvalidIdentityToken,
ExpiredTokenException (400) and IDPRejectedClaim (403).

- ``AssumeRole`` enforces the role's trust policy (``policy.evaluate_trust``; sts:TagSession and
  sts:SetSourceIdentity are required too when tags or a source identity are set), the
  role's MaxSessionDuration (1 hour when chaining from a role session), session policies,
  session tags (transitive ones are inherited when chaining), SourceIdentity (inherited and
  immutable once set). A role in another account is recorded there as well, refused
  attempts included: ``record_recipients`` names that account before authorization.
- ``AssumeRoleWithWebIdentity`` is unsigned in AWS: the gateway serves it without SigV4
  and a ``Call`` whose ``principal`` is None (account ""); the handler then sets
  ``call.principal`` to the WebIdentityUser the call is recorded as (in the role's account,
  ``auth.webidentity.caller``), also when it fails afterwards. The token is verified
  against locally configured keys only (``auth.webidentity``).
- ``GetSessionToken`` and ``GetFederationToken`` need long-term credentials of an IAM
  user or the root (the root's sessions last at most one hour).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from searchtrail.auth import policy, webidentity
from searchtrail.auth.authorizer import caller_context
from searchtrail.auth.identities import Identities, iso
from searchtrail.auth.principals import LONG_TERM, Principal, assumed_role_arn, federated_user_arn
from searchtrail.protocol.errors import ServiceError

from .sessions import (
    ROLE_CHAINING_MAX,
    access_denied,
    check_no_mfa,
    check_session_name,
    check_source_identity,
    duration,
    issue,
    not_authorized,
    session_policies,
    session_tags,
    transitive_keys,
    validation_error,
)

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]
JwksSource = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None] | None

DEFAULT_ROLE_SESSION = 3600
DEFAULT_TOKEN_SESSION = 43200
MAX_TOKEN_SESSION = 129600
ROOT_MAX_SESSION = 3600
TAG_CLAIM = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
WEB_IDENTITY_DENIED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def _role(call: Any, role_arn: str) -> tuple[str, dict[str, Any] | None]:
    """The role's account and document (None when unknown); an existing role is referenced as
    the call's resource."""
    match = webidentity.ROLE_ARN.match(role_arn)
    if match is None:
        raise validation_error(f"{role_arn} is invalid")
    account_id = match.group(1)
    role = Identities(call.resources).get_role(account_id, match.group(3))
    if role is not None and role["Arn"] != role_arn:
        role = None  # same name, other path: not this role
    if role is not None:
        call.referenced_resources.append({"ARN": role["Arn"], "accountId": account_id,
                                          "type": "AWS::IAM::Role"})
    return account_id, role


def role_owner(call: Any, params: dict[str, Any]) -> list[str]:
    """A role in another account this server holds gets its own copy of an AssumeRole
    record, refused attempts included, as the role's owner wants to see those."""
    match = webidentity.ROLE_ARN.match(params.get("RoleArn", ""))
    account_id = match.group(1) if match else None
    if account_id and call.account_id and account_id != call.account_id \
            and Identities(call.resources).account_exists(account_id):
        return [account_id]
    return []


def _record_role_use(call: Any, account_id: str, role: dict[str, Any]) -> None:
    role["RoleLastUsed"] = {"LastUsedDate": iso(call.now), "Region": call.region}
    Identities(call.resources).put_role(account_id, role)


def _request_tag_keys(tags: dict[str, str]) -> dict[str, Any]:
    keys: dict[str, Any] = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    if tags:
        keys["aws:TagKeys"] = list(tags)
    return keys


def _trusted(document: dict[str, Any], action: str, request: dict[str, Any]) -> bool:
    """Whether the role's trust policy allows ``action``; ``request`` holds the other fields
    of ``policy.TrustRequest`` (the caller and the condition keys)."""
    return policy.evaluate_trust(document, policy.TrustRequest(action=action, **request)).allowed


def _trust_actions(base: str, tags: dict[str, str], source_identity: str | None) -> list[str]:
    actions = [base]
    if tags:
        actions.append("sts:TagSession")
    if source_identity:
        actions.append("sts:SetSourceIdentity")
    return actions


def _session_output(credentials: dict[str, Any], account_id: str, role: dict[str, Any],
                    session_name: str, packed: int | None,
                    source_identity: str | None) -> dict[str, Any]:
    output: dict[str, Any] = {
        "Credentials": credentials,
        "AssumedRoleUser": {
            "AssumedRoleId": f"{role['RoleId']}:{session_name}",
            "Arn": assumed_role_arn(account_id, role["RoleName"], session_name),
        },
    }
    if packed is not None:
        output["PackedPolicySize"] = packed
    if source_identity:
        output["SourceIdentity"] = source_identity
    return output


def _role_session(role: dict[str, Any], account_id: str, session_name: str,
                  source: str) -> dict[str, Any]:
    return {"Type": "AssumedRole", "Source": source, "RoleName": role["RoleName"],
            "RoleId": role["RoleId"], "RoleArn": role["Arn"], "RoleAccountId": account_id,
            "SessionName": session_name}


# --- operations ------------------------------------------------------------------------------


def get_caller_identity(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    principal: Principal | None = call.principal
    if principal is None or principal.kind == "WebIdentityUser":
        raise ServiceError("MissingAuthenticationToken", "Request is missing Authentication "
                           "Token", status=403)
    return {"UserId": principal.userid, "Account": principal.account_id, "Arn": principal.arn}


def get_access_key_info(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    doc = Identities(call.resources).access_key_doc(params["AccessKeyId"])
    if doc is None:
        raise validation_error(f"The access key {params['AccessKeyId']} is not known here.")
    return {"Account": doc["AccountId"]}


def assume_role(call: Any, params: dict[str, Any], organization_id: str = "") -> dict[str, Any]:
    caller: Principal | None = call.principal
    role_arn = params["RoleArn"]
    if caller is None or caller.kind == "WebIdentityUser":
        raise access_denied("AssumeRole needs signed AWS credentials.")
    if caller.kind == "Root":
        raise access_denied("Roles may not be assumed by root accounts.")
    if caller.kind == "FederatedUser":
        raise not_authorized(caller.arn, "sts:AssumeRole", role_arn)
    account_id, role = _role(call, role_arn)
    if role is None:
        raise not_authorized(caller.arn, "sts:AssumeRole", role_arn)
    session_name = params["RoleSessionName"]
    check_session_name(session_name)
    chaining = caller.kind == "AssumedRole"
    if chaining:
        seconds = duration(params, DEFAULT_ROLE_SESSION, ROLE_CHAINING_MAX,
                           "The requested DurationSeconds exceeds the 1 hour session limit "
                           "for roles assumed by role chaining.")
    else:
        seconds = duration(params, DEFAULT_ROLE_SESSION,
                           role.get("MaxSessionDuration", DEFAULT_ROLE_SESSION),
                           "The requested DurationSeconds exceeds the MaxSessionDuration set "
                           "for this role.")
    check_no_mfa(params)
    requested_source = params.get("SourceIdentity")
    if requested_source is not None:
        check_source_identity(requested_source)
    inherited_source = caller.source_identity
    if inherited_source and requested_source and requested_source != inherited_source:
        raise validation_error("SourceIdentity cannot be changed once set: the calling session "
                               f"carries SourceIdentity {inherited_source}.")
    source_identity = inherited_source or requested_source
    inherited = {key: caller.tags[key] for key in caller.transitive_tag_keys if key in caller.tags}
    tags = session_tags(params, inherited)
    transitive = transitive_keys(params, tags)
    identities = Identities(call.resources)
    policies = session_policies(identities, account_id, params, {**inherited, **tags})

    request_keys = {
        "aws:ResourceAccount": account_id,
        "sts:ExternalId": params.get("ExternalId"),
        "sts:RoleSessionName": session_name,
        "sts:SourceIdentity": source_identity,
        **_request_tag_keys({**inherited, **tags}),
        "sts:TransitiveTagKeys": transitive or None,
    }
    request = {"role_arn": role_arn, "principal_arn": caller.arn,
               "principal_account": caller.account_id,
               "context": caller_context(caller, now=call.now, region=call.region,
                                         source_ip=call.source_ip,
                                         secure_transport=call.secure_transport,
                                         user_agent=call.user_agent,
                                         organization_id=organization_id,
                                         extra=request_keys)}
    document = _json(role["AssumeRolePolicyDocument"])
    for action in _trust_actions("sts:AssumeRole", {**inherited, **tags}, source_identity):
        if not _trusted(document, action, request):
            raise not_authorized(caller.arn, action, role_arn)

    session = _role_session(role, account_id, session_name, "AssumeRole")
    session.update({
        "Mfa": caller.mfa,
        "SourceIdentity": source_identity,
        "Policies": policies.texts,
        "PolicyArns": policies.arns,
        "Tags": {**inherited, **tags},
        "TransitiveTagKeys": sorted(set(inherited) | set(transitive)),
    })
    credentials = issue(call, account_id=account_id, user_name=None, seconds=seconds,
                        session=session)
    _record_role_use(call, account_id, role)
    return _session_output(credentials, account_id, role, session_name, policies.size,
                           source_identity)


def _jwks_for(source: JwksSource, issuer: str) -> Mapping[str, Any] | None:
    if source is None:
        return None
    if callable(source):
        return source(issuer)
    return source.get(issuer) or source.get(issuer.rstrip("/")) \
        or source.get(webidentity.issuer_path(issuer))


def assume_role_with_web_identity(call: Any, params: dict[str, Any],
                                  jwks: JwksSource = None) -> dict[str, Any]:
    role_arn = params["RoleArn"]
    if call.principal is None and webidentity.ROLE_ARN.match(role_arn):
        # An unsigned call: it is recorded, in the role's account, as this WebIdentityUser
        # (named from the token's unverified claims; verification follows).
        call.principal = webidentity.caller(role_arn, params["WebIdentityToken"])
    account_id, role = _role(call, role_arn)
    session_name = params["RoleSessionName"]
    check_session_name(session_name)
    token = webidentity.parse(params["WebIdentityToken"])
    identities = Identities(call.resources)
    issuer = token.issuer
    provider_arn = webidentity.provider_arn(account_id, issuer) if issuer else ""
    provider = identities.get_oidc_provider(account_id, provider_arn) if issuer else None
    if provider is None:
        raise webidentity.invalid_token(
            f"No OpenIDConnect provider found in your account for {issuer}")
    keys = provider.get("Jwks") or _jwks_for(jwks, issuer)
    client_ids = list(provider.get("ClientIDList") or [])
    webidentity.verify(token, keys, client_ids=client_ids, now=call.now)
    if role is None:
        raise access_denied(WEB_IDENTITY_DENIED)
    seconds = duration(params, DEFAULT_ROLE_SESSION,
                       role.get("MaxSessionDuration", DEFAULT_ROLE_SESSION),
                       "The requested DurationSeconds exceeds the MaxSessionDuration set for "
                       "this role.")
    tags, transitive = _token_tags(token.claims)
    source_identity = token.claims.get(SOURCE_IDENTITY_CLAIM)
    if source_identity is not None:
        if not isinstance(source_identity, str):
            raise webidentity.invalid_token(f"The {SOURCE_IDENTITY_CLAIM} claim must be a string.")
        check_source_identity(source_identity)
    policies = session_policies(identities, account_id, params, tags)
    audience = next((aud for aud in token.audiences if aud in client_ids),
                    token.audiences[0] if token.audiences else "")
    path = webidentity.issuer_path(issuer)
    azp, amr = token.claims.get("azp"), token.claims.get("amr")
    context = {
        f"{path}:aud": audience,
        f"{path}:sub": token.subject,
        f"{path}:azp": azp if isinstance(azp, str) else None,
        f"{path}:amr": [item for item in amr if isinstance(item, str)]
        if isinstance(amr, list) else None,
        "sts:RoleSessionName": session_name,
        "sts:SourceIdentity": source_identity,
        "aws:ResourceAccount": account_id,
        **_request_tag_keys(tags),
        **policy.global_request_keys(now=call.now, region=call.region, source_ip=call.source_ip,
                                     secure_transport=call.secure_transport,
                                     user_agent=call.user_agent),
    }
    document = _json(role["AssumeRolePolicyDocument"])
    request = {"role_arn": role_arn, "federated": provider_arn, "context": context}
    for action in _trust_actions("sts:AssumeRoleWithWebIdentity", tags, source_identity):
        if not _trusted(document, action, request):
            raise access_denied(WEB_IDENTITY_DENIED)

    session = _role_session(role, account_id, session_name, "AssumeRoleWithWebIdentity")
    session.update({
        "Mfa": False,
        "SourceIdentity": source_identity,
        "Policies": policies.texts,
        "PolicyArns": policies.arns,
        "Tags": tags,
        "TransitiveTagKeys": transitive,
        "FederatedProvider": provider_arn,
        "FederatedAttributes": {},
        "Subject": token.subject,
        "Audience": audience,
    })
    credentials = issue(call, account_id=account_id, user_name=None, seconds=seconds,
                        session=session)
    _record_role_use(call, account_id, role)
    output = _session_output(credentials, account_id, role, session_name, policies.size,
                             source_identity)
    output["SubjectFromWebIdentityToken"] = token.subject
    output["Provider"] = path
    output["Audience"] = audience
    return output


def _token_tags(claims: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Session tags from the ``https://aws.amazon.com/tags`` claim."""
    claim = claims.get(TAG_CLAIM)
    if claim is None:
        return {}, []
    principal_tags = claim.get("principal_tags") if isinstance(claim, dict) else None
    if not isinstance(principal_tags, dict):
        raise webidentity.invalid_token(f"The {TAG_CLAIM} claim must hold principal_tags.")
    tags: dict[str, str] = {}
    for key, value in principal_tags.items():
        value = value[0] if isinstance(value, list) and len(value) == 1 else value
        if not isinstance(value, str):
            raise webidentity.invalid_token(f"Session tag {key} must have one string value.")
        tags[key] = value
    checked = session_tags({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}, {})
    transitive = claim.get("transitive_tag_keys") or []
    if not isinstance(transitive, list):
        raise webidentity.invalid_token("transitive_tag_keys must be a list.")
    return checked, transitive_keys({"TransitiveTagKeys": transitive}, checked)


def _long_term_caller(call: Any, operation: str) -> Principal:
    caller: Principal | None = call.principal
    if caller is None or caller.kind not in ("Root", "IAMUser") \
            or caller.credential_source != LONG_TERM:
        raise access_denied(f"Cannot call {operation} with session credentials")
    return caller


def get_session_token(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    caller = _long_term_caller(call, "GetSessionToken")
    check_no_mfa(params)
    if caller.is_root:  # AWS silently caps the root's sessions at one hour
        seconds = duration(params, ROOT_MAX_SESSION, MAX_TOKEN_SESSION, "")
        seconds = min(seconds, ROOT_MAX_SESSION)
    else:
        seconds = duration(params, DEFAULT_TOKEN_SESSION, MAX_TOKEN_SESSION,
                           "The requested DurationSeconds exceeds the 36 hour limit.")
    session = {"Type": caller.kind, "Source": "GetSessionToken", "Mfa": False,
               "Policies": None, "Tags": {}}
    if not caller.is_root:
        session.update({"UserId": caller.principal_id, "Arn": caller.arn})
    credentials = issue(call, account_id=caller.account_id, user_name=caller.username,
                        seconds=seconds, session=session)
    return {"Credentials": credentials}


def get_federation_token(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    caller = _long_term_caller(call, "GetFederationToken")
    name = params["Name"]
    check_session_name(name, "name")
    if len(name) > 32:
        raise validation_error(f"1 validation error detected: Value '{name}' at 'name' failed "
                               "to satisfy constraint: Member must have length less than or "
                               "equal to 32")
    if caller.is_root:
        seconds = min(duration(params, DEFAULT_TOKEN_SESSION, MAX_TOKEN_SESSION, ""),
                      ROOT_MAX_SESSION)
    else:
        seconds = duration(params, DEFAULT_TOKEN_SESSION, MAX_TOKEN_SESSION,
                           "The requested DurationSeconds exceeds the 36 hour limit.")
    tags = session_tags(params, {})
    policies = session_policies(Identities(call.resources), caller.account_id, params, tags)
    owner = caller.policy_owner
    assert owner is not None
    issuer = {"type": caller.kind, "principalId": caller.principal_id, "arn": caller.arn,
              "accountId": caller.account_id}
    if caller.username:
        issuer["userName"] = caller.username
    session = {
        "Type": "FederatedUser", "Source": "GetFederationToken", "Name": name, "Mfa": False,
        "Issuer": issuer,
        "Owner": {"kind": owner.kind, "name": owner.name, "id": owner.unique_id,
                  "arn": owner.arn},
        # Without a session policy a federated user may do nothing (AWS's rule).
        "Policies": policies.texts if policies.texts is not None else [],
        "PolicyArns": policies.arns,
        "Tags": tags,
    }
    credentials = issue(call, account_id=caller.account_id, user_name=caller.username,
                        seconds=seconds, session=session)
    output: dict[str, Any] = {
        "Credentials": credentials,
        "FederatedUser": {"FederatedUserId": f"{caller.account_id}:{name}",
                          "Arn": federated_user_arn(caller.account_id, name)},
    }
    if policies.size is not None:
        output["PackedPolicySize"] = policies.size
    return output


def _json(text: str) -> dict[str, Any]:
    document = json.loads(text)
    return document if isinstance(document, dict) else {}


class StsProvider:
    """The STS operations searchtrail implements, as a name -> handler table.

    ``jwks`` gives verification keys per OIDC issuer, for providers whose document has no
    ``Jwks`` of its own: a mapping (issuer URL, with or without ``https://``, → JWKS) or a
    function ``issuer -> JWKS | None``. Keys are never fetched from the network.
    """

    def __init__(self, jwks: JwksSource = None, organization_id: str = "") -> None:
        self.jwks = jwks
        self.organization_id = organization_id

    def assume_role(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return assume_role(call, params, self.organization_id)

    def assume_role_with_web_identity(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return assume_role_with_web_identity(call, params, self.jwks)

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetCallerIdentity": get_caller_identity,
            "GetAccessKeyInfo": get_access_key_info,
            "AssumeRole": self.assume_role,
            "AssumeRoleWithWebIdentity": self.assume_role_with_web_identity,
            "GetSessionToken": get_session_token,
            "GetFederationToken": get_federation_token,
        }

    def record_recipients(self) -> dict[str, Callable[[Any, dict[str, Any]], list[str]]]:
        return {"AssumeRole": role_owner}
