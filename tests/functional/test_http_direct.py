"""The HTTP protocol's direct path for `POST /` (gateway/direct.py), over raw sockets:
keep-alive, pipelining (also mixed with ASGI requests), HTTP/1.0 and `Connection: close`,
bodies arriving in pieces, and the requests it leaves to the ASGI path."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.functional.server import ServerProcess
from tests.reliability.rawhttp import RawConnection, RawRequest, sign


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    process = ServerProcess(tmp_path_factory.mktemp("direct") / "data")
    try:
        yield process.start()
    finally:
        process.stop()


def signed(server: ServerProcess, operation: str = "ListCollections", **options) -> RawRequest:
    return sign(server.port, server.credentials(), operation=operation, **options)


def health(server: ServerProcess) -> RawRequest:
    return RawRequest("GET", "/_searchtrail/health", (("Host", f"127.0.0.1:{server.port}"),))


def test_keep_alive_serves_many_calls_on_one_connection(server: ServerProcess) -> None:
    with RawConnection(server.port) as connection:
        ids = set()
        for _ in range(5):
            connection.send(signed(server).encode())
            response = connection.response()
            assert response.status == 200, response.body
            assert response.json() == {"collectionSummaries": []}
            assert response.header("Content-Type") == "application/x-amz-json-1.0"
            ids.add(response.request_id)
        assert len(ids) == 5 and None not in ids
        assert not connection.closed_by_server(within=0.2)


def test_pipelined_calls_and_asgi_requests_are_answered_in_order(server: ServerProcess) -> None:
    batch = [signed(server), health(server), signed(server, "ListSecurityPolicies",
                                                     body=b'{"type":"encryption"}'),
             signed(server, "NoSuchOperation"), health(server)]
    with RawConnection(server.port) as connection:
        connection.send(b"".join(request.encode() for request in batch))
        responses = [connection.response() for _ in batch]
    assert [r.status for r in responses] == [200, 200, 200, 400, 200]
    assert "collectionSummaries" in responses[0].json()
    assert responses[1].json()["status"] == "ok"
    assert "securityPolicySummaries" in responses[2].json()
    assert responses[3].error == (400, "UnknownOperationException")


@pytest.mark.parametrize("how", ["http/1.0", "connection: close"])
def test_a_call_that_asks_for_close_is_answered_then_closed(server: ServerProcess,
                                                             how: str) -> None:
    request = signed(server)
    data = request.with_header("Connection", "close").encode() if how == "connection: close" \
        else request.encode().replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
    with RawConnection(server.port) as connection:
        connection.send(data)
        response = connection.response()
        assert response.status == 200, response.body
        assert response.header("Connection") == "close"
        assert connection.closed_by_server()


def test_a_body_sent_in_pieces_is_read_whole(server: ServerProcess) -> None:
    body = b'{"collectionFilters": {"status": "ACTIVE"}, "maxResults": 10}'
    data = signed(server, body=body).encode()
    head_end = data.index(b"\r\n\r\n") + 4
    with RawConnection(server.port) as connection:
        for start in range(0, head_end, 40):  # the head, then the body, a few bytes at a time
            connection.send(data[start:min(start + 40, head_end)])
        for start in range(head_end, len(data), 7):
            connection.send(data[start:start + 7])
        response = connection.response()
    assert response.status == 200, response.body
    assert response.json() == {"collectionSummaries": []}


def test_expect_continue_and_query_strings_take_the_asgi_path(server: ServerProcess) -> None:
    with RawConnection(server.port) as connection:
        request = signed(server, extra={"Expect": "100-continue"})
        head, _, body = request.encode().partition(b"\r\n\r\n")
        connection.send(head + b"\r\n\r\n")
        interim = connection.sock.recv(1024)  # a 100 has no body: read its head alone
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        connection.send(body)
        response = connection.response()
        assert response.status == 200, response.body
        assert "collectionSummaries" in response.json()

    query = signed(server)
    query = RawRequest(query.method, "/?unused=1", query.headers, query.body, query.tid)
    with RawConnection(server.port) as connection:
        connection.send(query.encode())
        response = connection.response()
    # the query string is part of what was signed: botocore signed none
    assert response.error == (403, "InvalidSignatureException")


BROKEN_CHUNKED = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\n")  # a chunk size that is not hexadecimal


@pytest.mark.parametrize("after", ["garbage", "a broken chunked request"])
@pytest.mark.parametrize("valid", [1, 2])
def test_requests_before_bytes_the_parser_refuses_are_answered_first(
        server: ServerProcess, valid: int, after: str) -> None:
    """Requests ahead of malformed bytes on a connection may already have run (and been
    recorded): each gets its answer, then the 400, then the connection closes. The first
    answer used to be dropped when the 400 went out at once."""
    name = "pipe-" + uuid.uuid4().hex[:8]
    policy = json.dumps({"Rules": [{"ResourceType": "collection",
                                    "Resource": [f"collection/{name}*"]}], "AWSOwnedKey": True})
    create = signed(server, "CreateSecurityPolicy", body=json.dumps(
        {"name": name, "type": "encryption", "policy": policy}).encode())
    requests = [create] + [signed(server)] * (valid - 1)
    bad = b"GARBAGE\r\n\r\n" if after == "garbage" else BROKEN_CHUNKED
    with RawConnection(server.port) as connection:
        connection.send(b"".join(request.encode() for request in requests) + bad)
        answers = [connection.response() for _ in range(valid + 1)]
        assert connection.closed_by_server()
    assert [a.status for a in answers[:valid]] == [200] * valid, answers[0].body
    assert answers[0].json()["securityPolicyDetail"]["name"] == name
    assert answers[-1].error == (400, "SerializationException")
    assert answers[-1].header("Connection") == "close"


def test_calls_queued_behind_a_client_that_left_end_quietly(server: ServerProcess) -> None:
    """Pipelined calls still queued when their client closes run (they arrived whole) but
    have no one to answer: each raised 'unable to perform operation on <TCPTransport
    closed=True>' into the log as an unretrieved task exception."""
    before = server.log().count("Traceback")
    batch = b"".join(signed(server).encode() for _ in range(200))
    for _ in range(3):
        with RawConnection(server.port) as connection:
            connection.send(batch)
    with RawConnection(server.port) as connection:  # served on: and after the queues drained
        for _ in range(100):
            connection.send(signed(server).encode())
            assert connection.response().status == 200
    log = server.log()
    assert log.count("Traceback") == before, log[-3000:]
    assert "closed=True" not in log
