"""Serializer: epoch timestamps, dropped Nones, documents, model spelling, the error funnel."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from botocore.model import ServiceModel

from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import InternalError, ServiceError, UnknownOperationError
from searchtrail.protocol.serializer import error_response, response_body, success_headers, to_wire

CATALOG = ServiceCatalog.load()
AOSS = CATALOG.service("opensearchserverless")
CLOUDTRAIL = CATALOG.service("cloudtrail")
LOOKUP = CLOUDTRAIL.operation_model("LookupEvents")


# --- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("moment", "wire"), [
    (datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc), b"1714979289.0"),
    (datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=timezone.utc), b"1714979289.5"),
    (datetime(2024, 5, 6, 7, 8, 9, 869999, tzinfo=timezone.utc), b"1714979289.869"),
    (datetime(2024, 5, 6, 7, 8, 9, 3691, tzinfo=timezone.utc), b"1714979289.003"),
    (datetime(2024, 5, 6, 7, 8, 9, 999, tzinfo=timezone.utc), b"1714979289.0"),
    (datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2))), b"1714979289.0"),
    (datetime(2024, 5, 6, 7, 8, 9), b"1714979289.0"),  # naive is taken as UTC
])
def test_datetimes_become_epoch_seconds_to_the_millisecond_as_aws_sends_them(
        moment: datetime, wire: bytes) -> None:
    # AWS's JSON services send a number with up to three decimals: the CLI's own examples print
    # "ValidityStartTime": 1453076702.0 and "LatestDeliveryTime": 1454022144.869.
    body = response_body(LOOKUP, {"Events": [{"EventId": "e1", "EventTime": moment}]})
    assert body == b'{"Events":[{"EventId":"e1","EventTime":' + wire + b"}]}"


def test_numbers_and_iso_strings_given_for_timestamps_are_accepted() -> None:
    wire = to_wire(LOOKUP, {"Events": [{"EventTime": 1714979289}, {"EventTime": "2024-05-06T07:08:09Z"}]})
    assert wire == {"Events": [{"EventTime": 1714979289}, {"EventTime": 1714979289.0}]}


def test_none_values_and_unknown_members_are_dropped_at_every_level() -> None:
    result = {
        "Events": [{"EventId": "e1", "Username": None, "internal_row_id": 7, "Resources": [
            {"ResourceType": "AWS::AOSS::Collection", "ResourceName": None},
        ]}],
        "NextToken": None,
        "ResponseMetadata": {"RequestId": "x"},
    }
    assert to_wire(LOOKUP, result) == {
        "Events": [{"EventId": "e1", "Resources": [{"ResourceType": "AWS::AOSS::Collection"}]}]
    }


def test_documents_pass_through_as_json() -> None:
    policy = [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/logs*"]}], "AllowFromPublic": True,
               "SourceVPCEs": None}]
    detail = {"type": "network", "name": "net", "policy": policy, "createdDate": 1663693217826}
    body = response_body(AOSS.operation_model("GetSecurityPolicy"), {"securityPolicyDetail": detail})
    assert orjson.loads(body) == {"securityPolicyDetail": detail}


def test_bytes_become_base64() -> None:
    result = {"PublicKeyList": [{"Value": b"\x30\x82\x01\x0a", "Fingerprint": "ab"}]}
    assert to_wire(CLOUDTRAIL.operation_model("ListPublicKeys"), result) == {
        "PublicKeyList": [{"Value": "MIIBCg==", "Fingerprint": "ab"}]
    }


def test_member_names_are_spelled_as_the_model_spells_them() -> None:
    update = AOSS.operation_model("UpdateVpcEndpoint")
    detail = {"id": "vpce-1", "status": "ACTIVE"}
    assert to_wire(update, {"UpdateVpcEndpointDetail": detail}) == {"UpdateVpcEndpointDetail": detail}
    # A provider's lower-camel slip still reaches the client under the model's name.
    assert to_wire(update, {"updateVpcEndpointDetail": detail}) == {"UpdateVpcEndpointDetail": detail}
    stats = to_wire(AOSS.operation_model("GetPoliciesStats"), {"TotalPolicyCount": 3, "accessPolicyStats": {
        "DataPolicyCount": 1}})
    assert stats == {"TotalPolicyCount": 3, "AccessPolicyStats": {"DataPolicyCount": 1}}


def test_empty_outputs_serialize_to_an_empty_object() -> None:
    assert response_body(AOSS.operation_model("DeleteAccessPolicy"), {}) == b"{}"
    assert response_body(AOSS.operation_model("DeleteAccessPolicy"), {"whatever": 1}) == b"{}"


def test_a_structure_given_as_a_non_mapping_is_a_clear_programming_error() -> None:
    with pytest.raises(TypeError, match="must be given as a dict"):
        to_wire(LOOKUP, {"Events": ["not a dict"]})


# --- headers and the error funnel -------------------------------------------------------------

def test_success_headers_carry_the_service_content_type_and_request_id() -> None:
    assert success_headers(AOSS, "rid-1") == [
        (b"content-type", b"application/x-amz-json-1.0"),
        (b"x-amzn-requestid", b"rid-1"),
    ]
    assert success_headers(CLOUDTRAIL, "rid-2")[0] == (b"content-type", b"application/x-amz-json-1.1")


@pytest.mark.parametrize(("code", "status"), [
    ("ValidationException", 400),
    ("ResourceNotFoundException", 404),
    ("ConflictException", 409),
    ("ServiceQuotaExceededException", 402),
    ("OcuLimitExceededException", 402),
    ("InternalServerException", 500),
    ("SomethingUnmodeledException", 400),
])
def test_aoss_error_statuses_follow_the_table(code: str, status: int) -> None:
    assert error_response(AOSS, ServiceError(code, "m"), "r")[0] == status


def test_cloudtrail_errors_default_to_400_and_explicit_status_wins() -> None:
    assert error_response(CLOUDTRAIL, ServiceError("ConflictException", "m"), "r")[0] == 400
    assert error_response(CLOUDTRAIL, ServiceError("TrailNotFoundException", "m"), "r")[0] == 400
    assert error_response(AOSS, ServiceError("ConflictException", "m", status=429), "r")[0] == 429
    assert error_response(CLOUDTRAIL, InternalError("rid-9"), "rid-9")[0] == 500
    assert error_response(AOSS, UnknownOperationError(), "r")[0] == 400


def test_error_body_headers_and_modeled_fields() -> None:
    error = ServiceError("ServiceQuotaExceededException", "Too many collections", serviceCode="aoss",
                         quotaCode="L-1", resourceType=None)
    status, headers, body = error_response(AOSS, error, "req-7")
    assert status == 402
    assert headers == [
        (b"content-type", b"application/x-amz-json-1.0"),
        (b"x-amzn-requestid", b"req-7"),
        (b"x-amzn-errortype", b"ServiceQuotaExceededException"),
    ]
    assert orjson.loads(body) == {
        "__type": "ServiceQuotaExceededException",
        "message": "Too many collections",
        "serviceCode": "aoss",
        "quotaCode": "L-1",
    }


def test_fields_cannot_override_code_or_message_and_odd_values_do_not_break_the_funnel() -> None:
    error = ServiceError("ConflictException", "real", __type="Other", detail={1, 2})
    error.fields["message"] = "fake"
    _, _, body = error_response(CLOUDTRAIL, error, "r")
    parsed = orjson.loads(body)
    assert (parsed["__type"], parsed["message"]) == ("ConflictException", "real")
    assert parsed["detail"] == str({1, 2})


def test_model_http_status_code_wins_over_the_table() -> None:
    model = ServiceModel({
        "metadata": {"protocol": "json", "jsonVersion": "1.0", "targetPrefix": "Test", "serviceId": "Test",
                     "endpointPrefix": "test", "apiVersion": "2024-01-01"},
        "operations": {"Op": {"name": "Op", "errors": [{"shape": "ConflictException"}]}},
        "shapes": {"ConflictException": {"type": "structure", "exception": True,
                                         "error": {"httpStatusCode": 418}, "members": {}}},
    }, service_name="opensearchserverless")
    assert error_response(model, ServiceError("ConflictException", "m"), "r")[0] == 418


def test_a_model_timestamp_format_is_honoured() -> None:
    model = ServiceModel({
        "metadata": {"protocol": "json", "jsonVersion": "1.0", "targetPrefix": "Test", "serviceId": "Test",
                     "endpointPrefix": "test", "apiVersion": "2024-01-01"},
        "operations": {"Op": {"name": "Op", "output": {"shape": "Out"}}},
        "shapes": {
            "Out": {"type": "structure", "members": {
                "iso": {"shape": "Moment", "timestampFormat": "iso8601"},
                "epoch": {"shape": "Moment"},
            }},
            "Moment": {"type": "timestamp"},
        },
    }, service_name="test")
    moment = datetime(2024, 5, 6, 9, 8, 9, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert to_wire(model.operation_model("Op"), {"iso": moment, "epoch": moment}) == {
        "iso": "2024-05-06T07:08:09.250Z",
        "epoch": 1714979289.25,
    }
