"""kill -9 right after a 200: the record of that call is there after restart; after a clean
stop the database file alone holds every commit."""

from __future__ import annotations

import json
import shutil
import sqlite3

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


def test_a_clean_stop_leaves_every_commit_in_the_database_file(fresh_server: ServerProcess,
                                                               tmp_path) -> None:
    """The write-ahead log is copied into the file at a clean stop: a copy of
    searchtrail.sqlite3 alone, taken after stopping, had none of the recent events, no trail
    and no secret (and a server started on it made a new installation without a word)."""
    fresh_server.start()
    aoss = fresh_server.client("opensearchserverless")
    for _ in range(30):
        aoss.list_collections()
    fresh_server.stop()
    wal = fresh_server.data_dir / "searchtrail.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(fresh_server.data_dir / "searchtrail.sqlite3", copy)
    store = sqlite3.connect(copy)
    try:
        (events,) = store.execute("SELECT count(*) FROM events WHERE record LIKE "
                                  "'%\"eventName\":\"ListCollections\"%'").fetchone()
        assert events == 30
    finally:
        store.close()
