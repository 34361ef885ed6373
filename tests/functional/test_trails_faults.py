"""Delivery under faults: the S3 server paused until delivery fails and calls pile up, the
server killed -9 mid-delivery, and a trail created while S3 answers nothing."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import Counter

from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess
from tests.functional.trails import chain_closed, counts, read_bucket, validate_both, wait_for
from tests.peers import MOTO_CREDENTIALS, MotoServer

BUCKET = "fault-bucket"


def start(tmp_path, moto: MotoServer, env: dict[str, str] | None = None) -> ServerProcess:  # type: ignore[no-untyped-def]
    moto.client("s3").create_bucket(Bucket=BUCKET)
    server = ServerProcess(tmp_path / "data", env={**MOTO_CREDENTIALS, **(env or {})}, args=[
        "--s3-endpoint-url", moto.endpoint, "--delivery-interval", "1", "--digest-interval", "3"])
    server.start()
    cloudtrail = server.client("cloudtrail")
    cloudtrail.create_trail(Name="faults", S3BucketName=BUCKET, EnableLogFileValidation=True)
    cloudtrail.start_logging(Name="faults")
    return server


def delivered_request_ids(moto: MotoServer) -> Counter:
    content = read_bucket(moto.client("s3"), BUCKET)
    return Counter(r["requestID"] for records in content.records_by_key.values() for r in records)


def backlog(server: ServerProcess, arn: str) -> tuple[float, float] | None:
    """The trail's delivery lag and waiting log files in /metrics; None until both are there."""
    lag = server.metric("searchtrail_delivery_lag_seconds", trail=arn)
    waiting = server.metric("searchtrail_delivery_waiting_log_files", trail=arn)
    return None if lag is None or waiting is None else (lag, waiting)


def test_s3_outage_does_not_touch_the_api_and_loses_nothing(tmp_path) -> None:
    moto = MotoServer(tmp_path).start()
    # 1 s S3 timeouts (5 s by default): a delivery fails ~3 s into the outage, not 15
    server = start(tmp_path, moto, env={"SEARCHTRAIL_S3_TIMEOUT_SECONDS": "1"})
    try:
        aoss = server.client("opensearchserverless")
        cloudtrail = server.client("cloudtrail")
        request_ids = [aoss.list_collections()["ResponseMetadata"]["RequestId"] for _ in range(20)]
        wait_for(lambda: set(request_ids) <= set(delivered_request_ids(moto)), seconds=30,
                 what="deliveries before the outage")

        arn = cloudtrail.get_trail(Name="faults")["Trail"]["TrailARN"]
        # The outage lasts until a delivery has failed (S3's timeouts and retries take ~3 s),
        # calls have kept coming after that, so their records wait for S3 to come back, and
        # /metrics has shown the trail's files waiting.
        moto.pause()
        saw_error, after_error, waiting = None, 0, None
        outage_end = time.monotonic() + 45
        try:
            while time.monotonic() < outage_end and (after_error < 8 or waiting is None):
                # every call during the outage succeeds (an exception here fails the test)
                request_ids.append(aoss.list_collections()["ResponseMetadata"]["RequestId"])
                if saw_error is None:
                    status = cloudtrail.get_trail_status(Name="faults")
                    saw_error = status.get("LatestDeliveryError")
                else:
                    after_error += 1
                    seen = backlog(server, arn)
                    if seen is not None and seen[1] >= 1:
                        waiting = seen
                time.sleep(0.25)  # calls keep coming at a steady pace during the outage
        finally:
            moto.resume()
        assert saw_error, "GetTrailStatus never showed the delivery error"
        assert after_error >= 8
        assert waiting is not None, "/metrics never showed the trail's log files waiting"
        assert waiting[0] >= 1  # its oldest record has waited since the first failure at least

        wait_for(lambda: set(request_ids) <= set(delivered_request_ids(moto)), seconds=90,
                 what="every record after the outage")
        wait_for(lambda: backlog(server, arn) == (0.0, 0.0), seconds=30,
                 what="/metrics showing nothing left to deliver")
        assert server.metric("searchtrail_delivery_last_pass_timestamp_seconds") > 0
        delivered = delivered_request_ids(moto)
        assert all(delivered[rid] == 1 for rid in request_ids)
        assert max(delivered.values()) == 1
        assert "LatestDeliveryError" not in cloudtrail.get_trail_status(Name="faults")
    finally:
        server.stop()
        moto.stop()


def test_kill_9_during_delivery_loses_and_duplicates_nothing(tmp_path) -> None:
    moto = MotoServer(tmp_path).start()
    server = start(tmp_path, moto)
    acknowledged: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        aoss = server.client("opensearchserverless")
        while not stop.is_set() and len(acknowledged) < 5000:
            try:
                acknowledged.append(aoss.list_collections()["ResponseMetadata"]["RequestId"])
            except (ClientError, Exception):  # the server dies under us: that call is indeterminate
                return

    try:
        worker = threading.Thread(target=traffic)
        worker.start()
        wait_for(lambda: len(delivered_request_ids(moto)) >= 50, seconds=30, what="first deliveries",
                 step=0.1)
        server.kill9()
        stop.set()
        worker.join(timeout=30)
        restarted = ServerProcess(server.data_dir, env=server.env, args=server.args).start()
        try:
            wait_for(lambda: set(acknowledged) <= set(delivered_request_ids(moto)), seconds=60,
                     what="every acknowledged call delivered after restart")
            delivered = delivered_request_ids(moto)
            assert max(delivered.values()) == 1  # nothing twice, in-flight calls included
            cloudtrail = restarted.client("cloudtrail")
            cloudtrail.stop_logging(Name="faults")
            trail_arn = cloudtrail.get_trail(Name="faults")["Trail"]["TrailARN"]

            wait_for(lambda: chain_closed(restarted, "faults"), seconds=30, what="the final digest")
            aws, ours = validate_both(restarted, trail_arn, s3_endpoint=moto.endpoint,
                                      region="us-east-1", server_env=dict(MOTO_CREDENTIALS),
                                      delivers_to=moto.endpoint)
            content = read_bucket(moto.client("s3"), BUCKET)
            logs, digests = len(content.log_keys), len(content.digest_keys)
            assert aws.returncode == 0, aws.stdout + aws.stderr
            assert counts(aws.stdout) == (f"{digests}/{digests}", f"{logs}/{logs}"), aws.stdout
            assert ours.returncode == 0, ours.stdout + ours.stderr
        finally:
            restarted.stop()
    finally:
        stop.set()
        server.stop()
        moto.stop()


