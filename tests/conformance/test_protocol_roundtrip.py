"""Round trips with botocore as the oracle, for every operation and error of both models.

botocore serializes a generated input -> our parser must give it back; our serializer
writes a generated output -> botocore's parser must give it back; our error funnel writes
every modeled error -> botocore must see the right code, message and fields.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import botocore.session
import pytest
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.parser import parse_request
from searchtrail.protocol.patches import python_pattern
from searchtrail.protocol.serializer import error_response, response_body
from searchtrail.protocol.validate import find_violations

try:  # Python 3.11 moved sre_parse to re._parser
    import re._parser as regex_parser
    from re import _constants as regex_codes
except ImportError:  # pragma: no cover
    import sre_constants as regex_codes
    import sre_parse as regex_parser

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

# A fixed instant with microseconds, so sub-second precision is part of every round trip.
SAMPLE_MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


# --- a deterministic value generator for any shape -----------------------------------------

def sample_string_for_pattern(pattern: str, repeat: int) -> str:
    """A string the regex matches, unbounded repeats repeated ``repeat`` times (bounded)."""
    return "".join(_regex_text(regex_parser.parse(python_pattern(pattern)), repeat))


def _regex_text(items: Any, repeat: int) -> list[str]:
    out: list[str] = []
    for opcode, argument in items:
        out.extend(_REGEX_WRITERS[opcode](argument, repeat))
    return out


def _class_char(members: list[tuple[Any, Any]]) -> str:
    if members and members[0][0] is regex_codes.NEGATE:
        excluded = re.compile("[" + "".join(_class_source(member) for member in members[1:]) + "]", re.ASCII)
        return next(char for char in "azAZ09-_ " if not excluded.match(char))
    opcode, argument = members[0]
    if opcode is regex_codes.LITERAL:
        return chr(argument)
    if opcode is regex_codes.RANGE:
        return chr(argument[0])
    return _CATEGORY_SAMPLES[argument]


def _class_source(member: tuple[Any, Any]) -> str:
    opcode, argument = member
    if opcode is regex_codes.LITERAL:
        return re.escape(chr(argument))
    if opcode is regex_codes.RANGE:
        return f"{re.escape(chr(argument[0]))}-{re.escape(chr(argument[1]))}"
    return _CATEGORY_SOURCES[argument]


_CATEGORY_SAMPLES = {
    regex_codes.CATEGORY_DIGIT: "0",
    regex_codes.CATEGORY_WORD: "w",
    regex_codes.CATEGORY_SPACE: " ",
    regex_codes.CATEGORY_NOT_DIGIT: "d",
    regex_codes.CATEGORY_NOT_WORD: "-",
    regex_codes.CATEGORY_NOT_SPACE: "s",
}
_CATEGORY_SOURCES = {
    regex_codes.CATEGORY_DIGIT: r"\d",
    regex_codes.CATEGORY_WORD: r"\w",
    regex_codes.CATEGORY_SPACE: r"\s",
    regex_codes.CATEGORY_NOT_DIGIT: r"\D",
    regex_codes.CATEGORY_NOT_WORD: r"\W",
    regex_codes.CATEGORY_NOT_SPACE: r"\S",
}


def _repeat_text(argument: Any, repeat: int) -> list[str]:
    low, high, items = argument
    count = max(low, min(high, repeat))
    return _regex_text(items, repeat) * count


_REGEX_WRITERS = {
    regex_codes.LITERAL: lambda argument, repeat: [chr(argument)],
    regex_codes.NOT_LITERAL: lambda argument, repeat: ["b" if argument == ord("a") else "a"],
    regex_codes.ANY: lambda argument, repeat: ["a"],
    regex_codes.IN: lambda argument, repeat: [_class_char(argument)],
    regex_codes.MAX_REPEAT: _repeat_text,
    regex_codes.MIN_REPEAT: _repeat_text,
    regex_codes.SUBPATTERN: lambda argument, repeat: _regex_text(argument[-1], repeat),
    regex_codes.BRANCH: lambda argument, repeat: _regex_text(argument[1][0], repeat),
    regex_codes.AT: lambda argument, repeat: [],
    regex_codes.CATEGORY: lambda argument, repeat: [_CATEGORY_SAMPLES[argument]],
}


def sample_string(shape: Shape) -> str:
    low = shape.metadata.get("min", 0)
    high = shape.metadata.get("max", 10**6)
    if shape.enum:
        return shape.enum[-1]
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = re.compile(python_pattern(pattern), re.ASCII)
        for repeat in range(1, 130):
            text = sample_string_for_pattern(pattern, repeat)
            if low <= len(text) <= high and compiled.fullmatch(text):
                return text
        raise AssertionError(f"no sample for pattern {pattern!r} within length {low}..{high}")
    # Non-ASCII on purpose: the round trip must keep it intact.
    base = "välue-ü-" * (1 + max(low, 8) // 8)
    return base[: max(low, min(high, 12))]


def sample_number(shape: Shape, integral: bool) -> int | float:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and high is not None:
        middle = (low + high) / 2
        return int(middle) if integral else middle + 0.25 if middle + 0.25 <= high else middle
    if low is not None:
        return low + 3 if integral else low + 2.5
    if high is not None:
        return high - 1 if integral else high - 0.5
    return 17 if integral else 2.75


def sample_value(shape: Shape, depth: int = 0) -> Any:
    kind = "document" if shape.metadata.get("document") else shape.type_name
    return SAMPLERS[kind](shape, depth)


def _sample_structure(shape: Shape, depth: int) -> dict[str, Any]:
    if depth > 8:  # recursive shapes stop here
        return {}
    return {name: sample_value(member, depth + 1) for name, member in shape.members.items()}


def _sample_count(shape: Shape) -> int:
    return max(shape.metadata.get("min", 0), min(shape.metadata.get("max", 2), 2))


def _sample_list(shape: Shape, depth: int) -> list[Any]:
    item = shape.member
    if item.metadata.get("enum"):  # distinct enum values, in case the service treats the list as a set
        values = list(item.metadata["enum"])
        return [values[i % len(values)] for i in range(_sample_count(shape))]
    return [sample_value(item, depth + 1) for _ in range(_sample_count(shape))]


def _sample_map(shape: Shape, depth: int) -> dict[str, Any]:
    keys = list(shape.key.metadata.get("enum") or ()) or [sample_string(shape.key)]
    return {key: sample_value(shape.value, depth + 1) for key in keys[: max(1, shape.metadata.get("min", 1))]}


def _sample_blob(shape: Shape, depth: int) -> bytes:
    size = max(shape.metadata.get("min", 0), min(shape.metadata.get("max", 9), 9))
    return (b"\x00\xffbin\x01ary" * size)[:size]


SAMPLERS = {
    "structure": _sample_structure,
    "list": _sample_list,
    "map": _sample_map,
    "string": lambda shape, depth: sample_string(shape),
    "integer": lambda shape, depth: sample_number(shape, integral=True),
    "long": lambda shape, depth: sample_number(shape, integral=True) if shape.metadata else 1715000000123,
    "float": lambda shape, depth: sample_number(shape, integral=False),
    "double": lambda shape, depth: sample_number(shape, integral=False),
    "boolean": lambda shape, depth: True,
    "timestamp": lambda shape, depth: SAMPLE_MOMENT,
    "blob": _sample_blob,
    # A null inside a document is content, not an absent member: it must survive.
    "document": lambda shape, depth: {"Rules": [{"Resource": ["collection/x*"], "n": 1.5}], "Empty": None},
}


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
