"""(b) Server capacity: the same pre-signed requests, replayed by wrk, to each server under test.

Two mixes, each on a fresh server: `read` (ListCollections / BatchGetCollection alternating,
on a store of five collections) and `create_delete` (CreateSecurityPolicy of unique names, and
DeleteSecurityPolicy of names created 1,000 requests earlier). Per server and mix: a warm-up,
then, for each connection count (`wrk -t1 -c16`, `-c64`, `-c128` by default), `--runs` timed
runs of `--seconds`. A server's capacity is its best mean over the connection counts: group
commit needs concurrent calls, and a peer that does not scale simply keeps its best count.
For searchtrail, a fixed-count run then checks that the events table gained exactly one row
per 2xx answer.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from bench import (OPTIONAL_KINDS, base_parser, chosen_servers, count_list, latency_summary,
                   now_iso, ratio, target, write_result, rawclient, servers, wrk)
from bench.presigned import (CREATE_DELETE_LAG, Signer, create_delete_mix, delete_request,
                             read_mix, seed_requests, write_request_file)

MIXES = ("read", "create_delete")
RATE_GUESS = {"read": 8000, "create_delete": 4000}  # sizes the warm-up's pool of requests
MAX_POOL = 200_000  # requests signed per run (about 14 s of signing at ~70 us each)
QUICK_POOL = 4000
GOALS = {"read": 5000, "create_delete": 1500}
PEER_FACTOR = 4
SETTLED_SECONDS = 1.0  # unchanged this long: no earlier call in flight (a slow fsync is ~0.1 s)
SETTLE_DEADLINE_SECONDS = 30.0


class EventRows:
    """Read-only view of searchtrail's events table, for the rows == 2xx check."""

    def __init__(self, server: servers.Server) -> None:
        self.db = server.read_only_database()

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]

    def settled_count(self) -> int:
        """The count once the calls still in flight from an earlier run are recorded.

        A timed run ends with wrk closing connections whose requests the server has read and
        still records; with worker processes they land after wrk has gone.
        """
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        count, since = self.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)  # polling the table, bounded by the deadline
            latest = self.count()
            if latest != count:
                count, since = latest, time.monotonic()
            elif time.monotonic() - since >= SETTLED_SECONDS:
                return count
        raise RuntimeError(f"the events table kept growing for {SETTLE_DEADLINE_SECONDS:.0f} s "
                           "with no requests sent")

    def close(self) -> None:
        self.db.close()


# --- load generators: wrk, or the asyncio client when wrk is not installed --------------------

class WrkGenerator:
    name = "wrk"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.version = subprocess.run(["wrk", "-v"], capture_output=True,
                                      text=True).stdout.splitlines()[0].strip()

    def run(self, server: servers.Server, requests: list[bytes], seconds: float,
            connections: int, limit: int = 0, until: Callable[[], bool] | None = None) -> dict:
        request_file = self.workdir / "requests.bin"
        write_request_file(request_file, requests)
        counters = wrk.run(server.endpoint, request_file, self.workdir, seconds=seconds,
                           connections=connections, limit=limit, until=until)
        duration = counters["duration_us"] / 1e6
        return {"requests": counters["requests"], "seconds": duration,
                "non_2xx": counters["non_2xx_3xx"],
                "socket_errors": sum(counters[k] for k in ("connect_errors", "read_errors",
                                                           "write_errors", "timeouts")),
                "p50_ms": counters["p50_us"] / 1000, "p99_ms": counters["p99_us"] / 1000,
                "generator_cpu_s": counters["wrk_cpu_s"], "issued": counters["issued"],
                "answered_2xx": counters["lua_2xx"] if limit else None}


