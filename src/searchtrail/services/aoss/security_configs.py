"""Security configurations: SAML identity providers, IAM Identity Center and IAM federation.

The id is `<type>/<account>/<name>` (e.g. `saml/123456789012/okta`), unique per account
and Region. Each type takes exactly its own options (`samlOptions` with the IdP's XML
metadata, `iamIdentityCenterOptions` with the instance ARN, `iamFederationOptions`); other
types' options are a ValidationException. SAML metadata must be an XML `EntityDescriptor`
(or `EntitiesDescriptor`) with an `IDPSSODescriptor`. For IAM Identity Center, AWS creates
an Identity Center application: it is given an ARN under the instance, and the user and
group attributes default to `UserId` and `GroupId`. `configVersion` works like a
policy's `policyVersion` (base64 of "<lastModifiedDate ms>_1"); updates must name the
current version.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from searchtrail.store.api import Conflict

from .common import (
    KIND_SECURITY_CONFIG,
    TYPE_SECURITY_CONFIG,
    aoss_arn,
    conflict,
    epoch_ms,
    new_version,
    listed,
    not_found,
    paginate,
    partition,
    policy_version,
    quota_exceeded,
    random_id,
    reference,
    validation,
    without_none,
)

# SAML providers per account and Region (OpenSearch Serverless quotas page).
SECURITY_CONFIG_QUOTAS = {"saml": 50}
DEFAULT_SESSION_TIMEOUT = 60
OPTIONS = {
    "saml": "samlOptions",
    "iamidentitycenter": "iamIdentityCenterOptions",
    "iamfederation": "iamFederationOptions",
}
UPDATE_OPTIONS = {
    "saml": "samlOptions",
    "iamidentitycenter": "iamIdentityCenterOptionsUpdates",
    "iamfederation": "iamFederationOptions",
}
ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _reference(call: Any, config_id: str) -> None:
    reference(call, aoss_arn(call.region, call.account_id, f"security-config/{config_id}"),
              TYPE_SECURITY_CONFIG)


def _not_found(config_id: str) -> Exception:
    return not_found(f"Security config with id {config_id} is not found")


def _check_options(config_type: str, params: dict[str, Any], members: dict[str, str]) -> None:
    """Only the options of the config's own type may be given."""
    for other_type, member in members.items():
        if other_type != config_type and params.get(member) is not None:
            raise validation(
                f"{member} can't be used with a security config of type {config_type}; it "
                f"belongs to type {other_type}."
            )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def checked_metadata(metadata: str) -> None:
    """SAML IdP metadata: well-formed XML describing an identity provider."""
    try:
        root = ElementTree.fromstring(metadata)
    except ElementTree.ParseError as exc:
        raise validation(
            f"Invalid SAML metadata: the metadata is not well-formed XML ({exc})."
        ) from None
    if _local(root.tag) not in ("EntityDescriptor", "EntitiesDescriptor"):
        raise validation(
            f"Invalid SAML metadata: the root element is {_local(root.tag)}; expected an "
            "EntityDescriptor."
        )
    if not any(_local(element.tag) == "IDPSSODescriptor" for element in root.iter()):
        raise validation(
            "Invalid SAML metadata: the metadata has no IDPSSODescriptor; provide your identity "
            "provider's metadata."
        )


def _saml(options: dict[str, Any]) -> dict[str, Any]:
    checked_metadata(options["metadata"])
    return {**options, "sessionTimeout": options.get("sessionTimeout") or DEFAULT_SESSION_TIMEOUT}


def _identity_center(call: Any, name: str, options: dict[str, Any]) -> dict[str, Any]:
    instance_arn = options["instanceArn"]
    instance_id = instance_arn.rsplit("/", 1)[1]
    application_arn = (
        f"arn:{partition(call.region)}:sso::{call.account_id}:application/{instance_id}/"
        f"apl-{random_id(16, ALPHANUMERIC)}"
    )
    return {
        "instanceArn": instance_arn,
        "applicationArn": application_arn,
        "applicationName": f"OpenSearchServerless-{name}",
        "applicationDescription": f"OpenSearch Serverless security config {name}",
        "userAttribute": options.get("userAttribute") or "UserId",
        "groupAttribute": options.get("groupAttribute") or "GroupId",
    }


