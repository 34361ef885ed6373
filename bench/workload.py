"""(a) The aoss workload through boto3 (8 threads) against searchtrail, moto and ministack in turn.

Three phases, bounded in count and by a deadline: create (CreateSecurityPolicy + CreateCollection
per item), read (a weighted mix of BatchGetCollection, ListCollections, GetSecurityPolicy,
ListSecurityPolicies, ListTagsForResource) and delete (DeleteCollection + DeleteSecurityPolicy).
No retries, so every error is counted. boto3's own CPU shares the machine with the server.
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench import (base_parser, chosen_servers, latency_summary, now_iso, ratio, servers,
                   write_result)
from bench.presigned import encryption_policy

# searchtrail enforces AWS's quota of 50 encryption policies per account and Region, so the
# created items are spread over Regions, at most PER_REGION in each.
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2",
           "ap-northeast-1", "us-east-2", "ca-central-1", "sa-east-1", "eu-north-1")
PER_REGION = 40
READ_WEIGHTS = {"batch_get_collection": 3, "list_collections": 1, "get_security_policy": 1,
                "list_security_policies": 1, "list_tags_for_resource": 1}
PHASES = ("create", "read", "delete")


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code") or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code if code and not code.isdigit() else f"HTTP{status or code}"
    return type(exc).__name__


class Workload:
    """One run of the three phases against one server."""

    def __init__(self, server: servers.Server, creates: int, reads: int, concurrency: int,
                 max_seconds: float, seed: int = 1) -> None:
        self.server, self.creates, self.reads = server, creates, reads
        self.concurrency, self.deadline = concurrency, time.monotonic() + max_seconds
        self.regions = REGIONS[:max(1, math.ceil(creates / PER_REGION))]
        if creates > PER_REGION * len(REGIONS):
            raise SystemExit(f"--creates is at most {PER_REGION * len(REGIONS)}")
        self.random = random.Random(seed)
        self.prefix = "wl" + uuid.uuid4().hex[:6]
        self.samples: list[tuple[str, str, float, str | None]] = []
        self.walls: dict[str, float] = {}
        self.skipped = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self.config = Config(retries={"total_max_attempts": 1}, connect_timeout=30,
                             read_timeout=30, max_pool_connections=concurrency * 2)

    def client(self, region: str):  # type: ignore[no-untyped-def]
        """One boto3 session per thread (sessions are not thread-safe), one client per Region."""
        clients = getattr(self._local, "clients", None)
        if clients is None:
            access_key, secret = self.server.credentials()
            self._local.session = boto3.session.Session(
                aws_access_key_id=access_key, aws_secret_access_key=secret)
            clients = self._local.clients = {}
        if region not in clients:
            clients[region] = self._local.session.client(
                "opensearchserverless", region_name=region, endpoint_url=self.server.endpoint,
                config=self.config)
        return clients[region]

    def call(self, phase: str, region: str, operation: str, **params: Any) -> dict | None:
        method = getattr(self.client(region), operation)
        started = time.perf_counter()
        try:
            response, error = method(**params), None
        except (ClientError, BotoCoreError) as exc:
            response, error = None, error_code(exc)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.samples.append((phase, operation, elapsed, error))
        return response

    def phase(self, pool: ThreadPoolExecutor, name: str, tasks: list[Callable[[], None]],
              deadline: float) -> None:
        def guarded(task: Callable[[], None]) -> None:
            if time.monotonic() > deadline:
                with self._lock:
                    self.skipped += 1
                return
            task()

        started = time.perf_counter()
        list(pool.map(guarded, tasks))
        self.walls[name] = time.perf_counter() - started

    def run(self) -> None:
        created: dict[int, tuple[str, str, str]] = {}  # item -> (region, id, arn)
        region_of = lambda i: self.regions[i % len(self.regions)]  # noqa: E731

        def create(i: int) -> Callable[[], None]:
            def task() -> None:
                region, collection = region_of(i), f"{self.prefix}-c{i}"
                self.call("create", region, "create_security_policy", name=f"{self.prefix}-e{i}",
                          type="encryption", policy=encryption_policy(collection, region),
                          description="bench workload")
                response = self.call("create", region, "create_collection", name=collection,
                                     type="SEARCH", tags=[{"key": "bench", "value": self.prefix}])
                if response:
                    detail = response["createCollectionDetail"]
                    with self._lock:
                        created[i] = (region, detail["id"], detail["arn"])
            return task

        def read(operation: str, rng: random.Random) -> Callable[[], None]:
            def task() -> None:
                items = sorted(created)
                if not items:
                    return
                region, _, arn = created[rng.choice(items)]
                in_region = [created[i][1] for i in items if created[i][0] == region]
                if operation == "batch_get_collection":
                    self.call("read", region, operation, ids=rng.sample(in_region,
                                                                        min(5, len(in_region))))
                elif operation == "list_collections":
                    self.call("read", region, operation)
                elif operation == "get_security_policy":
                    item = rng.choice([i for i in items if created[i][0] == region])
                    self.call("read", region, operation, name=f"{self.prefix}-e{item}",
                              type="encryption")
                elif operation == "list_security_policies":
                    self.call("read", region, operation, type="encryption")
                else:
                    self.call("read", region, operation, resourceArn=arn)
            return task

        def delete(i: int) -> Callable[[], None]:
            def task() -> None:
                if i in created:
                    self.call("delete", region_of(i), "delete_collection", id=created[i][1])
                self.call("delete", region_of(i), "delete_security_policy",
                          name=f"{self.prefix}-e{i}", type="encryption")
            return task

        operations, weights = zip(*READ_WEIGHTS.items())
        plan = [(self.random.choices(operations, weights)[0], random.Random(self.random.random()))
                for _ in range(self.reads)]
        with ThreadPoolExecutor(self.concurrency) as pool:
            # Clients are built before timing starts (tens of ms each): one per thread and Region.
            barrier = threading.Barrier(self.concurrency)
            list(pool.map(lambda _: ([self.client(r) for r in self.regions],
                                     barrier.wait(timeout=60)), range(self.concurrency)))
            self.phase(pool, "create", [create(i) for i in range(self.creates)], self.deadline)
            self.phase(pool, "read", [read(op, rng) for op, rng in plan], self.deadline)
            self.wait_active(created)
            # Deletes get their own grace period, so whatever was made is cleaned up.
            self.phase(pool, "delete", [delete(i) for i in range(self.creates)],
                       max(self.deadline, time.monotonic()) + 60)

    def wait_active(self, created: dict[int, tuple[str, str, str]]) -> None:
        """Untimed: poll until no collection is CREATING (searchtrail refuses to delete those,
        as AWS does), so the delete phase measures deletes rather than conflicts."""
        pending = {(region, cid) for region, cid, _ in created.values()}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for region in {r for r, _ in pending}:
                ids = [cid for r, cid in pending if r == region]
                for start in range(0, len(ids), 100):
                    details = self.client(region).batch_get_collection(
                        ids=ids[start:start + 100])["collectionDetails"]
                    pending -= {(region, d["id"]) for d in details if d["status"] != "CREATING"}
            if pending:
                time.sleep(0.2)  # collections become ACTIVE after a fixed delay; bounded above

    def rows(self) -> list[dict]:
        rows = []
        for phase in PHASES:
            in_phase = [s for s in self.samples if s[0] == phase]
            wall = self.walls.get(phase) or 1e-9
            groups = [("all", in_phase)] + [
                (op, [s for s in in_phase if s[1] == op])
                for op in sorted({s[1] for s in in_phase})]
            for operation, samples in groups:
                errors: dict[str, int] = {}
                for *_, error in samples:
                    if error:
                        errors[error] = errors.get(error, 0) + 1
                codes = ", ".join(f"{k}={v}" for k, v in sorted(errors.items()))
                rows.append({"server": self.server.kind, "phase": phase, "operation": operation,
                             "calls": len(samples), "errors": sum(errors.values()),
                             "error_codes": codes,
                             "calls_per_s": round(len(samples) / wall, 1),
                             **latency_summary(s[2] for s in samples)})
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("workload", __doc__)
    parser.add_argument("--creates", type=int, help="policy + collection pairs (200; quick 16)")
    parser.add_argument("--reads", type=int, help="read calls (2400; quick 80)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, help="deadline of the create and read "
                                                          "phases per server (180; quick 30)")
    parser.add_argument("--workdir", type=Path, help="keep server data and logs here")
    args = parser.parse_args(argv)
    creates = args.creates or (16 if args.quick else 200)
    reads = args.reads or (80 if args.quick else 2400)
    max_seconds = args.max_seconds or (30.0 if args.quick else 180.0)
    kinds = chosen_servers(args.servers)

    started = now_iso()
    rows, described, skipped = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-workload-") as scratch:
        workdir = args.workdir or Path(scratch)
        for kind in kinds:
            with servers.running(kind, workdir / f"{kind}-{time.time_ns()}") as server:
                described[kind] = server.describe()
                workload = Workload(server, creates, reads, args.concurrency, max_seconds)
                workload.run()
                rows.extend(workload.rows())
                skipped[kind] = workload.skipped
                print(f"bench workload: {kind}: " + ", ".join(
                    f"{r['phase']} {r['calls_per_s']} calls/s" for r in rows
                    if r["server"] == kind and r["operation"] == "all"), file=sys.stderr)
    described["client"] = {"version": f"boto3 {boto3.__version__}",
                           "botocore": botocore.__version__, "threads": args.concurrency,
                           "creates": creates, "reads": reads}

    def rate(kind: str, phase: str) -> float | None:
        return next((r["calls_per_s"] for r in rows if r["server"] == kind
                     and r["phase"] == phase and r["operation"] == "all"), None)

    ratios = [{"phase": phase, "metric": "calls_per_s", "peer": peer,
               "searchtrail": rate("searchtrail", phase), "peer_value": rate(peer, phase),
               "ratio": ratio(rate("searchtrail", phase), rate(peer, phase))}
              for phase in PHASES for peer in kinds
              if peer != "searchtrail" and "searchtrail" in kinds]
    notes = [f"{creates} items spread over {math.ceil(creates / PER_REGION)} Region(s), at most "
             f"{PER_REGION} per Region (searchtrail enforces 50 encryption policies per account "
             "and Region).",
             "boto3 in the same process signs and parses every call, on the same 2 cores as the "
             "server: this measures the workload as a client sees it, not server capacity.",
             "Tasks skipped by the deadline, per server: " + ", ".join(
                 f"{k}={v}" for k, v in skipped.items())]
    write_result(args.out, "workload", started, described, rows, [], ratios, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