class AsyncioGenerator:
    name = "asyncio"
    version = "bench.rawclient (closed loop)"

    def run(self, server: servers.Server, requests: list[bytes], seconds: float,
            connections: int, limit: int = 0, until: Callable[[], bool] | None = None) -> dict:
        before = resource.getrusage(resource.RUSAGE_SELF)
        outcome = rawclient.closed_loop("127.0.0.1", server.port,
                                        requests[:limit] if limit else requests,
                                        connections, max_seconds=seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        latency = latency_summary(outcome.latencies)
        return {"requests": outcome.answered, "seconds": outcome.wall,
                "non_2xx": outcome.answered - outcome.ok,
                "socket_errors": outcome.statuses.get(0, 0),
                "p50_ms": latency["p50_ms"], "p99_ms": latency["p99_ms"],
                "generator_cpu_s": (after.ru_utime - before.ru_utime)
                + (after.ru_stime - before.ru_stime),
                "issued": sum(outcome.statuses.values()), "answered_2xx": outcome.ok}


Generator = WrkGenerator | AsyncioGenerator


def make_generator(choice: str, workdir: Path) -> Generator:
    if choice == "wrk" or (choice == "auto" and wrk.available()):
        return WrkGenerator(workdir)
    if choice == "auto":
        print(f"bench: {wrk.INSTALL_HINT}; falling back to the asyncio client, which may be "
              "the bottleneck", file=sys.stderr)
    return AsyncioGenerator()


# --- one mix against one server --------------------------------------------------------------

class MixRunner:
    """Builds each run's requests just before it (signatures stay fresh) and cleans up after."""

    def __init__(self, server: servers.Server, mix: str, lag: int) -> None:
        self.server, self.mix, self.lag = server, mix, lag
        self.signer = Signer(server.host_header, *server.credentials())
        self.prefix = ""
        self.pairs = 0

    def build(self, count: int) -> list[bytes]:
        if self.mix == "read":
            return read_mix(self.signer, count)
        self.prefix, self.pairs = f"cd{uuid.uuid4().hex[:8]}", max(1, count // 2)
        first, run = create_delete_mix(self.signer, self.prefix, self.pairs, self.lag)
        outcome = rawclient.closed_loop("127.0.0.1", self.server.port, first, 16)
        if outcome.ok != len(first):
            raise RuntimeError(f"{self.server.kind}: pre-creating {len(first)} policies got "
                               f"statuses {outcome.statuses}")
        return run

    def clean_up(self, issued: int) -> None:
        """Delete the policies a create/delete run left: created but not yet deleted."""
        if self.mix != "create_delete":
            return
        deleted = min(issued // 2, self.pairs)
        created = min((issued + 1) // 2, self.pairs)
        leftovers = [delete_request(self.signer, self.prefix, k)
                     for k in range(deleted, self.lag + created)]
        rawclient.closed_loop("127.0.0.1", self.server.port, leftovers, 16)


def pool_size(rate: float, seconds: float, cap: int) -> int:
    return min(cap, int(rate * seconds * 1.5) + 2000)


def measure(server: servers.Server, mix: str, generator: Generator,
            args: argparse.Namespace) -> tuple[list[dict], dict | None]:
    """Timed rows for this server and mix, and (searchtrail) the fixed-count check."""
    runner = MixRunner(server, mix, args.lag)
    if mix == "read":
        outcome = rawclient.closed_loop("127.0.0.1", server.port, seed_requests(runner.signer), 1)
        if outcome.ok != outcome.answered:
            raise RuntimeError(f"{server.kind}: seeding the read store got {outcome.statuses}")

    warm_up = runner.build(pool_size(RATE_GUESS[mix], args.warmup, args.max_pool))
    warm = generator.run(server, warm_up, args.warmup, args.connections[0])
    runner.clean_up(warm["issued"])
    rate = max(50.0, warm["requests"] / max(warm["seconds"], 1e-3))
    rows = []
    for connections, run in ((c, r) for c in args.connections for r in range(1, args.runs + 1)):
        requests = runner.build(pool_size(rate, args.seconds, args.max_pool))
        cpu_before = server.cpu_seconds()
        result = generator.run(server, requests, args.seconds, connections)
        server_cpu = server.cpu_seconds() - cpu_before
        runner.clean_up(result["issued"])
        seconds = result["seconds"] or 1e-9
        rate = max(rate, result["requests"] / seconds)  # more connections may answer faster
        rows.append({
            "server": server.kind, "mix": mix, "run": run, "generator": generator.name,
            "connections": connections, "seconds": round(seconds, 2),
            "requests": result["requests"],
            "req_per_s": round(result["requests"] / seconds, 1),
            "ok_per_s": round((result["requests"] - result["non_2xx"]) / seconds, 1),
            "non_2xx": result["non_2xx"], "socket_errors": result["socket_errors"],
            "p50_ms": _round(result["p50_ms"]), "p99_ms": _round(result["p99_ms"]),
            "server_cpu_pct": round(100 * server_cpu / seconds, 1),
            # what a call costs this host: set sittings on different hosts side by side
            "server_cpu_us_per_call": (round(server_cpu / result["requests"] * 1e6)
                                       if result["requests"] else None),
            "generator_cpu_pct": round(100 * result["generator_cpu_s"] / seconds, 1),
            "distinct_requests": len(requests),
            "requests_repeated": result["issued"] > len(requests),
        })
        print(f"bench capacity: {server.kind} {mix} -c{connections} run {run}: "
              f"{rows[-1]['req_per_s']} req/s, {rows[-1]['server_cpu_us_per_call']} µs server "
              f"CPU per call, non-2xx {rows[-1]['non_2xx']}", file=sys.stderr)
    if not server.kind.startswith("searchtrail"):
        return rows, None
    return rows, fixed_count_check(server, runner, generator, args)


def fixed_count_check(server: servers.Server, runner: MixRunner, generator: Generator,
                      args: argparse.Namespace) -> dict:
    """Send exactly N requests; the events table must gain exactly N rows, one per 2xx."""
    count = args.fixed_count
    requests = runner.build(count)[:count]
    rows = EventRows(server)
    try:
        before = rows.settled_count()
        result = generator.run(server, requests, max(60.0, count / 200), args.connections[0],
                               limit=len(requests), until=lambda: rows.count() >= before + count)
        added = rows.count() - before
    finally:
        rows.close()
    runner.clean_up(len(requests))
    ok = result["answered_2xx"]
    return {"server": server.kind, "mix": runner.mix, "requests": len(requests),
            "answered_2xx": ok, "non_2xx": result["non_2xx"], "rows_added": added,
            "rows_equal_2xx": added == ok == len(requests)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def mean_rate(rows: list[dict], kind: str, mix: str, key: str,
              connections: int) -> float | None:
    values = [r[key] for r in rows
              if r["server"] == kind and r["mix"] == mix and r["connections"] == connections]
    return round(sum(values) / len(values), 1) if values else None


def capacity(rows: list[dict], kind: str, mix: str, key: str) -> tuple[float | None, int | None]:
    """A server's best mean rate over the connection counts, and that count."""
    means = [(mean_rate(rows, kind, mix, key, c), c)
             for c in sorted({r["connections"] for r in rows})]
    means = [(rate, c) for rate, c in means if rate is not None]
    return max(means) if means else (None, None)


def summarise(rows: list[dict], checks: list[dict], kinds: list[str], mixes: list[str],
              counts: list[int]) -> tuple[list[dict], list[dict]]:
    ratios, targets = [], []
    ours_too = "searchtrail" in kinds
    for mix in mixes:
        if ours_too:
            best, at = capacity(rows, "searchtrail", mix, "ok_per_s")
            targets.append(target(f"{mix} mix: searchtrail durably recorded calls/s (2xx), "
                                  f"capacity (best of -c {'/'.join(map(str, counts))}: -c{at})",
                                  best, GOALS[mix]))
            if len(counts) > 1:
                targets.append(target(f"{mix} mix: the same at {counts[0]} connections",
                                      mean_rate(rows, "searchtrail", mix, "ok_per_s", counts[0]),
                                      GOALS[mix]))
        for peer in (k for k in kinds if k != "searchtrail"):
            for key in ("req_per_s", "ok_per_s"):
                for connections in counts:
                    ours = mean_rate(rows, "searchtrail", mix, key, connections)
                    theirs = mean_rate(rows, peer, mix, key, connections)
                    ratios.append({"mix": mix, "metric": key, "connections": connections,
                                   "peer": peer, "searchtrail": ours, "peer_value": theirs,
                                   "ratio": ratio(ours, theirs)})
                (ours, ours_at), (theirs, theirs_at) = (capacity(rows, "searchtrail", mix, key),
                                                        capacity(rows, peer, mix, key))
                ratios.append({"mix": mix, "metric": key, "connections": "capacity",
                               "peer": peer, "searchtrail": ours, "peer_value": theirs,
                               "ratio": ratio(ours, theirs),
                               "at_connections": f"{ours_at} / {theirs_at}"})
                if ours_too and key == "req_per_s" and peer not in OPTIONAL_KINDS:
                    targets.append(target(f"{mix} mix: searchtrail / {peer} req/s, capacity "
                                          f"against capacity (-c{ours_at} / -c{theirs_at})",
                                          ratios[-1]["ratio"], PEER_FACTOR))
        if servers.WORKERS_KIND in kinds:
            for peer in (k for k in kinds if not k.startswith("searchtrail")):
                (ours, ours_at), (theirs, theirs_at) = (
                    capacity(rows, servers.WORKERS_KIND, mix, "req_per_s"),
                    capacity(rows, peer, mix, "req_per_s"))
                targets.append(target(f"{mix} mix: {servers.WORKERS_LABEL} / "
                                      f"{peer} req/s, capacity against capacity "
                                      f"(-c{ours_at} / -c{theirs_at})",
                                      ratio(ours, theirs), PEER_FACTOR))
    if ours_too:
        non_2xx = sum(r["non_2xx"] + r["socket_errors"]
                      for r in rows if r["server"].startswith("searchtrail"))
        targets.append(target("searchtrail non-2xx answers and socket errors in timed runs",
                              non_2xx, 0, higher_is_better=False))
    for check in checks:
        server = "" if check["server"] == "searchtrail" else f" ({check['server']})"
        targets.append({"target": f"{check['mix']} mix{server}: events rows added == 2xx answers "
                                  f"({check['requests']} requests sent)",
                        "value": check["rows_added"], "goal": check["answered_2xx"],
                        "met": check["rows_equal_2xx"]})
    return ratios, targets


# `16,64,128` → [16, 64, 128]; the first is also the warm-up's and the check's.
connection_counts = count_list(1, "connection counts", "16,64,128")


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("capacity", __doc__)
    parser.add_argument("--seconds", type=float, help="length of each timed run (10; quick 1)")
    parser.add_argument("--runs", type=int, help="timed runs per server and mix (2; quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds (5; quick 1)")
    parser.add_argument("--connections", type=connection_counts,
                        help="wrk connection counts to run, comma-separated (16,64,128; "
                             "quick 16,64); the first is used for the warm-up and the check")
    parser.add_argument("--fixed-count", type=int, help="requests in the rows == 2xx check "
                                                         "(20000; quick 400)")
    parser.add_argument("--mixes", default=",".join(MIXES))
    parser.add_argument("--generator", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--workdir", type=Path, help="keep server data and logs here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (1.0 if quick else 10.0)
    args.runs = args.runs or (1 if quick else 2)
    args.warmup = args.warmup or (1.0 if quick else 5.0)
    args.fixed_count = args.fixed_count or (400 if quick else 20_000)
    args.connections = args.connections or ([16, 64] if quick else [16, 64, 128])
    args.max_pool = QUICK_POOL if quick else MAX_POOL
    args.lag = 100 if quick else CREATE_DELETE_LAG  # still far above -c
    args.fixed_count -= args.fixed_count % 2  # create/delete pairs
    kinds = chosen_servers(args.servers)
    mixes = [m for m in args.mixes.split(",") if m]
    if set(mixes) - set(MIXES):
        parser.error(f"--mixes: choose from {', '.join(MIXES)}")

    started = now_iso()
    rows, checks, described = [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        generator = make_generator(args.generator, workdir)
        for mix in mixes:
            for kind in kinds:
                with servers.running(kind, workdir / f"{kind}-{mix}-{time.time_ns()}") as server:
                    described[kind] = server.describe()
                    server_rows, check = measure(server, mix, generator, args)
                    rows.extend(server_rows)
                    if check:
                        checks.append(check)
    described["load_generator"] = {"name": generator.name, "version": generator.version,
                                   "connections": args.connections, "threads": 1}
    ratios, targets = summarise(rows, checks, kinds, mixes, args.connections)
    notes = ["req_per_s counts every answer; ok_per_s only 2xx. moto 5.2.5 has no "
             "DeleteSecurityPolicy (HTTP 500), so half its create_delete answers are errors.",
             f"create_delete uses network policies, {CREATE_DELETE_LAG * 2} requests from create "
             "to delete, in two Regions: searchtrail enforces AWS's quotas (50 encryption / 500 "
             "network policies per account and Region).",
             "Server and load generator share the machine; CPU is % of one core."]
    write_result(args.out, "capacity", started, described, rows + checks, targets, ratios, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
