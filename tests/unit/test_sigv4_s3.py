"""auth.sigv4's S3 mode against requests signed by botocore's S3 signers (the oracle).

S3 signs the path as sent (no normalisation, no second encoding) and the
``x-amz-content-sha256`` value as payload hash; ``verify_s3`` answers with S3's error codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from searchtrail.auth import sigv4
from tests.unit.prepared import to_http
from searchtrail.auth.sigv4 import (
    HttpRequest,
    SigV4Error,
    StaticCredential,
    canonical_request,
    s3_canonical_uris,
    verify_s3,
)

AK = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEMP_AK = "ASIAIOSFODNN7EXAMPLE"
TEMP_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="
SIGNED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
OWNER = object()
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

KEYS = {
    AK: StaticCredential(AK, SECRET, None, OWNER),
    TEMP_AK: StaticCredential(TEMP_AK, TEMP_SECRET, TOKEN, OWNER,
                              expires_at=SIGNED_AT + timedelta(minutes=15)),
}


def s3_signed(path: str = "/_s3/bucket/key", *, query: str = "", method: str = "GET",
              body: bytes = b"", scheme: str = "http", key: str = AK, secret: str = SECRET,
              token: str | None = None, region: str = "us-east-1", service: str = "s3",
              when: datetime = SIGNED_AT, context: dict | None = None) -> HttpRequest:
    """botocore's S3 header signer (it signs the body's SHA-256 unless ``context`` says
    otherwise, as boto3 does for S3 uploads over https)."""
    url = f"{scheme}://127.0.0.1:4680{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    request.context.update(context or {})
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        S3SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    return to_http(request.prepare())


def presigned(path: str = "/_s3/bucket/key", *, expires: int = 60,
              when: datetime = SIGNED_AT) -> HttpRequest:
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:4680{path}")
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", "us-east-1",
                         expires=expires).add_auth(request)
    return to_http(request.prepare())


def check(req: HttpRequest, *, now: datetime = SIGNED_AT, max_skew=timedelta(minutes=15)):
    return verify_s3(req, lookup=KEYS.get, now=now, max_skew=max_skew)


def refused(req: HttpRequest, code: str, status: int, **kwargs) -> SigV4Error:
    with pytest.raises(SigV4Error) as err:
        check(req, **kwargs)
    assert (err.value.code, err.value.status) == (code, status), err.value.message
    return err.value


def set_header(req: HttpRequest, name: str, value: str | None) -> HttpRequest:
    headers = [(n, v) for n, v in req.headers if n.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(req, headers=tuple(headers))


# --------------------------------------------------------------------------- accepted

ODD_PATHS = [
    "/_s3/bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/a.json.gz",
    "/_s3/bucket/a%20b%2Bc%3D%26",  # space, '+', '=', '&' in a key
    "/_s3/bucket/caf%C3%A9/%E2%9C%93",  # UTF-8
    "/_s3/bucket/a/./b/../c",  # dot segments are part of S3 keys: never normalised
    "/_s3/bucket//double//slash/",
    "/_s3/bucket/tilde~and-unreserved_.txt",
    "/_s3/",
]


@pytest.mark.parametrize("path", ODD_PATHS)
def test_botocore_s3_signed_paths_verify(path: str) -> None:
    verified = verify_s3(s3_signed(path), lookup=KEYS.get, now=SIGNED_AT)
    assert (verified.access_key_id, verified.service, verified.region) == (AK, "s3", "us-east-1")
    assert verified.credential.owner is OWNER
    assert verified.payload_hash == EMPTY_SHA256


@pytest.mark.parametrize("path", ["/_s3/bucket/a/./b/../c", "/_s3/bucket/a%20b"])
def test_generic_mode_refuses_what_s3_mode_accepts(path: str) -> None:
    """The S3 rules are what makes these verify: the aoss rules normalise and re-encode."""
    with pytest.raises(SigV4Error) as err:
        sigv4.verify(s3_signed(path), lookup=KEYS.get, now=SIGNED_AT, service="s3")
    assert err.value.code == sigv4.INVALID_SIGNATURE
    assert check(s3_signed(path)).access_key_id == AK


def test_canonical_request_matches_botocore() -> None:
    path = "/_s3/bucket/a/./b%20c/../%C3%A9"
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:4680{path}?list-type=2&prefix=a%2Fb")
    signer = S3SigV4Auth(Credentials(AK, SECRET), "s3", "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=SIGNED_AT.replace(tzinfo=None)):
        signer.add_auth(request)
    expected = signer.canonical_request(request)
    signed = signer.signed_headers(signer.headers_to_sign(request)).split(";")
    assert canonical_request(to_http(request.prepare()), signed, s3=True) == expected


def test_unsigned_payload_is_the_payload_hash() -> None:
    req = s3_signed(scheme="https", context={
        "client_config": Config(s3={"payload_signing_enabled": False})})
    assert dict((n.lower(), v) for n, v in req.headers)["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    verified = check(dataclasses.replace(req, body=b"anything at all"))
    assert verified.payload_hash == "UNSIGNED-PAYLOAD"


def test_signed_body_hash_must_match_body() -> None:
    req = s3_signed(method="PUT", body=b"payload")
    assert check(req).payload_hash == hashlib.sha256(b"payload").hexdigest()
    refused(dataclasses.replace(req, body=b"tampered"), "XAmzContentSHA256Mismatch", 400)


def test_content_sha256_header_is_required_with_authorization_header() -> None:
    """Signed by the generic signer, which sends no x-amz-content-sha256."""
    request = AWSRequest(method="GET", url="http://127.0.0.1:4680/_s3/bucket/key")
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=SIGNED_AT.replace(tzinfo=None)):
        SigV4Auth(Credentials(AK, SECRET), "s3", "us-east-1").add_auth(request)
    error = refused(to_http(request.prepare()), "InvalidRequest", 400)
    assert "x-amz-content-sha256" in error.message


def test_content_sha256_must_be_a_hash_or_keyword() -> None:
    refused(set_header(s3_signed(), "x-amz-content-sha256", "not-a-hash"), "InvalidArgument", 400)


def test_streaming_payload_is_signed_as_is_and_reported() -> None:
    """Only the seed signature is checked; the caller learns it must check the chunks."""
    req = s3_signed(method="PUT", body=b"x", scheme="https", context={
        "checksum": {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}})
    assert check(req).payload_hash == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def test_presigned_url_verifies_and_expires_as_access_denied() -> None:
    req = presigned(expires=60)
    verified = check(req)
    assert verified.presigned and verified.payload_hash == "UNSIGNED-PAYLOAD"
    error = refused(req, "AccessDenied", 403, now=SIGNED_AT + timedelta(seconds=61))
    assert error.message == "Request has expired"


def test_session_token_verifies_and_is_checked() -> None:
    assert check(s3_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN)).access_key_id == TEMP_AK
    refused(s3_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN[:-1] + "x"),
            "InvalidToken", 400)
    refused(s3_signed(key=TEMP_AK, secret=TEMP_SECRET, token=TOKEN), "ExpiredToken", 400,
            now=SIGNED_AT + timedelta(minutes=15))


def test_path_signed_once_encoded_by_other_clients_verifies() -> None:
    """A client that sends '!' raw but signs its RFC 3986 form ('%21') is accepted too."""
    encoded = s3_signed("/_s3/bucket/wow%21")
    sent = dataclasses.replace(encoded, raw_path="/_s3/bucket/wow!")
    assert check(sent).access_key_id == AK
    assert s3_canonical_uris("/_s3/bucket/wow!") == ("/_s3/bucket/wow!", "/_s3/bucket/wow%21")


def test_canonical_uri_candidates() -> None:
    assert s3_canonical_uris("/b/a%20b") == ("/b/a%20b",)
    assert s3_canonical_uris("") == ("/",)
    assert s3_canonical_uris("/b/a/./../c//") == ("/b/a/./../c//",)
    assert s3_canonical_uris("/b/x%2Fy") == ("/b/x%2Fy",)  # an encoded '/' stays encoded
    assert s3_canonical_uris("/b/x%2fy") == ("/b/x%2fy", "/b/x%2Fy")
    assert s3_canonical_uris("/b/caf\xc3\xa9") == ("/b/caf\xc3\xa9", "/b/caf%C3%A9")


# --------------------------------------------------------------------------- S3 error codes


def test_wrong_secret_is_signature_does_not_match() -> None:
    error = refused(s3_signed(secret=SECRET[:-1] + "x"), "SignatureDoesNotMatch", 403)
    assert error.claimed_access_key_id == AK
    assert error.message.startswith("The request signature we calculated does not match")


def test_tampered_path_is_signature_does_not_match() -> None:
    req = s3_signed("/_s3/bucket/key")
    refused(dataclasses.replace(req, raw_path="/_s3/bucket/other"), "SignatureDoesNotMatch", 403)


def test_unknown_key_is_invalid_access_key_id() -> None:
    error = refused(s3_signed(key="AKIAUNKNOWNUNKNOWN00"), "InvalidAccessKeyId", 403)
    assert error.claimed_access_key_id == "AKIAUNKNOWNUNKNOWN00"


@pytest.mark.parametrize("offset", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_clock_skew_is_request_time_too_skewed(offset: timedelta) -> None:
    refused(s3_signed(), "RequestTimeTooSkewed", 403, now=SIGNED_AT + offset)
    assert check(s3_signed(), now=SIGNED_AT + offset / 16 * 15).access_key_id == AK


def test_no_authentication_is_access_denied() -> None:
    req = HttpRequest("GET", "/_s3/bucket/key", "", (("Host", "127.0.0.1:4680"),), b"")
    assert refused(req, "AccessDenied", 403).message == "Access Denied"


def test_other_service_scope_is_authorization_header_malformed() -> None:
    refused(s3_signed(service="aoss"), "AuthorizationHeaderMalformed", 400)


def test_malformed_authorization_header() -> None:
    req = set_header(s3_signed(), "Authorization", "AWS4-HMAC-SHA256 Credential=x")
    refused(req, "AuthorizationHeaderMalformed", 400)


def test_header_and_query_auth_together_is_invalid_argument() -> None:
    both = dataclasses.replace(presigned(), headers=s3_signed().headers)
    refused(both, "InvalidArgument", 400)


@settings(max_examples=200, deadline=None)
@given(path=st.text(max_size=40), query=st.text(max_size=40),
       sha=st.sampled_from(["UNSIGNED-PAYLOAD", EMPTY_SHA256, "zz", "STREAMING-X"]))
def test_arbitrary_requests_only_raise_s3_auth_errors(path: str, query: str, sha: str) -> None:
    req = set_header(s3_signed(), "x-amz-content-sha256", sha)
    req = dataclasses.replace(req, raw_path="/" + path, query_string=query)
    try:
        check(req)
    except SigV4Error as error:
        assert error.status in (400, 403)
        assert error.code in {"SignatureDoesNotMatch", "InvalidArgument", "AccessDenied",
                              "AuthorizationHeaderMalformed", "AuthorizationQueryParametersError",
                              "XAmzContentSHA256Mismatch", "InvalidRequest"}
