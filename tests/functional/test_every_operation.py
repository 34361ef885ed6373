"""Walk both models: every operation answers below 500 and leaves exactly one record per call."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.samples import sample_value

REGION = "ca-central-1"  # a region no other test uses, so its history is this test's alone
SERVICES = ("opensearchserverless", "cloudtrail")


def operations():  # type: ignore[no-untyped-def]
    session = botocore.session.get_session()
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.operation_names:
            yield service, model.operation_model(name)


def test_no_operation_can_produce_a_server_error(server) -> None:
    request_ids, failures = [], []
    clients = {s: server.client(s, region=REGION, validate=False) for s in SERVICES}
    for service, operation in operations():
        inputs = [{}]
        if operation.input_shape is not None:
            inputs.append(sample_value(operation.input_shape))
        for params in inputs:
            try:
                response = clients[service]._make_api_call(operation.name, params)
                metadata = response["ResponseMetadata"]
            except ClientError as error:
                metadata = error.response["ResponseMetadata"]
            if metadata["HTTPStatusCode"] >= 500:
                failures.append((operation.name, params, metadata["HTTPStatusCode"]))
            request_ids.append(metadata["RequestId"])
    assert failures == []

    cloudtrail = server.client("cloudtrail", region=REGION)
    recorded, token = [], None
    for _ in range(100):
        page = cloudtrail.lookup_events(MaxResults=50, **({"NextToken": token} if token else {}))
        recorded.extend(json.loads(e["CloudTrailEvent"])["requestID"] for e in page["Events"])
        token = page.get("NextToken")
        if not token:
            break
    ours = [rid for rid in recorded if rid in set(request_ids)]
    assert sorted(ours) == sorted(request_ids)  # one record per call, none twice


@pytest.mark.parametrize("service", SERVICES)
def test_unimplemented_operations_say_so_with_a_modelled_error(server, service) -> None:
    from searchtrail.services.aoss.provider import OpenSearchServerlessProvider
    from searchtrail.services.cloudtrail.provider import CloudTrailProvider

    provider = OpenSearchServerlessProvider() if service == "opensearchserverless" else CloudTrailProvider()
    implemented = set(provider.handlers())
    client = server.client(service, region=REGION, validate=False)
    model = botocore.session.get_session().get_service_model(service)
    unimplemented = [name for name in model.operation_names if name not in implemented]
    # CloudTrail has operations left for later; all 54 aoss operations are implemented.
    assert unimplemented or service == "opensearchserverless"
    for name in unimplemented:
        operation = model.operation_model(name)
        params = sample_value(operation.input_shape) if operation.input_shape else {}
        with pytest.raises(ClientError) as error:
            client._make_api_call(name, params)
        assert error.value.response["Error"]["Message"] == f"{name} is not supported by searchtrail yet."
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        modelled = {shape.name for shape in operation.error_shapes} | {"ValidationException"}
        assert error.value.response["Error"]["Code"] in modelled
