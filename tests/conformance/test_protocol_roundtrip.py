"""Round trips with botocore as the oracle, for every operation and error of both models.

botocore serializes a generated input -> our parser must give it back; our serializer
writes a generated output -> botocore's parser must give it back; our error funnel writes
every modeled error -> botocore must see the right code, message and fields.
"""

from __future__ import annotations


import botocore.session
import pytest
from botocore.model import OperationModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.parser import parse_request
from searchtrail.protocol.serializer import error_response, response_body
from searchtrail.protocol.validate import find_violations
from tests.samples import sample_value

SERVICES = ("opensearchserverless", "cloudtrail")
CATALOG = ServiceCatalog.load(SERVICES)
SESSION = botocore.session.get_session()
CLIENTS = {
    name: SESSION.create_client(name, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                                aws_secret_access_key="secret")
    for name in SERVICES
}

OPERATIONS = [
    pytest.param(service.operation_model(name), id=f"{service.service_name}.{name}")
    for service in CATALOG.services()
    for name in service.operation_names
]
ERROR_SHAPES = [
    pytest.param(service, shape, id=f"{service.service_name}.{shape.name}")
    for service in CATALOG.services()
    for shape in service.error_shapes
]



# --- the round trips --------------------------------------------------------------------

def test_every_operation_of_both_models_is_covered() -> None:
    session_counts = {name: len(SESSION.get_service_model(name).operation_names) for name in SERVICES}
    assert len(OPERATIONS) == sum(session_counts.values())
    assert session_counts["opensearchserverless"] >= 54


@pytest.mark.parametrize("operation", OPERATIONS)
def test_botocore_request_parses_back_to_the_input(operation: OperationModel) -> None:
    params = sample_value(operation.input_shape) if operation.input_shape is not None else {}
    request = create_serializer("json", include_validation=False).serialize_to_request(params, operation)

    parsed = parse_request(operation, request["body"])

    assert parsed == params
    # The generator only makes valid values, so the validator must accept all of them.
    assert find_violations(operation, parsed) == []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_our_response_parses_in_botocore_to_the_output(operation: OperationModel) -> None:
    output = sample_value(operation.output_shape) if operation.output_shape is not None else {}

    body = response_body(operation, output)
    parsed = create_parser("json").parse(
        {"status_code": 200, "headers": {}, "body": body}, operation.output_shape
    )

    parsed.pop("ResponseMetadata", None)
    assert parsed == output


@pytest.mark.parametrize(("service", "error_shape"), ERROR_SHAPES)
def test_error_response_reads_in_botocore_as_the_modeled_error(service, error_shape) -> None:
    code = error_shape.error_code or error_shape.name
    fields = {name: sample_value(member) for name, member in error_shape.members.items() if name != "message"}
    error = ServiceError(code, f"{code} happened: ünïcode kept", **fields)
    any_operation = service.operation_model(service.operation_names[0])

    status, headers, body = error_response(service, error, "req-0123")
    response = {"status_code": status, "headers": {k.decode(): v.decode() for k, v in headers}, "body": body}
    generic = create_parser("json").parse(response, any_operation.output_shape)
    modeled = create_parser("json").parse(response, error_shape)

    assert generic["Error"] == {"Code": code, "Message": error.message}
    assert generic["ResponseMetadata"]["RequestId"] == "req-0123"
    assert {name: modeled[name] for name in fields} == fields
    assert response["headers"]["x-amzn-errortype"] == code
    assert response["headers"]["content-type"] == CATALOG.content_type(service)
    assert status == EXPECTED_STATUS.get((service.service_name, code), 400)
    # boto3's own lookup picks the modeled exception class from the parsed code.
    client = CLIENTS[service.service_name]
    assert client.exceptions.from_code(generic["Error"]["Code"]) is getattr(client.exceptions, error_shape.name)


EXPECTED_STATUS = {
    ("opensearchserverless", "ValidationException"): 400,
    ("opensearchserverless", "ResourceNotFoundException"): 404,
    ("opensearchserverless", "ConflictException"): 409,
    ("opensearchserverless", "ServiceQuotaExceededException"): 402,
    ("opensearchserverless", "OcuLimitExceededException"): 402,
    ("opensearchserverless", "InternalServerException"): 500,
}


@pytest.mark.parametrize("service", [pytest.param(s, id=s.service_name) for s in CATALOG.services()])
def test_every_target_botocore_sends_resolves_to_its_operation(service) -> None:
    serializer = create_serializer("json", include_validation=False)
    for name in service.operation_names:
        request = serializer.serialize_to_request({}, service.operation_model(name))
        assert request["headers"]["Content-Type"] == CATALOG.content_type(service)
        assert CATALOG.resolve(request["headers"]["X-Amz-Target"]).name == name


def test_catalog_lookups() -> None:
    assert CATALOG.resolve("OpenSearchServerless.NoSuchThing") is None
    assert CATALOG.resolve("CloudTrail.LookupEvents") is None  # the full CloudTrail prefix is required
    assert CATALOG.service("cloudtrail").metadata["jsonVersion"] == "1.1"
    assert [s.service_name for s in CATALOG.services()] == list(SERVICES)
    assert len(list(CATALOG.operations())) == len(OPERATIONS)


def test_read_only_follows_the_verb_prefix() -> None:
    aoss = CATALOG.service("opensearchserverless").operation_names
    assert sum(CATALOG.is_read_only(name) for name in aoss) == 23  # cloudtrail-spec.md 6.1
    assert CATALOG.is_read_only("LookupEvents") and CATALOG.is_read_only("DescribeTrails")
    assert CATALOG.is_read_only("BatchGetCollection") and CATALOG.is_read_only("GetTrailStatus")
    assert not CATALOG.is_read_only("CreateCollection") and not CATALOG.is_read_only("StartLogging")
