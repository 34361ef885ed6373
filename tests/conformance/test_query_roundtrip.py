"""Query-protocol round trips with botocore as the oracle, for every IAM and STS operation and error.

botocore serializes a generated input and AWSRequest form-encodes it -> our parser must give
it back; our serializer writes a generated output as XML -> botocore's query parser must give
it back; our error funnel writes every modeled error -> botocore must see the right code,
message, status and exception class.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from searchtrail.protocol.catalog import QUERY_CONTENT_TYPE, ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.patches import python_pattern
from searchtrail.protocol.query import (
    lower_camel,
    parse_query_request,
    query_error_response,
    query_input_wire,
    query_output_wire,
    serialize_query_response,
)
from searchtrail.protocol.validate import find_violations
from tests import samples

QUERY_SERVICES = ("iam", "sts")
CATALOG = ServiceCatalog.load(("opensearchserverless", "cloudtrail", *QUERY_SERVICES))
SESSION = botocore.session.get_session()
CLIENTS = {
    name: SESSION.create_client(name, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                                aws_secret_access_key="secret")
    for name in QUERY_SERVICES
}
QUERY_MODELS = [CATALOG.service(name) for name in QUERY_SERVICES]

OPERATIONS = [
    pytest.param(service.operation_model(name), id=f"{service.service_name}.{name}")
    for service in QUERY_MODELS
    for name in service.operation_names
]
ERROR_SHAPES = [
    pytest.param(service, shape, id=f"{service.service_name}.{shape.name}")
    for service in QUERY_MODELS
    for shape in service.error_shapes
]


# --- samples ---------------------------------------------------------------------------------

def _python_regex(pattern: str) -> bool:
    try:
        re.compile(python_pattern(pattern))
    except re.error:
        return False
    return True


# IAM / STS tag keys and values use Java's \p{L}\p{Z}\p{N} classes, which Python's ``re`` lacks
# (the validator logs and skips them); this text is in that language: letters, a space, a digit.
TAG_TEXT = "Tag välue-1"


def sample(shape: Shape, depth: int = 0) -> Any:
    """``tests.samples.sample_value``, except for strings whose pattern Python cannot compile."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 8:
            return {}
        members = list(shape.members.items())
        if shape.metadata.get("union"):  # a union sets exactly one member
            members = members[-1:]
        return {name: sample(member, depth + 1) for name, member in members}
    if kind == "list" and not shape.member.metadata.get("enum"):
        return [sample(shape.member, depth + 1) for _ in range(samples._sample_count(shape))]
    if kind == "map":
        keys = list(shape.key.metadata.get("enum") or ()) or [sample(shape.key)]
        return {key: sample(shape.value, depth + 1) for key in keys[: max(1, shape.metadata.get("min", 1))]}
    pattern = shape.metadata.get("pattern")
    if kind == "string" and pattern is not None and not shape.enum and not _python_regex(pattern):
        return TAG_TEXT
    return samples.sample_value(shape, depth)


def form_body(params: dict[str, Any], operation: OperationModel) -> bytes:
    """The body botocore sends: its query serializer, then AWSRequest's form encoding."""
    request = create_serializer("query", include_validation=False).serialize_to_request(params, operation)
    body = AWSRequest(method="POST", url="https://iam.amazonaws.com/", data=request["body"],
                      headers=request["headers"]).prepare().body
    return body.encode() if isinstance(body, str) else body


# --- the round trips -------------------------------------------------------------------------

def test_every_operation_of_both_models_is_covered() -> None:
    counts = {name: len(SESSION.get_service_model(name).operation_names) for name in QUERY_SERVICES}
    assert len(OPERATIONS) == sum(counts.values())
    assert counts["iam"] >= 170 and counts["sts"] >= 8


