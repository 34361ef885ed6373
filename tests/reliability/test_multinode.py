"""Several nodes on one PostgreSQL store (M1, M2): kill -9 the node that delivers, or crash
PostgreSQL itself, under load on both nodes; every acknowledged call keeps its one record, every
record lands in exactly one log file, the digest chain never forks, both validators agree."""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.functional.server import ServerProcess
from tests.functional.trails import chain_closed, counts, read_bucket, validate_both, wait_for
from tests.peers import MOTO_CREDENTIALS, MotoServer
from tests.postgres import PostgresServer, start_postgres
from tests.reliability.faketime import SteppedClock, faketime_library
from tests.reliability.checkers import (check_delivery, check_store, read_digests,
                                        records_by_tid, stored_records)
from tests.reliability.history import History, LoadThreads
from tests.reliability.ledger import Ledger, Profile

pytestmark = pytest.mark.reliability

BUCKET = "multinode-trail"
TRAIL = "multinode"
FAST_DELIVERY = ["--delivery-interval", "1", "--digest-interval", "1"]
MAX_OPS_PER_ROUND = 2_000
TAKEOVER_SECONDS = 30  # the plan's lease TTL: another node delivers within this of a kill
RECOVERY_SECONDS = 30  # nodes serve again within this of PostgreSQL's restart
CATCH_UP_SECONDS = 90
REFUSED_PAUSE_SECONDS = 0.05  # a load thread's pause after its node refused the connection
LEASE_SECONDS = 3  # M3: the delivery lease, shortened so a test can outlast it
SKEW_SECONDS = 2  # M4: each node's wall clock this far from true time, in opposite directions
UTC_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def health(node: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(node.endpoint + "/_searchtrail/health", timeout=5) as response:
        return json.loads(response.read())


@dataclass
class Cluster:
    """Two nodes sharing one database and one S3 server (moto), and calls to both."""

    root: Path
    postgres: PostgresServer
    moto: MotoServer
    history: History = field(default_factory=History)
    nodes: list[ServerProcess] = field(default_factory=list)

    def start(self, env: dict[str, str] | None = None,
              envs: list[dict[str, str]] | None = None) -> "Cluster":
        """Both nodes with ``env``, and each with its own ``envs[number]``."""
        url = self.postgres.database()
        args = ["--s3-endpoint-url", self.moto.endpoint, *FAST_DELIVERY]
        for number in range(2):
            own = envs[number] if envs else {}
            node = ServerProcess(self.root / f"node{number}",
                                 env={**MOTO_CREDENTIALS, **(env or {}), **own},
                                 args=args).use_postgres(url)
            self.nodes.append(node.start())
        return self

    @property
    def key(self) -> tuple[str, str]:
        """The root key: node 0 created the account, so only its data dir holds it."""
        return self.nodes[0].credentials()

    def client(self, number: int, service: str):  # type: ignore[no-untyped-def]
        return self.nodes[number].client(service, key=self.key)

    def restart(self, number: int) -> None:
        old = self.nodes[number]
        self.nodes[number] = ServerProcess(old.data_dir, port=old.port, env=old.env,
                                           args=old.args).start()

    def delivering(self) -> list[int]:
        return [n for n, node in enumerate(self.nodes) if health(node).get("delivering")]

    def traffic(self) -> LoadThreads:
        """Two threads per node: reads, and policy creations (each a write and an outbox row)."""
        made = iter(range(10**9))
        lock = threading.Lock()

        def one(aoss: Any) -> None:
            with lock:
                number = next(made)
            if number % 3:
                op = self.history.call(aoss, "list_collections")
            else:
                rules = [{"ResourceType": "collection", "Resource": [f"collection/m{number}"]}]
                op = self.history.call(aoss, "create_security_policy", name=f"multi{number}",
                                       type="network", policy=json.dumps(
                                           [{"Rules": rules, "AllowFromPublic": True}]))
            if op.outcome == "fail":  # its node is down: pace the retries until it is back
                threading.Event().wait(REFUSED_PAUSE_SECONDS)

        clients = [self.history.wrap(self.client(n, "opensearchserverless"))
                   for n in (0, 0, 1, 1)]
        return LoadThreads(one, clients, MAX_OPS_PER_ROUND)

    def logging_trail(self) -> str:
        self.moto.client("s3").create_bucket(Bucket=BUCKET)
        cloudtrail = self.client(0, "cloudtrail")
        arn = cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET,
                                      EnableLogFileValidation=True)["TrailARN"]
        cloudtrail.start_logging(Name=TRAIL)
        return arn

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def catch_up_and_check(cluster: Cluster, trail_arn: str) -> dict[str, Any]:
    """Stop logging, wait for the last file and digest, and check the bucket, the store and
    the validators; returns the counts for the ledger."""
    node = cluster.nodes[0]
    cluster.client(0, "cloudtrail").stop_logging(Name=TRAIL)
    wait_for(lambda: chain_closed(node, TRAIL), seconds=CATCH_UP_SECONDS,
             what="every record delivered and the final digest written")
    s3 = cluster.moto.client("s3")
    delivered = read_bucket(s3, BUCKET)
    digests = read_digests(s3, BUCKET, delivered.digest_keys)
    records = stored_records(node)
    joined = records_by_tid(records)
    ops = cluster.history.ops
    store = check_store(ops, records)
    assert store.ok, str(store)
    expected = [r for op in ops for r in joined.get(op.tid, ())]
    delivery = check_delivery(expected, delivered, digests,
                              stored_ids={r["eventID"] for r in records})
    assert delivery.ok, str(delivery)
    aws, ours = validate_both(node, trail_arn, s3_endpoint=cluster.moto.endpoint,
                              region="us-east-1", server_env=dict(MOTO_CREDENTIALS),
                              delivers_to=cluster.moto.endpoint)
    whole = (f"{len(digests)}/{len(digests)}",
             f"{len(delivered.log_keys)}/{len(delivered.log_keys)}")
    for run in (aws, ours):
        assert run.returncode == 0 and counts(run.stdout) == whole, run.stdout + run.stderr
    outcomes = Counter(f"{op.outcome} {op.status or (op.error or '').split(':')[0]}".strip()
                       for op in ops)
    return {"calls_made": len(ops), **delivery.counts(), "log_files": len(delivered.log_keys),
            "digests": len(digests), "outcomes": dict(outcomes)}


