"""Every OpenSearch Serverless operation through a real boto3 client against a real server.

The region is used by no other test, so its state and its event history are this module's.
Each call is noted (operation, request id); the last tests check that all 54 model
operations were called and that each call left exactly one CloudTrail record.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime

import botocore.session
import pytest
from botocore.exceptions import ClientError

REGION = "ap-northeast-3"
MODEL = botocore.session.get_session().get_service_model("opensearchserverless")
READ_ONLY_PREFIXES = ("Get", "List", "BatchGet")
METADATA = (
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://idp.example">'
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
    'Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
)
SUBNETS = ["subnet-0123456789abcdef0", "subnet-11111111"]

CALLS: list[tuple[str, str]] = []  # (operation, request id) of every call this module made


@pytest.fixture(scope="module")
def aoss(server):  # type: ignore[no-untyped-def]
    client = server.client("opensearchserverless", region=REGION)

    def note(http_response, parsed, model, **_):  # type: ignore[no-untyped-def]
        CALLS.append((model.name, parsed["ResponseMetadata"]["RequestId"]))

    client.meta.events.register("after-call.opensearchserverless", note)
    return client


@pytest.fixture(scope="module")
def account(aoss) -> str:  # type: ignore[no-untyped-def]
    created = aoss.create_security_policy(
        type="encryption", name="all-collections",
        policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/*"]}],
                           "AWSOwnedKey": True}))
    assert created["securityPolicyDetail"]["policy"]["AWSOwnedKey"] is True
    group = aoss.create_collection_group(name="account-probe", standbyReplicas="ENABLED")
    arn = group["createCollectionGroupDetail"]["arn"]
    aoss.delete_collection_group(id=group["createCollectionGroupDetail"]["id"])
    return arn.split(":")[4]


def error_of(call, *args, **kwargs) -> ClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def wait_for(read, done, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """Poll `read()` until `done(value)`; the resources change state after 1 s here."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)  # polling interval while a status changes, bounded by the deadline


def active_collection(aoss, name: str, **params) -> dict:  # type: ignore[no-untyped-def]
    detail = aoss.create_collection(name=name, **params)["createCollectionDetail"]
    assert detail["status"] == "CREATING"
    got = wait_for(lambda: aoss.batch_get_collection(ids=[detail["id"]])["collectionDetails"][0],
                   lambda d: d["status"] == "ACTIVE")
    assert got["status"] == "ACTIVE"
    return got


# --- policies ---------------------------------------------------------------------------


def test_security_policies(aoss, account) -> None:
    network = [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/logs*"]}],
                "AllowFromPublic": True}]
    created = aoss.create_security_policy(type="network", name="public-logs", policy=json.dumps(network),
                                          description="public")["securityPolicyDetail"]
    assert created["policy"] == network
    assert isinstance(created["createdDate"], int) and created["createdDate"] > 1_600_000_000_000
    assert base64.b64decode(created["policyVersion"]).decode() == f"{created['lastModifiedDate']}_1"
    got = aoss.get_security_policy(type="network", name="public-logs")["securityPolicyDetail"]
    assert got == created
    listed = aoss.list_security_policies(type="network", resource=["collection/logs-1"])
    assert [s["name"] for s in listed["securityPolicySummaries"]] == ["public-logs"]
    updated = aoss.update_security_policy(type="network", name="public-logs",
                                          policyVersion=created["policyVersion"], description="changed")
    assert updated["securityPolicyDetail"]["policyVersion"] != created["policyVersion"]
    stale = error_of(aoss.update_security_policy, type="network", name="public-logs",
                     policyVersion=created["policyVersion"], description="again")
    assert stale.response["Error"]["Code"] == "ValidationException"
    aoss.delete_security_policy(type="network", name="public-logs")
    gone = error_of(aoss.get_security_policy, type="network", name="public-logs")
    assert gone.response["Error"]["Code"] == "ResourceNotFoundException"
    assert gone.response["Error"]["Message"] == "Policy with name public-logs and type network is not found"


