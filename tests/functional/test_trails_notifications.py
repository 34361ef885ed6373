"""Webhook notifications: one per delivered log file; failures show in GetTrailStatus and are retried.

Also: a trail's event selectors decide which records its files carry.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.functional.server import ServerProcess
from tests.functional.trails import local_s3, read_bucket, searchtrail_cli, wait_for


class Webhook:
    """A loopback HTTP endpoint that refuses the first `failures` posts with a 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict] = []
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.refused < hook.failures:
                    hook.refused += 1
                    self.send_response(500)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_failures_surface_and_are_retried(tmp_path) -> None:
    hook = Webhook(failures=2)
    server = ServerProcess(tmp_path / "data", args=["--delivery-interval", "1"],
                           env={"SEARCHTRAIL_NOTIFICATION_WEBHOOKS": f"audit-topic={hook.url}"})
    try:
        server.start()
        assert searchtrail_cli("buckets", "create", "hooked", "--data-dir",
                               str(server.data_dir)).returncode == 0
        cloudtrail = server.client("cloudtrail")
        cloudtrail.create_trail(Name="hooked", S3BucketName="hooked", SnsTopicName="audit-topic")
        cloudtrail.start_logging(Name="hooked")
        server.client("opensearchserverless").list_collections()

        wait_for(lambda: cloudtrail.get_trail_status(Name="hooked").get("LatestNotificationError"),
                 seconds=30, what="the notification error in GetTrailStatus")
        failed = [json.loads(line) for line in server.log().splitlines()
                  if '"notification failed"' in line]
        assert failed and failed[0]["detail"].startswith("HTTP500"), failed  # with its reason
        wait_for(lambda: hook.received and "LatestNotificationError" not in
                 cloudtrail.get_trail_status(Name="hooked"), seconds=60, what="a retried notification")
        status = cloudtrail.get_trail_status(Name="hooked")
        assert status["LatestNotificationTime"] >= status["LatestDeliveryTime"]

        s3 = local_s3(server)
        wait_for(lambda: len(hook.received) >= len(read_bucket(s3, "hooked").log_keys),
                 seconds=30, what="a message for every delivered file")
        logs = read_bucket(s3, "hooked").log_keys
        notified = [key for post in hook.received for key in json.loads(post["Message"])["s3ObjectKey"]]
        assert sorted(set(notified)) == sorted(logs)
        assert len(notified) == len(set(notified))  # one message per file
        assert all(json.loads(post["Message"])["s3Bucket"] == "hooked" for post in hook.received)
        assert hook.refused == 2
    finally:
        server.stop()
        hook.stop()


def test_event_selectors_choose_what_the_files_carry(tmp_path) -> None:
    server = ServerProcess(tmp_path / "data", args=["--delivery-interval", "1"])
    try:
        server.start()
        assert searchtrail_cli("buckets", "create", "writes", "--data-dir",
                               str(server.data_dir)).returncode == 0
        cloudtrail = server.client("cloudtrail")
        cloudtrail.create_trail(Name="writes-only", S3BucketName="writes")
        cloudtrail.put_event_selectors(TrailName="writes-only", EventSelectors=[
            {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
        cloudtrail.start_logging(Name="writes-only")
        aoss = server.client("opensearchserverless")
        read_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
        write_id = aoss.create_security_policy(
            name="writes1", type="encryption", policy=json.dumps({
                "Rules": [{"ResourceType": "collection", "Resource": ["collection/w*"]}],
                "AWSOwnedKey": True}))["ResponseMetadata"]["RequestId"]
        s3 = local_s3(server)

        def delivered_ids():  # type: ignore[no-untyped-def]
            content = read_bucket(s3, "writes")
            return {r["requestID"] for records in content.records_by_key.values() for r in records}

        wait_for(lambda: write_id in delivered_ids(), seconds=30, what="the write delivered")
        ids = delivered_ids()
        assert read_id not in ids
        assert all(not r["readOnly"] for records in read_bucket(s3, "writes").records_by_key.values()
                   for r in records)
    finally:
        server.stop()
