"""Malformed and hostile requests P1–P8 over raw sockets: always a 4xx with an AWS `__type`
(framing errors: a 400 and a closed connection), never a 5xx; one record per authenticated
call, none otherwise; the server's memory stays bounded."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from tests.functional.server import ServerProcess
from tests.reliability.checkers import stored_records
from tests.reliability.rawhttp import (AOSS_JSON, RawClient, RawConnection, RawRequest,
                                       RawResponse, counters)

pytestmark = pytest.mark.reliability

MIB = 1024 * 1024
LIMIT = MIB  # the server's default SEARCHTRAIL_MAX_BODY_BYTES
STALL_LIMIT_SECONDS = 30.0  # plan §3.7: a body that never completes is answered within this
RSS_GROWTH_LIMIT = 50 * MIB
STARTED_RSS: dict[str, int] = {}


def rss_bytes(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def raw(tmp_path_factory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("bad-input") / "data")
    try:
        client = RawClient(server.start())
        client.send(client.sign("ListCollections"))  # warm: first-call imports are no growth
        STARTED_RSS["bytes"] = rss_bytes(server)
        yield client
    finally:
        server.stop()


def untracked(request: RawRequest) -> bytes:
    """The bytes of a request whose refusal code the store checker does not know as unrecorded:
    sent without an Op, any record of its tid would count as a phantom."""
    return request.encode()


# --------------------------------------------------------------------------- P1 bodies


def stalled_body(port: int, request: RawRequest, result: dict) -> None:
    """Declare 100 bytes more than are sent, then wait for the server's answer."""
    with RawConnection(port, timeout=STALL_LIMIT_SECONDS + 10) as connection:
        connection.send(request.with_header("Content-Length", str(len(request.body) + 100))
                        .encode())
        try:
            result["response"] = connection.response()
        except (TimeoutError, ConnectionError) as exc:
            result["error"] = exc


def big_body(port: int, request: RawRequest, size: int) -> RawResponse:
    """Send a ``size``-byte body in 1 MiB pieces and read the answer."""
    with RawConnection(port, timeout=60) as connection:
        head = request.with_header("Content-Length", str(size)).encode()[:-len(request.body)]
        connection.send(head)
        piece = b" " * MIB
        for start in range(0, size, MIB):
            connection.send(piece[:min(MIB, size - start)])
        return connection.response()


