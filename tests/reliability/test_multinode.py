"""Several nodes on one PostgreSQL store (M1, M2): kill -9 the node that delivers, or crash
PostgreSQL itself, under load on both nodes; every acknowledged call keeps its one record, every
record lands in exactly one log file, the digest chain never forks, both validators agree."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.functional.server import ServerProcess
from tests.functional.trails import chain_closed, counts, read_bucket, validate_both, wait_for
from tests.peers import MOTO_CREDENTIALS, MotoServer
from tests.postgres import PostgresServer, start_postgres
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

    def start(self) -> "Cluster":
        url = self.postgres.database()
        args = ["--s3-endpoint-url", self.moto.endpoint, *FAST_DELIVERY]
        for number in range(2):
            node = ServerProcess(self.root / f"node{number}", env=dict(MOTO_CREDENTIALS),
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
                self.history.call(aoss, "list_collections")
            else:
                rules = [{"ResourceType": "collection", "Resource": [f"collection/m{number}"]}]
                self.history.call(aoss, "create_security_policy", name=f"m{number}",
                                  type="network",
                                  policy=json.dumps([{"Rules": rules, "AllowFromPublic": True}]))

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
    records = stored_records(node.data_dir, node.database_url)
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
    return {"calls_made": len(ops), **delivery.counts(), "log_files": len(delivered.log_keys),
            "digests": len(digests)}


def test_m1_kill_9_the_delivering_node_of_two_and_another_takes_over(
        tmp_path: Path, postgres: PostgresServer, profile: Profile, ledger: Ledger) -> None:
    kills = profile.pick(ci=2, full=10)
    rng = random.Random(0x3A11)
    moto = MotoServer(tmp_path).start()
    cluster = Cluster(tmp_path, postgres, moto)
    takeovers = []
    try:
        cluster.start()
        trail_arn = cluster.logging_trail()
        load = cluster.traffic()
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
    finally:
        cluster.stop()
        moto.stop()
    ledger.add("M1", kills=kills, calls_made=found["calls_made"],
               records_checked=found["records_checked"], lost=found["lost"],
               duplicated=found["duplicated"], phantom=found["phantom"])
    ledger.note("M1", takeover_seconds=takeovers, log_files=found["log_files"],
                digests=found["digests"])
    assert found["calls_made"] > 100 * kills, "too little traffic to mean anything"


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


def _serves(aoss: Any) -> bool:
    try:
        aoss.list_collections()
    except Exception:  # refused or 503 while the nodes reconnect
        return False
    return True
