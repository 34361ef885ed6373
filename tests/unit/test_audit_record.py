"""The record builder's enrichers, one by one, and the lookup values they yield."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import botocore.session
import orjson

from searchtrail.audit import record as rec
from searchtrail.auth.principals import root_principal, user_principal
from searchtrail.gateway.context import RequestContext
from searchtrail.protocol.errors import ServiceError

AOSS = botocore.session.get_session().get_service_model("opensearchserverless")


def context(**changes) -> RequestContext:  # type: ignore[no-untyped-def]
    ctx = RequestContext(request_id="5a1d9b2e-0000-4000-8000-000000000001",
                         source_ip="127.0.0.1", user_agent="Boto3/1.44.8", host="localhost:4680")
    ctx.operation = AOSS.operation_model("CreateCollection")
    ctx.event_source = "aoss.amazonaws.com"
    ctx.region = "eu-west-1"
    ctx.principal = root_principal("111122223333", "AKIAEXAMPLE")
    ctx.wire_params = {"name": "logs", "clientToken": "t"}
    ctx.output_wire = {"createCollectionDetail": {"id": "abc"}}
    ctx.event_time = datetime(2026, 11, 30, 9, 0, 5, 123456, tzinfo=timezone.utc)
    for key, value in changes.items():
        setattr(ctx, key, value)
    return ctx


def test_full_record_has_aws_keys_in_aws_order() -> None:
    record = rec.RecordBuilder().build(context())
    assert list(record) == ["eventVersion", "userIdentity", "eventTime", "eventSource",
                            "eventName", "awsRegion", "sourceIPAddress", "userAgent",
                            "requestParameters", "responseElements", "requestID", "eventID",
                            "readOnly", "eventType", "managementEvent", "recipientAccountId",
                            "eventCategory"]
    assert record["eventTime"] == "2026-11-30T09:00:05Z"
    assert record["requestParameters"] == {"accountId": "111122223333", "name": "logs",
                                           "clientToken": "t"}


def test_errors_null_the_response_and_add_code_and_message() -> None:
    ctx = context(error=ServiceError("ConflictException", "exists"))
    record = rec.RecordBuilder().build(ctx)
    assert (record["errorCode"], record["errorMessage"]) == ("ConflictException", "exists")
    assert record["responseElements"] is None


def test_read_only_calls_have_null_response_elements() -> None:
    record = rec.response_elements(context(read_only=True), {})
    assert record == {"responseElements": None}


def test_event_ids_are_unique_uuid4() -> None:
    builder = rec.RecordBuilder()
    ids = {builder.build(context())["eventID"] for _ in range(3000)}
    assert len(ids) == 3000
    assert all(i[14] == "4" and i[19] in "89ab" for i in ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == i
               for u, i in zip(parsed, ids))
    assert {i[19] for i in ids} == set("89ab")  # every variant digit occurs


def test_tls_details_only_over_tls() -> None:
    assert "tlsDetails" not in rec.tls_details(context(), {})
    tls = rec.tls_details(context(tls={"tlsVersion": "TLSv1.3"}), {})
    assert tls["tlsDetails"] == {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": "localhost:4680"}


def test_sensitive_members_are_hidden() -> None:
    shape = AOSS.operation_model("CreateSecurityConfig").input_shape
    saml = shape.members["samlOptions"]
    plain = {"samlOptions": {"metadata": "secret", "userAttribute": "u"}}
    assert rec.redact(shape, plain) is plain  # nothing sensitive below: no copy made
    saml.members["metadata"].metadata["sensitive"] = True  # as a model that marks it would
    rec._hides_anything.cache_clear()  # models are fixed; this test changes one
    try:
        hidden = rec.redact(shape, plain)
    finally:
        del saml.members["metadata"].metadata["sensitive"]
        rec._hides_anything.cache_clear()
    assert hidden == {"samlOptions": {"metadata": rec.HIDDEN, "userAttribute": "u"}}
    assert plain == {"samlOptions": {"metadata": "secret", "userAttribute": "u"}}


def test_oversized_parameters_are_omitted() -> None:
    ctx = context(wire_params={"description": "x" * (rec.MAX_FIELD_BYTES + 1)})
    assert rec.request_parameters(ctx, {})["requestParameters"]["omitted"] is True


def test_lookup_values_and_usernames() -> None:
    user = user_principal("111122223333", {"UserName": "alice", "UserId": "AIDAX",
                                           "Arn": "arn:aws:iam::111122223333:user/alice"}, "AKIAB")
    ctx = context(principal=user, referenced_resources=[
        {"ARN": "arn:aws:aoss:eu-west-1:111122223333:collection/abc", "accountId": "111122223333",
         "type": "AWS::AOSS::Collection"}])
    row = rec.event_row(ctx, rec.RecordBuilder().build(ctx))
    values = dict(row.lookup_values)
    assert values["Username"] == "alice"
    assert values["AccessKeyId"] == "AKIAB"
    assert values["ReadOnly"] == "false"
    assert values["ResourceType"] == "AWS::AOSS::Collection"
    assert row.event_time == 1796029205
    assert orjson.loads(row.record)["userIdentity"]["userName"] == "alice"
    assert rec.lookup_username({"type": "Root"}) == "root"
    assert rec.lookup_username({"type": "AssumedRole",
                                "arn": "arn:aws:sts::1:assumed-role/Admin/sess"}) == "sess"