def kill_the_deliverer(cluster: Cluster, kills: int, rng: random.Random) -> dict[str, Any]:
    """Under load on both nodes, kill -9 the delivering node ``kills`` times (restarting it
    each time); then the whole check. Returns its counts and the takeover times."""
    trail_arn = cluster.logging_trail()
    load = cluster.traffic()
    takeovers = []
    for _ in range(kills):
        load.start()
        wait_for(lambda: len(cluster.delivering()) == 1, seconds=TAKEOVER_SECONDS,
                 what="one node delivering")
        threading.Event().wait(rng.uniform(1.0, 3.0))  # the nemesis: a random kill moment
        leader = cluster.delivering()[0]
        cluster.nodes[leader].kill9()
        killed_at = time.monotonic()
        other = 1 - leader
        wait_for(lambda: health(cluster.nodes[other]).get("delivering"),
                 seconds=TAKEOVER_SECONDS, what="the other node taking delivery over",
                 step=0.05)
        takeovers.append(round(time.monotonic() - killed_at, 2))
        cluster.restart(leader)
        load.stop()
    assert cluster.delivering() == [1 - leader], "the restarted node must not deliver too"
    found = catch_up_and_check(cluster, trail_arn)
    assert found["calls_made"] > 100 * kills, "too little traffic to mean anything"
    return {**found, "takeover_seconds": takeovers}


def _ledger_counts(found: dict[str, Any]) -> dict[str, int]:
    return {name: found[name] for name in ("calls_made", "records_checked", "lost",
                                            "duplicated", "phantom")}


