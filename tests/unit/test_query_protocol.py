"""Query protocol edge cases: form decoding, type errors, bounds, XML escaping, the error funnel.

A small synthetic query model covers what IAM and STS do not use (timestamps and blobs in
input, flattened and renamed lists and maps, recursion); botocore stays the oracle for it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchtrail.auth.sigv4 import SigV4Error
from searchtrail.protocol import query
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import InternalError, ServiceError, UnknownOperationError
from searchtrail.protocol.query import (
    MAX_FIELDS,
    MAX_KEY_SEGMENTS,
    decode_form,
    lower_camel,
    parse_query_request,
    query_error_code,
    query_error_response,
    query_input_wire,
    query_output_wire,
    query_path,
    query_request_wire,
    query_success_headers,
    query_violations_error,
    serialize_query_response,
    xml_escape,
)
from searchtrail.protocol.validate import find_violations

CATALOG = ServiceCatalog.load(("iam", "sts"))
IAM = CATALOG.service("iam")
STS = CATALOG.service("sts")
ASSUME_ROLE = STS.operation_model("AssumeRole")
GET_USER = IAM.operation_model("GetUser")
PREFIX = b"Action=AssumeRole&Version=2011-06-15&"
ALL_OPERATIONS = [service.operation_model(name) for service in (IAM, STS) for name in service.operation_names]

SYNTH = ServiceModel({
    "version": "2.0",
    "metadata": {"protocol": "query", "apiVersion": "2020-01-01", "endpointPrefix": "synth",
                 "serviceId": "Synth", "signatureVersion": "v4",
                 "xmlNamespace": "https://synth.amazonaws.com/doc/2020-01-01/"},
    "operations": {
        "Everything": {"name": "Everything", "http": {"method": "POST", "requestUri": "/"},
                       "input": {"shape": "Everything"},
                       "output": {"shape": "Everything", "resultWrapper": "EverythingResult"}},
        "NoWrapper": {"name": "NoWrapper", "http": {"method": "POST", "requestUri": "/"},
                      "output": {"shape": "Small"}},
    },
    "shapes": {
        "Everything": {"type": "structure", "members": {
            "Stamp": {"shape": "Stamp"},
            "Epoch": {"shape": "EpochStamp"},
            "Data": {"shape": "Data"},
            "Ratio": {"shape": "Ratio"},
            "Big": {"shape": "Big"},
            "Count": {"shape": "Count"},
            "Flag": {"shape": "Flag"},
            "Flat": {"shape": "FlatList"},
            "FlatNamed": {"shape": "FlatNamedList"},
            "Named": {"shape": "NamedList"},
            "Attrs": {"shape": "Attrs"},
            "FlatAttrs": {"shape": "FlatAttrs"},
            "Renamed": {"shape": "Text", "locationName": "OtherName"},
            "Node": {"shape": "Node"},
            "Matrix": {"shape": "Matrix"},
            "Secret": {"shape": "Secret"},
        }},
        "Small": {"type": "structure", "members": {"Text": {"shape": "Text"}}},
        "Node": {"type": "structure", "members": {"Name": {"shape": "Text"}, "Child": {"shape": "Node"}}},
        "Text": {"type": "string"},
        "Secret": {"type": "string", "sensitive": True},
        "Stamp": {"type": "timestamp"},
        "EpochStamp": {"type": "timestamp", "timestampFormat": "unixTimestamp"},
        "Data": {"type": "blob"},
        "Ratio": {"type": "double"},
        "Big": {"type": "long"},
        "Count": {"type": "integer"},
        "Flag": {"type": "boolean"},
        "FlatList": {"type": "list", "member": {"shape": "Text"}, "flattened": True},
        "FlatNamedList": {"type": "list", "member": {"shape": "Text", "locationName": "Item"}, "flattened": True},
        "NamedList": {"type": "list", "member": {"shape": "Node", "locationName": "Thing"}},
        "Matrix": {"type": "list", "member": {"shape": "Row"}},
        "Row": {"type": "list", "member": {"shape": "Count"}},
        "Attrs": {"type": "map", "key": {"shape": "Text", "locationName": "Name"},
                  "value": {"shape": "Count", "locationName": "Val"}},
        "FlatAttrs": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}, "flattened": True},
    },
}, service_name="synth")
EVERYTHING = SYNTH.operation_model("Everything")

FULL = {
    "Stamp": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc),
    "Epoch": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc),
    "Data": b"\x00\xffbin\x01ary",
    "Ratio": 2.75,
    "Big": 2**40,
    "Count": -3,
    "Flag": False,
    "Flat": ["a", "b c"],
    "FlatNamed": ["x"],
    "Named": [{"Name": "n1"}, {"Name": "n2", "Child": {"Name": "deep"}}],
    "Attrs": {"k1": 1, "k 2": 2},
    "FlatAttrs": {"fk": "fv"},
    "Renamed": "renamed & <escaped>",
    "Node": {"Name": "a", "Child": {"Name": "b", "Child": {"Name": "c"}}},
    "Matrix": [[1, 2], [3]],
    "Secret": "s3cr3t",
}


def botocore_body(params: dict, operation) -> bytes:
    request = create_serializer("query", include_validation=False).serialize_to_request(params, operation)
    body = AWSRequest(method="POST", url="https://x/", data=request["body"]).prepare().body
    return body.encode() if isinstance(body, str) else body


def raised_by(operation, body) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        parse_query_request(operation, body)
    return raised.value


def botocore_reads(operation, body: bytes) -> dict:
    parsed = create_parser("query").parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
    parsed.pop("ResponseMetadata")
    return parsed


# --- the synthetic model: every shape type and trait, both ways -------------------------------

def test_every_shape_type_and_trait_round_trips_through_botocore() -> None:
    body = botocore_body(FULL, EVERYTHING)
    assert b"FlatNamed" not in body and b"Item.1=x" in body and b"OtherName=" in body
    assert b"Flat.1=a" in body and b"Named.Thing.1.Name=n1" in body and b"Attrs.entry.1.Name=k1" in body
    assert b"FlatAttrs.1.key=fk" in body

    params, wire = parse_query_request(EVERYTHING, body)
    assert params == FULL
    assert params["Stamp"].tzinfo is timezone.utc

    xml = serialize_query_response(EVERYTHING, FULL, "rid")
    # AWS keeps times to the millisecond, and so does the wire.
    assert botocore_reads(EVERYTHING, xml) == {
        **FULL, "Stamp": FULL["Stamp"].replace(microsecond=123000)}
    assert b"<Item>x</Item>" in xml and b"<Flat>a</Flat><Flat>b c</Flat>" in xml
    assert b"<Attrs><entry><Name>k1</Name><Val>1</Val></entry>" in xml
    assert b"<FlatAttrs><key>fk</key><value>fv</value></FlatAttrs>" in xml
    assert b"<Epoch>1714979289.0</Epoch>" in xml  # the shape's own timestampFormat
    assert b"<Stamp>2024-05-06T07:08:09.123Z</Stamp>" in xml


def test_wire_views_are_lower_camel_json_with_iso_timestamps_and_base64() -> None:
    wire = query_input_wire(EVERYTHING, FULL)
    assert wire["stamp"] == "2024-05-06T07:08:09.123456Z" and wire["epoch"] == "2024-05-06T07:08:09Z"
    assert wire["data"] == "AP9iaW4BYXJ5"
    assert wire["named"] == [{"name": "n1"}, {"name": "n2", "child": {"name": "deep"}}]
    assert wire["attrs"] == {"k1": 1, "k 2": 2}  # map keys are data, not member names
    assert wire["renamed"] == "renamed & <escaped>"  # member name, not the wire locationName
    assert "secret" not in wire
    assert query_input_wire(EVERYTHING, FULL, sensitive="HIDDEN")["secret"] == "HIDDEN"
    assert query_output_wire(EVERYTHING, FULL) == wire
    assert query_output_wire(EVERYTHING, None) == {} and query_output_wire(GET_USER, {}) == {}


def test_parse_returns_wire_params_keyed_as_cloudtrail_shows_them() -> None:
    body = (PREFIX + b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s"
            b"&DurationSeconds=900&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2Fp"
            b"&Tags.member.1.Key=k&Tags.member.1.Value=v")
    params, wire = parse_query_request(ASSUME_ROLE, body)
    assert params == {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s", "DurationSeconds": 900,
                      "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/p"}], "Tags": [{"Key": "k", "Value": "v"}]}
    assert wire == {"roleArn": "arn:aws:iam::123456789012:role/r", "roleSessionName": "s", "durationSeconds": 900,
                    "policyArns": [{"arn": "arn:aws:iam::aws:policy/p"}], "tags": [{"key": "k", "value": "v"}]}


@pytest.mark.parametrize(("name", "expected"), [
    ("RoleArn", "roleArn"), ("SAMLAssertion", "sAMLAssertion"),
    ("OpenIDConnectProviderArn", "openIDConnectProviderArn"),
    ("arn", "arn"), ("", ""), ("X", "x"),
])
def test_lower_camel_lowers_only_the_first_letter(name: str, expected: str) -> None:
    assert lower_camel(name) == expected


def test_sensitive_request_members_are_left_out_of_request_parameters() -> None:
    operation = IAM.operation_model("CreateLoginProfile")
    params, wire = parse_query_request(operation, b"UserName=bob&Password=hunter2&PasswordResetRequired=true")
    assert params == {"UserName": "bob", "Password": "hunter2", "PasswordResetRequired": True}
    assert wire == {"userName": "bob", "passwordResetRequired": True}


# --- the form body ---------------------------------------------------------------------------

def test_form_decoding_plus_percent_and_utf8() -> None:
    form = decode_form(b"a=x+y&b=x%2By&c=%C3%BC%F0%9F%98%80&d&e=&&f=1=2&a=last&" + "ä=raw".encode())
    assert form == {"a": "last", "b": "x+y", "c": "ü😀", "d": "", "e": "", "f": "1=2", "ä": "raw"}
    assert decode_form(b"") == {} and decode_form(bytearray(b"k=v")) == {"k": "v"}


@pytest.mark.parametrize("body", [
    b"RoleArn=%zz", b"RoleArn=%4", b"RoleArn=abc%", b"%=x", b"RoleArn=%ff", b"RoleArn=%c0%80",
    b"RoleArn=%ed%a0%80", b"Role%ZZArn=x", b"RoleArn=\xff\xfe",
])
def test_malformed_encodings_are_malformed_query_string(body: bytes) -> None:
    error = raised_by(ASSUME_ROLE, PREFIX + body)
    assert (error.code, error.status) == ("MalformedQueryString", 404)
    assert query_request_wire(ASSUME_ROLE, PREFIX + body) is None


def test_field_count_is_bounded() -> None:
    at_limit = b"&".join([b"RoleSessionName=s"] * MAX_FIELDS)
    assert parse_query_request(ASSUME_ROLE, at_limit)[0] == {"RoleSessionName": "s"}
    error = raised_by(ASSUME_ROLE, at_limit + b"&x=1")
    assert error.code == "MalformedQueryString" and str(MAX_FIELDS) in error.message


@pytest.mark.timeout(30)  # a safety bound, not a speed target: a quadratic parse of 50,000 members takes minutes
def test_huge_member_counts_parse_in_linear_time() -> None:
    count = MAX_FIELDS - 10
    body = PREFIX + b"&".join(b"TransitiveTagKeys.member.%d=k%d" % (i, i) for i in range(count, 0, -1))
    params, wire = parse_query_request(ASSUME_ROLE, body)
    assert len(params["TransitiveTagKeys"]) == count
    assert params["TransitiveTagKeys"][:3] == ["k1", "k2", "k3"]  # numeric order, not text order
    assert len(wire["transitiveTagKeys"]) == count
    # The validator then reports the model's bound once, not per item.
    violations = find_violations(ASSUME_ROLE, params)
    assert [v.path for v in violations if v.constraint == "max"] == ["TransitiveTagKeys"]


def test_accepts_an_already_decoded_form() -> None:
    form = decode_form(PREFIX + b"RoleArn=a&RoleSessionName=b")
    assert CATALOG.resolve_query(form) is ASSUME_ROLE
    assert parse_query_request(ASSUME_ROLE, form)[0] == {"RoleArn": "a", "RoleSessionName": "b"}


# --- lists, maps, structures -------------------------------------------------------------------

def test_empty_list_is_the_bare_key() -> None:
    params, wire = parse_query_request(ASSUME_ROLE, PREFIX + b"PolicyArns=&TransitiveTagKeys=&RoleArn=")
    assert params == {"PolicyArns": [], "TransitiveTagKeys": [], "RoleArn": ""}
    assert wire == {"policyArns": [], "transitiveTagKeys": [], "roleArn": ""}
    assert botocore_body({"PolicyArns": []}, ASSUME_ROLE).endswith(b"PolicyArns=")


def test_missing_members_are_absent_and_left_to_the_validator() -> None:
    params, _ = parse_query_request(ASSUME_ROLE, PREFIX + b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr")
    assert params == {"RoleArn": "arn:aws:iam::123456789012:role/r"}
    error = query_violations_error(ASSUME_ROLE, find_violations(ASSUME_ROLE, params))
    assert error.message == ("1 validation error detected: Value null at 'roleSessionName' failed to satisfy "
                             "constraint: Member must not be null")
    assert parse_query_request(ASSUME_ROLE, b"")[0] == {}
    assert parse_query_request(GET_USER, b"Action=GetUser&Version=2010-05-08") == ({}, {})


def test_unknown_keys_and_irregular_indexes_are_ignored() -> None:
    body = PREFIX + (b"Unknown=1&RoleArn.sub=x&PolicyArns.member.0.arn=zero&PolicyArns.member.01.arn=lead"
                     b"&PolicyArns.member.x.arn=x&PolicyArns.member.12345678901.arn=long"
                     b"&PolicyArns.member.10.arn=ten&PolicyArns.member.2.arn=two&PolicyArns.member.2.extra=e"
                     b"&PolicyArns.item.1.arn=wrong-name&Tags.member.1.Key=k&Tags.member.1.Nope=n")
    params, _ = parse_query_request(ASSUME_ROLE, body)
    assert params == {"PolicyArns": [{"arn": "two"}, {"arn": "ten"}], "Tags": [{"Key": "k"}]}


def test_scalar_given_for_a_collection_or_structure_is_a_type_error() -> None:
    error = raised_by(ASSUME_ROLE, PREFIX + b"PolicyArns=abc&Tags.member.1=oops")
    assert error.code == "ValidationException"
    assert error.message == (
        "2 validation errors detected: "
        "Value 'abc' at 'policyArns' failed to satisfy constraint: Member must be a list; "
        "Value 'oops' at 'tags.1.member' failed to satisfy constraint: Member must be a structure")


def test_map_entries_read_by_the_model_names() -> None:
    operation = IAM.operation_model("PutAccountProperties")
    shape = operation.input_shape.members["Properties"]
    key = shape.key.enum[0] if shape.key.enum else "k"
    body = f"Properties.entry.1.key={key}&Properties.entry.1.value=v".encode()
    assert parse_query_request(operation, body)[0] == {"Properties": {key: "v"}}
    error = raised_by(EVERYTHING, b"Attrs.entry.1.Val=1&Attrs.entry.2.Name=k")
    assert error.message == (
        "2 validation errors detected: "
        "Value null at 'attrs.entry.1.key' failed to satisfy constraint: Member must not be null; "
        "Value null at 'attrs.k' failed to satisfy constraint: Member must not be null")
    assert parse_query_request(EVERYTHING, b"Attrs=")[0] == {"Attrs": {}}


def test_deep_nesting_follows_recursive_shapes_and_too_deep_keys_are_ignored() -> None:
    key = ".".join(["Node"] + ["Child"] * (MAX_KEY_SEGMENTS - 2) + ["Name"])  # exactly the limit
    params, _ = parse_query_request(EVERYTHING, f"{key}=bottom".encode())
    node, levels = params["Node"], 0
    while "Child" in node:
        node, levels = node["Child"], levels + 1
    assert node == {"Name": "bottom"} and levels == MAX_KEY_SEGMENTS - 2
    one_more = "Node.Child." + key[len("Node."):]
    assert parse_query_request(EVERYTHING, f"{one_more}=x".encode())[0] == {}
    too_deep = ".".join(["Node"] + ["Child"] * 5000 + ["Name"])
    assert parse_query_request(EVERYTHING, f"{too_deep}=x".encode())[0] == {}


def test_nested_lists_of_lists() -> None:
    body = b"Matrix.member.1.member.1=1&Matrix.member.1.member.2=2&Matrix.member.2=&Matrix.member.3.member.1=x"
    error = raised_by(EVERYTHING, body)
    assert ("Value 'x' at 'matrix.3.member.1.member' failed to satisfy constraint: "
            "Member must be an integer") in error.message
    params, _ = parse_query_request(EVERYTHING, body.rsplit(b"&", 1)[0])
    assert params == {"Matrix": [[1, 2], []]}


# --- scalar types ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["abc", "1.5", "2147483648", "-2147483649", " 7", "1_000", "\u0663", "", "0x10", "+"])
def test_bad_integers_are_named(text: str) -> None:
    error = raised_by(ASSUME_ROLE, PREFIX + b"DurationSeconds=" + quote(text).encode())
    assert error.code == "ValidationException" and error.status == 400
    assert error.message == (f"1 validation error detected: Value '{text}' at 'durationSeconds' failed to "
                             "satisfy constraint: Member must be an integer (32-bit)")


@pytest.mark.parametrize(("text", "number"), [("900", 900), ("-5", -5), ("+7", 7), ("0043", 43)])
def test_integers_parse(text: str, number: int) -> None:
    assert parse_query_request(ASSUME_ROLE, PREFIX + b"DurationSeconds=" + text.encode().replace(b"+", b"%2B"))[0] == {
        "DurationSeconds": number}


def test_longs_floats_booleans_timestamps_blobs() -> None:
    params, _ = parse_query_request(EVERYTHING, b"Big=9223372036854775807&Ratio=-1.5e3&Flag=true"
                                                b"&Stamp=2024-05-06T09%3A08%3A09%2B02%3A00"
                                                b"&Epoch=1714979289.5&Data=AAE%3D")
    assert params == {"Big": 2**63 - 1, "Ratio": -1500.0, "Flag": True,
                      "Stamp": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc),
                      "Epoch": datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=timezone.utc), "Data": b"\x00\x01"}
    assert params["Stamp"].utcoffset() == timedelta(0)
    naive = parse_query_request(EVERYTHING, b"Stamp=2024-05-06T07%3A08%3A09")[0]["Stamp"]
    assert naive == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    special = parse_query_request(EVERYTHING, b"Ratio=-Infinity")[0]["Ratio"]
    assert special == float("-inf")


def test_wrong_scalars_are_all_named_in_one_error() -> None:
    error = raised_by(EVERYTHING, b"Big=9223372036854775808&Ratio=1_0&Flag=True&Stamp=yesterday&Data=%21%21&Count=1e3")
    assert error.message.startswith("6 validation errors detected: ")
    for fragment in ["Value '9223372036854775808' at 'big' failed to satisfy constraint: "
                     "Member must be an integer (64-bit)",
                     "Value '1_0' at 'ratio' failed to satisfy constraint: Member must be a number",
                     "Value 'True' at 'flag' failed to satisfy constraint: Member must be a boolean (true or false)",
                     "Value 'yesterday' at 'stamp' failed to satisfy constraint: Member must be a timestamp",
                     "Value '!!' at 'data' failed to satisfy constraint: Member must be a base64-encoded string",
                     "Value '1e3' at 'count' failed to satisfy constraint: Member must be an integer (32-bit)"]:
        assert fragment in error.message


def test_booleans_in_iam() -> None:
    operation = IAM.operation_model("CreatePolicyVersion")
    base = b"PolicyArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fp&PolicyDocument=%7B%7D"
    assert parse_query_request(operation, base + b"&SetAsDefault=false")[0]["SetAsDefault"] is False
    assert raised_by(operation, base + b"&SetAsDefault=1").code == "ValidationException"


def test_non_ascii_text_survives_both_ways() -> None:
    text = "Zoë 東京 😀 ñ"
    params, wire = parse_query_request(EVERYTHING, b"OtherName=" + text.encode("utf-8").replace(b" ", b"+"))
    assert params == {"Renamed": text} and wire == {"renamed": text}
    assert botocore_reads(EVERYTHING, serialize_query_response(EVERYTHING, {"Renamed": text}, "r")) == {"Renamed": text}


# --- XML output ----------------------------------------------------------------------------------

def test_xml_escaping_of_markup_quotes_and_control_characters() -> None:
    nasty = "<a href=\"x\">&amp; 'q' ]]> </Renamed>"
    body = serialize_query_response(EVERYTHING, {"Renamed": nasty, "FlatAttrs": {"<k>": "&v"}}, "r<&>")
    assert botocore_reads(EVERYTHING, body) == {"Renamed": nasty, "FlatAttrs": {"<k>": "&v"}}
    assert b"&lt;a href=&quot;x&quot;&gt;&amp;amp; &apos;q&apos; ]]&gt;" in body
    assert ElementTree.fromstring(body).find("{*}ResponseMetadata/{*}RequestId").text == "r<&>"

    controls = "tab\tnl\ncr\rnul\x00bell\x07esc\x1b\ud800end\ufffe"
    body = serialize_query_response(EVERYTHING, {"Renamed": controls}, "r")
    ElementTree.fromstring(body)  # well-formed
    assert botocore_reads(EVERYTHING, body) == {
        "Renamed": "tab\tnl\ncr\rnul\ufffdbell\ufffdesc\ufffd\ufffdend\ufffd"}


def test_xml_escape_leaves_plain_text_alone() -> None:
    plain = "arn:aws:iam::123456789012:role/välue"
    assert xml_escape(plain) is plain


def test_response_frame_without_output_and_with_empty_or_sparse_results() -> None:
    delete_user = IAM.operation_model("DeleteUser")
    body = serialize_query_response(delete_user, {}, "req-1")
    assert body == (b'<DeleteUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                    b"<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></DeleteUserResponse>")
    body = serialize_query_response(GET_USER, None, "r")
    assert b"<GetUserResult></GetUserResult>" in body
    # None values and members outside the model never reach the client; model order is kept.
    user = {"Arn": "arn", "UserName": "u", "Path": "/", "UserId": "AIDA", "Tags": None, "Extra": "x",
            "CreateDate": "2024-05-06T07:08:09+00:00"}
    body = serialize_query_response(GET_USER, {"User": user}, "r")
    assert b"<User><Path>/</Path><UserName>u</UserName><UserId>AIDA</UserId><Arn>arn</Arn>" \
           b"<CreateDate>2024-05-06T07:08:09Z</CreateDate></User>" in body
    assert b"Extra" not in body and b"Tags" not in body
    assert botocore_reads(GET_USER, body)["User"]["CreateDate"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    no_wrapper = SYNTH.operation_model("NoWrapper")
    body = serialize_query_response(no_wrapper, {"Text": "t"}, "r")
    assert body.startswith(b'<NoWrapperResponse xmlns="https://synth.amazonaws.com/doc/2020-01-01/"><Text>t</Text>')
    assert botocore_reads(no_wrapper, body) == {"Text": "t"}


def test_empty_collections_in_output_read_back_empty() -> None:
    operation = IAM.operation_model("ListUsers")
    body = serialize_query_response(operation, {"Users": [], "IsTruncated": False}, "r")
    assert b"<Users></Users>" in body
    assert botocore_reads(operation, body) == {"Users": [], "IsTruncated": False}


def test_success_headers() -> None:
    assert query_success_headers("rid") == [(b"content-type", b"text/xml"), (b"x-amzn-requestid", b"rid")]


# --- errors --------------------------------------------------------------------------------------

def parsed_error(service, error: ServiceError) -> tuple[int, dict]:
    status, headers, body = query_error_response(service, error, "req-9")
    parsed = create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, None)
    return status, parsed["Error"]


@pytest.mark.parametrize(("error", "code", "status", "kind"), [
    (ServiceError("ValidationException", "1 validation error detected: x"), "ValidationError", 400, "Sender"),
    (UnknownOperationError("Could not find operation Nope"), "InvalidAction", 400, "Sender"),
    (InternalError("req-9"), "InternalFailure", 500, "Receiver"),
    (ServiceError("ServiceUnavailableException", "later", status=503), "ServiceUnavailable", 503, "Receiver"),
    (SigV4Error("InvalidSignatureException", "sig"), "SignatureDoesNotMatch", 403, "Sender"),
    (SigV4Error("UnrecognizedClientException", "who"), "InvalidClientTokenId", 403, "Sender"),
    (SigV4Error("ExpiredTokenException", "old"), "ExpiredToken", 403, "Sender"),
    (ServiceError("NoSuchEntityException", "gone"), "NoSuchEntity", 404, "Sender"),
    (ServiceError("NoSuchEntity", "gone", status=410), "NoSuchEntity", 410, "Sender"),
    (ServiceError("SomethingNew", "odd"), "SomethingNew", 400, "Sender"),
    (ServiceError("MalformedQueryString", "bad"), "MalformedQueryString", 404, "Sender"),
])
def test_iam_error_codes_statuses_and_types(error: ServiceError, code: str, status: int, kind: str) -> None:
    got_status, parsed = parsed_error(IAM, error)
    assert (parsed["Code"], got_status, parsed["Type"]) == (code, status, kind)
    assert parsed["Message"] == error.message
    assert query_error_code(IAM, error.code) == code


def test_modeled_codes_win_over_the_generic_translation() -> None:
    # STS models ExpiredTokenException under that very code; IAM does not model it.
    assert parsed_error(STS, SigV4Error("ExpiredTokenException", "old"))[1]["Code"] == "ExpiredTokenException"
    assert parsed_error(IAM, SigV4Error("ExpiredTokenException", "old"))[1]["Code"] == "ExpiredToken"


def test_error_body_shape_headers_and_escaping() -> None:
    error = ServiceError("MalformedPolicyDocument", "bad <doc> & \x00")
    status, headers, body = query_error_response(STS, error, "r&1")
    assert status == 400
    assert headers == [(b"content-type", b"text/xml"), (b"x-amzn-requestid", b"r&1")]
    assert body == (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    b"<Code>MalformedPolicyDocument</Code><Message>bad &lt;doc&gt; &amp; \xef\xbf\xbd</Message></Error>"
                    b"<RequestId>r&amp;1</RequestId></ErrorResponse>")


def test_modeled_error_fields_are_written_and_bad_ones_never_break_the_response() -> None:
    shape = next(s for s in SYNTH_ERRORS.error_shapes if s.name == "Rich")
    error = ServiceError("Rich", "m", Reason="why", Count=3, Unmodeled="dropped")
    status, _, body = query_error_response(SYNTH_ERRORS, error, "r")
    modeled = create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, shape)
    assert modeled["Reason"] == "why" and modeled["Count"] == 3 and status == 429
    assert b"Unmodeled" not in body
    status, _, body = query_error_response(SYNTH_ERRORS, ServiceError("Rich", "m", Count="not a number"), "r")
    parsed = create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, None)
    assert parsed["Error"]["Code"] == "Rich"


SYNTH_ERRORS = ServiceModel({
    "metadata": {"protocol": "query", "apiVersion": "2020-01-01", "endpointPrefix": "synth", "serviceId": "Synth"},
    "operations": {"Op": {"name": "Op", "http": {"method": "POST", "requestUri": "/"}, "errors": [{"shape": "Rich"}]}},
    "shapes": {
        "Rich": {"type": "structure", "exception": True, "error": {"code": "Rich", "httpStatusCode": 429},
                 "members": {"message": {"shape": "Text"}, "Reason": {"shape": "Text"}, "Count": {"shape": "Count"}}},
        "Text": {"type": "string"}, "Count": {"type": "integer"},
    },
}, service_name="synth")


def test_validator_paths_are_rewritten_to_query_paths() -> None:
    params = {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "session",
              "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ok"}, {"arn": "short"}]}
    violations = find_violations(ASSUME_ROLE, params)
    assert [v.path for v in violations] == ["PolicyArns.1.arn"]
    error = query_violations_error(ASSUME_ROLE, violations)
    assert error.code == "ValidationException"
    assert error.message == ("1 validation error detected: Value 'short' at 'policyArns.2.member.arn' failed to "
                             "satisfy constraint: Member must have length greater than or equal to 20")
    shape = EVERYTHING.input_shape
    assert query_path(shape, "Attrs.some.key") == "attrs.some.key"
    assert query_path(shape, "Matrix.0.1") == "matrix.1.member.2.member"
    assert query_path(shape, "Nope.0") == "Nope.0" and query_path(shape, "") == "" and query_path(None, "A") == "A"


def test_request_wire_is_best_effort_for_refused_requests() -> None:
    body = PREFIX + b"RoleArn=r&DurationSeconds=soon&Tags.member.1.Key=k"
    with pytest.raises(ServiceError):
        parse_query_request(ASSUME_ROLE, body)
    assert query_request_wire(ASSUME_ROLE, body) == {"roleArn": "r", "tags": [{"key": "k"}]}


def test_prepare_warms_every_operation() -> None:
    for operation in ALL_OPERATIONS:
        query.prepare(operation)
    assert all(operation in query._compiled_inputs for operation in ALL_OPERATIONS)


# --- fuzzing: nothing but ServiceError ever comes out ---------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.sampled_from(ALL_OPERATIONS), body=st.binary(max_size=300))
def test_random_bytes_raise_only_service_errors(operation, body: bytes) -> None:
    try:
        params, wire = parse_query_request(operation, body)
    except ServiceError as error:
        assert error.code in ("MalformedQueryString", "ValidationException")
        return
    find_violations(operation, params)
    assert isinstance(wire, dict)


_SEGMENTS = st.sampled_from(["RoleArn", "PolicyArns", "member", "entry", "key", "value", "1", "2", "10", "0",
                             "arn", "Tags", "Key", "Value", "Node", "Child", "Name", "Attrs", "Matrix", "Flat",
                             "Item", "Stamp", "Data", "Flag", "Big", "DurationSeconds", "Properties", "x", ""])
_KEYS = st.lists(_SEGMENTS, min_size=1, max_size=8).map(".".join)
_VALUES = st.sampled_from(["", "1", "-1", "true", "x", "2024-05-06T07:08:09Z", "AAE=", "%zz", "%C3%BC", "+", "NaN"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.sampled_from(ALL_OPERATIONS + [EVERYTHING]),
       pairs=st.lists(st.tuples(_KEYS, _VALUES), max_size=20))
def test_model_shaped_forms_raise_only_service_errors(operation, pairs) -> None:
    body = "&".join(f"{key}={value}" for key, value in pairs).encode()
    try:
        params, wire = parse_query_request(operation, body)
    except ServiceError as error:
        assert error.code in ("MalformedQueryString", "ValidationException")
        return
    find_violations(operation, params)
    serialize_query_response(operation, {}, "r")
    assert isinstance(query_input_wire(operation, params), dict)
