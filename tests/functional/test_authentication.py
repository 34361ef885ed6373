"""SigV4 at the socket: wrong secret, unknown key, expired or future timestamps; none is recorded."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def raw_call(server, *, key: tuple[str, str], when: datetime | None = None,  # type: ignore[no-untyped-def]
             target: str = "OpenSearchServerless.ListCollections", body: bytes = b"{}",
             content_type: str = "application/x-amz-json-1.0", sign: bool = True,
             signing_name: str = "aoss"):
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                         headers={"Content-Type": content_type, "X-Amz-Target": target})
    if sign:
        signer = SigV4Auth(Credentials(*key), signing_name, "us-east-1")
        # botocore reads its clock inside add_auth: give it the moment to sign at.
        with mock.patch("botocore.auth.get_current_datetime",
                        return_value=when or datetime.now(timezone.utc)):
            signer.add_auth(request)
    prepared = urllib.request.Request(request.url, data=body, method="POST",
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def error_of(response) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    import json

    status, headers, body = response
    payload = json.loads(body)
    assert headers["Content-Type"].startswith("application/x-amz-json")
    return status, payload["__type"], payload["message"]


@pytest.mark.parametrize("prefix", ["com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101",
                                    "CloudTrail_20131101"])
def test_cloudtrail_takes_both_target_forms(server, prefix) -> None:
    """botocore sends the long prefix; the JavaScript v3 and Go v2 SDKs send the Smithy
    service name alone. AWS answers both; the short one used to be an unknown operation."""
    import json

    assert raw_call(server, key=server.credentials())[0] == 200  # one event at least
    status, _, body = raw_call(server, key=server.credentials(), target=f"{prefix}.LookupEvents",
                               content_type="application/x-amz-json-1.1",
                               body=b'{"MaxResults": 1}', signing_name="cloudtrail")
    assert status == 200, body
    assert len(json.loads(body)["Events"]) == 1


def test_wrong_secret_is_invalid_signature(server) -> None:
    key_id, _ = server.credentials()
    with pytest.raises(ClientError) as error:
        server.client("opensearchserverless", key=(key_id, "x" * 40)).list_collections()
    assert error.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_unrecognized_client(server) -> None:
    with pytest.raises(ClientError) as error:
        server.client("opensearchserverless",
                      key=("AKIAUNKNOWNKEY000000", "x" * 40)).list_collections()
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(("offset", "wording"), [(timedelta(minutes=-6), "Signature expired"),
                                                 (timedelta(minutes=6), "Signature not yet current")])
def test_timestamps_outside_the_skew_window_are_refused(server, offset, wording) -> None:
    status, code, message = error_of(raw_call(server, key=server.credentials(),
                                              when=datetime.now(timezone.utc) + offset))
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(wording)


def test_timestamps_inside_the_window_are_accepted(server) -> None:
    status, _, _ = raw_call(server, key=server.credentials(),
                            when=datetime.now(timezone.utc) - timedelta(minutes=4))
    assert status == 200


def test_unsigned_request_is_missing_token(server) -> None:
    status, code, _ = error_of(raw_call(server, key=server.credentials(), sign=False))
    assert (status, code) == (403, "MissingAuthenticationTokenException")


def test_refused_requests_leave_no_record(server) -> None:
    cloudtrail = server.client("cloudtrail")
    before = cloudtrail.lookup_events(MaxResults=50)["Events"]
    with pytest.raises(ClientError):
        server.client("opensearchserverless",
                      key=(server.credentials()[0], "y" * 40)).list_collections()
    after = cloudtrail.lookup_events(MaxResults=50)["Events"]
    new = [e for e in after if e["EventId"] not in {b["EventId"] for b in before}]
    # only the second LookupEvents itself is new
    assert [e["EventName"] for e in new] == ["LookupEvents"]


def test_unknown_target_and_wrong_content_type_are_json_errors(server) -> None:
    status, code, _ = error_of(raw_call(server, key=server.credentials(),
                                        target="OpenSearchServerless.NoSuchThing"))
    assert (status, code) == (400, "UnknownOperationException")
    status, code, _ = error_of(raw_call(server, key=server.credentials(),
                                        content_type="text/plain"))
    assert (status, code) == (400, "UnknownOperationException")


def test_oversized_body_is_413(server) -> None:
    status, code, message = error_of(raw_call(server, key=server.credentials(),
                                              body=b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}'))
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert "at most" in message


def test_a_query_call_to_a_wrong_path_gets_an_error_its_client_can_read(server) -> None:
    # An endpoint URL with a stray path: IAM and STS clients parse XML, aoss JSON; each must
    # see an error code, not "Unable to parse response".
    import boto3

    access_key, secret = server.credentials()
    for service, call in (("sts", "get_caller_identity"), ("iam", "list_users"),
                          ("opensearchserverless", "list_collections")):
        client = boto3.client(service, region_name="us-east-1",
                              endpoint_url=server.endpoint + "/foo",
                              aws_access_key_id=access_key, aws_secret_access_key=secret)
        with pytest.raises(ClientError) as raised:
            getattr(client, call)()
        error = raised.value.response
        expected = ("UnknownOperationException" if service == "opensearchserverless"
                    else "InvalidAction")
        assert error["Error"]["Code"] == expected, (service, error)
        assert "POST /foo" in error["Error"]["Message"]
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_server_on_loopback_answers_browsers_only_under_a_loopback_name(server) -> None:
    """DNS rebinding: a web page that points its own name at 127.0.0.1 read /metrics (account
    ids in trail ARNs) and could drive the console's sign-in form."""
    import http.client

    def status(host: str, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host})
            answer = conn.getresponse()
            answer.read()
            return answer.status
        finally:
            conn.close()

    for path in ("/metrics", "/_searchtrail/health", "/console/signin"):
        assert status(f"rebind.attacker.example:{server.port}", path) == 421, path
        assert status(f"127.0.0.1.attacker.example:{server.port}", path) == 421, path
        for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "LOCALHOST",
                     f"app.localhost:{server.port}"):
            assert status(host, path) == 200, (host, path)
    # signed calls name their host in their signature: not a browser's to forge
    access_key, secret = server.credentials()
    import boto3
    from botocore.config import Config

    client = boto3.client("opensearchserverless", region_name="us-east-1",
                          endpoint_url=f"http://127.0.0.1:{server.port}",
                          aws_access_key_id=access_key, aws_secret_access_key=secret,
                          config=Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__(
        "Host", "searchtrail.internal"))
    assert client.list_collections()["collectionSummaries"] is not None


def test_behind_a_declared_proxy_the_public_name_is_answered(tmp_path) -> None:
    """A reverse proxy on the same host forwards the public Host: with --trusted-proxies set
    the loopback check would refuse every page it serves."""
    import http.client

    from tests.functional.server import ServerProcess

    proxied = ServerProcess(tmp_path / "data",
                            env={"SEARCHTRAIL_TRUSTED_PROXIES": "127.0.0.1"}).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxied.port, timeout=10)
        conn.request("GET", "/_searchtrail/health", headers={"Host": "audit.example.com"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proxied.stop()


def test_browser_paths_answer_json_not_html(server) -> None:
    try:
        urllib.request.urlopen(server.endpoint + "/nothing-here", timeout=5)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as error:
        assert error.code == 404
        assert error.headers["Content-Type"].startswith("application/x-amz-json")
    with urllib.request.urlopen(server.endpoint + "/_searchtrail/health", timeout=5) as response:
        import json

        health = json.loads(response.read())
    assert health["status"] == "ok"
    assert "keyChangeSignal" not in health  # a lone process on SQLite tells nobody
    assert health["synchronous"] == 2  # FULL
    assert health["journal_mode"] == "wal"
