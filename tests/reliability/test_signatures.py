"""SigV4 negative cases S1–S13 and S15 against real servers: each refusal has its exact code
and 403, changes nothing, leaves no record and moves searchtrail_rejected_requests_total.

S14 (the official suite and one-byte mutations) is tests/conformance/test_sigv4_suite.py.
"""

from __future__ import annotations

import hmac
import inspect
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from searchtrail.auth import sigv4
from tests.functional.server import ServerProcess
from tests.reliability.checkers import stored_records
from tests.reliability.faketime import faketime_library
from tests.reliability.rawhttp import RawClient, RawRequest
from tests.unit.prepared import to_http

pytestmark = pytest.mark.reliability

SKEW = timedelta(seconds=300)  # the server's default window W (SEARCHTRAIL_CLOCK_SKEW_SECONDS)
SESSION_SECONDS = 900  # the shortest STS session
MISMATCH = "The request signature we calculated does not match the signature you provided."
INVALID_TOKEN = "The security token included in the request is invalid."
ALLOW_AOSS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "aoss:*", "Resource": "*"}]})


@pytest.fixture(scope="module")
def raw(tmp_path_factory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("sigv4") / "data")
    try:
        yield RawClient(server.start())
    finally:
        server.stop()


def encryption_policy(name: str) -> bytes:
    """A CreateSecurityPolicy body: the side effect the refused variants must not have."""
    return json.dumps({"name": name, "type": "encryption", "clientToken": str(uuid.uuid4()),
                       "policy": json.dumps({"Rules": [{"ResourceType": "collection",
                                                        "Resource": [f"collection/{name}"]}],
                                             "AWSOwnedKey": True})}).encode()


def policy_exists(raw: RawClient, name: str) -> bool:
    response = raw.send(raw.sign("GetSecurityPolicy",
                                 json.dumps({"name": name, "type": "encryption"}).encode()))
    if response.status == 200:
        return True
    assert response.error == (404, "ResourceNotFoundException"), response.body
    return False


def with_authorization(request: RawRequest, old: str, new: str) -> RawRequest:
    authorization = request.header("Authorization")
    assert old in authorization
    return request.with_header("Authorization", authorization.replace(old, new, 1))


def signature_of(request: RawRequest) -> str:
    return request.header("Authorization").rsplit("Signature=", 1)[1]


# --------------------------------------------------------------------------- S1–S5


def test_s1_no_authorization_is_missing_token(raw: RawClient, ledger) -> None:
    signed = raw.sign("ListCollections")
    variants = [signed.without("Authorization"),
                signed.without("Authorization").without("X-Amz-Date")]
    responses = [raw.refused(v, "MissingAuthenticationTokenException") for v in variants]
    assert all(r.json()["message"] == "Missing Authentication Token" for r in responses)
    raw.book(ledger, "S1", responses, bad=len(variants))


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA512 {params}",                       # wrong algorithm
    "AWS4-HMAC-SHA256 {no_signature}",                  # Signature= missing
    "AWS4-HMAC-SHA256 {no_signed_headers}",             # SignedHeaders= missing
    "AWS4-HMAC-SHA256 {no_credential}",                 # Credential= missing
    "AWS4-HMAC-SHA256 Credential={key}/20240101/us-east-1/aoss, {rest}",  # 4-part credential
    "AWS4-HMAC-SHA256 {params}, Signature={signature}",  # Signature twice
    "AWS4-HMAC-SHA256",
    "",
    "garbage",
    "Bearer abc.def.ghi",
], ids=["algorithm", "no-signature", "no-signed-headers", "no-credential", "short-credential",
        "duplicate-param", "scheme-only", "empty", "garbage", "bearer"])
def test_s2_malformed_authorization_is_incomplete(raw: RawClient, ledger, authorization) -> None:
    signed = raw.sign("ListCollections")
    params = signed.header("Authorization").split(" ", 1)[1]
    parts = dict(part.split("=", 1) for part in params.split(", "))
    value = authorization.format(
        params=params, signature=parts["Signature"], key=raw.server.credentials()[0],
        rest=f"SignedHeaders={parts['SignedHeaders']}, Signature={parts['Signature']}",
        no_signature=f"Credential={parts['Credential']}, SignedHeaders={parts['SignedHeaders']}",
        no_signed_headers=f"Credential={parts['Credential']}, Signature={parts['Signature']}",
        no_credential=f"SignedHeaders={parts['SignedHeaders']}, Signature={parts['Signature']}")
    response = raw.refused(signed.with_header("Authorization", value),
                           "IncompleteSignatureException")
    raw.book(ledger, "S2", [response], bad=1)


