"""Delivery to a failing object store and under a server clock stepping back (plan §3.2: D2–D6):
the API never waits, nothing is lost, delivered twice or overwritten, and the digest chain stays
whole.
"""

from __future__ import annotations

import statistics
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.functional.server import ServerProcess
from tests.functional.trails import (chain_closed, counts, read_bucket, stored_count,
                                     validate_both, wait_for)
from tests.peers import MOTO_CREDENTIALS, MotoServer
from tests.reliability.checkers import (CheckResult, bucket_etags, check_delivery, check_store,
                                        read_digests, stored_records)
from tests.reliability.faketime import SteppedClock, faketime_library
from tests.reliability.faultproxy import FaultPlan, FaultProxy
from tests.reliability.history import History, Op, tid_of

pytestmark = pytest.mark.reliability

BUCKET = "faulty-store"
TRAIL = "faulty"
RATE = 10  # calls per second, as in the plan
S3_ATTEMPTS = 3  # the server's S3 client tries each upload this often before giving up
WARM_UP = 5  # first calls of a fresh client (connection set-up) are not the baseline
D3_PLAN = FaultPlan(slow_down=0.3, reset=0.1, stall=0.1, drop_response=0.1, stall_seconds=5)


class Traffic:
    """One client thread calling at a steady rate through a History, until stopped (bounded)."""

    def __init__(self, server: ServerProcess, history: History, *, seconds: float) -> None:
        self.history = history
        self.aoss = history.wrap(server.client("opensearchserverless"))
        self.max_calls = int(seconds * RATE * 2) + 10
        self.deadline = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic")

    def _run(self) -> None:
        started = next_due = time.monotonic()
        for n in range(self.max_calls):
            if self._stop.is_set() or time.monotonic() - started > self.deadline:
                return
            if n % 4 == 3:  # a failing call too: its record carries the errorCode
                self.history.call(self.aoss, "get_security_policy", name=f"missing{n}",
                                  type="network")
            else:
                self.history.call(self.aoss, "list_collections")
            next_due += 1 / RATE
            self._stop.wait(max(0.0, next_due - time.monotonic()))  # pacing, not waiting for state

    def start(self) -> "Traffic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        self._thread.join(timeout=self.deadline + 60)
        assert not self._thread.is_alive(), "traffic thread did not finish"


@pytest.fixture
def moto(tmp_path) -> Iterator[MotoServer]:  # type: ignore[no-untyped-def]
    peer = MotoServer(tmp_path).start()
    try:
        yield peer
    finally:
        peer.stop()