class SilentEndpoint:
    """An S3 endpoint that takes connections and answers nothing until ``release()``, then
    closes them (and every later one) at once."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connected = threading.Event()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        held = []
        self._listener.settimeout(0.2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                if self._released.is_set() and held:
                    for conn in held:
                        conn.close()
                    held = []
                continue
            if self._released.is_set():
                conn.close()
            else:
                held.append(conn)
                self.connected.set()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self._listener.close()


def test_a_trail_change_while_s3_is_silent_holds_only_itself(tmp_path) -> None:
    """CreateTrail looks its bucket up before its unit of work, off the event loop: while S3
    does not answer, other calls are served (before, every call waited out the lookup's
    timeouts, 15 s); the call then fails with a clear 503 and is recorded."""
    s3 = SilentEndpoint()
    server = ServerProcess(tmp_path / "data", env=dict(MOTO_CREDENTIALS),
                           args=["--s3-endpoint-url", s3.endpoint]).start()
    try:
        cloudtrail = server.client("cloudtrail")  # no retries
        failed: list[ClientError] = []

        def create() -> None:
            try:
                cloudtrail.create_trail(Name="silent-s3", S3BucketName="silent-bucket")
            except ClientError as error:
                failed.append(error)

        creating = threading.Thread(target=create)
        creating.start()
        assert s3.connected.wait(30), "the server never asked S3 for the bucket"
        server.client("opensearchserverless").list_collections()  # answered while the lookup waits on S3
        assert creating.is_alive(), "CreateTrail ended before S3 answered"
        s3.release()
        creating.join(timeout=60)
        [error] = failed
        assert error.response["Error"]["Code"] == "ServiceUnavailableException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "silent-bucket" in error.response["Error"]["Message"]
        recorded = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}])["Events"]
        assert [json.loads(e["CloudTrailEvent"])["errorCode"] for e in recorded] == [
            "ServiceUnavailableException"]
        assert cloudtrail.describe_trails()["trailList"] == []
    finally:
        server.stop()
        s3.close()


def test_a_trail_moved_off_a_deleted_bucket_delivers_what_waited_to_the_new_one(tmp_path) -> None:
    """The log file and digest fixed for a bucket that was deleted follow UpdateTrail to the
    new bucket. They used to be retried against the deleted one for ever: the records they
    held were delivered nowhere and the waiting digest held back every later one."""
    moto = MotoServer(tmp_path).start()
    server = start(tmp_path, moto)
    try:
        aoss = server.client("opensearchserverless")
        cloudtrail = server.client("cloudtrail")
        s3 = moto.client("s3")
        before = aoss.list_collections()["ResponseMetadata"]["RequestId"]
        wait_for(lambda: before in delivered_request_ids(moto)
                 and read_bucket(s3, BUCKET).digest_keys, seconds=30, what="a first digest")
        for key in read_bucket(s3, BUCKET).log_keys + read_bucket(s3, BUCKET).digest_keys:
            s3.delete_object(Bucket=BUCKET, Key=key)
        s3.delete_bucket(Bucket=BUCKET)
        stranded = aoss.list_collections()["ResponseMetadata"]["RequestId"]
        wait_for(lambda: (lambda status: status.get("LatestDeliveryError")
                          and status.get("LatestDigestDeliveryError"))(
            cloudtrail.get_trail_status(Name="faults")), seconds=30,
            what="both deliveries failing on the deleted bucket")

        s3.create_bucket(Bucket="moved-bucket")
        cloudtrail.update_trail(Name="faults", S3BucketName="moved-bucket")
        after = aoss.list_collections()["ResponseMetadata"]["RequestId"]

        def moved() -> bool:
            content = read_bucket(s3, "moved-bucket")
            return {stranded, after} <= set(content.request_ids()) and bool(content.digest_keys)

        wait_for(moved, seconds=30, what="the waiting records and a digest in the new bucket")
        status = wait_for(lambda: (lambda s: s if not (s.get("LatestDeliveryError") or s.get(
            "LatestDigestDeliveryError")) else None)(cloudtrail.get_trail_status(Name="faults")),
            seconds=30, what="the trail's status clear of the deleted bucket's errors")
        assert status["IsLogging"]
        content = read_bucket(s3, "moved-bucket")
        holding = next(key for key, records in content.records_by_key.items()
                       if stranded in {r["requestID"] for r in records})
        listed = [entry["s3Object"] for key in content.digest_keys for entry in json.loads(
            gzip.decompress(s3.get_object(Bucket="moved-bucket", Key=key)["Body"].read()))[
            "logFiles"]]
        wait_for(lambda: holding in listed or holding in [
            entry["s3Object"] for key in read_bucket(s3, "moved-bucket").digest_keys
            for entry in json.loads(gzip.decompress(s3.get_object(
                Bucket="moved-bucket", Key=key)["Body"].read()))["logFiles"]],
            seconds=30, what="a digest in the new bucket listing the moved log file")
    finally:
        server.stop()
        moto.stop()
