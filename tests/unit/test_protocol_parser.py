"""Request parser: JSON edge cases, type conversion, type errors, and fuzzing for crashes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from botocore.model import ServiceModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.parser import parse_request
from searchtrail.protocol.validate import find_violations

CATALOG = ServiceCatalog.load()
AOSS = CATALOG.service("opensearchserverless")
CLOUDTRAIL = CATALOG.service("cloudtrail")
ALL_OPERATIONS = [service.operation_model(name) for service in CATALOG.services() for name in service.operation_names]


def raised_by(operation, body: bytes) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        parse_request(operation, body)
    return raised.value


# --- the body as a whole ------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"", b"  \n\t"])
def test_empty_body_means_no_members(body: bytes) -> None:
    assert parse_request(AOSS.operation_model("ListCollections"), body) == {}


@pytest.mark.parametrize("body", [b"{", b'{"a":}', b"\xff\xfe", b'{"name": "\\ud800"}', b"nul"])
def test_malformed_json_is_a_serialization_exception(body: bytes) -> None:
    error = raised_by(AOSS.operation_model("ListCollections"), body)
    assert (error.code, error.status) == ("SerializationException", 400)
    assert error.message.startswith("Request body is not valid JSON")


@pytest.mark.parametrize(("body", "named"), [(b"[]", "an array"), (b'"x"', "a string"), (b"3", "a number"),
                                             (b"null", "null"), (b"true", "a boolean")])
def test_top_level_must_be_an_object(body: bytes, named: str) -> None:
    error = raised_by(AOSS.operation_model("ListCollections"), body)
    assert (error.code, error.status) == ("SerializationException", 400)
    assert error.message == f"Request body must be a JSON object, not {named}"


# --- conversion per shape type -----------------------------------------------------------

LOOKUP = CLOUDTRAIL.operation_model("LookupEvents")


@pytest.mark.parametrize(("wire", "expected"), [
    (1714979289, datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
    (1714979289.123456, datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)),
    ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
    ("2024-05-06T07:08:09.5+02:00", datetime(2024, 5, 6, 5, 8, 9, 500000, tzinfo=timezone.utc)),
    ("2024-05-06T07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
])
def test_timestamps_become_utc_datetimes(wire, expected: datetime) -> None:
    parsed = parse_request(LOOKUP, orjson.dumps({"StartTime": wire}))
    assert parsed["StartTime"] == expected
    assert parsed["StartTime"].utcoffset() == timedelta(0)
    assert parsed["StartTime"].tzinfo is timezone.utc


def test_structures_lists_and_maps_convert_and_unknown_or_null_members_drop() -> None:
    body = orjson.dumps({
        "Name": "board",
        "Unknown": {"deep": 1},
        "RefreshSchedule": None,
        "Widgets": [{"QueryStatement": "SELECT 1", "ViewProperties": {"Height": "2"}, "Extra": True}],
    })
    assert parse_request(CLOUDTRAIL.operation_model("CreateDashboard"), body) == {
        "Name": "board",
        "Widgets": [{"QueryStatement": "SELECT 1", "ViewProperties": {"Height": "2"}}],
    }


def test_documents_pass_through_as_json() -> None:
    schema = {"mappings": {"properties": {"title": {"type": "text"}}}, "n": [1, None, 2.5]}
    body = orjson.dumps({"id": "abc", "indexName": "idx", "indexSchema": schema})
    assert parse_request(AOSS.operation_model("CreateIndex"), body)["indexSchema"] == schema


def test_floats_accept_integers_and_return_floats() -> None:
    body = orjson.dumps({"name": "grp", "standbyReplicas": "ENABLED", "capacityLimits": {"maxIndexingCapacityInOCU": 4}})
    parsed = parse_request(AOSS.operation_model("CreateCollectionGroup"), body)
    assert parsed["capacityLimits"]["maxIndexingCapacityInOCU"] == 4.0
    assert type(parsed["capacityLimits"]["maxIndexingCapacityInOCU"]) is float


# --- wrong JSON types: one ValidationException naming every offending path -----------------

def test_every_wrongly_typed_member_is_named_in_one_error() -> None:
    body = orjson.dumps({
        "LookupAttributes": [{"AttributeKey": 5, "AttributeValue": "x"}, "oops", None],
        "StartTime": "yesterday",
        "MaxResults": True,
        "NextToken": ["t"],
    })
    error = raised_by(LOOKUP, body)
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message == (
        "6 validation errors detected: "
        "Value '5' at 'LookupAttributes.0.AttributeKey' failed to satisfy constraint: Member must be a string; "
        "Value 'oops' at 'LookupAttributes.1' failed to satisfy constraint: Member must be a structure (JSON object); "
        "Value null at 'LookupAttributes.2' failed to satisfy constraint: Member must not be null; "
        "Value 'yesterday' at 'StartTime' failed to satisfy constraint: "
        "Member must be a timestamp (epoch seconds or an ISO 8601 string); "
        "Value 'true' at 'MaxResults' failed to satisfy constraint: Member must be an integer (32-bit); "
        "Value '[t]' at 'NextToken' failed to satisfy constraint: Member must be a string"
    )


def test_integers_out_of_32_bit_range_and_floats_are_not_integers() -> None:
    operation = AOSS.operation_model("ListCollections")
    for wire in (2**31, 1.0, "1"):
        error = raised_by(operation, orjson.dumps({"maxResults": wire}))
        assert "at 'maxResults' failed to satisfy constraint: Member must be an integer (32-bit)" in error.message


def test_epoch_out_of_range_is_a_type_error_not_a_crash() -> None:
    error = raised_by(LOOKUP, b'{"StartTime": 1e300}')
    assert error.code == "ValidationException"
    assert "at 'StartTime'" in error.message


def synthetic_blob_operation():
    model = ServiceModel({
        "metadata": {"protocol": "json", "jsonVersion": "1.1", "targetPrefix": "Test", "serviceId": "Test",
                     "endpointPrefix": "test", "apiVersion": "2024-01-01"},
        "operations": {"Op": {"name": "Op", "input": {"shape": "In"}}},
        "shapes": {"In": {"type": "structure", "members": {"data": {"shape": "Data"}, "items": {"shape": "Datas"}}},
                   "Data": {"type": "blob"}, "Datas": {"type": "list", "member": {"shape": "Data"}}},
    }, service_name="test")
    return model.operation_model("Op")


def test_blobs_are_base64_decoded_and_bad_base64_is_named() -> None:
    operation = synthetic_blob_operation()
    assert parse_request(operation, b'{"data": "AP9iaW4=", "items": [""]}') == {"data": b"\x00\xffbin", "items": [b""]}
    error = raised_by(operation, b'{"data": "not base64!", "items": ["AP9", 7]}')
    assert error.message.startswith("3 validation errors detected: ")
    assert [part.split("' failed")[0].rsplit("at '", 1)[1] for part in error.message.split("; ")] == [
        "data", "items.0", "items.1",
    ]


# --- fuzzing: nothing but ServiceError, whatever the bytes ----------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=20)
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=25)


def shaped_json(shape, depth: int = 0):
    """Mostly-well-typed JSON for a shape, with any JSON mixed in at every level."""
    if depth > 6:
        return ANY_JSON
    kind = shape.type_name
    if kind == "structure" and not shape.metadata.get("document"):
        members = {name: shaped_json(member, depth + 1) for name, member in shape.members.items()}
        right = st.fixed_dictionaries({}, optional=members)
    elif kind == "list":
        right = st.lists(shaped_json(shape.member, depth + 1), max_size=3)
    elif kind == "map":
        right = st.dictionaries(st.text(max_size=6), shaped_json(shape.value, depth + 1), max_size=3)
    elif kind == "timestamp":
        right = st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
    else:
        right = JSON_SCALARS
    return right | ANY_JSON


SHAPED_BODIES = st.sampled_from([op for op in ALL_OPERATIONS if op.input_shape is not None]).flatmap(
    lambda op: st.tuples(st.just(op), shaped_json(op.input_shape))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.sampled_from(ALL_OPERATIONS), body=st.binary(max_size=200))
def test_random_bytes_raise_only_service_errors(operation, body: bytes) -> None:
    try:
        parse_request(operation, body)
    except ServiceError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=SHAPED_BODIES)
def test_random_json_raises_only_service_errors_and_validates_cleanly(case) -> None:
    operation, document = case
    try:
        params = parse_request(operation, json.dumps(document).encode())
    except ServiceError as error:
        assert error.code in {"SerializationException", "ValidationException"}
        return
    # Whatever the parser accepts, the validator can check without crashing.
    find_violations(operation, params)


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(min_value=1, max_value=2000))
def test_deeply_nested_json_is_refused_cleanly(depth: int) -> None:
    body = b'{"collectionFilters": ' + b"[" * depth + b"]" * depth + b"}"
    try:
        parse_request(AOSS.operation_model("ListCollections"), body)
    except ServiceError as error:
        assert error.code in {"SerializationException", "ValidationException"}
