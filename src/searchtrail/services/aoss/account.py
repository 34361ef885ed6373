"""Account-level views: capacity settings and policy statistics.

Capacity limits default to 10 indexing and 10 search OCUs (the capacity-limits guide);
UpdateAccountSettings changes only the limits it is given (the model's minimum of 2 is
checked before the handler runs) and refuses values above the OCU quota with
ServiceQuotaExceededException. GetPoliciesStats counts the caller's policies and
configurations; its output is the one PascalCase shape of the API.
"""

from __future__ import annotations

from typing import Any

from .access_policies import ACCESS_POLICIES
from .common import KIND_ACCOUNT_SETTINGS, KIND_SECURITY_CONFIG, quota_exceeded
from .lifecycle import LIFECYCLE_POLICIES
from .policies import SECURITY_POLICIES

DEFAULT_CAPACITY = {"maxIndexingCapacityInOCU": 10, "maxSearchCapacityInOCU": 10}
# Maximum OCUs per account and Region for each of indexing and search (quotas page).
MAX_OCU = 100


def _settings(call: Any) -> dict[str, Any]:
    stored = call.resources.get(KIND_ACCOUNT_SETTINGS, "settings")
    return stored or {"capacityLimits": dict(DEFAULT_CAPACITY)}


def get_account_settings(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"accountSettingsDetail": _settings(call)}


def update_account_settings(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    settings = _settings(call)
    limits = params.get("capacityLimits") or {}
    given = {key: value for key, value in limits.items() if value is not None}
    for name, value in given.items():
        if value > MAX_OCU:
            raise quota_exceeded(
                f"{name} {value} exceeds the quota of {MAX_OCU} OCUs for this account and Region. "
                "Request a quota increase to use more.",
                resourceType="account-settings",
            )
    settings["capacityLimits"].update(given)
    call.resources.put(KIND_ACCOUNT_SETTINGS, "settings", settings)
    return {"accountSettingsDetail": settings}


def get_policies_stats(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    data = ACCESS_POLICIES.count(call, "data")
    encryption = SECURITY_POLICIES.count(call, "encryption")
    network = SECURITY_POLICIES.count(call, "network")
    saml = len(call.resources.list(KIND_SECURITY_CONFIG, "saml/"))
    retention = LIFECYCLE_POLICIES.count(call, "retention")
    return {
        "AccessPolicyStats": {"DataPolicyCount": data},
        "SecurityPolicyStats": {"EncryptionPolicyCount": encryption, "NetworkPolicyCount": network},
        "SecurityConfigStats": {"SamlConfigCount": saml},
        "LifecyclePolicyStats": {"RetentionPolicyCount": retention},
        "TotalPolicyCount": data + encryption + network + saml + retention,
    }