def test_s3_unknown_key_is_unrecognized_client(raw: RawClient, ledger) -> None:
    request = raw.sign("ListCollections", key=("AKIA" + "UNKNOWN0KEY00000", "x" * 40))
    response = raw.refused(request, "UnrecognizedClientException", message=INVALID_TOKEN)
    raw.book(ledger, "S3", [response], bad=1)


def test_s4_wrong_secret_is_invalid_signature(raw: RawClient, ledger) -> None:
    key_id, secret = raw.server.credentials()
    name = "s4-" + uuid.uuid4().hex[:8]
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # one character off
    request = raw.sign("CreateSecurityPolicy", encryption_policy(name), key=(key_id, wrong))
    response = raw.refused(request, "InvalidSignatureException", message=MISMATCH)
    assert not policy_exists(raw, name)
    raw.book(ledger, "S4", [response], bad=1)


def one_byte_changes(raw: RawClient, name: str) -> list[tuple[str, RawRequest]]:
    """The signed CreateSecurityPolicy with one signed byte changed, each way the wire allows."""
    signed = raw.sign("CreateSecurityPolicy", encryption_policy(name))
    body = signed.body
    at = body.index(name.encode()) + len(name) - 1  # the name's last character
    flip = bytes([body[at] ^ 0x01])
    date = signed.header("X-Amz-Date")
    later = date[:-3] + f"{(int(date[-3:-1]) + 1) % 60:02d}Z"  # another second, same minute
    host = signed.header("Host")
    noted = raw.sign("CreateSecurityPolicy", encryption_policy(name), extra={"X-Note": "abc"})
    return [
        ("body-name", signed.with_body(body[:at] + flip + body[at + 1:])),
        ("body-first", signed.with_body(b" " + body[1:])),
        ("body-last", signed.with_body(body[:-1] + b" ")),
        ("body-appended", signed.with_body(body + b" ")),
        ("target-other-operation", signed.with_header(
            "X-Amz-Target", "OpenSearchServerless.CreateSecurityConfig")),
        ("content-type-case", signed.with_header("Content-Type", "Application/x-amz-json-1.0")),
        ("amz-date", signed.with_header("X-Amz-Date", later)),
        ("host", signed.with_header("Host", host[:-1] + str((int(host[-1]) + 1) % 10))),
        ("signed-extra-header", noted.with_header("X-Note", "abd")),
    ]


def test_s5_any_signed_byte_changed_is_invalid_signature(raw: RawClient, ledger) -> None:
    name = "s5-" + uuid.uuid4().hex[:8]
    responses = []
    for label, request in one_byte_changes(raw, name):
        response = raw.refused(request, "InvalidSignatureException", message=MISMATCH)
        responses.append(response)
    # A one-byte change that names no operation is refused before authentication (routing).
    signed = raw.sign("CreateSecurityPolicy", encryption_policy(name))
    target = signed.header("X-Amz-Target")
    responses.append(raw.refused(signed.with_header("X-Amz-Target", target[:-1] + "z"),
                                 "UnknownOperationException", status=400))
    assert not policy_exists(raw, name)
    # Control: the same request unchanged is accepted (so the refusals above are the change's).
    assert raw.send(raw.sign("CreateSecurityPolicy", encryption_policy(name))).status == 200
    assert policy_exists(raw, name)
    raw.book(ledger, "S5", responses, bad=len(responses))


# --------------------------------------------------------------------------- S7, S8


