"""What the fail-closed scenarios share (F1 disk full, R4 I/O errors): a mixed load of creates,
deletes and reads, and the verdict on everything stored, applied and delivered afterwards."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass
from typing import Any

from tests.functional.trails import (Delivered, chain_closed, counts, local_s3, read_bucket,
                                     searchtrail_cli, validate_both, wait_for)
from tests.reliability.checkers import (CheckResult, DigestFile, check_atomicity,
                                        check_delivery, check_store, read_digests,
                                        records_by_tid, stored_records)
from tests.reliability.history import History, Op, tid_of
from tests.reliability.ledger import Ledger

# The answers a call may get while the store cannot write: modelled, and nothing applied.
FAIL_CLOSED = {("ServiceUnavailableException", 503), ("InternalServerException", 500)}


@dataclass(frozen=True)
class MixedLoad:
    """A scenario's calls, on resources named ``<prefix>-...``: a trail with validation to a
    local bucket, then creates, deletes and reads in turn."""

    prefix: str

    @property
    def trail(self) -> str:
        """The trail's name, and its bucket's."""
        return f"{self.prefix}-trail"

    def network_policy(self) -> str:
        return json.dumps([{"Rules": [{"ResourceType": "collection",
                                       "Resource": [f"collection/{self.prefix}-*"]}],
                            "AllowFromPublic": True}])

    def start(self, server: Any, history: History, *, kept: list[str] = ()) -> list[Op]:
        """Create the bucket and the trail, start logging, and create the encryption policy
        collections need and the ``kept`` network policies. Returns the setup calls, the
        trail's creation first and StartLogging second."""
        made = searchtrail_cli("buckets", "create", self.trail, "--data-dir",
                               str(server.data_dir))
        assert made.returncode == 0, made.stderr
        aoss = history.wrap(server.client("opensearchserverless", validate=False))
        cloudtrail = history.wrap(server.client("cloudtrail", validate=False))
        encryption = json.dumps({"Rules": [{"ResourceType": "collection",
                                            "Resource": [f"collection/{self.prefix}-*"]}],
                                 "AWSOwnedKey": True})
        setup = [history.call(cloudtrail, "create_trail", Name=self.trail,
                              S3BucketName=self.trail, EnableLogFileValidation=True),
                 history.call(cloudtrail, "start_logging", Name=self.trail),
                 history.call(aoss, "create_security_policy", name=f"{self.prefix}-encryption",
                              type="encryption", policy=encryption)]
        setup += [history.call(aoss, "create_security_policy", subject=f"policy/{name}",
                               name=name, type="network", policy=self.network_policy())
                  for name in kept]
        assert all(op.succeeded for op in setup), [op for op in setup if not op.succeeded]
        return setup

    def call(self, history: History, aoss: Any, batch: str, i: int, *,
             delete_from: list[str] | None = None) -> Op:
        """Call ``i`` of ``batch``: a policy create, a collection create, a delete and a read,
        in turn. Deletes aim at the policy created two calls before, or at ``delete_from``
        (policies that must survive when the store refuses writes)."""
        kind = i % 4
        name = f"{self.prefix}-{batch}-{i}"
        if kind == 0:
            return history.call(aoss, "create_security_policy", subject=f"policy/{name}",
                                name=name, type="network", policy=self.network_policy())
        if kind == 1:
            return history.call(aoss, "create_collection", subject=f"collection/{name}",
                                name=name)
        if kind == 2:
            name = (delete_from[(i // 4) % len(delete_from)] if delete_from
                    else f"{self.prefix}-{batch}-{i - 2}")
            return history.call(aoss, "delete_security_policy", subject=f"policy/{name}",
                                name=name, type="network")
        return history.call(aoss, "list_collections")


@dataclass
class Verdict:
    store: CheckResult
    atomicity: CheckResult
    delivery: CheckResult
    integrity: str
    aws: subprocess.CompletedProcess
    delivered: Delivered
    digests: list[DigestFile]
    recorded_5xx: int  # records stored for calls answered with a 5xx
    unexpected_5xx: int  # answers neither a 2xx/4xx nor a fail-closed 5xx, or no answer

    def record(self, ledger: Ledger, scenario: str, *, faults_injected: int,
               calls_made: int) -> None:
        ledger.add(scenario, faults_injected=faults_injected, calls_made=calls_made,
                   unexpected_5xx=self.unexpected_5xx, **self.store.counts())
        ledger.add(scenario, **{k: v for k, v in self.delivery.counts().items()
                                if k != "records_checked"})
        ledger.note(scenario, recorded_5xx=self.recorded_5xx,
                    atomicity_problems=len(self.atomicity.problems),
                    delivered_checked=self.delivery.records_checked,
                    integrity_check=self.integrity, validate_logs=counts(self.aws.stdout))

    def assert_holds(self) -> None:
        assert (self.recorded_5xx, self.unexpected_5xx) == (0, 0)
        assert self.store.ok, self.store
        assert self.atomicity.ok, self.atomicity
        assert self.delivery.ok, self.delivery
        assert self.integrity == "ok"
        digests, logs = len(self.digests), len(self.delivered.log_keys)
        assert self.aws.returncode == 0 and counts(self.aws.stdout) == (
            f"{digests}/{digests}", f"{logs}/{logs}"), self.aws.stdout + self.aws.stderr


def stop_and_judge(server: Any, history: History, load: MixedLoad, setup: list[Op], *,
                   closing_seconds: float = 30) -> Verdict:
    """Stop the trail, wait (up to ``closing_seconds``) for its final digest, validate it with
    the AWS CLI, read what is live, stop the server, then check its store against every call
    made."""
    aoss = history.wrap(server.client("opensearchserverless", validate=False))
    cloudtrail = history.wrap(server.client("cloudtrail", validate=False))
    stopped = history.call(cloudtrail, "stop_logging", Name=load.trail)
    assert stopped.succeeded, stopped
    wait_for(lambda: chain_closed(server, load.trail), seconds=closing_seconds,
             what="the trail's final digest")
    delivered = read_bucket(local_s3(server), load.trail)
    aws, _ = validate_both(server, setup[0].result["TrailARN"],
                           s3_endpoint=server.endpoint + "/_s3", region="us-east-1")
    live = ({f"policy/{name}" for name in listed_names(history, aoss, "list_security_policies",
                                                  "securityPolicySummaries", type="network")}
            | {f"collection/{name}" for name in listed_names(history, aoss, "list_collections",
                                                      "collectionSummaries")})
    digests = read_digests(local_s3(server), load.trail, delivered.digest_keys)
    server.stop()

    ops = history.ops
    records = stored_records(server)
    conn = sqlite3.connect(f"file:{server.data_dir / 'searchtrail.sqlite3'}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    logged = {op.tid for op in ops if setup[1].seq < op.seq < stopped.seq}  # while logging
    mine = records_by_tid(records)
    return Verdict(
        store=check_store(ops, records),
        atomicity=check_atomicity(
            ops, records, effect=_effect,
            observe=lambda subjects: {s: "present" for s in subjects if s in live}),
        delivery=check_delivery([r for r in records if tid_of(r.get("userAgent")) in logged],
                                delivered, digests, stored_ids={r["eventID"] for r in records}),
        integrity=integrity, aws=aws, delivered=delivered, digests=digests,
        recorded_5xx=sum(len(mine.get(op.tid, [])) for op in ops
                         if op.outcome == "ok" and op.status >= 500),
        unexpected_5xx=sum(op.outcome != "ok" or (
            op.status >= 500 and (op.error_code, op.status) not in FAIL_CLOSED) for op in ops))


def listed_names(history: History, client: Any, method: str, member: str,
                 **params: Any) -> set[str]:
    """Every name a List* operation returns, page by page, 100 a page (the models' largest);
    bounded at 100,000 names, far above what a full-size run leaves (a few thousand)."""
    names: set[str] = set()
    params = {"maxResults": 100, **params}
    for _ in range(1_000):
        op = history.call(client, method, **params)
        assert op.succeeded, op
        names |= {item["name"] for item in op.result[member]}
        if not op.result.get("nextToken"):
            return names
        params["nextToken"] = op.result["nextToken"]
    raise AssertionError(f"{method} did not finish paging")


def _effect(op: Op) -> tuple[str, str | None] | None:
    """What a mutating call leaves behind when it is applied: its subject present, or gone."""
    if op.subject is None:
        return None
    return op.subject, None if op.operation == "DeleteSecurityPolicy" else "present"
