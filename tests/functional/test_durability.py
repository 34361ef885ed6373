"""kill -9 right after a 200: the record of that call is there after restart."""

from __future__ import annotations

import json

from tests.functional.server import ServerProcess


def test_record_survives_kill_9_right_after_the_response(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    aoss = fresh_server.client("opensearchserverless")
    policy = json.dumps({"Rules": [{"ResourceType": "collection", "Resource": ["collection/k*"]}],
                         "AWSOwnedKey": True})
    response = aoss.create_security_policy(name="killed", type="encryption", policy=policy)
    request_id = response["ResponseMetadata"]["RequestId"]
    fresh_server.kill9()

    restarted = ServerProcess(fresh_server.data_dir, env=fresh_server.env).start()
    try:
        cloudtrail = restarted.client("cloudtrail")
        events = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateSecurityPolicy"}])["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        assert [r["requestID"] for r in records] == [request_id]
        # ...and the state change committed with it
        got = restarted.client("opensearchserverless").get_security_policy(name="killed",
                                                                           type="encryption")
        assert got["securityPolicyDetail"]["name"] == "killed"
    finally:
        restarted.stop()