def test_s7_credential_scope_errors(raw: RawClient, ledger) -> None:
    signed = raw.sign("ListCollections")
    day = signed.header("X-Amz-Date")[:8]
    yesterday = (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    cases = [
        (with_authorization(signed, f"/{day}/", f"/{yesterday}/"),
         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date"),
        (raw.sign("ListCollections", region="moon"),
         "Credential should be scoped to a valid region, not 'moon'."),
        (raw.sign("ListCollections", region="US-EAST-1"),
         "Credential should be scoped to a valid region, not 'US-EAST-1'."),
        (raw.sign("ListCollections", service="es"),
         "Credential should be scoped to correct service: 'aoss'."),
        (raw.sign("ListCollections", service="AOSS"),
         "Credential should be scoped to correct service: 'aoss'."),
        (with_authorization(signed, "/aws4_request", "/aws4_requesT"),
         "Credential should be scoped with a valid terminator: 'aws4_request'"),
    ]
    responses = [raw.refused(request, "InvalidSignatureException", message=message)
                 for request, message in cases]
    raw.book(ledger, "S7", responses, bad=len(responses))


def test_s8_unsigned_host_absent_signed_header_no_date(raw: RawClient, ledger) -> None:
    signed = raw.sign("ListCollections")
    headers_list = signed.header("Authorization").split("SignedHeaders=", 1)[1].split(",")[0]
    without_host = ";".join(h for h in headers_list.split(";") if h != "host")
    cases = [
        (with_authorization(signed, f"SignedHeaders={headers_list}",
                            f"SignedHeaders={without_host}"),
         "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        (raw.sign("ListCollections", extra={"X-Note": "signed"}).without("X-Note"),
         "Signed header 'x-note' is not present in the request."),
        (signed.without("X-Amz-Date"),
         "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."),
    ]
    responses = [raw.refused(request, "IncompleteSignatureException", message=message)
                 for request, message in cases]
    raw.book(ledger, "S8", responses, bad=len(responses))


# --------------------------------------------------------------------------- S9 (token), S13


def user_with_key(raw: RawClient, *policies: tuple[str, str]) -> tuple[str, tuple[str, str]]:
    iam = raw.server.client("iam")
    name = "rel-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    for policy_name, document in policies:
        iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (key["AccessKeyId"], key["SecretAccessKey"])


def assumed_role_credentials(raw: RawClient) -> tuple[str, str, str]:
    """An AssumeRole session of an IAM user (roles trust the account; root may not assume)."""
    iam = raw.server.client("iam")
    account = raw.server.client("sts").get_caller_identity()["Account"]
    role_name = "rel-role-" + uuid.uuid4().hex[:6]
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName=role_name, PolicyName="aoss", PolicyDocument=ALLOW_AOSS)
    _, key = user_with_key(raw, ("assume", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}]})))
    sts = raw.server.client("sts", key=key)
    issued = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s9",
                             DurationSeconds=SESSION_SECONDS)["Credentials"]
    return issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]


