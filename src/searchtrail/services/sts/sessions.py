"""Issuing temporary credentials, and the session rules STS operations share.

Temporary credentials are ``ASIA…`` keys in the global access-key index with their session
token, expiration (epoch seconds) and the session description
(``auth.identities.session_document``); ``auth.credentials.CredentialResolver`` turns them
back into principals.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from searchtrail.auth.identities import (
    Identities,
    default_document,
    iso,
    new_access_key_id,
    new_secret_access_key,
    session_document,
)
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.iam.documents import SESSION, validate

SESSION_TOKEN_BYTES = 384  # 512 base64 characters, in the range of real session tokens
SESSION_POLICY_CHARS = 2048  # plain text of inline + managed session policies
PACKED_LIMIT = 2048  # what 100 % of PackedPolicySize stands for
SESSION_POLICY_ARNS = 10
SESSION_TAGS = 50
ROLE_CHAINING_MAX = 3600
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_SOURCE_IDENTITY = re.compile(r"^[\w+=,.@-]{2,256}$")
_POLICY_ARN = re.compile(r"^arn:aws:iam::(\d{12}|aws):policy/")


def access_denied(message: str) -> ServiceError:
    return ServiceError("AccessDenied", message, status=403)


def validation_error(message: str) -> ServiceError:
    return ServiceError("ValidationError", message, status=400)


def not_authorized(caller_arn: str, action: str, resource: str) -> ServiceError:
    return access_denied(f"User: {caller_arn} is not authorized to perform: {action} on "
                         f"resource: {resource}")


def check_session_name(name: str, member: str = "roleSessionName") -> None:
    if not _SESSION_NAME.match(name):
        raise validation_error(
            f"1 validation error detected: Value '{name}' at '{member}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and "
            "have length between 2 and 64")


def check_source_identity(value: str) -> None:
    if not _SOURCE_IDENTITY.match(value):
        raise validation_error(
            f"1 validation error detected: Value '{value}' at 'sourceIdentity' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    if value.lower().startswith("aws:"):
        raise validation_error("SourceIdentity must not begin with 'aws:': that prefix is "
                               "reserved for AWS use.")


def check_no_mfa(params: dict[str, Any]) -> None:
    """No MFA devices exist here, so an MFA code can never be validated."""
    if params.get("SerialNumber") or params.get("TokenCode"):
        raise access_denied("MultiFactorAuthentication failed, unable to validate MFA code.")


def duration(params: dict[str, Any], default: int, maximum: int, message: str) -> int:
    seconds = params.get("DurationSeconds")
    seconds = default if seconds is None else int(seconds)
    if seconds < 900:
        raise validation_error(
            f"1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to "
            "satisfy constraint: Member must have value greater than or equal to 900")
    if seconds > maximum:
        raise validation_error(message)
    return seconds


# --- session tags --------------------------------------------------------------------------


def session_tags(params: dict[str, Any], inherited: dict[str, str]) -> dict[str, str]:
    """The Tags parameter as {key: value}, after STS's rules; inherited transitive tags
    cannot be set again."""
    tags: dict[str, str] = {}
    seen: set[str] = {key.lower() for key in inherited}
    for tag in params.get("Tags") or []:
        key, value = tag["Key"], tag["Value"]
        if key.lower().startswith("aws:"):
            raise validation_error(f"Session tag key '{key}' is not valid: keys beginning with "
                                   "'aws:' are reserved for AWS use.")
        if key.lower() in seen:
            if key.lower() in {name.lower() for name in inherited}:
                raise validation_error(f"Session tag key '{key}' is already set as a "
                                       "transitive tag by the calling session.")
            raise validation_error("Duplicate tag keys found. Please note that Tag keys are "
                                   "case insensitive.")
        seen.add(key.lower())
        tags[key] = value
    if len(tags) + len(inherited) > SESSION_TAGS:
        raise validation_error(f"A session can have at most {SESSION_TAGS} session tags.")
    return tags


def transitive_keys(params: dict[str, Any], tags: dict[str, str]) -> list[str]:
    keys = list(params.get("TransitiveTagKeys") or [])
    lowered = {key.lower(): key for key in tags}
    missing = [key for key in keys if key.lower() not in lowered]
    if missing:
        raise validation_error("TransitiveTagKeys must name keys of the session tags passed in "
                               f"Tags; not found: {', '.join(missing)}.")
    return [lowered[key.lower()] for key in keys]


# --- session policies --------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicies:
    texts: list[str] | None  # None: no session policy was passed
    arns: list[str]
    size: int | None  # PackedPolicySize (percent) when policies or tags were passed


def _compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"))


def session_policies(identities: Identities, account_id: str, params: dict[str, Any],
                     tags: dict[str, str]) -> SessionPolicies:
    """Validate ``Policy`` and resolve ``PolicyArns`` (default versions, in ``account_id``)."""
    texts: list[str] = []
    policy = params.get("Policy")
    if policy is not None:
        validate(policy, SESSION)
        texts.append(policy)
    arns = [item["arn"] for item in params.get("PolicyArns") or []]
    if len(arns) > SESSION_POLICY_ARNS:
        raise validation_error(f"At most {SESSION_POLICY_ARNS} managed session policies can be "
                               "passed in PolicyArns.")
    for arn in arns:
        found = identities.get_managed_policy(account_id, arn) if _POLICY_ARN.match(arn) else None
        text = default_document(found) if found else None
        if text is None:
            raise validation_error(f"Policy {arn} does not exist or is not attachable.")
        texts.append(text)
    if sum(len(text) for text in texts) > SESSION_POLICY_CHARS:
        raise validation_error(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: "
            f"Member must have length less than or equal to {SESSION_POLICY_CHARS}")
    if not texts and not tags:
        return SessionPolicies(None, arns, None)
    packed = sum(len(_compact(text)) for text in texts) \
        + sum(len(key) + len(value) for key, value in tags.items())
    size = max(1, math.ceil(packed * 100 / PACKED_LIMIT))
    if size > 100:
        raise ServiceError("PackedPolicyTooLarge",
                           f"Packed size of session policies and session tags exceeds the "
                           f"limit: PackedPolicySize {size}%.", status=400)
    return SessionPolicies(texts if (policy is not None or arns) else None, arns, size)


# --- issuing -------------------------------------------------------------------------------


def new_session_token() -> str:
    return base64.b64encode(secrets.token_bytes(SESSION_TOKEN_BYTES)).decode("ascii")


def issue(call: Any, *, account_id: str, user_name: str | None, seconds: int,
          session: dict[str, Any]) -> dict[str, Any]:
    """Store new temporary credentials; return the ``Credentials`` output member."""
    access_key_id = new_access_key_id("ASIA")
    secret = new_secret_access_key()
    token = new_session_token()
    expiration = int(call.now.timestamp()) + seconds
    caller = call.principal
    session = {
        **session,
        "CreationDate": iso(call.now),
        "CallerArn": getattr(caller, "arn", "") or getattr(caller, "principal_id", ""),
        "CallerAccessKeyId": getattr(caller, "access_key_id", ""),
    }
    Identities(call.resources).store_session_credentials(session_document(
        access_key_id=access_key_id, secret_access_key=secret, session_token=token,
        expiration=expiration, account_id=account_id, user_name=user_name, created=call.now,
        session=session))
    return {"AccessKeyId": access_key_id, "SecretAccessKey": secret, "SessionToken": token,
            "Expiration": datetime.fromtimestamp(expiration, timezone.utc)}
