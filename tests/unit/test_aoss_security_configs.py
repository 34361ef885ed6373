"""aoss security configs (SAML, IAM Identity Center, IAM federation) against the real SQLite store."""

from __future__ import annotations

import re

import pytest

from tests.unit.aoss_harness import ACCOUNT, T0_MS, AossHarness, version_of

METADATA = (
    '<?xml version="1.0"?>'
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/x">'
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
    'Location="https://example.okta.com/app/sso/saml"/>'
    "</md:IDPSSODescriptor></md:EntityDescriptor>"
)
INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def saml(aoss, name="okta", **options):
    return aoss("CreateSecurityConfig", type="saml", name=name,
                samlOptions={"metadata": METADATA, **options})["securityConfigDetail"]


def test_create_saml_config(aoss):
    detail = aoss("CreateSecurityConfig", type="saml", name="okta", description="Okta IdP",
                  samlOptions={"metadata": METADATA, "userAttribute": "email", "groupAttribute": "groups"}
                  )["securityConfigDetail"]
    assert detail == {
        "id": "saml/111122223333/okta",
        "type": "saml",
        "configVersion": version_of(T0_MS),
        "description": "Okta IdP",
        "samlOptions": {"metadata": METADATA, "userAttribute": "email", "groupAttribute": "groups",
                        "sessionTimeout": 60},
        "createdDate": T0_MS,
        "lastModifiedDate": T0_MS,
    }
    assert aoss.last.referenced_resources == [{
        "ARN": "arn:aws:aoss:us-east-1:111122223333:security-config/saml/111122223333/okta",
        "accountId": ACCOUNT, "type": "AWS::AOSS::SecurityConfig",
    }]
    assert aoss("GetSecurityConfig", id="saml/111122223333/okta") == {"securityConfigDetail": detail}


def test_session_timeout_is_kept(aoss):
    assert saml(aoss, sessionTimeout=720)["samlOptions"]["sessionTimeout"] == 720


def test_duplicate_is_conflict(aoss):
    saml(aoss)
    err = aoss.fail("CreateSecurityConfig", type="saml", name="okta", samlOptions={"metadata": METADATA})
    assert (err.code, err.message) == ("ConflictException", "Security config with id saml/111122223333/okta already exists")


@pytest.mark.parametrize("metadata, text", [
    ("not xml", "Invalid SAML metadata: the metadata is not well-formed XML"),
    ("<html><body/></html>", "Invalid SAML metadata: the root element is html; expected an EntityDescriptor."),
    ('<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><SPSSODescriptor/></EntityDescriptor>',
     "Invalid SAML metadata: the metadata has no IDPSSODescriptor"),
])
def test_saml_metadata_is_checked(aoss, metadata, text):
    err = aoss.fail("CreateSecurityConfig", type="saml", name="bad", samlOptions={"metadata": metadata})
    assert err.code == "ValidationException"
    assert err.message.startswith(text)


def test_entities_descriptor_is_accepted(aoss):
    wrapped = ('<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor '
               'entityID="x"><IDPSSODescriptor/></EntityDescriptor></EntitiesDescriptor>')
    aoss("CreateSecurityConfig", type="saml", name="multi", samlOptions={"metadata": wrapped})


@pytest.mark.parametrize("config_type, params, text", [
    ("saml", {}, "samlOptions is required for a security config of type saml."),
    ("iamidentitycenter", {}, "iamIdentityCenterOptions is required for a security config of type iamidentitycenter."),
    ("iamfederation", {}, "iamFederationOptions is required for a security config of type iamfederation."),
    ("saml", {"samlOptions": {"metadata": METADATA}, "iamFederationOptions": {"userAttribute": "sub"}},
     "iamFederationOptions can't be used with a security config of type saml; it belongs to type iamfederation."),
    ("iamfederation", {"iamFederationOptions": {}, "samlOptions": {"metadata": METADATA}},
     "samlOptions can't be used with a security config of type iamfederation; it belongs to type saml."),
])
def test_options_must_match_the_type(aoss, config_type, params, text):
    err = aoss.fail("CreateSecurityConfig", type=config_type, name="cfg", **params)
    assert (err.code, err.message) == ("ValidationException", text)


def test_identity_center_config_gets_an_application(aoss):
    detail = aoss("CreateSecurityConfig", type="iamidentitycenter", name="idc",
                  iamIdentityCenterOptions={"instanceArn": INSTANCE})["securityConfigDetail"]
    assert detail["id"] == "iamidentitycenter/111122223333/idc"
    options = detail["iamIdentityCenterOptions"]
    assert options["instanceArn"] == INSTANCE
    assert re.fullmatch(r"arn:aws:sso::111122223333:application/ssoins-1234567890abcdef/apl-[a-zA-Z0-9]{16}",
                        options["applicationArn"])
    assert options["userAttribute"] == "UserId" and options["groupAttribute"] == "GroupId"
    assert options["applicationName"] and options["applicationDescription"]
    aoss.advance(1)
    updated = aoss("UpdateSecurityConfig", id=detail["id"], configVersion=detail["configVersion"],
                   iamIdentityCenterOptionsUpdates={"userAttribute": "Email"})["securityConfigDetail"]
    assert updated["iamIdentityCenterOptions"] == {**options, "userAttribute": "Email"}
    assert updated["configVersion"] == version_of(T0_MS + 1000)


