"""Latency at a paced 1,000 calls/s (open loop) on the signed read mix, per server.

Requests are pre-signed, then released on a fixed schedule by bench.rawclient.open_loop over
up to 64 keep-alive connections; each latency runs from the request's scheduled send time, so
a stall is charged to every request that queued behind it (no coordinated omission).
With `--login-profiles N`, a thread also creates and deletes IAM login profiles through boto3,
N of each a second, while the read mix is measured (each has a password to hash).
"""

from __future__ import annotations

import contextlib
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from bench import (base_parser, chosen_servers, host_stall_probe, latency_summary, now_iso,
                   rawclient, servers, target, write_result)
from bench.presigned import Signer, read_mix, seed_requests

P99_GOAL_MS = 20.0
LOGIN_PROFILE_USERS = 4
PASSWORD = "Bench-Pa55word!"


@contextlib.contextmanager
def login_profile_writes(server: servers.Server, rate: float) -> Iterator[list[int]]:
    """While inside: CreateLoginProfile then DeleteLoginProfile, ``rate`` pairs a second, on a
    thread of its own (boto3, one client); yields the count of calls answered so far."""
    answered = [0]
    if not rate:
        yield answered
        return
    import boto3
    from botocore.config import Config

    key, secret = server.credentials()
    iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id=key, aws_secret_access_key=secret,
                       config=Config(retries={"max_attempts": 1}))
    for n in range(LOGIN_PROFILE_USERS):
        iam.create_user(UserName=f"bench-login-{n}")
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.wait(1 / rate):
            user = f"bench-login-{n % LOGIN_PROFILE_USERS}"
            iam.create_login_profile(UserName=user, Password=PASSWORD)
            iam.delete_login_profile(UserName=user)
            answered[0] += 2
            n += 1

    thread = threading.Thread(target=churn, name="bench-login-profiles", daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join(timeout=30)


def measure(server: servers.Server, rate: float, seconds: float, warmup: float,
            connections: int, login_profiles: float = 0.0) -> dict:
    signer = Signer(server.host_header, *server.credentials())
    seeded = rawclient.closed_loop("127.0.0.1", server.port, seed_requests(signer), 1)
    if seeded.ok != seeded.answered:
        raise RuntimeError(f"{server.kind}: seeding the read store got {seeded.statuses}")
    if warmup:
        rawclient.open_loop("127.0.0.1", server.port, read_mix(signer, int(rate * warmup)), rate,
                            connections, max_seconds=warmup * 3 + 10)
    requests = read_mix(signer, int(rate * seconds))
    with login_profile_writes(server, login_profiles) as iam_calls:
        cpu_before = server.cpu_seconds()
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        # The deadline bounds a server that cannot keep up: what is not sent by then is
        # counted.
        outcome = rawclient.open_loop("127.0.0.1", server.port, requests, rate, connections,
                                      max_seconds=seconds * 2 + 10)
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = server.cpu_seconds() - cpu_before
    wall = outcome.wall or 1e-9
    client_cpu = (client_after.ru_utime - client_before.ru_utime
                  + client_after.ru_stime - client_before.ru_stime)
    service = latency_summary(outcome.service_times)
    lags = latency_summary(outcome.pacer_lags)
    return {"server": server.kind, "target_rate": rate, "seconds": round(wall, 2),
            "requests": len(requests), "answered": outcome.answered,
            "achieved_rate": round(outcome.answered / wall, 1),
            "non_2xx": outcome.answered - outcome.ok, "socket_errors": outcome.statuses.get(0, 0),
            "not_sent": outcome.not_sent,
            **latency_summary(outcome.latencies),
            "service_p50_ms": service["p50_ms"], "service_p99_ms": service["p99_ms"],
            "pacer_lag_p99_ms": lags["p99_ms"],
            "server_cpu_pct": round(100 * server_cpu / wall, 1),
            "client_cpu_pct": round(100 * client_cpu / wall, 1),
            **({"login_profile_calls": iam_calls[0]} if login_profiles else {})}


# Our servers whose p99 is held to the goal, as the targets name them.
SERVER_LABELS = {"searchtrail": "searchtrail",
                 servers.WORKERS_KIND: servers.WORKERS_LABEL}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("latency", __doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per second (1000)")
    parser.add_argument("--seconds", type=float, help="measured seconds for searchtrail "
                                                      "(30; quick 1)")
    parser.add_argument("--peer-seconds", type=float, help="measured seconds for each peer "
                                                           "(10; quick 1)")
    parser.add_argument("--warmup", type=float, help="paced warm-up seconds (3; quick 0.5)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workdir", type=Path, help="keep server data and logs here")
    parser.add_argument("--login-profiles", type=float, default=0.0, metavar="N",
                        help="meanwhile create and delete N IAM login profiles a second "
                             "(default 0: the read mix alone)")
    args = parser.parse_args(argv)
    if args.login_profiles < 0:
        parser.error("--login-profiles must be 0 or more")
    seconds = args.seconds or (1.0 if args.quick else 30.0)
    peer_seconds = args.peer_seconds or (1.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 3.0)
    kinds = chosen_servers(args.servers)

    started = now_iso()
    # Before any server starts: does this host itself stall the CPU now and then?
    host = host_stall_probe(1.0 if args.quick else 10.0)
    print(f"bench latency: host CPU probe: {host['stall_episodes']} stall episodes in "
          f"{host['seconds']:g} s, longest {host['longest_stall_ms']} ms, worst slowdown "
          f"{host['worst_slowdown']}x", file=sys.stderr)
    rows, described = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch:
        workdir = args.workdir or Path(scratch)
        for kind in kinds:
            with servers.running(kind, workdir / f"{kind}-{time.time_ns()}") as server:
                described[kind] = server.describe()
                ours = kind.startswith("searchtrail")
                row = measure(server, args.rate, seconds if ours else peer_seconds,
                              warmup, args.connections, args.login_profiles)
                rows.append(row)
                print(f"bench latency: {kind} at {args.rate:g}/s: p50 {row['p50_ms']} ms, "
                      f"p99 {row['p99_ms']} ms, achieved {row['achieved_rate']}/s",
                      file=sys.stderr)
    described["load_generator"] = {"name": "bench.rawclient open loop",
                                   "connections": args.connections}
    targets = [target(f"{SERVER_LABELS.get(row['server'], row['server'])} p99 at {args.rate:g} "
                      "calls/s (ms, from scheduled send)",
                      row["p99_ms"], P99_GOAL_MS, higher_is_better=False)
               for row in rows if row["server"] in SERVER_LABELS]
    ratios = [{"metric": "p99_ms (lower is better)", "peer": row["server"],
               "searchtrail": ours["p99_ms"], "peer_value": row["p99_ms"],
               "ratio": round(ours["p99_ms"] / row["p99_ms"], 2)
               if ours["p99_ms"] and row["p99_ms"] else None}
              for ours in rows if ours["server"] == "searchtrail"
              for row in rows if not row["server"].startswith("searchtrail")]
    notes = ["A peer that cannot sustain the rate shows it as a growing p99 (requests queue "
             "behind the schedule) and a lower achieved_rate.",
             "pacer_lag is the client's own lateness (scheduled -> released to a connection); "
             "a high value means the client, not the server, was late. service_* is send -> "
             "answer, without the wait for a free connection.",
             "host_stall_probe: a fixed unit of CPU work every ~2 ms before any server starts; "
             "a stall episode is 3+ probes running 2.5x+ slower than their median within 50 ms "
             "of each other. A host with such episodes stalls every server through them, which "
             "sets the tail (bench/README.md, \"The tail at 1,000 calls/s\")."]
    write_result(args.out, "latency", started, described, rows, targets, ratios, notes,
                 host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
