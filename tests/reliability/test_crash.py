"""Crash and durability (R1, R2, R5, R7): kill -9 / SIGTERM under load, WAL + FULL, append-only."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.functional.server import ServerProcess
from tests.reliability.checkers import (check_atomicity, check_store, records_by_tid,
                                         sql_refused, stored_records)
from tests.reliability.history import History, LoadThreads, Op
from tests.reliability.ledger import Ledger, Profile

pytestmark = pytest.mark.reliability

COLLECTION_KEYS = json.dumps({"Rules": [{"ResourceType": "collection",
                                         "Resource": ["collection/c*"]}], "AWSOwnedKey": True})
MAX_OPS_PER_ROUND = 5_000  # per thread: the loops are bounded by count as well as by time
HEALTHY_SECONDS = 10.0
EXIT_SECONDS = 30.0
LOOPBACK_SECONDS = 0.05  # a request sent this long before SIGTERM has reached the server


def network_policy(subject: str) -> str:
    return json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": [subject]}],
                        "AllowFromPublic": True}])


@dataclass
class Worker:
    """One client thread's own resources, kept across server incarnations."""

    index: int
    rng: random.Random
    made: int = 0
    policies: dict[str, str] = field(default_factory=dict)      # name → policyVersion
    collections: dict[str, str] = field(default_factory=dict)   # name → id

    def fresh(self, prefix: str) -> str:
        self.made += 1
        return f"{prefix}{self.index}-{self.made}"


class Load:
    """K threads sending the mixed workload (70% reads, 20% writes, 10% denied or invalid).

    Clients are made once: every incarnation of the server listens on the same port.
    """

    def __init__(self, history: History, server: ServerProcess, threads: int, seed: int,
                 denied_key: tuple[str, str]):
        self.history = history
        self.workers = [Worker(i, random.Random(seed * 1000 + i)) for i in range(threads)]
        wrap = history.wrap
        self.clients = [{
            "root": wrap(server.client("opensearchserverless", validate=False)),
            "denied": wrap(server.client("opensearchserverless", key=denied_key)),
            "stranger": wrap(server.client("opensearchserverless",
                                           key=("AKIAUNKNOWN000000000", "x" * 40))),
        } for _ in self.workers]
        self._threads = LoadThreads(lambda pair: self._one(*pair),
                                    list(zip(self.workers, self.clients)), MAX_OPS_PER_ROUND)

    def start(self) -> None:
        self._threads.start()

    def stop(self) -> None:
        self._threads.stop()

    def _one(self, w: Worker, clients: dict[str, Any]) -> None:
        call, root, roll = self.history.call, clients["root"], w.rng.random()
        if roll < 0.70:
            pick = w.rng.randrange(4)
            if pick == 0:
                call(root, "list_collections")
            elif pick == 1:
                names = list(w.collections)[:5] or ["cmissing"]
                call(root, "batch_get_collection", names=names)
            elif pick == 2:
                name = w.rng.choice([*w.policies, "missing"])
                call(root, "get_security_policy", name=name, type="network")
            else:
                call(root, "list_security_policies", type="network")
        elif roll < 0.90:
            self._write(w, root, w.rng.randrange(5))
        else:
            pick = w.rng.randrange(3)
            if pick == 0:  # an IAM user without any policy: AccessDenied, recorded, no effect
                name = w.fresh("d")
                call(clients["denied"], "create_security_policy", subject=f"policy/{name}",
                     name=name, type="network", description="denied",
                     policy=network_policy(f"collection/x{name}"))
            elif pick == 1:  # invalid name: ValidationException, recorded
                call(root, "create_security_policy", name="Not A Name!", type="network",
                     policy="{}")
            else:  # unknown access key: refused before authentication, never recorded
                call(clients["stranger"], "list_collections")

    def _write(self, w: Worker, root: Any, pick: int) -> None:
        call = self.history.call
        if pick == 0 or (pick in (1, 2) and not w.policies):
            name = w.fresh("p")
            op = call(root, "create_security_policy", subject=f"policy/{name}", name=name,
                      type="network", description="v0",
                      policy=network_policy(f"collection/x{name}"))
            if op.succeeded:
                w.policies[name] = op.result["securityPolicyDetail"]["policyVersion"]
        elif pick == 1:
            name = w.rng.choice(list(w.policies))
            description = f"v{w.rng.randrange(1000)}"
            op = call(root, "update_security_policy", subject=f"policy/{name}", name=name,
                      type="network", description=description, policyVersion=w.policies[name])
            if op.succeeded:
                w.policies[name] = op.result["securityPolicyDetail"]["policyVersion"]
        elif pick == 2:
            name = w.rng.choice(list(w.policies))
            op = call(root, "delete_security_policy", subject=f"policy/{name}", name=name,
                      type="network")
            if op.outcome != "fail":  # gone, or in doubt: either way not this worker's any more
                del w.policies[name]
        elif pick == 3 or not w.collections:
            name = w.fresh("c")
            op = call(root, "create_collection", subject=f"collection/{name}", name=name)
            if op.succeeded:
                w.collections[name] = op.result["createCollectionDetail"]["id"]
        else:
            name = w.rng.choice(list(w.collections))
            op = call(root, "delete_collection", subject=f"collection/{name}",
                      id=w.collections[name])
            if op.succeeded:
                del w.collections[name]


