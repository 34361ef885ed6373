"""Helpers shared by the IAM resource families: errors, ARNs, tags, pagination, encoding.

IAM is global: every handler works in the caller's account scope with region ``""``
(``call.resources.scoped(call.account_id, "")``), whatever region the call was signed for.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import quote

from searchtrail.auth.identities import Identities, parse_date
from searchtrail.protocol.errors import ServiceError

DEFAULT_MAX_ITEMS = 100
TAGS_PER_ENTITY = 50


# --- errors (IAM's codes and statuses) ----------------------------------------------------


def no_such_entity(message: str) -> ServiceError:
    return ServiceError("NoSuchEntity", message, status=404)


def already_exists(message: str) -> ServiceError:
    return ServiceError("EntityAlreadyExists", message, status=409)


def malformed(message: str) -> ServiceError:
    return ServiceError("MalformedPolicyDocument", message, status=400)


def limit_exceeded(message: str) -> ServiceError:
    return ServiceError("LimitExceeded", message, status=409)


def delete_conflict(message: str) -> ServiceError:
    return ServiceError("DeleteConflict", message, status=409)


def invalid_input(message: str) -> ServiceError:
    return ServiceError("InvalidInput", message, status=400)


def validation_error(message: str) -> ServiceError:
    return ServiceError("ValidationError", message, status=400)


# --- context ------------------------------------------------------------------------------


def identities(call: Any) -> Identities:
    return Identities(call.resources)


def date(value: Any) -> datetime:
    return parse_date(value)


def encode_document(text: str) -> str:
    """Policy documents leave IAM percent-encoded (botocore decodes them)."""
    return quote(text, safe="")


def caller_user_name(call: Any, given: str | None) -> str | None:
    """The user an operation with an optional UserName acts on: the given one, else the
    calling IAM user, else (None) the root. Sessions must name the user."""
    if given:
        return given
    principal = call.principal
    if principal is None or principal.kind == "Root":
        return None
    if principal.kind == "IAMUser" and principal.user_name:
        return principal.user_name
    raise validation_error("Must specify userName when calling with non-User credentials")


def require_user(call: Any, user_name: str) -> dict[str, Any]:
    user = identities(call).get_user(call.account_id, user_name)
    if user is None:
        raise no_such_entity(f"The user with name {user_name} cannot be found.")
    return user


def require_role(call: Any, role_name: str) -> dict[str, Any]:
    role = identities(call).get_role(call.account_id, role_name)
    if role is None:
        raise no_such_entity(f"The role with name {role_name} cannot be found.")
    return role


def path_of(params: dict[str, Any]) -> str:
    return params.get("Path") or "/"


def under_prefix(entity: dict[str, Any], params: dict[str, Any]) -> bool:
    return entity.get("Path", "/").startswith(params.get("PathPrefix") or "/")


# --- tags ---------------------------------------------------------------------------------


def merged_tags(current: list[dict[str, str]], new: list[dict[str, str]], quota: str,
                limit: int = TAGS_PER_ENTITY) -> list[dict[str, str]]:
    """Add or replace tags (keys are case-insensitive), enforcing IAM's rules."""
    seen: set[str] = set()
    for tag in new:
        key = tag["Key"]
        if key.lower() in seen:
            raise invalid_input("Duplicate tag keys found. Please note that Tag keys are case "
                                "insensitive.")
        seen.add(key.lower())
        if key.lower().startswith("aws:"):
            raise invalid_input(f"Tag key '{key}' is not valid: keys beginning with 'aws:' are "
                                "reserved for AWS use.")
    result = [dict(tag) for tag in current if tag["Key"].lower() not in seen]
    result.extend({"Key": tag["Key"], "Value": tag["Value"]} for tag in new)
    if len(result) > limit:
        raise limit_exceeded(f"Cannot exceed quota for {quota}: {limit}.")
    return result


def without_tags(current: list[dict[str, str]], keys: Iterable[str]) -> list[dict[str, str]]:
    drop = {key.lower() for key in keys}
    return [tag for tag in current if tag["Key"].lower() not in drop]


# --- pagination (Marker / MaxItems / IsTruncated) ----------------------------------------
# A marker is the base64url sort key of the last item returned: stable under concurrent
# inserts and deletes. Anything that does not decode is a ValidationError.


def paginate(items: list[Any], sort_key: Callable[[Any], str], params: dict[str, Any],
             member: str, operation: str) -> dict[str, Any]:
    items = sorted(items, key=sort_key)
    marker = params.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode("utf-8")
            if not after.startswith(f"{operation}:"):
                raise ValueError(marker)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise validation_error(f"Invalid Marker: pass the Marker returned by a previous "
                                   f"{operation} call, unchanged.") from None
        after = after[len(operation) + 1:]
        items = [item for item in items if sort_key(item) > after]
    size = params.get("MaxItems") or DEFAULT_MAX_ITEMS
    page, rest = items[:size], items[size:]
    output: dict[str, Any] = {member: page, "IsTruncated": bool(rest)}
    if rest:
        raw = f"{operation}:{sort_key(page[-1])}".encode("utf-8")
        output["Marker"] = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return output


# --- sizes ---------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def policy_size(text: str) -> int:
    """IAM counts policy sizes without white space."""
    return len(_SPACE.sub("", text))