def test_iam_federation_config(aoss):
    detail = aoss("CreateSecurityConfig", type="iamfederation", name="fed",
                  iamFederationOptions={"userAttribute": "sub", "groupAttribute": "groups"})["securityConfigDetail"]
    assert detail["iamFederationOptions"] == {"userAttribute": "sub", "groupAttribute": "groups"}
    assert "samlOptions" not in detail


def test_update_checks_version_and_options(aoss):
    created = saml(aoss)
    aoss.advance(2)
    new_metadata = METADATA.replace("example.okta.com", "other.okta.com")
    out = aoss("UpdateSecurityConfig", id=created["id"], configVersion=created["configVersion"],
               description="new", samlOptions={"metadata": new_metadata, "sessionTimeout": 30})
    detail = out["securityConfigDetail"]
    assert detail["description"] == "new"
    assert detail["samlOptions"] == {"metadata": new_metadata, "sessionTimeout": 30}
    assert detail["lastModifiedDate"] == T0_MS + 2000 and detail["createdDate"] == T0_MS
    err = aoss.fail("UpdateSecurityConfig", id=created["id"], configVersion=created["configVersion"],
                    description="again")
    assert (err.code, err.message) == (
        "ValidationException",
        "Config version specified in the request refers to an older version and config has since changed",
    )
    err = aoss.fail("UpdateSecurityConfig", id=created["id"], configVersion=detail["configVersion"],
                    iamFederationOptions={"userAttribute": "x"})
    assert err.code == "ValidationException"
    err = aoss.fail("UpdateSecurityConfig", id=created["id"], configVersion=detail["configVersion"],
                    samlOptions={"metadata": "<nope/>"})
    assert err.code == "ValidationException"
    unchanged = aoss("UpdateSecurityConfig", id=created["id"], configVersion=detail["configVersion"])
    assert unchanged["securityConfigDetail"] == detail


def test_unknown_ids_are_not_found(aoss):
    saml(aoss)
    for operation, extra in (("GetSecurityConfig", {}), ("DeleteSecurityConfig", {}),
                             ("UpdateSecurityConfig", {"configVersion": version_of(T0_MS)})):
        err = aoss.fail(operation, id="saml/111122223333/nope", **extra)
        assert (err.code, err.message) == ("ResourceNotFoundException",
                                           "Security config with id saml/111122223333/nope is not found")
    # another account's id is not ours
    assert aoss.fail("GetSecurityConfig", id="saml/444455556666/okta").code == "ResourceNotFoundException"


def test_delete_and_list(aoss):
    for name in ("charlie", "alpha", "bravo"):
        saml(aoss, name=name)
    aoss("CreateSecurityConfig", type="iamfederation", name="fed", iamFederationOptions={})
    out = aoss("ListSecurityConfigs", type="saml", maxResults=2)
    summaries = out["securityConfigSummaries"]
    assert [s["id"] for s in summaries] == ["saml/111122223333/alpha", "saml/111122223333/bravo"]
    assert set(summaries[0]) == {"id", "type", "configVersion", "createdDate", "lastModifiedDate"}
    rest = aoss("ListSecurityConfigs", type="saml", nextToken=out["nextToken"])
    assert [s["id"] for s in rest["securityConfigSummaries"]] == ["saml/111122223333/charlie"]
    assert [s["id"] for s in aoss("ListSecurityConfigs", type="iamfederation")["securityConfigSummaries"]] == [
        "iamfederation/111122223333/fed"]
    assert aoss("DeleteSecurityConfig", id="saml/111122223333/alpha") == {}
    assert len(aoss("ListSecurityConfigs", type="saml")["securityConfigSummaries"]) == 2
    stats = aoss("GetPoliciesStats")
    assert stats["SecurityConfigStats"] == {"SamlConfigCount": 2}


def test_saml_quota_is_50(aoss):
    for i in range(50):
        saml(aoss, name=f"idp-{i:02d}")
    err = aoss.fail("CreateSecurityConfig", type="saml", name="idp-50", samlOptions={"metadata": METADATA})
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields["serviceCode"] == "aoss"
    aoss("CreateSecurityConfig", type="iamfederation", name="fed", iamFederationOptions={})


def test_client_token_replays_create(aoss):
    first = aoss("CreateSecurityConfig", type="saml", name="okta", samlOptions={"metadata": METADATA},
                 clientToken="tok")
    aoss.advance(5)
    again = aoss("CreateSecurityConfig", type="saml", name="okta", samlOptions={"metadata": METADATA},
                 clientToken="tok")
    assert again == first
