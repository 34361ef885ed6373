"""aoss account settings and policy statistics against the real SQLite store."""

from __future__ import annotations

import json

import pytest

from tests.unit.aoss_harness import AossHarness

METADATA = ('<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
            "<IDPSSODescriptor/></EntityDescriptor>")


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def test_default_capacity_limits(aoss):
    assert aoss("GetAccountSettings") == {
        "accountSettingsDetail": {"capacityLimits": {"maxIndexingCapacityInOCU": 10, "maxSearchCapacityInOCU": 10}}
    }
    assert aoss.last.referenced_resources == []


def test_update_changes_only_given_limits(aoss):
    out = aoss("UpdateAccountSettings", capacityLimits={"maxSearchCapacityInOCU": 4})
    assert out == {"accountSettingsDetail": {"capacityLimits": {"maxIndexingCapacityInOCU": 10,
                                                                "maxSearchCapacityInOCU": 4}}}
    aoss("UpdateAccountSettings", capacityLimits={"maxIndexingCapacityInOCU": 2})
    assert aoss("GetAccountSettings")["accountSettingsDetail"]["capacityLimits"] == {
        "maxIndexingCapacityInOCU": 2, "maxSearchCapacityInOCU": 4}
    assert aoss("UpdateAccountSettings") == aoss("GetAccountSettings")
    # per account and Region
    west = aoss.elsewhere(region="us-west-2")
    assert west("GetAccountSettings")["accountSettingsDetail"]["capacityLimits"]["maxIndexingCapacityInOCU"] == 10


def test_limits_above_the_quota_are_refused(aoss):
    aoss("UpdateAccountSettings", capacityLimits={"maxIndexingCapacityInOCU": 100})
    err = aoss.fail("UpdateAccountSettings", capacityLimits={"maxSearchCapacityInOCU": 101})
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields == {"serviceCode": "aoss", "resourceType": "account-settings"}
    assert "maxSearchCapacityInOCU 101 exceeds the quota of 100 OCUs" in err.message
    assert aoss("GetAccountSettings")["accountSettingsDetail"]["capacityLimits"]["maxSearchCapacityInOCU"] == 10


def test_policies_stats_are_pascal_case_counts(aoss):
    assert aoss("GetPoliciesStats") == {
        "AccessPolicyStats": {"DataPolicyCount": 0},
        "SecurityPolicyStats": {"EncryptionPolicyCount": 0, "NetworkPolicyCount": 0},
        "SecurityConfigStats": {"SamlConfigCount": 0},
        "LifecyclePolicyStats": {"RetentionPolicyCount": 0},
        "TotalPolicyCount": 0,
    }
    aoss.policy("enc-a", "collection/a")
    aoss.policy("enc-b", "collection/b")
    aoss("CreateSecurityPolicy", type="network", name="net", policy=json.dumps(
        [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/a"]}], "AllowFromPublic": True}]))
    aoss("CreateAccessPolicy", type="data", name="data", policy=json.dumps([{
        "Rules": [{"ResourceType": "collection", "Resource": ["collection/a"], "Permission": ["aoss:*"]}],
        "Principal": ["arn:aws:iam::111122223333:role/x"]}]))
    aoss("CreateLifecyclePolicy", type="retention", name="keep", policy=json.dumps(
        {"Rules": [{"ResourceType": "index", "Resource": ["index/a/*"], "MinIndexRetention": "2d"}]}))
    aoss("CreateSecurityConfig", type="saml", name="idp", samlOptions={"metadata": METADATA})
    aoss("CreateSecurityConfig", type="iamfederation", name="fed", iamFederationOptions={})
    assert aoss("GetPoliciesStats") == {
        "AccessPolicyStats": {"DataPolicyCount": 1},
        "SecurityPolicyStats": {"EncryptionPolicyCount": 2, "NetworkPolicyCount": 1},
        "SecurityConfigStats": {"SamlConfigCount": 1},
        "LifecyclePolicyStats": {"RetentionPolicyCount": 1},
        "TotalPolicyCount": 6,
    }
    assert aoss.elsewhere(region="eu-west-1")("GetPoliciesStats")["TotalPolicyCount"] == 0