def test_access_policies(aoss, account) -> None:
    policy = [{
        "Description": "readers",
        "Rules": [
            {"ResourceType": "collection", "Resource": ["collection/logs*"],
             "Permission": ["aoss:DescribeCollectionItems"]},
            {"ResourceType": "index", "Resource": ["index/logs*/*"],
             "Permission": ["aoss:ReadDocument", "aoss:DescribeIndex"]},
        ],
        "Principal": [f"arn:aws:iam::{account}:role/reader", f"saml/{account}/okta/group/readers"],
    }]
    created = aoss.create_access_policy(type="data", name="readers", policy=json.dumps(policy))
    detail = created["accessPolicyDetail"]
    assert detail["type"] == "data" and detail["policy"] == policy
    assert aoss.get_access_policy(type="data", name="readers")["accessPolicyDetail"] == detail
    listed = aoss.list_access_policies(type="data", resource=["index/logs-2024/app"])
    assert [s["name"] for s in listed["accessPolicySummaries"]] == ["readers"]
    assert "policy" not in listed["accessPolicySummaries"][0]

    bad = json.loads(json.dumps(policy))
    bad[0]["Rules"][0]["Permission"] = ["aoss:ReadDocument"]
    invalid = error_of(aoss.create_access_policy, type="data", name="broken", policy=json.dumps(bad))
    assert invalid.response["Error"]["Code"] == "ValidationException"
    assert invalid.response["Error"]["Message"].startswith(
        "Policy json is invalid, error: [$[0].Rules[0].Permission[0]: does not have a value in the enumeration")
    duplicate = error_of(aoss.create_access_policy, type="data", name="readers", policy=json.dumps(policy))
    assert duplicate.response["Error"]["Code"] == "ConflictException"
    assert duplicate.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    updated = aoss.update_access_policy(type="data", name="readers", policyVersion=detail["policyVersion"],
                                        description="now described")["accessPolicyDetail"]
    assert updated["description"] == "now described" and updated["policyVersion"] != detail["policyVersion"]
    assert aoss.delete_access_policy(type="data", name="readers")["ResponseMetadata"]["HTTPStatusCode"] == 200
    missing = error_of(aoss.delete_access_policy, type="data", name="readers")
    assert missing.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_lifecycle_policies(aoss, account) -> None:
    policy = {"Rules": [
        {"ResourceType": "index", "Resource": ["index/logs*/*"], "MinIndexRetention": "30d"},
        {"ResourceType": "index", "Resource": ["index/logs-audit/*"], "NoMinIndexRetention": True},
    ]}
    created = aoss.create_lifecycle_policy(type="retention", name="keep-logs", policy=json.dumps(policy))
    detail = created["lifecyclePolicyDetail"]
    assert detail["policy"] == policy
    got = aoss.batch_get_lifecycle_policy(identifiers=[{"type": "retention", "name": "keep-logs"},
                                                       {"type": "retention", "name": "nothing"}])
    assert got["lifecyclePolicyDetails"] == [detail]
    assert got["lifecyclePolicyErrorDetails"] == [{"type": "retention", "name": "nothing", "errorCode": "NOT_FOUND",
                                                   "errorMessage": "The specified Lifecycle Policy is not found."}]
    effective = aoss.batch_get_effective_lifecycle_policy(resourceIdentifiers=[
        {"type": "retention", "resource": "index/logs-app/web"},
        {"type": "retention", "resource": "index/logs-audit/2024"},
        {"type": "retention", "resource": "index/metrics/cpu"},
    ])
    assert effective["effectiveLifecyclePolicyDetails"] == [
        {"type": "retention", "resource": "index/logs-app/web", "policyName": "keep-logs",
         "resourceType": "index", "retentionPeriod": "30d"},
        {"type": "retention", "resource": "index/logs-audit/2024", "policyName": "keep-logs",
         "resourceType": "index", "noMinRetentionPeriod": True},
    ]
    assert [e["resource"] for e in effective["effectiveLifecyclePolicyErrorDetails"]] == ["index/metrics/cpu"]
    listed = aoss.list_lifecycle_policies(type="retention", resources=["index/logs-x/y"])
    assert [s["name"] for s in listed["lifecyclePolicySummaries"]] == ["keep-logs"]
    clash = error_of(aoss.create_lifecycle_policy, type="retention", name="clash", policy=json.dumps(
        {"Rules": [{"ResourceType": "index", "Resource": ["index/logs*/*"], "MinIndexRetention": "1d"}]}))
    assert clash.response["Error"]["Code"] == "ValidationException"
    policy["Rules"][0]["MinIndexRetention"] = "24h"
    updated = aoss.update_lifecycle_policy(type="retention", name="keep-logs", policyVersion=detail["policyVersion"],
                                           policy=json.dumps(policy))["lifecyclePolicyDetail"]
    assert updated["policy"]["Rules"][0]["MinIndexRetention"] == "24h"
    aoss.delete_lifecycle_policy(type="retention", name="keep-logs")
    assert aoss.list_lifecycle_policies(type="retention")["lifecyclePolicySummaries"] == []