@contextmanager
def logging_server(root: Path, store_endpoint: str, moto: MotoServer, *,
                   delete_bucket_before_logging: bool = False,
                   env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A server delivering to ``store_endpoint``, with a logging trail into BUCKET (on moto)."""
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    server = ServerProcess(root / "data", env={**MOTO_CREDENTIALS, **(env or {})}, args=[
        "--s3-endpoint-url", store_endpoint, "--delivery-interval", "1", "--digest-interval", "3"])
    try:
        server.start()
        cloudtrail = server.client("cloudtrail")
        cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET, EnableLogFileValidation=True)
        if delete_bucket_before_logging:  # nothing was delivered yet: the bucket is empty
            s3.delete_bucket(Bucket=BUCKET)
        cloudtrail.start_logging(Name=TRAIL)
        yield server
    finally:
        server.stop()


def delivered_tids(moto: MotoServer) -> set[str]:
    content = read_bucket(moto.client("s3"), BUCKET)
    return {tid_of(r.get("userAgent")) for records in content.records_by_key.values()
            for r in records} - {None}


def delivered_tids_or_none(moto: MotoServer) -> set[str] | None:
    buckets = {b["Name"] for b in moto.client("s3").list_buckets().get("Buckets", ())}
    return delivered_tids(moto) if BUCKET in buckets else None


def api_failures(ops: list[Op]) -> list[Op]:
    """Calls the API did not answer, or answered 5xx: the store's trouble must never show."""
    return [op for op in ops if op.outcome != "ok" or (op.status or 0) >= 500]


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


def close(server: ServerProcess) -> None:
    """Stop logging and wait until everything is delivered and the chain's final digest stored."""
    server.client("cloudtrail").stop_logging(Name=TRAIL)
    wait_for(lambda: chain_closed(server, TRAIL), seconds=120, what="the final digest")


def check(server: ServerProcess, moto: MotoServer, history: History,
          ) -> tuple[CheckResult, CheckResult]:
    """The store and delivery checkers, over everything stored and delivered."""
    records = stored_records(server)
    store = check_store(history.ops, records)
    sent = {op.tid for op in history.ops}
    s3 = moto.client("s3")
    content = read_bucket(s3, BUCKET)
    delivery = check_delivery([r for r in records if tid_of(r.get("userAgent")) in sent], content,
                              read_digests(s3, BUCKET, content.digest_keys),
                              stored_ids={r["eventID"] for r in records})
    return store, delivery


def final_digest_refused(server: ServerProcess, proxy: FaultProxy) -> bool:
    """The trail's final digest is fixed, and the store refused a whole upload of it."""
    stopped = server.client("cloudtrail").get_trail_status(Name=TRAIL)["StopLoggingTime"]
    conn = server.store()
    try:
        final = [key for (key,) in conn.execute("SELECT key FROM digests WHERE end_time >= ?",
                                                (stopped.timestamp(),)).fetchall()]
    finally:
        conn.close()
    return any(proxy.faulted[f"/{BUCKET}/{key}"] >= S3_ATTEMPTS for key in final)


def assert_validators_pass(server: ServerProcess, moto: MotoServer) -> None:
    content = read_bucket(moto.client("s3"), BUCKET)
    digests, logs = len(content.digest_keys), len(content.log_keys)
    trail_arn = server.client("cloudtrail").get_trail(Name=TRAIL)["Trail"]["TrailARN"]
    aws, ours = validate_both(server, trail_arn, s3_endpoint=moto.endpoint, region="us-east-1",
                              server_env=dict(MOTO_CREDENTIALS), delivers_to=moto.endpoint)
    expected = (f"{digests}/{digests}", f"{logs}/{logs}")
    assert aws.returncode == 0 and counts(aws.stdout) == expected, aws.stdout + aws.stderr
    assert ours.returncode == 0 and counts(ours.stdout) == expected, ours.stdout + ours.stderr


def record(ledger, scenario: str, history: History, store: CheckResult,  # type: ignore[no-untyped-def]
           delivery: CheckResult, *, faults: int) -> None:
    ops = history.ops
    ledger.add(scenario, calls_made=len(ops), faults_injected=faults,
               unexpected_5xx=sum(1 for op in ops if (op.status or 0) >= 500),
               records_checked=store.records_checked + delivery.records_checked,
               lost=store.lost + delivery.lost, duplicated=store.duplicated + delivery.duplicated,
               phantom=store.phantom + delivery.phantom)


@pytest.mark.timeout(900)
def test_d2_paused_store_never_slows_the_api_and_the_backlog_follows(tmp_path, moto, profile, ledger) -> None:  # type: ignore[no-untyped-def]
    outage = profile.pick(ci=10, full=90)
    backlog_deadline = profile.pick(ci=60, full=300)
    with logging_server(tmp_path, moto.endpoint, moto) as server:
        history = History()
        traffic = Traffic(server, history, seconds=outage + backlog_deadline + 60).start()
        try:
            # baseline: until the first calls are delivered, so delivery runs alongside
            wait_for(lambda: len(history.ops) >= 20 and {op.tid for op in history.ops[:20]}
                     <= delivered_tids(moto), seconds=30, what="deliveries before the outage")
            cloudtrail = server.client("cloudtrail")
            errors: set[str] = set()

            def outage_over() -> bool:  # GetTrailStatus keeps answering, and shows the error
                error = cloudtrail.get_trail_status(Name=TRAIL).get("LatestDeliveryError")
                errors.update([error] if error else [])
                return time.time() - paused_at >= outage

            paused_at = time.time()
            moto.pause()
            try:
                wait_for(outage_over, seconds=outage + 30, what="the end of the outage")
            finally:
                moto.resume()
            resumed_at = time.time()
            before = {op.tid for op in history.ops if op.start < resumed_at}
            wait_for(lambda: before <= delivered_tids(moto), seconds=backlog_deadline,
                     what="the backlog after the outage")
            backlog_seconds = time.time() - resumed_at
        finally:
            traffic.stop()
        close(server)
        store, delivery = check(server, moto, history)
        ops = history.ops
        baseline = [op.end - op.start for op in ops[WARM_UP:] if op.end < paused_at]
        during = [op.end - op.start for op in ops if paused_at <= op.start and op.end <= resumed_at]
        record(ledger, "D2", history, store, delivery, faults=1)
        ledger.note("D2", outage_seconds=round(resumed_at - paused_at, 1),
                    backlog_delivered_seconds=round(backlog_seconds, 1),
                    p99_baseline_ms=round(p99(baseline) * 1000, 1),
                    p99_outage_ms=round(p99(during) * 1000, 1),
                    calls_during_outage=len(during), delivery_errors_seen=sorted(errors))
        assert api_failures(ops) == []
        assert len(during) >= outage * RATE // 2, "the API was not called during the outage"
        # The API never waits on S3 (whose client times out after 5 s); allow for noise on 2 cores.
        assert p99(during) <= max(2 * p99(baseline), 0.5), (p99(baseline), p99(during))
        assert store.ok, str(store)
        assert delivery.ok, str(delivery)
        assert_validators_pass(server, moto)


def test_d4_missing_bucket_keeps_records_until_it_is_back(tmp_path, moto, profile, ledger) -> None:  # type: ignore[no-untyped-def]
    broken = profile.pick(ci=5, full=60)
    with logging_server(tmp_path, moto.endpoint, moto, delete_bucket_before_logging=True) as server:
        history = History()
        traffic = Traffic(server, history, seconds=broken + 30).start()
        cloudtrail = server.client("cloudtrail")
        broke_at = time.time()
        seen: dict[str, str] = {}

        def still_broken() -> bool:
            status = cloudtrail.get_trail_status(Name=TRAIL)
            seen.update({k: status[k] for k in ("LatestDeliveryError", "LatestDigestDeliveryError")
                         if k in status})
            return "LatestDeliveryError" in seen and time.time() - broke_at >= broken

        try:
            wait_for(still_broken, seconds=broken + 30, what="the delivery error while broken")
        finally:
            traffic.stop()
        assert seen["LatestDeliveryError"] == "NoSuchBucket", seen
        assert delivered_tids_or_none(moto) is None  # nothing recreated the bucket
        moto.client("s3").create_bucket(Bucket=BUCKET)
        fixed_at = time.time()
        sent = {op.tid for op in history.ops}
        wait_for(lambda: sent <= delivered_tids(moto), seconds=profile.pick(ci=60, full=120),
                 what="every record after the bucket is back")
        recovered = time.time() - fixed_at
        status = cloudtrail.get_trail_status(Name=TRAIL)
        close(server)
        store, delivery = check(server, moto, history)
        record(ledger, "D4", history, store, delivery, faults=1)
        ledger.note("D4", broken_seconds=round(fixed_at - broke_at, 1),
                    delivered_after_fix_seconds=round(recovered, 1), errors_reported=seen)
        assert "LatestDeliveryError" not in status, status
        assert api_failures(history.ops) == []
        assert store.ok, str(store)
        assert delivery.ok, str(delivery)
        assert_validators_pass(server, moto)


@pytest.fixture(scope="module")
def faulty_store(tmp_path_factory, profile):  # type: ignore[no-untyped-def]
    """D3's run: the server delivers through the fault proxy while the load runs, then closes."""
    root = tmp_path_factory.mktemp("faulty-store")
    moto = MotoServer(root).start()
    try:
        with FaultProxy(moto.endpoint, D3_PLAN, seed=20260601) as proxy, \
                logging_server(root, proxy.endpoint, moto) as server:
            history = History()
            seconds = profile.pick(ci=25, full=150)
            Traffic(server, history, seconds=seconds).start().join()
            sent = {op.tid for op in history.ops}
            wait_for(lambda: sent <= delivered_tids(moto), seconds=120, what="every record")
            # Every digest's first upload fails from here on, the final one's included: a stopped
            # trail must retry it.
            proxy.refuse_first("/CloudTrail-Digest/", S3_ATTEMPTS)
            server.client("cloudtrail").stop_logging(Name=TRAIL)
            wait_for(lambda: final_digest_refused(server, proxy), seconds=90,
                     what="the final digest refused by the store")
            wait_for(lambda: chain_closed(server, TRAIL), seconds=120, what="the final digest")
            store, delivery = check(server, moto, history)
            yield {"moto": moto, "server": server, "proxy": proxy, "history": history,
                   "store": store, "delivery": delivery, "seconds": seconds}
    finally:
        moto.stop()


@pytest.mark.timeout(900)
def test_d3_faulty_store_loses_and_duplicates_nothing(faulty_store, ledger) -> None:  # type: ignore[no-untyped-def]
    proxy, history = faulty_store["proxy"], faulty_store["history"]
    store, delivery = faulty_store["store"], faulty_store["delivery"]
    record(ledger, "D3", history, store, delivery, faults=proxy.injected)
    ledger.note("D3", load_seconds=faulty_store["seconds"], proxy=dict(proxy.counts))
    assert all(proxy.counts[fault] > 0 for fault in ("slow_down", "reset", "stall",
                                                     "drop_response")), proxy.counts
    assert api_failures(history.ops) == []
    assert store.ok, str(store)
    assert delivery.ok, str(delivery)  # every record once; bucket log objects == digest-referenced
    assert_validators_pass(faulty_store["server"], faulty_store["moto"])


def test_d6_deleted_newest_digest_is_reported_by_searchtrail_only(faulty_store, ledger) -> None:  # type: ignore[no-untyped-def]
    server, moto = faulty_store["server"], faulty_store["moto"]
    s3 = moto.client("s3")
    digests = sorted(read_bucket(s3, BUCKET).digest_keys)  # the key ends with the end time
    newest = s3.get_object(Bucket=BUCKET, Key=digests[-1])
    body, metadata = newest["Body"].read(), newest["Metadata"]
    s3.delete_object(Bucket=BUCKET, Key=digests[-1])
    try:
        trail_arn = server.client("cloudtrail").get_trail(Name=TRAIL)["Trail"]["TrailARN"]
        aws, ours = validate_both(server, trail_arn, s3_endpoint=moto.endpoint, region="us-east-1",
                                  server_env=dict(MOTO_CREDENTIALS), delivers_to=moto.endpoint)
    finally:
        s3.put_object(Bucket=BUCKET, Key=digests[-1], Body=body, Metadata=metadata)
    remaining = len(digests) - 1
    aws_blind = aws.returncode == 0 and counts(aws.stdout)[0] == f"{remaining}/{remaining}"
    ours_saw = ours.returncode == 1 and "INVALID: newest digest missing" in ours.stderr
    ledger.add("D6", tamper_cases=1, tamper_detected=int(ours_saw))
    assert aws_blind, aws.stdout + aws.stderr  # validate-logs cannot see it (plan §1c)
    assert ours_saw, ours.stdout + ours.stderr


STEP_BACK = 3600  # the plan's one hour


def claimed_behind(server: ServerProcess, stepped_at: float) -> int:
    """Log files claimed while the server's wall clock was an hour behind (their creation time
    is before the step's real moment by most of that hour)."""
    return stored_count(server, "SELECT count(*) FROM log_files WHERE created_at < ?",
                        stepped_at - STEP_BACK / 2)


@pytest.mark.timeout(600)
def test_d5_a_clock_stepping_back_overwrites_nothing_and_every_file_stays_in_a_digest(tmp_path, moto, profile, ledger) -> None:  # type: ignore[no-untyped-def]
    """The server's wall clock steps back an hour while it logs; the server is restarted in that
    hour, then the clock is put right. Delivery never pauses for the hour, every object stored
    before the step keeps its bytes (ETag), every log file is listed in exactly one digest and
    both validators pass."""
    calls_behind = profile.pick(ci=40, full=200)  # calls made in each half of the hour
    clock = SteppedClock(tmp_path / "faketime")
    env = {**clock.env(faketime_library()),
           "SEARCHTRAIL_CLOCK_SKEW_SECONDS": str(2 * STEP_BACK)}  # clients keep real time
    s3 = moto.client("s3")
    history = History()
    with logging_server(tmp_path, moto.endpoint, moto, env=env) as server:
        traffic = Traffic(server, history, seconds=120).start()
        try:
            wait_for(lambda: len(history.ops) >= 20 and {op.tid for op in history.ops[:20]}
                     <= delivered_tids(moto) and read_bucket(s3, BUCKET).digest_keys,
                     seconds=60, what="deliveries and a digest before the step")
            before = bucket_etags(s3, BUCKET)
            clock.set_offset(-STEP_BACK)
            stepped_at = time.time()

            def first_calls_after(moment: float) -> set[str] | None:
                """The first ``calls_behind`` calls begun a second after ``moment`` (once the
                server has reread its clock), when there are that many."""
                tids = [op.tid for op in history.ops if op.start > moment + 1][:calls_behind]
                return set(tids) if len(tids) == calls_behind else None

            def delivered_after(moment: float, what: str) -> None:
                """A fixed set of calls made after ``moment`` is delivered while calls go on
                (asking for every call so far would chase the newest ones)."""
                made = wait_for(lambda: first_calls_after(moment), what=f"calls {what}",
                                seconds=calls_behind / RATE * 3 + 30)
                wait_for(lambda: made <= delivered_tids(moto), seconds=60,
                         what=f"the calls made {what} delivered")

            delivered_after(stepped_at, "after the step")
        finally:
            traffic.stop()
        server.stop()  # a restart within the hour: the new worker knows nothing of the last claim
        server.start()
        restarted_at = time.time()
        traffic = Traffic(server, history, seconds=120).start()
        try:
            delivered_after(restarted_at, "after the restart, the clock still behind")
            files_behind = claimed_behind(server, stepped_at)
            clock.set_offset(0)
            wait_for(lambda: server.client("cloudtrail").get_trail_status(Name=TRAIL)
                     ["LatestDigestDeliveryTime"].timestamp() > stepped_at + 1,
                     seconds=60, what="a digest once the clock is right again")
        finally:
            traffic.stop()
        close(server)
        store, delivery = check(server, moto, history)
        after = bucket_etags(s3, BUCKET)
        changed = sorted(key for key, etag in before.items() if after.get(key) != etag)
        digest_rows = stored_count(server, "SELECT count(*) FROM digests")
        digests = sum("/CloudTrail-Digest/" in key for key in after)
        record(ledger, "D5", history, store, delivery, faults=1)
        ledger.note("D5", step_back_seconds=STEP_BACK, log_files_claimed_behind=files_behind,
                    objects_before_step=len(before), objects_changed=len(changed),
                    digests_stored=digests, digests_fixed=digest_rows)
        assert api_failures(history.ops) == []
        assert files_behind >= 2, "no log file was claimed while the clock was behind"
        assert changed == [], f"objects stored before the step were overwritten: {changed}"
        assert digests == digest_rows, "two digests were fixed under one key"
        assert store.ok, str(store)
        assert delivery.ok, str(delivery)
        assert_validators_pass(server, moto)
