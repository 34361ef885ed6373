"""The aoss provider as a whole: every model operation, idempotency wiring, timings."""

from __future__ import annotations

import pytest

from searchtrail.services.aoss import OpenSearchServerlessProvider
from searchtrail.services.aoss.provider import IDEMPOTENT
from tests.unit.aoss_harness import MODEL, AossHarness


def test_every_model_operation_has_a_handler():
    handlers = OpenSearchServerlessProvider().handlers()
    assert set(handlers) == set(MODEL.operation_names)
    assert len(handlers) == 54


def test_every_operation_with_a_client_token_is_idempotent():
    with_token = {
        name for name in MODEL.operation_names
        if "clientToken" in MODEL.operation_model(name).input_shape.members
    }
    assert IDEMPOTENT == with_token


def test_zero_timings_make_everything_immediate(conn):
    aoss = AossHarness(conn, provider=OpenSearchServerlessProvider(0, 0))
    aoss.policy("all", "collection/*")
    collection = aoss.create("now")
    assert collection["status"] == "ACTIVE"
    endpoint = aoss("CreateVpcEndpoint", name="vpce", vpcId="vpc-1",
                    subnetIds=["subnet-11111111"])["createVpcEndpointDetail"]
    assert endpoint["status"] == "ACTIVE"
    job = aoss("CreateIngestionJob", collectionId=collection["id"], ingestionJobName="job", indexName="i",
               source={"s3": {"bucket": "bkt"}})["ingestionJobDetail"]
    assert (job["status"], job["revision"]) == ("COMPLETED", 3)
    stream = aoss("CreateIngestionStream", collectionId=collection["id"], ingestionStreamName="feed",
                  indexName="i", roleArn="arn:aws:iam::111122223333:role/r",
                  source={"s3": {"sqsArn": "arn:aws:sqs:us-east-1:111122223333:q"}})["ingestionStreamDetail"]
    assert stream["status"] == "ACTIVE"
    out = aoss("DeleteIngestionStream", collectionId=collection["id"], ingestionStreamId=stream["ingestionStreamId"])
    assert out["status"] == "DELETED"


@pytest.mark.parametrize("path", ["dashboards/default", "collection/abc/index/x", "security-policy/network/x",
                                  "vpc-endpoint/vpce-1"])
def test_tags_on_other_resource_paths_are_not_found(conn, path):
    aoss = AossHarness(conn)
    arn = f"arn:aws:aoss:us-east-1:111122223333:{path}"
    err = aoss.fail("ListTagsForResource", resourceArn=arn)
    assert (err.code, err.message) == ("ResourceNotFoundException", f"Resource with ARN {arn} is not found")