def test_policies_stats_are_pascal_case(aoss, account) -> None:
    aoss.create_access_policy(type="data", name="stats-data", policy=json.dumps([{
        "Rules": [{"ResourceType": "collection", "Resource": ["collection/*"], "Permission": ["aoss:*"]}],
        "Principal": [f"arn:aws:iam::{account}:root"]}]))
    stats = aoss.get_policies_stats()
    stats.pop("ResponseMetadata")
    assert set(stats) == {"AccessPolicyStats", "SecurityPolicyStats", "SecurityConfigStats",
                          "LifecyclePolicyStats", "TotalPolicyCount"}
    assert stats["AccessPolicyStats"] == {"DataPolicyCount": 1}
    assert stats["SecurityPolicyStats"]["EncryptionPolicyCount"] == 1
    assert stats["TotalPolicyCount"] == sum([
        stats["AccessPolicyStats"]["DataPolicyCount"],
        stats["SecurityPolicyStats"]["EncryptionPolicyCount"], stats["SecurityPolicyStats"]["NetworkPolicyCount"],
        stats["SecurityConfigStats"]["SamlConfigCount"], stats["LifecyclePolicyStats"]["RetentionPolicyCount"]])


# --- security configs and account settings ----------------------------------------------


def test_security_configs(aoss, account) -> None:
    created = aoss.create_security_config(type="saml", name="okta", description="Okta",
                                          samlOptions={"metadata": METADATA, "groupAttribute": "groups"})
    detail = created["securityConfigDetail"]
    assert detail["id"] == f"saml/{account}/okta"
    assert detail["samlOptions"] == {"metadata": METADATA, "groupAttribute": "groups", "sessionTimeout": 60}
    assert aoss.get_security_config(id=detail["id"])["securityConfigDetail"] == detail
    listed = aoss.list_security_configs(type="saml")["securityConfigSummaries"]
    assert [s["id"] for s in listed] == [detail["id"]]
    updated = aoss.update_security_config(id=detail["id"], configVersion=detail["configVersion"],
                                          description="Okta prod")["securityConfigDetail"]
    assert updated["description"] == "Okta prod" and updated["configVersion"] != detail["configVersion"]
    bad = error_of(aoss.create_security_config, type="saml", name="broken", samlOptions={"metadata": "<x/>"})
    assert bad.response["Error"]["Code"] == "ValidationException"
    assert bad.response["Error"]["Message"].startswith("Invalid SAML metadata")
    idc = aoss.create_security_config(
        type="iamidentitycenter", name="idc",
        iamIdentityCenterOptions={"instanceArn": "arn:aws:sso:::instance/ssoins-1234567890abcdef"})
    assert idc["securityConfigDetail"]["iamIdentityCenterOptions"]["userAttribute"] == "UserId"
    aoss.delete_security_config(id=detail["id"])
    missing = error_of(aoss.get_security_config, id=detail["id"])
    assert missing.response["Error"]["Code"] == "ResourceNotFoundException"


def test_account_settings(aoss, account) -> None:
    settings = aoss.get_account_settings()["accountSettingsDetail"]
    assert settings == {"capacityLimits": {"maxIndexingCapacityInOCU": 10, "maxSearchCapacityInOCU": 10}}
    updated = aoss.update_account_settings(capacityLimits={"maxSearchCapacityInOCU": 20})
    assert updated["accountSettingsDetail"]["capacityLimits"] == {"maxIndexingCapacityInOCU": 10,
                                                                  "maxSearchCapacityInOCU": 20}
    quota = error_of(aoss.update_account_settings, capacityLimits={"maxIndexingCapacityInOCU": 500})
    assert quota.response["Error"]["Code"] == "ServiceQuotaExceededException"
    assert quota.response["serviceCode"] == "aoss"


# --- VPC endpoints ----------------------------------------------------------------------