@pytest.mark.parametrize("operation", OPERATIONS)
def test_botocore_request_parses_back_to_the_input(operation: OperationModel) -> None:
    params = sample(operation.input_shape) if operation.input_shape is not None else {}
    body = form_body(params, operation)

    parsed, wire = parse_query_request(operation, body)

    assert parsed == params
    # The generator only makes valid values, so the validator must accept all of them.
    assert find_violations(operation, parsed) == []
    assert wire == query_input_wire(operation, parsed)
    # Every top-level member that is not sensitive shows in requestParameters, lower-camel.
    shape = operation.input_shape
    shown = {lower_camel(name) for name in params if not shape.members[name].metadata.get("sensitive")}
    assert set(wire) == shown


@pytest.mark.parametrize("operation", OPERATIONS)
def test_our_response_parses_in_botocore_to_the_output(operation: OperationModel) -> None:
    output = sample(operation.output_shape) if operation.output_shape is not None else {}

    body = serialize_query_response(operation, output, "req-0123")
    parsed = create_parser("query").parse({"status_code": 200, "headers": {}, "body": body},
                                          operation.output_shape)

    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-0123"
    assert parsed == output
    root = f'<{operation.name}Response xmlns="https://{operation.service_model.endpoint_prefix}.amazonaws.com/doc/'
    assert body.startswith(root.encode())
    if operation.output_shape is not None:
        wrapper = operation.output_shape.serialization["resultWrapper"]
        assert wrapper == f"{operation.name}Result"
        assert f"<{wrapper}>".encode() in body
    else:
        assert b"Result>" not in body


@pytest.mark.parametrize("operation", OPERATIONS)
def test_boto3_client_parses_our_response_body(operation: OperationModel) -> None:
    """The client's own parser instance (as boto3 uses it) reads the XML too."""
    service = operation.service_model.service_name
    output = sample(operation.output_shape) if operation.output_shape is not None else {}
    body = serialize_query_response(operation, output, "req-1")
    parser = CLIENTS[service]._response_parser
    parsed = parser.parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == output


@pytest.mark.parametrize(("service", "error_shape"), ERROR_SHAPES)
def test_error_response_reads_in_botocore_as_the_modeled_error(service, error_shape) -> None:
    code = error_shape.error_code or error_shape.name
    error = ServiceError(code, f"{code} happened: ünïcode <kept> & 'quoted'")
    any_operation = service.operation_model(service.operation_names[0])

    status, headers, body = query_error_response(service, error, "req-0123")
    response = {"status_code": status, "headers": {k.decode(): v.decode() for k, v in headers}, "body": body}
    generic = create_parser("query").parse(response, any_operation.output_shape)

    assert generic["Error"]["Code"] == code
    assert generic["Error"]["Message"] == error.message
    assert generic["Error"]["Type"] == ("Receiver" if status >= 500 else "Sender")
    assert generic["ResponseMetadata"]["RequestId"] == "req-0123"
    assert response["headers"]["content-type"] == "text/xml"
    assert response["headers"]["x-amzn-requestid"] == "req-0123"
    assert status == error_shape.metadata.get("error", {}).get("httpStatusCode", 400)
    # boto3's own lookup picks the modeled exception class from the parsed code.
    client = CLIENTS[service.service_name]
    assert client.exceptions.from_code(generic["Error"]["Code"]) is getattr(client.exceptions, error_shape.name)


@pytest.mark.parametrize(("service", "error_shape"), ERROR_SHAPES)
def test_shape_name_raised_reaches_the_client_as_the_modeled_code(service, error_shape) -> None:
    """A provider raising ``NoSuchEntityException`` (the shape name) still gives ``NoSuchEntity``."""
    status, _, body = query_error_response(service, ServiceError(error_shape.name, "m"), "r")
    parsed = create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, None)
    assert parsed["Error"]["Code"] == (error_shape.error_code or error_shape.name)