def _detail(stored: dict[str, Any], summary: bool = False) -> dict[str, Any]:
    detail = {
        "id": stored["id"],
        "type": stored["type"],
        "configVersion": stored["configVersion"],
        "description": stored.get("description"),
        "createdDate": stored["createdDate"],
        "lastModifiedDate": stored["lastModifiedDate"],
    }
    if not summary:
        detail[OPTIONS[stored["type"]]] = stored.get("options")
    return without_none(detail)


# --- operations -------------------------------------------------------------------------


def create_security_config(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    config_type, name = params["type"], params["name"]
    config_id = f"{config_type}/{call.account_id}/{name}"
    _reference(call, config_id)
    if call.resources.get(KIND_SECURITY_CONFIG, config_id) is not None:
        raise conflict(f"Security config with id {config_id} already exists")
    _check_options(config_type, params, OPTIONS)
    given = params.get(OPTIONS[config_type])
    if given is None:
        raise validation(
            f"{OPTIONS[config_type]} is required for a security config of type {config_type}."
        )
    if config_type == "saml":
        options = _saml(given)
    elif config_type == "iamidentitycenter":
        options = _identity_center(call, name, given)
    else:
        options = dict(given)
    quota = SECURITY_CONFIG_QUOTAS.get(config_type)
    if quota is not None and len(call.resources.list(KIND_SECURITY_CONFIG, f"{config_type}/")) >= quota:
        raise quota_exceeded(
            f"You have reached the quota of {quota} {config_type} security configs for this "
            "account and Region. Delete one you no longer need, or request a quota increase.",
            resourceType="security-config",
        )
    now_ms = epoch_ms(call.now)
    stored = {
        "id": config_id,
        "type": config_type,
        "name": name,
        "configVersion": policy_version(now_ms),
        "description": params.get("description"),
        "options": options,
        "createdDate": now_ms,
        "lastModifiedDate": now_ms,
    }
    try:
        call.resources.insert(KIND_SECURITY_CONFIG, config_id, stored)
    except Conflict:
        raise conflict(f"Security config with id {config_id} already exists") from None
    return {"securityConfigDetail": _detail(stored)}


def _existing(call: Any, config_id: str) -> dict[str, Any]:
    stored = call.resources.get(KIND_SECURITY_CONFIG, config_id)
    if stored is None:
        raise _not_found(config_id)
    _reference(call, config_id)
    return stored


def get_security_config(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"securityConfigDetail": _detail(_existing(call, params["id"]))}


def update_security_config(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    config_id = params["id"]
    stored = _existing(call, config_id)
    if params["configVersion"] != stored["configVersion"]:
        raise validation(
            "Config version specified in the request refers to an older version and config "
            "has since changed"
        )
    config_type = stored["type"]
    _check_options(config_type, params, UPDATE_OPTIONS)
    options = dict(stored["options"])
    given = params.get(UPDATE_OPTIONS[config_type])
    if given is not None:
        if config_type == "saml":
            options = _saml(given)
        elif config_type == "iamidentitycenter":
            options.update({key: value for key, value in given.items() if value is not None})
        else:
            options = dict(given)
    changed = options != stored["options"]
    stored["options"] = options
    if "description" in params and params["description"] != stored.get("description"):
        stored["description"] = params["description"]
        changed = True
    if changed:
        new_version(stored, call.now, "configVersion")
        call.resources.put(KIND_SECURITY_CONFIG, config_id, stored)
    return {"securityConfigDetail": _detail(stored)}


def delete_security_config(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    config_id = params["id"]
    if not call.resources.delete(KIND_SECURITY_CONFIG, config_id):
        raise _not_found(config_id)
    _reference(call, config_id)
    return {}


def list_security_configs(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    rows = (
        ((stored["id"],), stored)
        for stored in call.resources.list(KIND_SECURITY_CONFIG, f"{params['type']}/")
    )
    page, token = paginate("ListSecurityConfigs", params, rows, 1)
    return listed("securityConfigSummaries", [_detail(s, summary=True) for s in page], token)
