"""IAM users, their tags, access keys and login profiles."""

from __future__ import annotations

import string
from typing import Any, Callable

from searchtrail.auth.identities import (
    KIND_KEY_REF,
    KIND_LOGIN_PROFILE,
    hash_password,
    iso,
    key_ref,
    name_key,
    parse_date,
)
from searchtrail.auth.principals import root_arn
from searchtrail.protocol.errors import ServiceError

from . import policies
from .common import (
    caller_user_name,
    date,
    delete_conflict,
    identities,
    already_exists,
    invalid_input,
    merged_tags,
    no_such_entity,
    paginate,
    path_of,
    require_user,
    under_prefix,
    validation_error,
    without_tags,
)

Changed = Callable[[str | None], None]


def user_view(user: dict[str, Any], *, tags: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Path": user.get("Path", "/"),
        "UserName": user["UserName"],
        "UserId": user["UserId"],
        "Arn": user["Arn"],
        "CreateDate": date(user["CreateDate"]),
    }
    if user.get("PermissionsBoundary"):
        view["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                       "PermissionsBoundaryArn": user["PermissionsBoundary"]}
    if tags and user.get("Tags"):
        view["Tags"] = [dict(tag) for tag in user["Tags"]]
    return view


# --- users -----------------------------------------------------------------------------


def create_user(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    tags = merged_tags([], params.get("Tags") or [], "TagsPerUser")
    boundary = params.get("PermissionsBoundary")
    if boundary:
        policies.use_as_boundary(call, boundary, +1)
    user = identities(call).create_user(call.account_id, params["UserName"], call.now,
                                        path_of(params), tags=tags,
                                        permissions_boundary=boundary)
    return {"User": user_view(user)}


def get_user(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(call, params.get("UserName"))
    if name is None:  # the root: IAM answers with the account itself
        account = identities(call).account(call.account_id)
        created = parse_date(account["CreateDate"]) if account else call.now
        return {"User": {"UserId": call.account_id, "Arn": root_arn(call.account_id),
                         "CreateDate": created}}
    return {"User": user_view(require_user(call, name))}


def list_users(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    users = [user for user in identities(call).list_users(call.account_id)
             if under_prefix(user, params)]
    output = paginate(users, lambda user: name_key(user["UserName"]), params, "Users",
                      "ListUsers")
    output["Users"] = [user_view(user, tags=False) for user in output["Users"]]
    return output


def delete_user(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = require_user(call, params["UserName"])
    ids = identities(call)
    scope = ids.scope(call.account_id)
    if scope.get(KIND_LOGIN_PROFILE, name_key(user["UserName"])) is not None:
        raise delete_conflict("Cannot delete entity, must delete login profile first.")
    if scope.list(KIND_KEY_REF, key_ref(user["UserName"])):
        raise delete_conflict("Cannot delete entity, must delete access keys first.")
    if user.get("InlinePolicies"):
        raise delete_conflict("Cannot delete entity, must delete policies first.")
    if user.get("AttachedPolicies"):
        raise delete_conflict("Cannot delete entity, must detach all policies first.")
    if user.get("PermissionsBoundary"):
        policies.use_as_boundary(call, user["PermissionsBoundary"], -1)
    ids.delete_user(call.account_id, user["UserName"])
    return {}


def tag_user(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    user = require_user(call, params["UserName"])
    user["Tags"] = merged_tags(user.get("Tags", []), params["Tags"], "TagsPerUser")
    identities(call).put_user(call.account_id, user)
    changed(None)  # principal tags of the user's keys and sessions
    return {}


def untag_user(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    user = require_user(call, params["UserName"])
    user["Tags"] = without_tags(user.get("Tags", []), params["TagKeys"])
    identities(call).put_user(call.account_id, user)
    changed(None)
    return {}


def list_user_tags(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = require_user(call, params["UserName"])
    return paginate(user.get("Tags", []), lambda tag: tag["Key"], params, "Tags", "ListUserTags")


# --- access keys ---------------------------------------------------------------------------


def _key_owner(call: Any, params: dict[str, Any]) -> str | None:
    """The owner's exact user name (None: root), after checking the user exists."""
    name = caller_user_name(call, params.get("UserName"))
    return None if name is None else require_user(call, name)["UserName"]


def _key_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    view = {"AccessKeyId": doc["AccessKeyId"], "Status": doc.get("Status", "Active"),
            "CreateDate": date(doc["CreateDate"])}
    if doc.get("UserName"):
        view = {"UserName": doc["UserName"], **view}
    return view


def create_access_key(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    owner = _key_owner(call, params)
    key = identities(call).create_access_key(call.account_id, owner, call.now)
    view: dict[str, Any] = {"AccessKeyId": key.access_key_id, "Status": key.status,
                            "SecretAccessKey": key.secret_access_key,
                            "CreateDate": date(iso(call.now))}
    if owner is not None:
        view = {"UserName": owner, **view}
    return {"AccessKey": view}


def list_access_keys(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    owner = _key_owner(call, params)
    docs = identities(call).list_access_keys(call.account_id, owner)
    output = paginate(docs, lambda doc: doc["AccessKeyId"], params, "AccessKeyMetadata",
                      "ListAccessKeys")
    output["AccessKeyMetadata"] = [_key_metadata(doc) for doc in output["AccessKeyMetadata"]]
    return output


def _owned_key(call: Any, params: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    owner = _key_owner(call, params)
    doc = identities(call).owned_access_key(call.account_id, owner, params["AccessKeyId"])
    if doc is None:
        raise no_such_entity(f"The Access Key with id {params['AccessKeyId']} cannot be found.")
    return owner, doc


def update_access_key(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    if params["Status"] not in ("Active", "Inactive"):
        raise invalid_input(f"Status {params['Status']} is not valid: use Active or Inactive.")
    _, doc = _owned_key(call, params)
    identities(call).set_access_key_status(doc["AccessKeyId"], params["Status"])
    changed(doc["AccessKeyId"])
    return {}


def delete_access_key(call: Any, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    owner, doc = _owned_key(call, params)
    identities(call).delete_access_key(call.account_id, owner, doc["AccessKeyId"])
    changed(doc["AccessKeyId"])
    return {}


def get_access_key_last_used(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    doc = identities(call).access_key_doc(params["AccessKeyId"])
    if doc is None or doc.get("AccountId") != call.account_id or doc.get("SessionToken"):
        raise no_such_entity(f"The Access Key with id {params['AccessKeyId']} cannot be found.")
    # Key use is not tracked (it would cost a write per call): IAM's answer for an unused key.
    output: dict[str, Any] = {"AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
    if doc.get("UserName"):
        output["UserName"] = doc["UserName"]
    return output


# --- login profiles --------------------------------------------------------------------
# Passwords are checked against IAM's default password policy and stored only as an scrypt
# hash (auth.identities.hash_password). They are never logged nor echoed in a message.

_SYMBOLS = set("!@#$%^&*()_+-=[]{}|'")
_PASSWORD_POLICY = "Password does not conform to the account password policy."


def check_password(password: str, user_name: str) -> None:
    classes = sum((
        any(char in string.ascii_uppercase for char in password),
        any(char in string.ascii_lowercase for char in password),
        any(char in string.digits for char in password),
        any(char in _SYMBOLS for char in password),
    ))
    if len(password) < 8 or classes < 3 or password.lower() == user_name.lower():
        raise ServiceError("PasswordPolicyViolation", _PASSWORD_POLICY, status=400)


def _profile_user(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(call, params.get("UserName"))
    if name is None:
        raise validation_error("Must specify userName when calling with root credentials")
    return require_user(call, name)


def _profile_view(profile: dict[str, Any]) -> dict[str, Any]:
    view = {"UserName": profile["UserName"], "CreateDate": date(profile["CreateDate"]),
            "PasswordResetRequired": bool(profile.get("PasswordResetRequired"))}
    if profile.get("MaxSigninSessionDuration") is not None:
        view["MaxSigninSessionDuration"] = profile["MaxSigninSessionDuration"]
    return view


def _require_profile(call: Any, user: dict[str, Any]) -> dict[str, Any]:
    profile = identities(call).scope(call.account_id).get(KIND_LOGIN_PROFILE,
                                                          name_key(user["UserName"]))
    if profile is None:
        raise no_such_entity(f"Login Profile for User {user['UserName']} cannot be found.")
    return profile


# The operations whose password IamProvider's preparers hash ahead, off the event loop.
HASHES_PASSWORD = ("CreateLoginProfile", "UpdateLoginProfile")
PASSWORD_HASH = "PasswordHash"


def _password_hash(call: Any, password: str) -> dict[str, Any]:
    """The hash prepared before the unit (scrypt stalls the loop ~35 ms), else made here."""
    return call.prepared.get(PASSWORD_HASH) or hash_password(password)


def create_login_profile(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = _profile_user(call, params)
    password = params.get("Password")
    if not password:
        raise validation_error("1 validation error detected: Value null at 'password' failed "
                               "to satisfy constraint: Member must not be null")
    scope = identities(call).scope(call.account_id)
    if scope.get(KIND_LOGIN_PROFILE, name_key(user["UserName"])) is not None:
        raise already_exists(f"Login Profile for user {user['UserName']} already exists.")
    check_password(password, user["UserName"])
    profile: dict[str, Any] = {
        "UserName": user["UserName"],
        "CreateDate": iso(call.now),
        "PasswordResetRequired": bool(params.get("PasswordResetRequired", False)),
        "PasswordHash": _password_hash(call, password),
    }
    if params.get("MaxSigninSessionDuration") is not None:
        profile["MaxSigninSessionDuration"] = params["MaxSigninSessionDuration"]
    scope.insert(KIND_LOGIN_PROFILE, name_key(user["UserName"]), profile)
    return {"LoginProfile": _profile_view(profile)}


def update_login_profile(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = _profile_user(call, params)
    profile = _require_profile(call, user)
    if params.get("Password"):
        check_password(params["Password"], user["UserName"])
        profile["PasswordHash"] = _password_hash(call, params["Password"])
    if params.get("PasswordResetRequired") is not None:
        profile["PasswordResetRequired"] = bool(params["PasswordResetRequired"])
    if params.get("ResetMaxSigninSessionDuration"):
        profile.pop("MaxSigninSessionDuration", None)
    elif params.get("MaxSigninSessionDuration") is not None:
        profile["MaxSigninSessionDuration"] = params["MaxSigninSessionDuration"]
    identities(call).scope(call.account_id).put(KIND_LOGIN_PROFILE,
                                                name_key(user["UserName"]), profile)
    return {}


def get_login_profile(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = _profile_user(call, params)
    return {"LoginProfile": _profile_view(_require_profile(call, user))}


def delete_login_profile(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    user = _profile_user(call, params)
    _require_profile(call, user)
    identities(call).scope(call.account_id).delete(KIND_LOGIN_PROFILE, name_key(user["UserName"]))
    return {}