def test_vpc_endpoint_lifecycle(aoss, account) -> None:
    created = aoss.create_vpc_endpoint(name="private", vpcId="vpc-0abc", subnetIds=SUBNETS[:1],
                                       securityGroupIds=["sg-0123"])["createVpcEndpointDetail"]
    assert created["status"] == "PENDING" and created["id"].startswith("vpce-")
    early = error_of(aoss.update_vpc_endpoint, id=created["id"], addSubnetIds=SUBNETS[1:])
    assert early.response["Error"]["Code"] == "ConflictException"
    detail = wait_for(lambda: aoss.batch_get_vpc_endpoint(ids=[created["id"]])["vpcEndpointDetails"][0],
                      lambda d: d["status"] == "ACTIVE")
    assert detail["status"] == "ACTIVE" and detail["vpcId"] == "vpc-0abc"
    listed = aoss.list_vpc_endpoints(vpcEndpointFilters={"status": "ACTIVE"})["vpcEndpointSummaries"]
    assert {"id": created["id"], "name": "private", "status": "ACTIVE"} in listed
    response = aoss.update_vpc_endpoint(id=created["id"], addSubnetIds=SUBNETS[1:])
    assert "UpdateVpcEndpointDetail" in response  # the model's capital U
    assert response["UpdateVpcEndpointDetail"]["subnetIds"] == SUBNETS
    deleted = aoss.delete_vpc_endpoint(id=created["id"])["deleteVpcEndpointDetail"]
    assert deleted == {"id": created["id"], "name": "private", "status": "DELETING"}
    gone = wait_for(lambda: aoss.batch_get_vpc_endpoint(ids=[created["id"]]),
                    lambda out: not out["vpcEndpointDetails"])
    assert gone["vpcEndpointErrorDetails"][0]["errorCode"] == "NOT_FOUND"


# --- collection groups, collections, tags, indexes, ingestion ----------------------------