def test_s9_session_token_checks(raw: RawClient, ledger) -> None:
    role = assumed_role_credentials(raw)
    issued = raw.server.client("sts").get_session_token(
        DurationSeconds=SESSION_SECONDS)["Credentials"]
    other = (issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
    # Controls: both sessions work as issued.
    assert raw.send(raw.sign("ListCollections", key=role)).status == 200
    assert raw.send(raw.sign("ListCollections", key=other)).status == 200

    changed_char = role[2][:-5] + ("A" if role[2][-5] != "A" else "B") + role[2][-4:]
    signed = raw.sign("ListCollections", key=role)
    cases = [
        raw.sign("ListCollections", key=(role[0], role[1], changed_char)),  # signed as changed
        signed.with_header("X-Amz-Security-Token", changed_char),  # changed after signing
        raw.sign("ListCollections", key=(role[0], role[1], other[2])),  # another key's token
        raw.sign("ListCollections", key=(role[0], role[1])),  # temporary key, no token
        raw.sign("ListCollections", key=(*raw.server.credentials(), role[2])),  # long-term + token
    ]
    responses = [raw.refused(r, "UnrecognizedClientException", message=INVALID_TOKEN)
                 for r in cases]
    # Removed after signing, the token is a signed header gone missing (as in S8).
    responses.append(raw.refused(signed.without("X-Amz-Security-Token"),
                                 "IncompleteSignatureException",
                                 message="Signed header 'x-amz-security-token' is not present"))
    raw.book(ledger, "S9", responses, bad=len(responses))


def test_s13_deactivated_or_deleted_key_is_refused_from_the_next_request(raw: RawClient,
                                                                         ledger) -> None:
    name, key = user_with_key(raw, ("aoss", ALLOW_AOSS))
    iam = raw.server.client("iam")
    responses = [raw.send(raw.sign("ListCollections", key=key))]
    assert responses[-1].status == 200
    iam.update_access_key(UserName=name, AccessKeyId=key[0], Status="Inactive")
    responses.append(raw.refused(raw.sign("ListCollections", key=key),
                                 "UnrecognizedClientException", message=INVALID_TOKEN))
    iam.update_access_key(UserName=name, AccessKeyId=key[0], Status="Active")
    responses.append(raw.send(raw.sign("ListCollections", key=key)))
    assert responses[-1].status == 200
    iam.delete_access_key(UserName=name, AccessKeyId=key[0])
    responses.append(raw.refused(raw.sign("ListCollections", key=key),
                                 "UnrecognizedClientException", message=INVALID_TOKEN))
    raw.book(ledger, "S13", responses, bad=2)


# --------------------------------------------------------------------------- S10 – S12


def test_s10_replay_inside_the_window_is_accepted_and_recorded_twice(raw: RawClient,
                                                                    ledger) -> None:
    name = "s10-" + uuid.uuid4().hex[:8]
    create = raw.sign("CreateSecurityPolicy", encryption_policy(name))
    listing = raw.sign("ListCollections")
    # A replay sends the same signed bytes; only the unsigned User-Agent (its tid) differs.
    sent = [create, create.retagged(), listing, listing.retagged()]
    responses = [raw.send(request) for request in sent]
    assert [r.status for r in responses] == [200] * 4, [r.body for r in responses]
    assert responses[0].json() == responses[1].json()  # clientToken: idempotent, same answer
    assert sent[0].header("Authorization") == sent[1].header("Authorization")
    ids = {r.request_id for r in responses}
    records = [r for r in stored_records(raw.server) if r.get("requestID") in ids]
    assert len(records) == 4
    assert len({r["eventID"] for r in records}) == 4
    raw.book(ledger, "S10", responses, bad=0)


def test_s11_two_authorizations_are_refused(raw: RawClient, ledger) -> None:
    valid = raw.sign("ListCollections")
    wrong = raw.sign("ListCollections", key=(raw.server.credentials()[0], "x" * 40))
    presigned_query = ("/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                       + valid.header("Authorization").split("Credential=")[1].split(",")[0]
                       + "&X-Amz-Date=" + valid.header("X-Amz-Date")
                       + "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64)
    cases = [
        (valid.adding("Authorization", valid.header("Authorization")), "Only one Authorization"),
        (valid.adding("Authorization", wrong.header("Authorization")), "Only one Authorization"),
        (replace(valid, headers=(("Authorization", wrong.header("Authorization")),
                                 *valid.headers)), "Only one Authorization"),
        (replace(valid, path=presigned_query), "Only one auth mechanism allowed"),
    ]
    responses = [raw.refused(request, "IncompleteSignatureException", message=message)
                 for request, message in cases]
    raw.book(ledger, "S11", responses, bad=len(responses))


def test_s12_signature_must_be_lowercase_64_hex(raw: RawClient, ledger) -> None:
    signed = raw.sign("ListCollections")
    good = signature_of(signed)
    variants = [good.upper(), good[:-1], good + "0", good[:-1] + "g", good[:32]]
    if good == good.upper():  # pragma: no cover - a signature of digits only
        variants.pop(0)
    responses = [raw.refused(with_authorization(signed, f"Signature={good}", f"Signature={bad}"),
                             "InvalidSignatureException", message=MISMATCH) for bad in variants]
    raw.book(ledger, "S12", responses, bad=len(responses))


# --------------------------------------------------------------------------- S15


def test_s15_signatures_are_compared_in_constant_time(ledger) -> None:
    """The verifier compares with hmac.compare_digest, for good and bad signatures alike."""
    source = inspect.getsource(sigv4._verify_parsed)
    assert "hmac.compare_digest(expected" in source
    assert "expected ==" not in source and "== expected" not in source
    key = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    request = AWSRequest(method="POST", url="http://127.0.0.1:4680/", data=b"{}",
                         headers={"Content-Type": "application/x-amz-json-1.0",
                                  "X-Amz-Target": "OpenSearchServerless.ListCollections"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        SigV4Auth(Credentials(*key), "aoss", "us-east-1").add_auth(request)
    http = to_http(request.prepare())
    lookup = {key[0]: sigv4.StaticCredential(*key)}.get
    provided = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    with mock.patch.object(sigv4.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        sigv4.verify(http, lookup=lookup, now=now, service="aoss")
        assert any(call.args[1] == provided.encode() for call in spy.call_args_list)
        spy.reset_mock()
        tampered = replace(http, body=b"{ }")
        with pytest.raises(sigv4.SigV4Error):
            sigv4.verify(tampered, lookup=lookup, now=now, service="aoss")
        assert spy.called
    ledger.add("S15", calls_made=2, bad_inputs=1)


# --------------------------------------------------------------------------- S6, S9, S10 in time


def frozen_env(library: str, at: datetime) -> dict[str, str]:
    """The server's wall clock stands still at ``at``; its monotonic clock (timers) runs."""
    return {"LD_PRELOAD": library, "FAKETIME": at.strftime("%Y-%m-%d %H:%M:%S"),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "TZ": "UTC"}


@dataclass
class Timeline:
    """A server restarted with its clock moved on by 901 s past a 900 s session's issue."""

    raw: RawClient
    now: datetime  # the server's (frozen) time now
    session: tuple[str, str, str]  # issued SESSION_SECONDS + 1 s ago
    replay: RawRequest  # accepted when issued, signed then


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):  # type: ignore[no-untyped-def]
    library = faketime_library()
    data_dir = tmp_path_factory.mktemp("sigv4-time") / "data"
    issued_at = datetime.now(timezone.utc).replace(microsecond=0)
    server = ServerProcess(data_dir, env=frozen_env(library, issued_at))
    try:
        raw = RawClient(server.start())
        # boto3 signs at the real time, a few seconds past the frozen one: inside the window.
        issued = server.client("sts").get_session_token(
            DurationSeconds=SESSION_SECONDS)["Credentials"]
        session = (issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
        replay = raw.sign("ListCollections", when=issued_at)
        assert raw.send(replay).status == 200
        assert raw.send(raw.sign("ListCollections", key=session, when=issued_at)).status == 200
        server.stop()
        later = issued_at + timedelta(seconds=SESSION_SECONDS + 1)
        server.env = frozen_env(library, later)
        server.start()
        yield Timeline(raw, later, session, replay)
    finally:
        server.stop()


def test_s6_clock_skew_window_is_exact(timeline: Timeline, ledger) -> None:
    raw, now = timeline.raw, timeline.now
    second = timedelta(seconds=1)
    accepted = [raw.send(raw.sign("ListCollections", when=now + offset))
                for offset in (-(SKEW - second), -SKEW, SKEW - second, SKEW, timedelta(0))]
    assert [r.status for r in accepted] == [200] * len(accepted), [r.body for r in accepted]
    past = raw.refused(raw.sign("ListCollections", when=now - SKEW - second),
                       "InvalidSignatureException")
    future = raw.refused(raw.sign("ListCollections", when=now + SKEW + second),
                         "InvalidSignatureException")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    assert past.json()["message"] == (
        f"Signature expired: {(now - SKEW - second):%Y%m%dT%H%M%SZ} is now earlier than "
        f"{(now - SKEW):%Y%m%dT%H%M%SZ} ({stamp} - 5 min.)")
    assert future.json()["message"] == (
        f"Signature not yet current: {(now + SKEW + second):%Y%m%dT%H%M%SZ} is still later "
        f"than {(now + SKEW):%Y%m%dT%H%M%SZ} ({stamp} + 5 min.)")
    responses = [*accepted, past, future]
    raw.book(ledger, "S6", responses, bad=2)


def test_s9_expired_session_token(timeline: Timeline, ledger) -> None:
    raw = timeline.raw
    response = raw.refused(raw.sign("ListCollections", key=timeline.session, when=timeline.now),
                           "ExpiredTokenException",
                           message="The security token included in the request is expired")
    raw.book(ledger, "S9", [response], bad=1)


def test_s9_expired_session_token_on_sts_is_expired_token(timeline: Timeline, ledger) -> None:
    """The query protocol's common code, as IAM answers it: STS models ExpiredTokenException
    for web identity tokens, and that modelled code used to win for expired credentials."""
    raw = timeline.raw
    request = raw.sign("GetCallerIdentity", key=timeline.session, when=timeline.now,
                       service="sts", target="", content_type="application/x-www-form-urlencoded",
                       body=b"Action=GetCallerIdentity&Version=2011-06-15")
    response = raw.send(request.encode())  # an XML refusal: no Op, as the checker reads JSON
    assert response.status == 403, response.body
    assert b"<Code>ExpiredToken</Code>" in response.body, response.body
    assert b"The security token included in the request is expired" in response.body
    raw.book(ledger, "S9", [response], bad=1)


def test_s10_replay_after_the_window_is_expired(timeline: Timeline, ledger) -> None:
    raw = timeline.raw
    response = raw.refused(timeline.replay, "InvalidSignatureException",
                           message="Signature expired: ")
    raw.book(ledger, "S10", [response], bad=1)
