"""What operators rely on: group commit under concurrency, source IPs, metrics, secret-free logs."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_concurrent_calls_share_commits_and_each_has_one_record(server) -> None:
    before = get_json(server.endpoint + "/_searchtrail/health")["commits"]
    aoss = server.client("opensearchserverless", region="sa-east-1")

    def call(_: int) -> str:
        return aoss.list_collections()["ResponseMetadata"]["RequestId"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        request_ids = list(pool.map(call, range(400)))
    commits = get_json(server.endpoint + "/_searchtrail/health")["commits"] - before
    assert commits < 400  # concurrent calls were answered from shared commits

    cloudtrail = server.client("cloudtrail", region="sa-east-1")
    recorded, token = [], None
    for _ in range(20):
        page = cloudtrail.lookup_events(MaxResults=50, LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}],
            **({"NextToken": token} if token else {}))
        recorded.extend(json.loads(e["CloudTrailEvent"])["requestID"] for e in page["Events"])
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(recorded) == sorted(request_ids)


def test_failed_authentication_is_logged_and_counted_without_secrets(server) -> None:
    key_id, secret = server.credentials()
    with pytest.raises(ClientError):
        server.client("opensearchserverless", key=(key_id, "z" * 40)).list_collections()
    metrics = server.metrics()
    assert 'searchtrail_rejected_requests_total{error_code="InvalidSignatureException"}' in metrics
    log_lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    refused = [line for line in log_lines if line.get("code") == "InvalidSignatureException"]
    assert refused and refused[-1]["request_id"]
    assert secret not in server.log()
    assert "z" * 40 not in server.log()


def _forwarded_call(server, forwarded_for: str) -> dict:  # type: ignore[no-untyped-def]
    aoss = server.client("opensearchserverless")

    def add_header(request, **_):  # type: ignore[no-untyped-def]
        request.headers["X-Forwarded-For"] = forwarded_for

    aoss.meta.events.register("before-sign.opensearchserverless.ListCollections", add_header)
    request_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    events = server.client("cloudtrail").lookup_events(MaxResults=50, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])["Events"]
    return next(json.loads(e["CloudTrailEvent"]) for e in events
                if json.loads(e["CloudTrailEvent"])["requestID"] == request_id)


def test_forwarded_headers_are_ignored_from_untrusted_peers(server) -> None:
    assert _forwarded_call(server, "203.0.113.9")["sourceIPAddress"] == "127.0.0.1"


def test_forwarded_headers_are_used_from_trusted_proxies(fresh_server: ServerProcess) -> None:
    fresh_server.env["SEARCHTRAIL_TRUSTED_PROXIES"] = "127.0.0.1,10.0.0.7"
    fresh_server.start()
    record = _forwarded_call(fresh_server, "203.0.113.9, 10.0.0.7")
    assert record["sourceIPAddress"] == "203.0.113.9"
