"""auth.sigv4 against requests signed by botocore (the independent oracle) for service aoss.

Every rejection pins the exact ``__type`` code, HTTP 403, and the AWS-like message where the
plan names one (reliability plan §3.5, S1–S15).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from searchtrail.auth import sigv4
from tests.unit.prepared import to_http
from searchtrail.auth.sigv4 import (
    EXPIRED_TOKEN,
    INCOMPLETE_SIGNATURE,
    INVALID_SIGNATURE,
    MISMATCH_MESSAGE,
    MISSING_AUTHENTICATION_TOKEN,
    UNRECOGNIZED_CLIENT,
    HttpRequest,
    SigV4Error,
    StaticCredential,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    parse_authorization,
    signature,
    signing_key,
    verify,
)
from searchtrail.protocol.errors import ServiceError

AK = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEMP_AK = "ASIAIOSFODNN7EXAMPLE"
TEMP_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="
ENDPOINT = "http://127.0.0.1:8080"
SIGNED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
AMZ_DATE = "20260102T030405Z"
TARGET = "OpenSearchServerless.CreateCollection"
BODY = b'{"name":"logs","type":"SEARCH","description":"caf\xc3\xa9"}'
OWNER = object()

KEYS = {
    AK: StaticCredential(AK, SECRET, None, OWNER),
    TEMP_AK: StaticCredential(TEMP_AK, TEMP_SECRET, TOKEN, OWNER,
                              expires_at=SIGNED_AT + timedelta(minutes=15)),
}


def lookup(key_id: str) -> StaticCredential | None:
    return KEYS.get(key_id)


def botocore_signed(*, body: bytes = BODY, target: str = TARGET, key: str = AK,
                    secret: str = SECRET, token: str | None = None, service: str = "aoss",
                    region: str = "us-east-1", url: str = ENDPOINT + "/", method: str = "POST",
                    extra: dict | None = None, when: datetime = SIGNED_AT) -> HttpRequest:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target,
               **(extra or {})}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    return to_http(request.prepare())


def check(req: HttpRequest, *, now: datetime = SIGNED_AT, service: str | None = "aoss",
          region_check=lambda region: region == "us-east-1", max_skew=timedelta(minutes=5),
          key_lookup=lookup):
    return verify(req, lookup=key_lookup, now=now, max_skew=max_skew, service=service,
                  region_check=region_check)


def rejected(req: HttpRequest, code: str, **kwargs) -> SigV4Error:
    with pytest.raises(SigV4Error) as err:
        check(req, **kwargs)
    assert err.value.code == code, err.value.message
    assert err.value.status == 403
    assert isinstance(err.value, ServiceError)
    return err.value


def set_header(req: HttpRequest, name: str, value: str | None) -> HttpRequest:
    """Replace (or with None remove) every header of that name; append when absent."""
    headers = [(n, v) for n, v in req.headers if n.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(req, headers=tuple(headers))


def header(req: HttpRequest, name: str) -> str:
    return next(v for n, v in req.headers if n.lower() == name.lower())


# --------------------------------------------------------------------------- accepted


def test_botocore_signed_aoss_call_verifies() -> None:
    req = botocore_signed()
    verified = check(req)
    assert (verified.access_key_id, verified.region, verified.service) == (AK, "us-east-1", "aoss")
    assert verified.credential is KEYS[AK] and verified.credential.owner is OWNER
    assert verified.amz_date == SIGNED_AT
    assert "x-amz-target" in verified.signed_headers and "host" in verified.signed_headers
    assert verified.presigned is False


def test_session_token_variant_verifies() -> None:
    req = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN)
    assert header(req, "X-Amz-Security-Token") == TOKEN
    assert "x-amz-security-token" in check(req).signed_headers


def test_real_boto3_client_request_verifies() -> None:
    """The exact bytes a boto3 opensearchserverless client sends (captured before sending)."""
    sent = []

    class Raw:
        def stream(self, **_):
            yield b'{"collectionSummaries":[]}'

    def capture(request, **_):
        sent.append(request)
        return AWSResponse(request.url, 200, {"x-amzn-RequestId": "r"}, Raw())

    client = boto3.client("opensearchserverless", region_name="eu-west-1", endpoint_url=ENDPOINT,
                          aws_access_key_id=TEMP_AK, aws_secret_access_key=TEMP_SECRET,
                          aws_session_token=TOKEN)
    client.meta.events.register("before-send", capture)
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=SIGNED_AT.replace(tzinfo=None)):
        client.list_collections(maxResults=5)
    req = to_http(sent[0])
    assert header(req, "X-Amz-Target") == "OpenSearchServerless.ListCollections"
    verified = check(req, region_check=lambda region: region == "eu-west-1")
    assert verified.region == "eu-west-1" and verified.service == "aoss"
    # user-agent is not signed by botocore: proxies may rewrite it without breaking anything
    assert check(set_header(req, "User-Agent", "changed"),
                 region_check=None).access_key_id == TEMP_AK


def test_path_and_query_canonicalization_agrees_with_botocore() -> None:
    # botocore signs a URL's query verbatim, so only canonically encoded queries (what it
    # produces from parameters) can be compared; the verifier re-encodes (%7E -> ~).
    url = ENDPOINT + "/a%20b/./c/../d%2Fe/~x?y=a%2Fb&x=1&x=0&empty=&sp=a%20b&t=~%2A"
    req = botocore_signed(url=url, method="GET", body=b"")
    assert req.raw_path == "/a%20b/./c/../d%2Fe/~x"
    assert check(req).access_key_id == AK
    assert canonical_uri(req.raw_path) == "/a%2520b/d%252Fe/~x"
    assert canonical_query_string(req.query_string) == "empty=&sp=a%20b&t=~%2A&x=0&x=1&y=a%2Fb"


def test_date_header_instead_of_x_amz_date_verifies() -> None:
    req = botocore_signed(extra={"Date": "placeholder"})
    assert not any(n.lower() == "x-amz-date" for n, _ in req.headers)
    assert header(req, "Date") == "Fri, 02 Jan 2026 03:04:05 -0000"
    assert check(req).amz_date == SIGNED_AT


def test_presigned_query_request_verifies_and_expires() -> None:
    request = AWSRequest(method="GET", url=ENDPOINT + "/?Action=ListCollections")
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=SIGNED_AT.replace(tzinfo=None)):
        SigV4QueryAuth(Credentials(AK, SECRET), "aoss", "us-east-1", expires=60).add_auth(request)
    req = to_http(request.prepare())
    assert "X-Amz-Signature=" in req.query_string
    assert check(req).presigned is True
    assert check(req, now=SIGNED_AT + timedelta(seconds=60)).presigned
    err = rejected(req, INVALID_SIGNATURE, now=SIGNED_AT + timedelta(seconds=61))
    assert err.message == ("Signature expired: 20260102T030405Z is now earlier than "
                           "20260102T030406Z (20260102T030506Z - 1 min.)")
    tampered = dataclasses.replace(req, query_string=req.query_string.replace(
        "Action=ListCollections", "Action=DeleteCollection"))
    assert rejected(tampered, INVALID_SIGNATURE).message == MISMATCH_MESSAGE
    too_long = dataclasses.replace(req, query_string=req.query_string.replace(
        "X-Amz-Expires=60", "X-Amz-Expires=604801"))
    assert "604800" in rejected(too_long, INCOMPLETE_SIGNATURE).message


def test_skew_window_is_configurable() -> None:
    req = botocore_signed()
    ten = timedelta(minutes=10)
    rejected(req, INVALID_SIGNATURE, now=SIGNED_AT + ten)
    assert check(req, now=SIGNED_AT + ten, max_skew=timedelta(minutes=15)).access_key_id == AK
    err = rejected(req, INVALID_SIGNATURE, now=SIGNED_AT + timedelta(minutes=16),
                   max_skew=timedelta(minutes=15))
    assert err.message.endswith("(20260102T032005Z - 15 min.)")


def test_replay_within_window_is_accepted_like_aws() -> None:
    req = botocore_signed()
    assert check(req).access_key_id == AK
    assert check(req, now=SIGNED_AT + timedelta(minutes=4)).access_key_id == AK


# --------------------------------------------------------------------------- S1–S4


def test_no_authentication_at_all() -> None:
    req = set_header(botocore_signed(), "Authorization", None)
    err = rejected(req, MISSING_AUTHENTICATION_TOKEN)
    assert err.message == "Missing Authentication Token"
    assert err.claimed_access_key_id is None


@pytest.mark.parametrize("value, message", [
    ("AWS4-HMAC-SHA512 Credential=AKIAIOSFODNN7EXAMPLE/20260102/us-east-1/aoss/aws4_request, "
     "SignedHeaders=host, Signature=00", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."),
    ("Bearer abc.def", "Unsupported AWS 'algorithm': 'Bearer'."),
    ("", "Unsupported AWS 'algorithm': ''."),
    ("AWS4-HMAC-SHA256", "Authorization header requires 'Credential' parameter. Authorization "
     "header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
     "parameter. Authorization=AWS4-HMAC-SHA256"),
    ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
     "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 "
     "SignedHeaders=host, Signature=00"),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260102/us-east-1/aoss/aws4_request, "
     "SignedHeaders=host", "Authorization header requires 'Signature' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260102/us-east-1/aoss/aws4_request, "
     "Signature=00", "Authorization header requires 'SignedHeaders' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260102/us-east-1/aoss, "
     "SignedHeaders=host, Signature=00",
     "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/"
     "term, got 'AKIAIOSFODNN7EXAMPLE/20260102/us-east-1/aoss'"),
    ("AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00",
     "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header"),
    ("AWS4-HMAC-SHA256 Signature=00, Signature=01, SignedHeaders=host, Credential=a/b/c/d/e",
     "Duplicate 'Signature' parameter"),
    ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00, Nonce=1",
     "Unknown parameter 'Nonce'"),
    ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;;x-amz-date, Signature=00",
     "Invalid SignedHeaders 'host;;x-amz-date'"),
])
def test_malformed_authorization_is_incomplete(value: str, message: str) -> None:
    err = rejected(set_header(botocore_signed(), "Authorization", value), INCOMPLETE_SIGNATURE)
    assert message in err.message
    with pytest.raises(SigV4Error) as direct:
        parse_authorization(value)
    assert direct.value.code == INCOMPLETE_SIGNATURE


def test_parse_authorization_tokenizes_whitespace_and_order() -> None:
    auth = parse_authorization("  AWS4-HMAC-SHA256   Signature=ab12 ,SignedHeaders=host;x-amz-date,"
                               "Credential=AKID/20150830/us-east-1/aoss/aws4_request  ")
    assert auth == sigv4.Authorization("AKID", "20150830", "us-east-1", "aoss",
                                       ("host", "x-amz-date"), "ab12")
    assert auth.scope == "20150830/us-east-1/aoss/aws4_request"


def test_parse_authorization_reuses_a_clients_parse_but_never_its_signature() -> None:
    credential = "Credential=AKID/20150830/us-east-1/aoss/aws4_request"
    variants = [
        f"AWS4-HMAC-SHA256 {credential}, SignedHeaders=host;x-amz-date, Signature=ab12",
        f"AWS4-HMAC-SHA256 {credential}, SignedHeaders=host;x-amz-date, Signature=cd34",
        f"AWS4-HMAC-SHA256 Signature=EF56 ,SignedHeaders=host;x-amz-date,{credential}",
        f"AWS4-HMAC-SHA256\tSignature=0a\t,\t{credential},SignedHeaders=host;x-amz-date",
        f"AWS4-HMAC-SHA256 {credential}, SignedHeaders=host;x-amz-date, Signature=not-hex",
    ]
    for value in variants * 2:  # the second round is answered from the cache
        assert parse_authorization(value) == sigv4._parse_authorization(value)
    assert [parse_authorization(v).signature for v in variants] == [
        "ab12", "cd34", "EF56", "0a", "not-hex"]
    assert sigv4._parse_authorization_template.cache_info().hits >= 4
    # A header that fails to parse names itself, not the blanked one the cache saw.
    broken = f"AWS4-HMAC-SHA256 {credential}, Signature=ab12"
    with pytest.raises(SigV4Error) as failed:
        parse_authorization(broken)
    assert failed.value.message.endswith(f"Authorization={broken}")


_SCHEMES = ["AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256\t", "  AWS4-HMAC-SHA256  ", "AWS4-HMAC-SHA256"]
_SIGNATURES = ["Signature=ab12", "Signature=EF56 ", "xSignature=ab12", "Signature=ab 12",
               "Signature=", "Signature=zz", "Signature=ab12=", "signature=ab12"]
_SEPARATORS = [",", ", ", " ,", "\t,\t", " ", ",,"]
_SUFFIXES = ["", " ", ",", ", Signature=CD", ",xSignature=CD"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SCHEMES), st.sampled_from(_SIGNATURES),
       st.permutations(["Credential=AKID/20150830/us-east-1/aoss/aws4_request",
                        "SignedHeaders=host", "SIGNATURE"]),
       st.lists(st.sampled_from(_SEPARATORS), min_size=2, max_size=2), st.sampled_from(_SUFFIXES))
def test_the_cached_parse_answers_as_the_full_parse_for_any_header(
        scheme: str, signature: str, params: list[str], separators: list[str], suffix: str) -> None:
    first, second, third = (signature if param == "SIGNATURE" else param for param in params)
    value = f"{scheme}{first}{separators[0]}{second}{separators[1]}{third}{suffix}"

    def outcome(parse):  # type: ignore[no-untyped-def]
        try:
            return parse(value)
        except SigV4Error as error:
            return (error.code, error.message)

    assert outcome(parse_authorization) == outcome(sigv4._parse_authorization)


@pytest.mark.parametrize("value", ["plain", "  padded  ", "a  b", "a\tb", "fold\r\n  x",
                                   "caf\xe9  au lait", "vertical\x0btab", "  "])
def test_trimall_fast_path_matches_the_rule(value: str) -> None:
    assert sigv4._trimall(value) == sigv4._SPACES.sub(" ", value).strip(" ")


def test_unknown_access_key() -> None:
    err = rejected(botocore_signed(key="AKIANOTAKEYATALL0000"), UNRECOGNIZED_CLIENT)
    assert err.message == "The security token included in the request is invalid."
    assert err.claimed_access_key_id == "AKIANOTAKEYATALL0000"


def test_wrong_secret() -> None:
    err = rejected(botocore_signed(secret=SECRET[:-1] + "Z"), INVALID_SIGNATURE)
    assert err.message == MISMATCH_MESSAGE
    assert err.claimed_access_key_id == AK


# --------------------------------------------------------------------------- S5: tampering


def test_tampered_body() -> None:
    req = botocore_signed()
    assert rejected(dataclasses.replace(req, body=req.body.replace(b"logs", b"logz")),
                    INVALID_SIGNATURE).message == MISMATCH_MESSAGE
    assert rejected(dataclasses.replace(req, body=req.body + b" "), INVALID_SIGNATURE)


def test_tampered_target_and_content_type() -> None:
    req = botocore_signed()
    rejected(set_header(req, "X-Amz-Target", "OpenSearchServerless.DeleteCollection"),
             INVALID_SIGNATURE)
    rejected(set_header(req, "Content-Type", "application/x-amz-json-1.1"), INVALID_SIGNATURE)
    rejected(set_header(req, "Host", "127.0.0.1:8081"), INVALID_SIGNATURE)
    rejected(dataclasses.replace(req, method="PUT"), INVALID_SIGNATURE)
    rejected(dataclasses.replace(req, raw_path="/x"), INVALID_SIGNATURE)
    rejected(dataclasses.replace(req, query_string="a=1"), INVALID_SIGNATURE)


def test_content_sha256_header_must_match_body() -> None:
    body_hash = hashlib.sha256(BODY).hexdigest()
    req = botocore_signed(extra={"X-Amz-Content-SHA256": body_hash})
    assert "x-amz-content-sha256" in check(req).signed_headers
    err = rejected(dataclasses.replace(req, body=BODY + b" "), INVALID_SIGNATURE)
    assert err.message == ("The provided 'x-amz-content-sha256' header does not match what "
                           "was computed.")


def test_unsigned_payload_is_not_honoured() -> None:
    req = botocore_signed(extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert rejected(req, INVALID_SIGNATURE).message == MISMATCH_MESSAGE


# --------------------------------------------------------------------------- S6: clock


def test_expired() -> None:
    err = rejected(botocore_signed(), INVALID_SIGNATURE,
                   now=SIGNED_AT + timedelta(minutes=5, seconds=1))
    assert err.message == ("Signature expired: 20260102T030405Z is now earlier than "
                           "20260102T030406Z (20260102T030906Z - 5 min.)")


def test_future() -> None:
    err = rejected(botocore_signed(), INVALID_SIGNATURE,
                   now=SIGNED_AT - timedelta(minutes=5, seconds=1))
    assert err.message == ("Signature not yet current: 20260102T030405Z is still later than "
                           "20260102T030404Z (20260102T025904Z + 5 min.)")


def test_window_edges_are_inclusive() -> None:
    req = botocore_signed()
    for offset in (timedelta(minutes=5), timedelta(minutes=-5),
                   timedelta(minutes=4, seconds=59), timedelta(minutes=-4, seconds=-59)):
        assert check(req, now=SIGNED_AT + offset).access_key_id == AK


def test_naive_now_is_utc() -> None:
    assert check(botocore_signed(), now=SIGNED_AT.replace(tzinfo=None)).access_key_id == AK
    naive_expiry = {TEMP_AK: dataclasses.replace(KEYS[TEMP_AK], expires_at=datetime(2026, 1, 2))}
    req = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN)
    rejected(req, EXPIRED_TOKEN, key_lookup=naive_expiry.get)


# --------------------------------------------------------------------------- S7: scope


def test_scope_service() -> None:
    err = rejected(botocore_signed(service="es"), INVALID_SIGNATURE)
    assert err.message == "Credential should be scoped to correct service: 'aoss'."


def test_scope_region() -> None:
    err = rejected(botocore_signed(region="eu-west-1"), INVALID_SIGNATURE)
    assert err.message == "Credential should be scoped to a valid region, not 'eu-west-1'."
    assert check(botocore_signed(region="eu-west-1"), region_check=None).region == "eu-west-1"


def test_scope_date() -> None:
    req = set_header(botocore_signed(), "X-Amz-Date", "20260103T030405Z")
    err = rejected(req, INVALID_SIGNATURE, now=datetime(2026, 1, 3, 3, 4, 5, tzinfo=timezone.utc))
    assert err.message == ("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                           "version of date from HTTP: '20260102' != '20260103', from "
                           "'20260103T030405Z'.")


def test_scope_terminator() -> None:
    req = botocore_signed()
    bad = set_header(req, "Authorization",
                     header(req, "Authorization").replace("/aws4_request", "/aws5_request"))
    err = rejected(bad, INVALID_SIGNATURE)
    assert err.message == ("Credential should be scoped with a valid terminator: "
                           "'aws4_request', not 'aws5_request'.")


# --------------------------------------------------------------------------- S8


def test_host_must_be_signed() -> None:
    req = botocore_signed()
    auth = header(req, "Authorization")
    bad = set_header(req, "Authorization", auth.replace("content-type;host;", "content-type;"))
    err = rejected(bad, INCOMPLETE_SIGNATURE)
    assert err.message == ("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                           "Authorization.")


def test_the_operation_header_must_be_signed() -> None:
    """X-Amz-Target names the operation: unsigned (a presigned URL signs only the host), a URL
    made to read an access policy deleted it, the two taking the same body."""
    req = botocore_signed()
    auth = header(req, "Authorization")
    bad = set_header(req, "Authorization", auth.replace(";x-amz-target", ""))
    assert "x-amz-target" not in header(bad, "Authorization")
    err = rejected(bad, INCOMPLETE_SIGNATURE)
    assert err.message == ("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization: "
                           "it names the operation.")


def test_signed_header_missing_from_request() -> None:
    err = rejected(set_header(botocore_signed(), "X-Amz-Target", None), INCOMPLETE_SIGNATURE)
    assert err.message == "Signed header 'x-amz-target' is not present in the request."


def test_no_date_at_all() -> None:
    req = set_header(botocore_signed(), "X-Amz-Date", None)
    err = rejected(req, INCOMPLETE_SIGNATURE)
    assert err.message.startswith("Authorization header requires existence of either a "
                                  "'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC")


@pytest.mark.parametrize("value", ["2026-01-02T03:04:05Z", "20260102T030405", "20261302T030405Z",
                                   "20260102T030405Z,20260102T030405Z", "２０２６0102T030405Z"])
def test_malformed_x_amz_date(value: str) -> None:
    err = rejected(set_header(botocore_signed(), "X-Amz-Date", value), INCOMPLETE_SIGNATURE)
    assert err.message.startswith(f"Date must be in ISO-8601 'basic format'. Got '{value}'.")


# --------------------------------------------------------------------------- S9: tokens


def test_temporary_key_without_token() -> None:
    req = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=None)
    assert not any(n.lower() == "x-amz-security-token" for n, _ in req.headers)
    assert rejected(req, UNRECOGNIZED_CLIENT).message == INVALID_TOKEN
    # a signed token header stripped in transit: the signed-header check catches it first
    stripped = set_header(botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN),
                          "X-Amz-Security-Token", None)
    assert rejected(stripped, INCOMPLETE_SIGNATURE).message == (
        "Signed header 'x-amz-security-token' is not present in the request.")


INVALID_TOKEN = "The security token included in the request is invalid."


def test_token_one_character_changed() -> None:
    bad = TOKEN[:-3] + "x=="
    assert rejected(botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=bad),
                    UNRECOGNIZED_CLIENT).message == INVALID_TOKEN


def test_token_of_another_key() -> None:
    other = {**KEYS, "ASIAOTHER": StaticCredential("ASIAOTHER", "s3cr3t", "other-token")}
    req = botocore_signed(key="ASIAOTHER", secret="s3cr3t", token=TOKEN)
    rejected(req, UNRECOGNIZED_CLIENT, key_lookup=other.get)


def test_token_sent_with_long_term_key() -> None:
    rejected(botocore_signed(token=TOKEN), UNRECOGNIZED_CLIENT)


def test_expired_temporary_credential() -> None:
    req = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN,
                          when=SIGNED_AT + timedelta(minutes=15))
    err = rejected(req, EXPIRED_TOKEN, now=SIGNED_AT + timedelta(minutes=15))
    assert err.message == "The security token included in the request is expired"
    later = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN,
                            when=SIGNED_AT + timedelta(minutes=14, seconds=59))
    assert check(later, now=SIGNED_AT + timedelta(minutes=14, seconds=59)).access_key_id == TEMP_AK


# --------------------------------------------------------------------------- S11, S12


def test_two_authorization_headers() -> None:
    req = botocore_signed()
    doubled = dataclasses.replace(req, headers=req.headers + (
        ("Authorization", header(req, "Authorization")),))
    assert rejected(doubled, INCOMPLETE_SIGNATURE).message == (
        "Only one Authorization header is allowed.")


def test_header_and_query_authentication_together() -> None:
    req = botocore_signed()
    both = dataclasses.replace(req, query_string="X-Amz-Algorithm=AWS4-HMAC-SHA256")
    err = rejected(both, INCOMPLETE_SIGNATURE)
    assert err.message.startswith("Only one auth mechanism allowed")


@pytest.mark.parametrize("change", [str.upper, lambda s: s[:-1], lambda s: s + "0",
                                    lambda s: s[:-1] + ("0" if s[-1] != "0" else "1")])
def test_signature_must_be_exact_lowercase_hex(change) -> None:
    req = botocore_signed()
    auth = header(req, "Authorization")
    head, sig = auth.rsplit("Signature=", 1)
    assert sig == sig.lower() and len(sig) == 64
    bad = set_header(req, "Authorization", f"{head}Signature={change(sig)}")
    assert rejected(bad, INVALID_SIGNATURE).message == MISMATCH_MESSAGE


# --------------------------------------------------------------------------- S15 and the cache


def test_signature_and_token_compared_in_constant_time(monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(sigv4.hmac, "compare_digest", spy)
    req = botocore_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN)
    check(req)
    assert (TOKEN.encode(), TOKEN.encode()) in calls
    sig = header(req, "Authorization").rsplit("Signature=", 1)[1]
    assert (sig.encode(), sig.encode()) in calls


def test_signing_key_cache_is_hit() -> None:
    first = signing_key("secret-for-cache-test", "20260102", "us-east-1", "aoss")
    info = signing_key.cache_info()
    again = signing_key("secret-for-cache-test", "20260102", "us-east-1", "aoss")
    assert again is first
    assert signing_key.cache_info().hits == info.hits + 1
    assert signing_key.cache_info().maxsize and signing_key.cache_info().maxsize <= 100_000
    other = signing_key("secret-for-cache-test", "20260103", "us-east-1", "aoss")
    assert other != first


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_signature_is_hmac_sha256_for_any_key_length(key_length: int) -> None:
    key = bytes(range(7, 7 + key_length % 256)) * (key_length // 256 + 1)
    key = key[:key_length]
    for text in ("", "AWS4-HMAC-SHA256\n20260102T030405Z\nscope\n" + "ab" * 32, "é∂"):
        assert signature(key, text) == hmac.digest(key, text.encode(), "sha256").hex()
        assert signature(key, text) == signature(key, text)  # the cached pads are not consumed


def test_verify_does_not_rerun_the_hmac_chain() -> None:
    req = botocore_signed()
    check(req)
    misses = signing_key.cache_info().misses
    for _ in range(3):
        check(req)
    assert signing_key.cache_info().misses == misses


# --------------------------------------------------------------------------- canonical form


def test_canonical_headers_duplicates_fold_and_whitespace() -> None:
    req = HttpRequest("GET", "/", "", (
        ("Host", "example.com"), ("X-Multi", " b  c "), ("x-multi", "a"),
        ("X-Fold", "one\r\n   two\t three"), ("X-Amz-Date", AMZ_DATE)), b"")
    creq = canonical_request(req, ("host", "x-fold", "x-multi"))
    assert creq.split("\n") == [
        "GET", "/", "", "host:example.com", "x-fold:one two three", "x-multi:b c,a", "",
        "host;x-fold;x-multi", hashlib.sha256(b"").hexdigest()]


def test_canonical_query_decodes_then_reencodes() -> None:
    assert canonical_query_string("b=%7e&a=%41%2a&a=+&c") == "a=%2B&a=A%2A&b=~&c="
    assert canonical_query_string("%E1%88%B4=%zz") == "%E1%88%B4=%25zz"
    assert canonical_query_string("X-Amz-Signature=1&a=1", exclude=("X-Amz-Signature",)) == "a=1"


def test_canonical_uri_rules() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("//a/./b/../c//") == "/a/c/"
    assert canonical_uri("/a/..") == "/"
    assert canonical_uri("/a/%2e%2e") == "/a/%252e%252e"  # encoded dots are not segments
    assert canonical_uri("/a/./b", normalize_path=False) == "/a/./b"
    assert canonical_uri("/caf\xc3\xa9 $") == "/caf%C3%A9%20%24"  # latin-1 str = wire bytes


# --------------------------------------------------------------------------- robustness


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_authorization_value_gives_an_auth_error(value: str) -> None:
    req = set_header(botocore_signed(), "Authorization", value)
    with pytest.raises(SigV4Error) as err:
        check(req)
    assert err.value.code in sigv4.AUTH_ERROR_CODES and err.value.status == 403


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100), st.text(max_size=100), st.binary(max_size=64))
def test_arbitrary_path_query_and_body_never_crash(path: str, query: str, body: bytes) -> None:
    req = dataclasses.replace(botocore_signed(), raw_path=path, query_string=query, body=body)
    try:
        check(req)
    except SigV4Error as err:
        assert err.code in sigv4.AUTH_ERROR_CODES
    else:
        assert canonical_uri(path) == "/" and canonical_query_string(query) == ""
        assert body == BODY