def test_modeled_error_statuses_are_the_models() -> None:
    iam, sts = CATALOG.service("iam"), CATALOG.service("sts")
    expected = {(iam, "NoSuchEntity"): 404, (iam, "EntityAlreadyExists"): 409, (iam, "DeleteConflict"): 409,
                (iam, "LimitExceeded"): 409, (iam, "ServiceFailure"): 500, (iam, "ReportExpired"): 410,
                (sts, "RegionDisabledException"): 403, (sts, "MalformedPolicyDocument"): 400}
    for (service, code), status in expected.items():
        assert query_error_response(service, ServiceError(code, "m"), "r")[0] == status, code
    assert b"<Type>Receiver</Type>" in query_error_response(iam, ServiceError("ServiceFailure", "m"), "r")[2]


# --- catalog --------------------------------------------------------------------------------

@pytest.mark.parametrize("service", [pytest.param(s, id=s.service_name) for s in QUERY_MODELS])
def test_every_action_botocore_sends_resolves_to_its_operation(service) -> None:
    serializer = create_serializer("query", include_validation=False)
    for name in service.operation_names:
        request = serializer.serialize_to_request({}, service.operation_model(name))
        assert request["headers"]["Content-Type"].split(";")[0] == CATALOG.content_type(service)
        assert CATALOG.resolve_query(request["body"]) is service.operation_model(name)


def test_catalog_keeps_json_services_and_adds_query_ones() -> None:
    assert CATALOG.content_type(CATALOG.service("iam")) == QUERY_CONTENT_TYPE
    assert CATALOG.content_type(CATALOG.service("cloudtrail")) == "application/x-amz-json-1.1"
    assert CATALOG.resolve("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents").name == "LookupEvents"
    assert CATALOG.resolve("AssumeRole") is None
    assert CATALOG.resolve_query({"Version": "2011-06-15", "Action": "AssumeRole"}).service_model.service_name == "sts"
    assert CATALOG.resolve_query({"Version": "2010-05-08", "Action": "AssumeRole"}) is None  # not IAM's
    assert CATALOG.resolve_query({"Action": "GetUser"}) is None
    assert CATALOG.resolve_query({"Version": "2010-05-08"}) is None
    assert CATALOG.resolve_query({}) is None
    total = sum(len(service.operation_names) for service in CATALOG.services())
    assert len(list(CATALOG.operations())) == total
    assert set(CATALOG.query_versions()) == {"2010-05-08", "2011-06-15"}


def test_read_only_rules_for_iam_and_sts() -> None:
    iam, sts = CATALOG.service("iam"), CATALOG.service("sts")
    for name in sts.operation_names:  # CloudTrail records every STS call as readOnly
        assert CATALOG.is_read_only(sts.operation_model(name)) and CATALOG.is_read_only(name), name
    for name in iam.operation_names:
        expected = name.startswith(("Get", "List", "Simulate"))
        assert CATALOG.is_read_only(iam.operation_model(name)) is expected, name
        assert CATALOG.is_read_only(name) is expected, name
    assert not CATALOG.is_read_only("CreateRole") and not CATALOG.is_read_only("GenerateCredentialReport")
    assert CATALOG.is_read_only("SimulatePrincipalPolicy") and CATALOG.is_read_only("GetCallerIdentity")
    # The JSON services keep their rule.
    assert CATALOG.is_read_only("LookupEvents") and not CATALOG.is_read_only("CreateCollection")
    aoss = CATALOG.service("opensearchserverless").operation_names
    assert sum(CATALOG.is_read_only(name) for name in aoss) == 23


def test_output_wire_is_lower_camel_without_sensitive_members() -> None:
    operation = CATALOG.service("sts").operation_model("AssumeRole")
    output = sample(operation.output_shape)
    wire = query_output_wire(operation, output)
    assert set(wire["credentials"]) == {"accessKeyId", "sessionToken", "expiration"}  # no secretAccessKey
    assert wire["credentials"]["expiration"] == "2024-05-06T07:08:09.123000Z"
    assert wire["assumedRoleUser"] == {"assumedRoleId": output["AssumedRoleUser"]["AssumedRoleId"],
                                       "arn": output["AssumedRoleUser"]["Arn"]}
    hidden = query_output_wire(operation, output, sensitive="HIDDEN_DUE_TO_SECURITY_REASONS")
    assert hidden["credentials"]["secretAccessKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