def test_m1_kill_9_the_delivering_node_of_two_and_another_takes_over(
        tmp_path: Path, postgres: PostgresServer, profile: Profile, ledger: Ledger) -> None:
    kills = profile.pick(ci=2, full=10)
    moto = MotoServer(tmp_path).start()
    cluster = Cluster(tmp_path, postgres, moto)
    try:
        cluster.start()
        # the second node found the account made: it says where its credentials are
        assert "in the credentials file of the node that created it" in cluster.nodes[1].log()
        assert not (cluster.nodes[1].data_dir / "credentials").exists()
        found = kill_the_deliverer(cluster, kills, random.Random(0x3A11))
    finally:
        cluster.stop()
        moto.stop()
    ledger.add("M1", kills=kills, **_ledger_counts(found))
    ledger.note("M1", takeover_seconds=found["takeover_seconds"],
                log_files=found["log_files"], digests=found["digests"],
                outcomes=found["outcomes"])


def test_m4_nodes_two_seconds_apart_keep_one_contiguous_chain(
        tmp_path: Path, postgres: PostgresServer, profile: Profile, ledger: Ledger) -> None:
    """Node 0's wall clock 2 s behind, node 1's 2 s ahead (libfaketime), and delivery moving
    between them: event times stay UTC with Z, every digest starts where the last one ended,
    and no two log files or digests share a key (a shared key would lose records)."""
    kills = profile.pick(ci=2, full=6)
    library = faketime_library()
    clocks = [SteppedClock(tmp_path / f"clock{number}") for number in range(2)]
    clocks[0].set_offset(-SKEW_SECONDS)
    clocks[1].set_offset(SKEW_SECONDS)
    moto = MotoServer(tmp_path).start()
    cluster = Cluster(tmp_path, postgres, moto)
    try:
        cluster.start(envs=[clock.env(library) for clock in clocks])
        found = kill_the_deliverer(cluster, kills, random.Random(0x3A14))
        records = stored_records(cluster.nodes[0])
    finally:
        cluster.stop()
        moto.stop()
    badly_dated = [r["eventTime"] for r in records if not UTC_SECOND.match(r["eventTime"])]
    assert not badly_dated, badly_dated[:5]
    ledger.add("M4", kills=kills, **_ledger_counts(found))
    ledger.note("M4", skew_seconds=2 * SKEW_SECONDS, takeover_seconds=found["takeover_seconds"],
                log_files=found["log_files"], digests=found["digests"],
                outcomes=found["outcomes"])


def test_m2_postgresql_crashes_under_load_and_no_acknowledged_call_loses_its_record(
        tmp_path: Path, profile: Profile, ledger: Ledger) -> None:
    crashes = profile.pick(ci=2, full=5)
    rng = random.Random(0x3A12)
    postgres = start_postgres()  # its own server: this test crashes it
    moto = MotoServer(tmp_path).start()
    cluster = Cluster(tmp_path, postgres, moto)
    recoveries = []
    try:
        cluster.start()
        trail_arn = cluster.logging_trail()
        load = cluster.traffic()
        for _ in range(crashes):
            load.start()
            threading.Event().wait(rng.uniform(1.0, 3.0))
            postgres.crash()  # pg_ctl stop -m immediate: no checkpoint, as a power cut
            threading.Event().wait(rng.uniform(0.5, 1.5))  # calls meanwhile must fail closed
            postgres.restart()
            restarted = time.monotonic()
            for number in range(2):
                aoss = cluster.client(number, "opensearchserverless")
                wait_for(lambda: _serves(aoss), seconds=RECOVERY_SECONDS,
                         what=f"node {number} serving again after PostgreSQL's restart",
                         step=0.05)
            recoveries.append(round(time.monotonic() - restarted, 2))
            load.stop()
        found = catch_up_and_check(cluster, trail_arn)
    finally:
        cluster.stop()
        moto.stop()
        postgres.stop()
    ops = cluster.history.ops
    failed_closed = sum(op.status is not None and op.status >= 500 for op in ops)
    ledger.add("M2", kills=crashes, calls_made=found["calls_made"],
               records_checked=found["records_checked"], lost=found["lost"],
               duplicated=found["duplicated"], phantom=found["phantom"])
    ledger.note("M2", recovered_seconds=recoveries, failed_closed=failed_closed,
                log_files=found["log_files"], digests=found["digests"])
    assert failed_closed > 0, "no call met the crash: the scenario proved nothing"
    unexpected = [op for op in ops if op.status is not None and op.status >= 500
                  and op.error_code != "ServiceUnavailableException"]
    assert not unexpected, [(op.operation, op.status, op.error_code) for op in unexpected[:5]]