def test_collection_group_collection_index_and_ingestion(aoss, account) -> None:
    group = aoss.create_collection_group(
        name="shared", standbyReplicas="DISABLED", description="shared OCUs",
        capacityLimits={"maxIndexingCapacityInOCU": 16, "maxSearchCapacityInOCU": 16},
        tags=[{"key": "team", "value": "search"}])["createCollectionGroupDetail"]
    assert group["arn"] == f"arn:aws:aoss:{REGION}:{account}:collection-group/{group['id']}"
    bad_limits = error_of(aoss.create_collection_group, name="odd", standbyReplicas="ENABLED",
                          capacityLimits={"maxIndexingCapacityInOCU": 3})
    assert bad_limits.response["Error"]["Code"] == "ValidationException"

    collection = active_collection(aoss, "logs-app", collectionGroupName="shared", type="SEARCH")
    assert collection["standbyReplicas"] == "DISABLED" and collection["collectionGroupName"] == "shared"
    assert collection["collectionEndpoint"] == f"https://{collection['id']}.{REGION}.aoss.amazonaws.com"
    cid = collection["id"]
    got_group = aoss.batch_get_collection_group(names=["shared"])["collectionGroupDetails"][0]
    assert got_group["numberOfCollections"] == 1
    assert got_group["capacityLimits"] == {"maxIndexingCapacityInOCU": 16.0, "maxSearchCapacityInOCU": 16.0}
    summaries = aoss.list_collection_groups()["collectionGroupSummaries"]
    assert [s["name"] for s in summaries] == ["shared"]
    updated_group = aoss.update_collection_group(id=group["id"], description="updated")
    assert updated_group["updateCollectionGroupDetail"]["description"] == "updated"
    busy = error_of(aoss.delete_collection_group, id=group["id"])
    assert busy.response["Error"]["Code"] == "ConflictException"

    assert [c["id"] for c in aoss.list_collections(collectionFilters={"collectionGroupName": "shared"})[
        "collectionSummaries"]] == [cid]
    assert aoss.update_collection(id=cid, description="app")["updateCollectionDetail"]["description"] == "app"
    aoss.tag_resource(resourceArn=collection["arn"], tags=[{"key": "env", "value": "prod"}])
    aoss.untag_resource(resourceArn=group["arn"], tagKeys=["team"])
    assert aoss.list_tags_for_resource(resourceArn=collection["arn"])["tags"] == [{"key": "env", "value": "prod"}]
    assert aoss.list_tags_for_resource(resourceArn=group["arn"])["tags"] == []

    schema = {"mappings": {"properties": {"title": {"type": "text"}}}}
    assert aoss.create_index(id=cid, indexName="books", indexSchema=schema)["ResponseMetadata"][
        "HTTPStatusCode"] == 200
    assert aoss.get_index(id=cid, indexName="books")["indexSchema"] == schema
    aoss.update_index(id=cid, indexName="books",
                      indexSchema={"mappings": {"properties": {"year": {"type": "integer"}}}})
    assert aoss.get_index(id=cid, indexName="books")["indexSchema"] == {
        "mappings": {"properties": {"title": {"type": "text"}, "year": {"type": "integer"}}}}
    bad_name = error_of(aoss.create_index, id=cid, indexName="Books")
    assert bad_name.response["Error"]["Code"] == "ValidationException"
    aoss.delete_index(id=cid, indexName="books")
    assert error_of(aoss.get_index, id=cid, indexName="books").response["Error"]["Code"] == \
        "ResourceNotFoundException"

    job = aoss.create_ingestion_job(collectionId=cid, ingestionJobName="backfill", indexName="books",
                                    source={"s3": {"bucket": "my-data", "keyPrefix": "2024/"}},
                                    tags=[{"key": "k", "value": "v"}])["ingestionJobDetail"]
    assert job["status"] == "CREATING" and job["state"] == "STARTING" and job["revision"] == 1
    assert isinstance(job["createdAt"], datetime)
    assert job["arn"] == f"arn:aws:aoss:{REGION}:{account}:collection/{cid}/ingestion-job/{job['ingestionJobId']}"
    assert aoss.list_tags_for_resource(resourceArn=job["arn"])["tags"] == [{"key": "k", "value": "v"}]
    running = wait_for(lambda: aoss.get_ingestion_job(collectionId=cid, ingestionJobId=job["ingestionJobId"])[
        "ingestionJobDetail"], lambda d: d["status"] == "ACTIVE")
    assert running["state"] == "SCANNING"
    cancelled = aoss.cancel_ingestion_job(collectionId=cid, ingestionJobId=job["ingestionJobId"])
    assert cancelled["status"] == "CANCELLING" and cancelled["ingestionJobName"] == "backfill"
    done = wait_for(lambda: aoss.get_ingestion_job(collectionId=cid, ingestionJobId=job["ingestionJobId"])[
        "ingestionJobDetail"], lambda d: d["status"] == "CANCELLED")
    assert (done["status"], done["state"]) == ("CANCELLED", "STOPPED")
    jobs = aoss.list_ingestion_jobs(collectionId=cid)["ingestionJobSummaries"]
    assert [(j["ingestionJobName"], j["status"]) for j in jobs] == [("backfill", "CANCELLED")]

    stream = aoss.create_ingestion_stream(
        collectionId=cid, ingestionStreamName="live", indexName="books",
        roleArn=f"arn:aws:iam::{account}:role/ingest",
        source={"s3": {"sqsArn": f"arn:aws:sqs:{REGION}:{account}:events", "buckets": [{"bucket": "my-data"}]}},
    )["ingestionStreamDetail"]
    assert stream["status"] == "CREATING"
    assert stream["source"]["s3"]["buckets"] == [{"bucket": "my-data", "bucketOwnerAccountId": account}]
    active = wait_for(lambda: aoss.get_ingestion_stream(collectionId=cid, ingestionStreamId=stream[
        "ingestionStreamId"])["ingestionStreamDetail"], lambda d: d["status"] == "ACTIVE")
    assert active["state"] == "INGESTION_IN_PROGRESS"
    assert [s["ingestionStreamName"] for s in aoss.list_ingestion_streams(collectionId=cid)[
        "ingestionStreamSummaries"]] == ["live"]
    deleting = aoss.delete_ingestion_stream(collectionId=cid, ingestionStreamId=stream["ingestionStreamId"])
    assert deleting["status"] == "DELETING"
    deleted = wait_for(lambda: aoss.get_ingestion_stream(collectionId=cid, ingestionStreamId=stream[
        "ingestionStreamId"])["ingestionStreamDetail"], lambda d: d["status"] == "DELETED")
    assert deleted["status"] == "DELETED"

    assert aoss.delete_collection(id=cid)["deleteCollectionDetail"]["status"] == "DELETING"
    wait_for(lambda: aoss.batch_get_collection(ids=[cid]), lambda out: not out["collectionDetails"])
    aoss.delete_collection_group(id=group["id"])
    gone = aoss.batch_get_collection_group(ids=[group["id"]])
    assert gone["collectionGroupErrorDetails"][0]["errorMessage"] == "The specified Collection Group is not found."


# --- coverage and the trail -------------------------------------------------------------


def test_every_operation_was_called() -> None:
    assert {operation for operation, _ in CALLS} == set(MODEL.operation_names)


def test_every_call_left_one_record(server) -> None:
    cloudtrail = server.client("cloudtrail", region=REGION)
    records: dict[str, list[dict]] = {}
    token = None
    for _ in range(100):  # bounded paging
        page = cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "aoss.amazonaws.com"}],
            MaxResults=50, **({"NextToken": token} if token else {}))
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            records.setdefault(record["requestID"], []).append(record)
        token = page.get("NextToken")
        if not token:
            break
    for operation, request_id in CALLS:
        found = records.get(request_id, [])
        assert len(found) == 1, (operation, request_id, len(found))
        assert found[0]["eventName"] == operation
        assert found[0]["readOnly"] is operation.startswith(READ_ONLY_PREFIXES)
        assert found[0]["awsRegion"] == REGION
