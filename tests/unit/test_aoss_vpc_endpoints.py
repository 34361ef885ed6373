"""aoss VPC endpoints against the real SQLite store: PENDING -> ACTIVE -> DELETING -> gone."""

from __future__ import annotations

import re

import pytest

from tests.unit.aoss_harness import ACCOUNT, T0_MS, AossHarness

SUBNET_A, SUBNET_B, SUBNET_C = "subnet-0123456789abcdef0", "subnet-11111111", "subnet-22222222"


@pytest.fixture
def aoss(conn):
    return AossHarness(conn)


def create(aoss, name="my-endpoint", subnets=(SUBNET_A,), **params):
    return aoss("CreateVpcEndpoint", name=name, vpcId="vpc-0abc", subnetIds=list(subnets),
                **params)["createVpcEndpointDetail"]


def get(aoss, endpoint_id):
    out = aoss("BatchGetVpcEndpoint", ids=[endpoint_id])
    return out["vpcEndpointDetails"][0] if out["vpcEndpointDetails"] else None


def test_create_is_pending_then_active(aoss):
    created = create(aoss, securityGroupIds=["sg-1", "sg-2"])
    assert re.fullmatch(r"vpce-[0-9a-f]{17}", created["id"])
    assert created == {"id": created["id"], "name": "my-endpoint", "status": "PENDING"}
    assert aoss.last.referenced_resources == [{
        "ARN": f"arn:aws:aoss:us-east-1:111122223333:vpc-endpoint/{created['id']}",
        "accountId": ACCOUNT, "type": "AWS::AOSS::VpcEndpoint",
    }]
    assert get(aoss, created["id"]) == {
        "id": created["id"], "name": "my-endpoint", "vpcId": "vpc-0abc", "subnetIds": [SUBNET_A],
        "securityGroupIds": ["sg-1", "sg-2"], "status": "PENDING", "createdDate": T0_MS,
    }
    aoss.advance(2.999)
    assert get(aoss, created["id"])["status"] == "PENDING"
    aoss.advance(0.001)
    assert get(aoss, created["id"])["status"] == "ACTIVE"


def test_security_groups_are_omitted_when_none(aoss):
    created = create(aoss)
    assert "securityGroupIds" not in get(aoss, created["id"])


def test_names_are_unique_until_gone(aoss):
    first = create(aoss, name="shared")
    err = aoss.fail("CreateVpcEndpoint", name="shared", vpcId="vpc-1", subnetIds=[SUBNET_B])
    assert (err.code, err.message) == ("ConflictException", "VPC endpoint with name shared already exists (PENDING)")
    aoss.advance(3)
    aoss("DeleteVpcEndpoint", id=first["id"])
    assert aoss.fail("CreateVpcEndpoint", name="shared", vpcId="vpc-1", subnetIds=[SUBNET_B]).code == \
        "ConflictException"
    aoss.advance(3)
    assert create(aoss, name="shared")["status"] == "PENDING"


def test_duplicate_ids_in_request_are_rejected(aoss):
    err = aoss.fail("CreateVpcEndpoint", name="dups", vpcId="vpc-1", subnetIds=[SUBNET_A, SUBNET_A])
    assert (err.code, err.message) == ("ValidationException", f"Duplicate subnet ID {SUBNET_A} in the request.")
    err = aoss.fail("CreateVpcEndpoint", name="dups", vpcId="vpc-1", subnetIds=[SUBNET_A],
                    securityGroupIds=["sg-1", "sg-1"])
    assert err.code == "ValidationException"


def test_batch_get_reports_unknown_ids(aoss):
    created = create(aoss)
    out = aoss("BatchGetVpcEndpoint", ids=["vpce-doesnotexist", created["id"], "vpce-doesnotexist"])
    assert [d["id"] for d in out["vpcEndpointDetails"]] == [created["id"]]
    assert out["vpcEndpointErrorDetails"] == [{
        "id": "vpce-doesnotexist", "errorCode": "NOT_FOUND", "errorMessage": "The specified VPC Endpoint is not found.",
    }]


def test_list_and_status_filter(aoss):
    old = create(aoss, name="old")
    aoss.advance(3)
    new = create(aoss, name="new")
    out = aoss("ListVpcEndpoints")
    assert out == {"vpcEndpointSummaries": [
        {"id": new["id"], "name": "new", "status": "PENDING"},
        {"id": old["id"], "name": "old", "status": "ACTIVE"},
    ]}
    active = aoss("ListVpcEndpoints", vpcEndpointFilters={"status": "ACTIVE"})
    assert [s["name"] for s in active["vpcEndpointSummaries"]] == ["old"]
    page = aoss("ListVpcEndpoints", maxResults=1)
    assert [s["name"] for s in page["vpcEndpointSummaries"]] == ["new"]
    rest = aoss("ListVpcEndpoints", maxResults=1, nextToken=page["nextToken"])
    assert [s["name"] for s in rest["vpcEndpointSummaries"]] == ["old"] and "nextToken" not in rest
    assert aoss.last.referenced_resources == []