def test_m3_a_node_frozen_past_its_lease_hands_delivery_over_and_wakes_up_without_it(
        tmp_path: Path, postgres: PostgresServer, profile: Profile, ledger: Ledger) -> None:
    pauses = profile.pick(ci=1, full=5)
    rng = random.Random(0x3A13)
    moto = MotoServer(tmp_path).start()
    cluster = Cluster(tmp_path, postgres, moto)
    takeovers = []
    try:
        cluster.start(env={"SEARCHTRAIL_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)})
        trail_arn = cluster.logging_trail()
        load = cluster.traffic()
        for _ in range(pauses):
            load.start()
            wait_for(lambda: len(cluster.delivering()) == 1, seconds=TAKEOVER_SECONDS,
                     what="one node delivering")
            threading.Event().wait(rng.uniform(1.0, 3.0))
            frozen = cluster.delivering()[0]
            other = 1 - frozen
            cluster.nodes[frozen].process.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                wait_for(lambda: health(cluster.nodes[other]).get("delivering"),
                         seconds=LEASE_SECONDS + TAKEOVER_SECONDS,
                         what="the other node taking delivery over", step=0.1)
                takeovers.append(round(time.monotonic() - frozen_at, 2))
                # while it is frozen the other node serves and delivers
                aoss = cluster.client(other, "opensearchserverless")
                wait_for(lambda: _serves(aoss), seconds=TAKEOVER_SECONDS,
                         what="the other node serving while one is frozen", step=0.1)
            finally:
                cluster.nodes[frozen].process.send_signal(signal.SIGCONT)
            # awake, its next pass finds its session gone: it must not deliver any more
            wait_for(lambda: not health(cluster.nodes[frozen]).get("delivering"),
                     seconds=TAKEOVER_SECONDS, what="the woken node giving the lease up",
                     step=0.1)
            assert cluster.delivering() == [other]
            # ... nor tell /metrics of a backlog it no longer delivers; the other node does
            last_pass = "searchtrail_delivery_last_pass_timestamp_seconds"
            wait_for(lambda: cluster.nodes[frozen].metric(last_pass) == 0,
                     seconds=TAKEOVER_SECONDS, what="the woken node's backlog gone from /metrics",
                     step=0.1)
            assert trail_arn not in cluster.nodes[frozen].metrics()
            wait_for(lambda: cluster.nodes[other].metric(
                "searchtrail_delivery_lag_seconds", trail=trail_arn) is not None,
                seconds=TAKEOVER_SECONDS, what="the delivering node's backlog in /metrics",
                step=0.1)
            assert cluster.nodes[other].metric(last_pass) > 0
            load.stop()
        found = catch_up_and_check(cluster, trail_arn)
    finally:
        cluster.stop()
        moto.stop()
    ledger.add("M3", faults_injected=pauses, calls_made=found["calls_made"],
               records_checked=found["records_checked"], lost=found["lost"],
               duplicated=found["duplicated"], phantom=found["phantom"])
    ledger.note("M3", takeover_seconds=takeovers, lease_seconds=LEASE_SECONDS,
                log_files=found["log_files"], digests=found["digests"])
    assert all(taken >= LEASE_SECONDS / 2 for taken in takeovers), (
        "taken over before the lease ran out: a frozen node is not a dead one", takeovers)


def _serves(aoss: Any) -> bool:
    try:
        aoss.list_collections()
    except Exception:  # refused or 503 while the nodes reconnect
        return False
    return True