def effect(op: Op) -> tuple[str, Any] | None:
    """What a mutating op leaves behind when it was applied (None: the subject is gone)."""
    if op.subject is None:
        return None
    if op.operation in ("CreateSecurityPolicy", "UpdateSecurityPolicy"):
        return op.subject, op.params["description"]
    if op.operation == "CreateCollection":
        return op.subject, "present"
    return op.subject, None  # DeleteSecurityPolicy, DeleteCollection


def observer(server: ServerProcess):  # type: ignore[no-untyped-def]
    aoss = server.client("opensearchserverless")

    def pages(method: str, member: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for _ in range(1_000):  # bounded: a paging bug must not hang the test
            page = getattr(aoss, method)(**params)
            items += page[member]
            if not page.get("nextToken"):
                return items
            params["nextToken"] = page["nextToken"]
        raise AssertionError(f"{method} never stopped paging")

    def observe(_: list) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for item in pages("list_security_policies", "securityPolicySummaries", type="network"):
            state[f"policy/{item['name']}"] = item.get("description")
        for item in pages("list_collections", "collectionSummaries"):
            if item["status"] != "DELETING":  # a delete that was applied
                state[f"collection/{item['name']}"] = "present"
        return state

    return observe


def integrity(server: ServerProcess) -> str:
    conn = sqlite3.connect(server.data_dir / "searchtrail.sqlite3")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def prepare(server: ServerProcess, history: History) -> tuple[str, str]:
    """The encryption policy collections need, and an IAM user with no permissions at all."""
    aoss = history.wrap(server.client("opensearchserverless"))
    iam = history.wrap(server.client("iam"))
    assert history.call(aoss, "create_security_policy", name="collections", type="encryption",
                        policy=COLLECTION_KEYS).succeeded
    assert history.call(iam, "create_user", UserName="nobody").succeeded
    key = history.call(iam, "create_access_key", UserName="nobody")
    assert key.succeeded
    return key.result["AccessKey"]["AccessKeyId"], key.result["AccessKey"]["SecretAccessKey"]


def restart(server: ServerProcess) -> tuple[ServerProcess, float]:
    began = time.monotonic()
    fresh = ServerProcess(server.data_dir, port=server.port, env=server.env, args=server.args)
    fresh.start()
    return fresh, time.monotonic() - began


def verify(server: ServerProcess, history: History) -> tuple[Any, Any, str]:
    records = stored_records(server)
    return (check_store(history.ops, records),
            check_atomicity(history.ops, records, effect=effect, observe=observer(server)),
            integrity(server))


def test_r1_kill_9_under_load_loses_nothing(tmp_path: Path, profile: Profile,
                                            ledger: Ledger) -> None:
    kills = profile.pick(ci=6, full=20)
    threads = profile.pick(ci=4, full=8)
    rng = random.Random(0xC0FFEE)
    history = History()
    server = ServerProcess(tmp_path / "data").start()
    healthy: list[float] = []
    failures: list[str] = []
    corrupt = 0
    try:
        load = Load(history, server, threads, seed=1, denied_key=prepare(server, history))
        for round_ in range(kills):
            load.start()
            threading.Event().wait(rng.uniform(0.5, 3.0))  # the nemesis: a random kill moment
            server.kill9()
            load.stop()
            server, seconds = restart(server)
            healthy.append(seconds)
            store, atomicity, check = verify(server, history)
            corrupt += check != "ok"
            failures += [f"round {round_}: {r}" for r in (store, atomicity) if not r.ok]
            failures += [f"round {round_}: integrity_check {check!r}"] if check != "ok" else []
    finally:
        server.stop()
    ops = history.ops
    outcomes = {kind: sum(op.outcome == kind for op in ops) for kind in ("ok", "fail", "info")}
    ledger.add("R1", calls_made=len(ops), kills=kills, corrupt_stores=corrupt,
               unexpected_5xx=sum(op.outcome == "ok" and op.status >= 500 for op in ops),
               **store.counts())
    ledger.note("R1", threads=threads, outcomes=outcomes,
                error_codes=dict(Counter(op.error_code for op in ops if op.error_code)),
                atomicity_subjects=atomicity.records_checked,
                healthy_seconds_max=round(max(healthy), 2),
                healthy_seconds_median=round(statistics.median(healthy), 2))
    assert not failures, "\n".join(failures)
    assert max(healthy) <= HEALTHY_SECONDS
    assert outcomes["ok"] > 100 * kills // 2, f"too little load to mean anything: {outcomes}"
    assert outcomes["info"] + outcomes["fail"] > 0, "no kill ever hit a call"


def health(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(server.endpoint + "/_searchtrail/health", timeout=5) as answer:
        return json.loads(answer.read())


def test_r2_the_running_server_writes_with_wal_and_full_sync(tmp_path: Path,
                                                             ledger: Ledger) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.client("opensearchserverless").list_collections()  # the writer has committed
        reported = health(server)
        database = server.data_dir / "searchtrail.sqlite3"
        header = database.read_bytes()[:100]
        wal_exists = database.with_name(database.name + "-wal").exists()
        server.stop()
        server = ServerProcess(server.data_dir).start()  # again: the settings are per connection
        again = health(server)
    finally:
        server.stop()
    ledger.note("R2", journal_mode=reported["journal_mode"], synchronous=reported["synchronous"])
    # health reports the pragmas of the writer's own connection, the only one that writes events
    for answer in (reported, again):
        assert answer["journal_mode"] == "wal"
        assert answer["synchronous"] in (2, 3)  # FULL or EXTRA; NORMAL loses commits on power loss
    assert header[18] == header[19] == 2  # the file itself is in WAL mode (read/write version 2)
    assert wal_exists


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_r5_sigterm_under_load_finishes_in_flight_calls(tmp_path: Path, profile: Profile,
                                                       ledger: Ledger, workers: int) -> None:
    """With --workers the supervisor gets the SIGTERM and passes it on to each worker."""
    stops = profile.pick(ci=3, full=10)
    rng = random.Random(0x5157)
    history = History()
    server = ServerProcess(tmp_path / "data", args=["--workers", str(workers)]).start()
    scenario = "R5" if workers == 1 else "R5 (--workers 2)"
    exits: list[float] = []
    signalled: list[float] = []
    failures: list[str] = []
    try:
        load = Load(history, server, profile.pick(ci=4, full=8), seed=2,
                    denied_key=prepare(server, history))
        for round_ in range(stops):
            load.start()
            threading.Event().wait(rng.uniform(0.5, 2.0))  # stop at a random moment of the load
            began = time.monotonic()
            signalled.append(time.time())
            server.process.send_signal(signal.SIGTERM)
            try:
                code = server.process.wait(timeout=EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            exits.append(time.monotonic() - began)
            load.stop()
            server.stop()  # closes its log; kills it if it did not exit
            if code not in (0, -signal.SIGTERM):  # uvicorn re-raises SIGTERM once it has shut down
                failures.append(f"round {round_}: exit code {code} after {exits[-1]:.1f}s")
            server, _ = restart(server)
            store, atomicity, check = verify(server, history)
            failures += [f"round {round_}: {r}" for r in (store, atomicity) if not r.ok]
            if check != "ok":
                failures.append(f"round {round_}: integrity_check {check!r}")
    finally:
        server.stop()
    ops = history.ops
    joined = records_by_tid(stored_records(server))
    # a call the server committed but never answered was dropped mid-flight, not finished
    dropped = [op for op in ops if op.outcome == "info" and joined.get(op.tid)]
    # written to the socket well before the signal, so the server had it: it must answer (any
    # status, 5xx too). Not botocore's before-send: a loaded host can hold the thread longer
    # than LOOPBACK_SECONDS before the write, and a write after the server closed the idle
    # connection is refused, as any server's keep-alive close may refuse it.
    in_flight = [op for op in ops for at in signalled
                 if op.on_wire is not None and op.on_wire + LOOPBACK_SECONDS < at < op.end]
    unanswered = [op for op in in_flight if op.outcome != "ok"]
    assert all(op.on_wire for op in ops if op.outcome == "ok")  # every answered op was written
    ledger.add(scenario, calls_made=len(ops), kills=stops, **store.counts(),
               unexpected_5xx=sum(op.outcome == "ok" and op.status >= 500 for op in ops))
    ledger.note(scenario, exit_seconds_max=round(max(exits), 2),
                outcomes={k: sum(op.outcome == k for op in ops) for k in ("ok", "fail", "info")},
                answered_5xx_codes=sorted({op.error_code for op in ops
                                           if op.outcome == "ok" and op.status >= 500}),
                dropped_after_commit=len(dropped), in_flight_at_signal=len(in_flight),
                in_flight_unanswered=len(unanswered))
    assert not failures, "\n".join(failures)
    assert max(exits) <= EXIT_SECONDS
    assert not dropped, [f"{op.operation} {op.tid}: {op.error}" for op in dropped[:10]]
    assert not unanswered, [f"{op.operation} {op.tid}: {op.error}" for op in unanswered[:10]]
    assert store.records_checked > 100 * stops // 2, "too little load to mean anything"


def test_r7_events_are_append_only(tmp_path: Path, ledger: Ledger) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        history = History()
        prepare(server, history)
        database = server.data_dir / "searchtrail.sqlite3"
        before = _event_rows(database)
        refused = sql_refused(database, EVENT_TAMPERING)  # with the server running
        calls = _every_operation(server, history)
        _lifecycle(server, history)
        after = _event_rows(database)
    finally:
        server.stop()
    ledger.add("R7", calls_made=len(history.ops), tamper_cases=len(refused),
               tamper_detected=sum(refused.values()))
    ledger.note("R7", refused=sorted(k for k, v in refused.items() if v))
    assert all(refused.values()), {k: v for k, v in refused.items() if not v}
    assert before, "no events to protect"
    # no API call changed or removed an earlier row: the old table is a prefix of the new one
    assert after[:len(before)] == before
    assert len(after) > len(before) + calls // 2


def _event_rows(database) -> list[tuple]:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT seq, account, region, event_time, record FROM events "
                            "ORDER BY seq").fetchall()
    finally:
        conn.close()


EVENT_TAMPERING = (
    "UPDATE events SET record = '{}'",
    "UPDATE events SET event_time = event_time + 1",
    "DELETE FROM events",
    "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)",
    # REPLACE deletes the old row without firing delete triggers: refused by migration 0003
    "INSERT OR REPLACE INTO events SELECT seq, account, region, event_time, '{}' FROM events",
    "REPLACE INTO events (seq, account, region, event_time, record) "
    "SELECT seq, account, region, event_time, '{}' FROM events LIMIT 1",
    "UPDATE event_lookup SET event_time = 0",
    "DELETE FROM event_lookup",
    # retention's mark (migration 0011) never moves over records younger than a day
    "UPDATE retention SET pruned_through = (SELECT max(seq) FROM events) - 1",
    "DELETE FROM retention",
)


READ_VERBS = ("Get", "List", "Describe", "Lookup", "Search", "Simulate", "Generate", "BatchGet")


def _every_operation(server: ServerProcess, history: History) -> int:
    """Every operation of every served API that is not a read, once with no input: none may
    touch the events (and none may answer 5xx)."""
    calls = 0
    for service in ("opensearchserverless", "cloudtrail", "iam", "sts"):
        client = history.wrap(server.client(service, validate=False))
        for method, operation in client.meta.method_to_api_mapping.items():
            if operation.startswith(READ_VERBS):
                continue
            op = history.call(client, method)
            calls += 1
            assert op.outcome == "ok" and op.status < 500, (method, op)
    return calls


def _lifecycle(server: ServerProcess, history: History) -> None:
    """The calls that do delete or change things, with real arguments."""
    call = history.call
    aoss = history.wrap(server.client("opensearchserverless"))
    cloudtrail = history.wrap(server.client("cloudtrail"))
    iam = history.wrap(server.client("iam"))
    steps: list[tuple[Any, str, dict[str, Any]]] = [
        (aoss, "create_security_policy", {"name": "gone", "type": "network",
                                          "policy": network_policy("collection/gone")}),
        (aoss, "delete_security_policy", {"name": "gone", "type": "network"}),
        (aoss, "delete_security_policy", {"name": "collections", "type": "encryption"}),
        (cloudtrail, "create_trail", {"Name": "t", "S3BucketName": "no-such-bucket"}),
        (cloudtrail, "delete_trail", {"Name": "t"}),
        (iam, "delete_user", {"UserName": "nobody"}),
    ]
    for client, method, params in steps:
        op = call(client, method, **params)
        assert op.outcome == "ok" and op.status < 500, op