def test_p1_body_limits_and_framing(raw: RawClient, ledger, profile) -> None:
    port = raw.port
    before = counters(port)
    stall: dict = {}
    staller = threading.Thread(target=stalled_body,
                               args=(port, raw.sign("ListCollections"), stall))
    staller.start()  # runs beside the cases below; its answer is due within 30 s
    responses = []

    exact = b'{"pad":"' + b"a" * (LIMIT - 10) + b'"}'
    assert len(exact) == LIMIT
    responses.append(raw.send(raw.sign("ListCollections", exact)))
    assert responses[-1].status == 200, responses[-1].body[:200]  # the limit itself is allowed

    over = raw.sign("ListCollections", exact + b" ")
    responses.append(raw.send(over))
    assert responses[-1].error == (413, "RequestEntityTooLargeException")

    # Far over the limit: refused from the declared length, before any body byte is sent.
    huge = raw.sign("ListCollections").with_header("Content-Length", str(64 * MIB))
    with RawConnection(port) as connection:
        connection.send(huge.encode()[:-len(huge.body)])
        responses.append(connection.response())
    assert responses[-1].error == (413, "RequestEntityTooLargeException")

    # Chunked, no Content-Length: read and verified like any body; over the limit a 413.
    chunked = raw.sign("ListCollections").without("Content-Length").adding(
        "Transfer-Encoding", "chunked")
    responses.append(raw.send(replace(chunked, body=b"1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")))
    assert responses[-1].status == 200, responses[-1].body
    piece = b"%x\r\n%s\r\n" % (MIB // 2, b" " * (MIB // 2))
    responses.append(raw.send(replace(chunked, body=piece * 3 + b"0\r\n\r\n")))
    assert responses[-1].error == (413, "RequestEntityTooLargeException")

    # Content-Length smaller than the body: the rest is a broken next request.
    with RawConnection(port) as connection:
        connection.send(raw.sign("ListCollections").with_header("Content-Length", "1").encode())
        first = connection.response()
        responses.append(first)
        assert 400 <= first.status < 500
        assert connection.closed_by_server()

    concurrent = profile.pick(ci=20, full=100)
    size = 10 * MIB
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        bigs = list(pool.map(lambda _: big_body(port, raw.sign("ListCollections"), size),
                             range(concurrent)))
    big_seconds = time.monotonic() - started
    assert [r.error for r in bigs] == [(413, "RequestEntityTooLargeException")] * concurrent
    responses += bigs

    staller.join(timeout=STALL_LIMIT_SECONDS + 15)
    assert "response" in stall, f"no answer to a stalled body: {stall.get('error')!r}"
    stalled = stall["response"]
    responses.append(stalled)
    assert stalled.error == (408, "RequestTimeoutException")
    assert stalled.seconds <= STALL_LIMIT_SECONDS
    assert counters(port).rejected_since(before, "RequestTimeoutException") == 1
    ledger.note("P1", stalled_body_answer_seconds=round(stalled.seconds, 1),
                concurrent_big_bodies=concurrent, big_body_mib=size // MIB,
                big_bodies_seconds=round(big_seconds, 1))
    raw.book(ledger, "P1", responses, bad=len(responses) - 2)


def test_p1_oversized_bodies_are_counted_as_refused(raw: RawClient) -> None:
    before = counters(raw.port)
    over = raw.sign("ListCollections", b" " * (LIMIT + 1))
    assert raw.send(over).error == (413, "RequestEntityTooLargeException")
    assert counters(raw.port).rejected_since(before, "RequestEntityTooLargeException") == 1


# --------------------------------------------------------------------------- P2 JSON


MALFORMED_JSON = {
    "unterminated": b"{",
    "array": b"[]",
    "null": b"null",
    "string": b'"x"',
    "number": b"17",
    "trailing-garbage": b'{"maxResults": 5} x',
    "two-documents": b"{}{}",
    "duplicate-keys": b'{"maxResults": 5, "maxResults": 6}',
    "nested-duplicate-keys": b'{"collectionFilters": {"name": "a", "name": "b"}}',
    "deep-arrays": b"[" * 10_000 + b"]" * 10_000,
    "deep-objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    # Deeper than a record can hold (orjson writes 254 levels back out), in an unknown member
    "deep-unknown-member": b'{"x":' + b"[" * 300 + b"]" * 300 + b"}",
    "101-levels": b'{"x":' + b"[" * 100 + b"]" * 100 + b"}",
    "huge-exponent": b'{"maxResults": 1e999999}',
    "nan": b'{"maxResults": NaN}',
    "infinity": b'{"maxResults": Infinity}',
    "minus-infinity": b'{"maxResults": -Infinity}',
    "lone-surrogate": b'{"nextToken": "\\ud800"}',
    "lone-low-surrogate": b'{"nextToken": "\\udc00x"}',
    "invalid-utf8": b'{"nextToken": "\xff\xfe"}',
    "overlong-utf8": b'{"nextToken": "\xc0\xaf"}',
    "encoded-surrogate": b'{"nextToken": "\xed\xa0\x80"}',
    "bom": b"\xef\xbb\xbf{}",
    "single-quotes": b"{'maxResults': 5}",
    "comment": b'{"maxResults": 5 /* c */}',
    "trailing-comma": b'{"maxResults": 5,}',
    "control-char": b'{"nextToken": "a\x01b"}',
}


def test_p2_malformed_json_is_a_recorded_serialization_error(raw: RawClient, ledger) -> None:
    responses = []
    for label, body in MALFORMED_JSON.items():
        response = raw.send(raw.sign("ListCollections", body))
        assert response.error == (400, "SerializationException"), (label, response.body[:200])
        responses.append(response)
    assert raw.send(raw.sign("ListCollections")).status == 200  # the worker survived
    raw.book(ledger, "P2", responses, bad=len(responses))


# --------------------------------------------------------------------------- P3, P4, P5 routing


TARGETS = {
    "missing": "",
    "unknown-operation": "OpenSearchServerless.NoSuchOperation",
    "other-service": "DynamoDB_20120810.ListTables",
    "lower-case": "opensearchserverless.listcollections",
    "operation-case": "OpenSearchServerless.listCollections",
    "no-prefix": "ListCollections",
    "empty-prefix": ".ListCollections",
    "cloudtrail-prefix": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListCollections",
    "trailing-dot": "OpenSearchServerless.ListCollections.",
}


def test_p3_every_bad_target_is_unknown_operation(raw: RawClient, ledger) -> None:
    responses = []
    for label, target in TARGETS.items():
        signed = raw.sign("ListCollections", target=target)
        for request in (signed, signed.without("Authorization")):
            response = raw.refused(request, "UnknownOperationException", status=400)
            assert response.json()["message"], label
            responses.append(response)
    raw.book(ledger, "P3", responses, bad=len(responses))


CONTENT_TYPES = {
    AOSS_JSON: 200,
    AOSS_JSON + "; charset=utf-8": 200,
    "Application/X-Amz-Json-1.0": 200,
    "application/json": 400,
    "application/x-amz-json-1.1": 400,
    "text/plain": 400,
    "": 400,
}
FORM = "application/x-www-form-urlencoded"


def test_p4_content_types_are_pinned(raw: RawClient, ledger) -> None:
    """Accepted: awsJson 1.0 in any case, with parameters. Other types are refused before
    authentication as UnknownOperationException, as for a missing target; a form goes to the
    query protocol (IAM, STS), which answers in XML that it names no action (MissingAction)."""
    responses = []
    for content_type, status in CONTENT_TYPES.items():
        request = raw.sign("ListCollections", content_type=content_type)
        if status == 200:
            response = raw.send(request)
            assert response.status == 200, (content_type, response.body)
        else:
            response = raw.refused(request, "UnknownOperationException", status=400)
        responses.append(response)
    before = counters(raw.port)
    form = raw.send(untracked(raw.sign("ListCollections", content_type=FORM)))
    assert form.status == 400 and b"<Code>MissingAction</Code>" in form.body, form.body
    assert counters(raw.port).rejected_since(before, "MissingAction") == 1
    responses.append(form)
    raw.book(ledger, "P4", responses, bad=len(responses) - 3)


def test_p5_other_methods_and_paths_are_4xx(raw: RawClient, ledger) -> None:
    host = (("Host", f"127.0.0.1:{raw.port}"), ("Content-Length", "0"))
    signed = raw.sign("ListCollections")
    cases = [RawRequest(method, "/", host) for method in ("PUT", "DELETE", "OPTIONS", "PATCH")]
    cases += [RawRequest("POST", path, host) for path in ("/x", "//", "/_searchtrail", "/%2F")]
    cases += [replace(signed, path="/x"), replace(signed, method="PUT")]
    responses = []
    for request in cases:
        response = raw.send(request.encode())
        assert response.error == (404, "UnknownOperationException"), (request.method,
                                                                       request.path)
        responses.append(response)
    for method in ("GET", "HEAD"):  # the web console's front door
        response = raw.send(RawRequest(method, "/", host).encode())
        assert response.status == 303 and response.header("Location") == "/console/"
        responses.append(response)
    raw.book(ledger, "P5", responses, bad=len(cases))


# --------------------------------------------------------------------------- P6 Unicode


FREE_TEXT = {
    "emoji": "search 🦄🔍 and 👩‍💻",
    "right-to-left": "שלום مرحبا \u202eevil\u202c",
    "combining": "Cafe\u0301 n\u0303 a\u030a",  # must not be normalised to é ñ å
    "nul": "before\u0000after",
    "controls": "tab\tnewline\ncr\r\u2028\u2029",
    "private-use": "\ue000\U000f0000",
    "noncharacter": "\ufdd0\uffff",
    "escapes": "quote \" backslash \\ slash /",
}


def test_p6_unicode_round_trips_byte_exactly(raw: RawClient, ledger) -> None:
    responses = []
    name = "uni-" + uuid.uuid4().hex[:8]
    policy = json.dumps({"Rules": [{"ResourceType": "collection",
                                    "Resource": [f"collection/{name}*"]}], "AWSOwnedKey": True})
    created = raw.send(raw.sign("CreateSecurityPolicy", json.dumps(
        {"name": name, "type": "encryption", "policy": policy,
         "description": FREE_TEXT["emoji"]}).encode()))
    assert created.status == 200, created.body
    responses.append(created)
    for index, (label, text) in enumerate(FREE_TEXT.items()):
        collection = f"{name}-{index}"
        body = json.dumps({"name": collection, "description": text,
                           "tags": [{"key": text[:128], "value": text[:256]}]},
                          ensure_ascii=index % 2 == 0).encode()  # escaped and raw UTF-8 alike
        response = raw.send(raw.sign("CreateCollection", body))
        assert response.status == 200, (label, response.body)
        detail = response.json()["createCollectionDetail"]
        assert detail["description"].encode() == text.encode(), label
        read = raw.send(raw.sign("BatchGetCollection", json.dumps(
            {"ids": [detail["id"]]}).encode()))
        assert read.json()["collectionDetails"][0]["description"].encode() == text.encode()
        tags = raw.send(raw.sign("ListTagsForResource", json.dumps(
            {"resourceArn": detail["arn"]}).encode()))
        assert tags.json()["tags"] == [{"key": text[:128], "value": text[:256]}], label
        responses += [response, read, tags]
        record = next(r for r in stored_records(raw.server)
                      if r["requestID"] == response.request_id)
        assert record["requestParameters"]["description"].encode() == text.encode(), label
    escaped_surrogate = raw.send(raw.sign("CreateCollection", json.dumps(
        {"name": f"{name}-x", "description": "\ud800"}).encode()))  # json.dumps escapes it
    assert escaped_surrogate.error == (400, "SerializationException")
    responses.append(escaped_surrogate)
    raw.book(ledger, "P6", responses, bad=1)


# --------------------------------------------------------------------------- P7 validation


def collection_name_cases() -> dict[str, object]:
    return {"upper-case": "UPPER", "leading-digit": "1abc", "too-short": "ab", "too-long": "a" * 65,
            "space": "has space", "empty": "", "unicode": "naïve", "integer": 123, "boolean": True,
            "object": {}, "array": ["abc"], "null": None, "float": 1.5}


def test_p7_violations_are_recorded_validation_errors(raw: RawClient, ledger) -> None:
    responses = []
    for label, value in collection_name_cases().items():
        response = raw.send(raw.sign("CreateCollection", json.dumps({"name": value}).encode()))
        assert response.error == (400, "ValidationException"), (label, response.body[:200])
        assert response.json()["message"], label
        responses.append(response)
    others = {
        "enum": {"name": "okname", "type": "NOPE"},
        "list-of-100000": {"ids": ["abc"] * 100_000},
        "list-item-type": {"ids": [1, 2]},
        "null-list-item": {"ids": [None]},
        "empty-list": {"ids": []},
        "integer-overflow": {"maxResults": 2**31},
        "negative": {"maxResults": -1},
        "boolean-as-string": {"maxResults": "5"},
    }
    operations = {"enum": "CreateCollection", "list-of-100000": "BatchGetCollection",
                  "list-item-type": "BatchGetCollection", "null-list-item": "BatchGetCollection",
                  "empty-list": "BatchGetCollection"}
    for label, params in others.items():
        operation = operations.get(label, "ListSecurityPolicies")
        if operation == "ListSecurityPolicies":
            params = {**params, "type": "encryption"}
        response = raw.send(raw.sign(operation, json.dumps(params).encode()))
        assert response.error == (400, "ValidationException"), (label, response.body[:200])
        responses.append(response)
    # Unknown members are ignored, as AWS does (pinned).
    ignored = raw.send(raw.sign("ListCollections", b'{"noSuchMember": [1, {"x": null}]}'))
    assert ignored.status == 200
    responses.append(ignored)
    raw.book(ledger, "P7", responses, bad=len(responses) - 1)


# --------------------------------------------------------------------------- P8 headers


def test_p8_hostile_headers(raw: RawClient, ledger) -> None:
    signed = raw.sign("ListCollections")
    responses = []
    too_many = replace(signed, headers=signed.headers + tuple((f"X-Pad-{i}", "v")
                                                             for i in range(1000)))
    for request in (too_many, signed.adding("X-Big", "a" * 64 * 1024)):
        before = counters(raw.port)
        response = raw.send(untracked(request))
        assert response.error == (431, "RequestHeaderFieldsTooLargeException")
        after = counters(raw.port)
        assert after.rejected_since(before, "RequestHeaderFieldsTooLargeException") == 1
        responses.append(response)
    framing = {
        "duplicate-content-length": signed.adding("Content-Length", "2"),
        "conflicting-content-length": signed.adding("Content-Length", "3"),
        "te-and-cl": signed.adding("Transfer-Encoding", "chunked"),
        "te-and-cl-smuggle": replace(signed.adding("Transfer-Encoding", "chunked"),
                                     body=b"0\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "te-unknown": signed.adding("Transfer-Encoding", "gzip, chunked"),
        "negative-content-length": signed.with_header("Content-Length", "-1"),
        "content-length-overflow": signed.with_header("Content-Length", "9" * 30),
        "space-before-colon": replace(signed, headers=signed.headers + (("X-Amz-Date ", "x"),)),
        "bad-request-line": RawRequest("POST", "/ HTTP/1.1 junk", signed.headers, signed.body),
    }
    for label, request in framing.items():
        with RawConnection(raw.port) as connection:
            connection.send(request.encode())
            response = connection.response()
            assert response.status == 400, (label, response.status, response.body[:200])
            assert response.error[1] is not None, (label, response.body[:200])  # AWS-shaped
            assert connection.closed_by_server(), label
        responses.append(response)
    for label, head in (("endless-header", signed.encode().split(b"\r\n\r\n")[0]
                         + b"\r\nX-Endless: "),
                        ("endless-url", b"GET /?" + b"a" * 1024)):
        response = _streamed_head_refused(raw.port, head, label)
        assert response.error == (431, "RequestHeaderFieldsTooLargeException"), label
        responses.append(response)
    assert raw.send(raw.sign("ListCollections")).status == 200
    ledger.note("P8", framing_cases=len(framing),
                framing_errors_have_aws_type=all(r.error[1] for r in responses[2:]))
    raw.book(ledger, "P8", responses, bad=len(responses))


def _streamed_head_refused(port: int, head: bytes, label: str) -> RawResponse:
    """A head that never ends (a header value or a URL streamed 64 KiB at a time): the server
    answers 431 and closes while it still arrives, not after buffering all of it (it used to
    take one such request of 100 MB, 13 s of CPU and ~200 MB)."""
    piece = b"a" * 64 * 1024
    with RawConnection(port) as connection:
        connection.send(head)
        sent = len(head)
        for _ in range(64):  # at most 4 MiB
            try:
                connection.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        assert sent < 4 * 1024 * 1024, (label, "the server read 4 MiB of head")
        response = connection.response()
        assert connection.closed_by_server(), label
    return response


# --------------------------------------------------------------------------- memory


def test_p1_p8_server_memory_stays_bounded(raw: RawClient, ledger) -> None:
    """Runs last in this module: RSS growth over all the cases above."""
    growth = rss_bytes(raw.server) - STARTED_RSS["bytes"]
    ledger.note("P1", rss_growth_mib=round(growth / MIB, 1))
    assert growth <= RSS_GROWTH_LIMIT