def test_update_only_when_active(aoss):
    created = create(aoss, securityGroupIds=["sg-1"])
    err = aoss.fail("UpdateVpcEndpoint", id=created["id"], addSubnetIds=[SUBNET_B])
    assert (err.code, err.message) == (
        "ConflictException", f"VPC endpoint {created['id']} is in PENDING state; it can be updated only when ACTIVE")
    aoss.advance(3)
    out = aoss("UpdateVpcEndpoint", id=created["id"], addSubnetIds=[SUBNET_B, SUBNET_C],
               removeSubnetIds=[SUBNET_A], addSecurityGroupIds=["sg-2"])
    assert out == {"UpdateVpcEndpointDetail": {
        "id": created["id"], "name": "my-endpoint", "status": "ACTIVE", "subnetIds": [SUBNET_B, SUBNET_C],
        "securityGroupIds": ["sg-1", "sg-2"], "lastModifiedDate": T0_MS + 3000,
    }}
    detail = get(aoss, created["id"])
    assert detail["subnetIds"] == [SUBNET_B, SUBNET_C] and detail["securityGroupIds"] == ["sg-1", "sg-2"]


@pytest.mark.parametrize("change, text", [
    ({"removeSubnetIds": [SUBNET_A]}, "A VPC endpoint needs at least one subnet; the update would remove all."),
    ({"removeSubnetIds": [SUBNET_B]}, f"The subnet ID {SUBNET_B} is not associated with the VPC endpoint."),
    ({"addSubnetIds": [SUBNET_B], "removeSubnetIds": [SUBNET_B]},
     f"The subnet ID {SUBNET_B} can't be both added and removed."),
    ({"addSecurityGroupIds": ["sg-3", "sg-4", "sg-5", "sg-6", "sg-7"]},
     "A VPC endpoint can have at most 5 security groups; the update would leave 6."),
    ({"removeSecurityGroupIds": ["sg-9"]}, "The security group ID sg-9 is not associated with the VPC endpoint."),
])
def test_invalid_updates(aoss, change, text):
    created = create(aoss, securityGroupIds=["sg-1"])
    aoss.advance(3)
    err = aoss.fail("UpdateVpcEndpoint", id=created["id"], **change)
    assert (err.code, err.message) == ("ValidationException", text)


def test_delete_lifecycle(aoss):
    created = create(aoss)
    err = aoss.fail("DeleteVpcEndpoint", id=created["id"])
    assert err.code == "ConflictException" and "PENDING state" in err.message
    aoss.advance(3)
    out = aoss("DeleteVpcEndpoint", id=created["id"])
    assert out == {"deleteVpcEndpointDetail": {"id": created["id"], "name": "my-endpoint", "status": "DELETING"}}
    assert get(aoss, created["id"])["status"] == "DELETING"
    assert aoss.fail("DeleteVpcEndpoint", id=created["id"]).code == "ConflictException"
    assert aoss.fail("UpdateVpcEndpoint", id=created["id"], addSubnetIds=[SUBNET_B]).code == "ConflictException"
    aoss.advance(3)
    assert get(aoss, created["id"]) is None
    assert aoss("ListVpcEndpoints") == {"vpcEndpointSummaries": []}
    err = aoss.fail("DeleteVpcEndpoint", id=created["id"])
    assert (err.code, err.message) == ("ResourceNotFoundException", f"VPC endpoint with ID {created['id']} cannot be found.")
    create(aoss, name="next")  # a successful write purges what is gone
    assert [doc["name"] for doc in aoss.repo.list("aoss.vpc-endpoint")] == ["next"]


def test_quota_is_50(aoss):
    for i in range(50):
        create(aoss, name=f"ep-{i:02d}")
    err = aoss.fail("CreateVpcEndpoint", name="ep-50", vpcId="vpc-1", subnetIds=[SUBNET_A])
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields == {"serviceCode": "aoss", "resourceType": "vpc-endpoint"}


def test_client_token_replays(aoss):
    first = aoss("CreateVpcEndpoint", name="idem", vpcId="vpc-1", subnetIds=[SUBNET_A], clientToken="t")
    aoss.advance(4)
    assert aoss("CreateVpcEndpoint", name="idem", vpcId="vpc-1", subnetIds=[SUBNET_A], clientToken="t") == first
    assert len(aoss("ListVpcEndpoints")["vpcEndpointSummaries"]) == 1
