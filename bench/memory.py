"""Server memory (VmRSS, VmHWM) against the number of stored events: idle after start, after
LookupEvents over every case, after a burst of calls, and after console downloads of every
event of the last 90 days (JSON, then CSV); stores of 0, 1M and 10M events. Then under
sustained load on a fresh store: rounds of the create/delete and read mixes for minutes, a
logging trail delivering them, the events being the server's own. With --servers
searchtrail-postgres the stores are built on a private PostgreSQL server too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import base_parser, count_list, now_iso, target, write_result
from bench import servers
from bench.bulkload import (LARGE, Store, default_data_dir, provisioned_store, store_kinds,
                            store_label)
from bench.delivery import wait_until_delivered
from bench.lookup import LookupClient, cases
from bench.presigned import (CREATE_DELETE_LAG, Signer, create_delete_mix, delete_request,
                             read_mix, seed_requests)
from bench.rawclient import closed_loop
from tests.e2e.console_http import ROOT_PASSWORD, ConsoleUser, set_console_password

GOAL_MB = 200.0
DOWNLOAD_FORMATS = ("json", "csv")
DOWNLOADED = re.compile(r"Download complete: ([\d,]+) event")
SOAK_PAIRS = 10_000  # create/delete pairs in one round of sustained load (then as many reads)
SOAK_TRAIL, SOAK_BUCKET = "bench-soak-trail", "bench-soak-bucket"


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of one process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = round(int(rest.split()[0]) / 1024, 1)
    return values


def snapshot(server: servers.Server, phase: str, events: int, kind: str) -> dict[str, Any]:
    status = proc_status(server.pid)
    return {"server": kind, "store_events": events, "phase": phase, "rss_mb": status["VmRSS"],
            "hwm_mb": status["VmHWM"], "tree_rss_mb": round(server.rss_bytes() / 2**20, 1)}


def run_size(events: int, root: Path, *, lookup_rounds: int, burst: int,
             kind: str = "searchtrail", log: Any = print) -> tuple[list, dict]:
    if kind == "searchtrail" and events == 0:
        # the empty store must be empty: earlier runs' calls were recorded in it
        shutil.rmtree(default_data_dir(events, root).parent, ignore_errors=True)
    with provisioned_store(kind, events, root) as store:
        return _measure(store, kind, lookup_rounds=lookup_rounds, burst=burst, log=log)


def _measure(store: Store, kind: str, *, lookup_rounds: int, burst: int,
             log: Any) -> tuple[list, dict]:
    events, rows = store.events, []
    # the server finds a PostgreSQL store in the data dir's searchtrail.toml
    with servers.running("searchtrail", store.data_dir.parent) as server:
        rows.append(snapshot(server, "idle after start", events, kind))
        client = LookupClient(server)
        try:
            for _ in range(lookup_rounds):
                for case in cases(store):
                    _, _, token = client.page(case)
                    if token:
                        client.page(case, token)
        finally:
            client.close()
        rows.append(snapshot(server, "after lookups", events, kind))
        access_key, secret = server.credentials()
        requests = read_mix(Signer(server.host_header, access_key, secret), burst)
        outcome = closed_loop("127.0.0.1", server.port, requests, connections=32)
        row = snapshot(server, "after a burst", events, kind)
        row["burst_calls"] = burst
        row["burst_ok"] = outcome.ok
        row["burst_calls_per_second"] = (round(outcome.answered / outcome.wall)
                                         if outcome.wall else None)
        rows.append(row)
        set_console_password(str(server.data_dir), ROOT_PASSWORD)
        for fmt in DOWNLOAD_FORMATS:
            download = console_download(server, fmt)
            row = snapshot(server, f"after a {fmt.upper()} download", events, kind)
            rows.append({**row, **download})
            log(f"memory: {kind}, {events:,} events, {fmt.upper()} download: "
                f"{download['download_events']:,} events, {download['download_mb']} MB in "
                f"{download['download_seconds']} s")
        described = server.describe()
    for row in rows:
        log(f"memory: {kind}, {events:,} events, {row['phase']}: RSS {row['rss_mb']} MB, "
            f"peak {row['hwm_mb']} MB")
    return rows, described


def run_soak(kind: str, root: Path, minutes: float, *, pairs: int = SOAK_PAIRS,
             log: Any = print) -> dict[str, Any]:
    """RSS under sustained load on a fresh store: rounds of ``pairs`` create/delete pairs
    (every policy deleted by the round's end) and as many read-mix calls, for ``minutes``, a
    multi-Region trail delivering every call to a local bucket; RSS read after each round."""
    folder = root / "soak"
    shutil.rmtree(folder, ignore_errors=True)
    with provisioned_store(kind, 0, folder) as store, servers.running(
            "searchtrail", store.data_dir.parent, ("--delivery-interval", "1")) as server:
        made = subprocess.run([sys.executable, "-m", "searchtrail.cli", "buckets", "create",
                               SOAK_BUCKET, "--data-dir", str(server.data_dir)],
                              capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"cannot create the soak's bucket: {made.stderr.strip()}")
        cloudtrail = server.client("cloudtrail")
        cloudtrail.create_trail(Name=SOAK_TRAIL, S3BucketName=SOAK_BUCKET,
                                IsMultiRegionTrail=True, EnableLogFileValidation=True)
        cloudtrail.start_logging(Name=SOAK_TRAIL)
        signer = Signer(server.host_header, *server.credentials())
        _all_answered(server, seed_requests(signer), connections=1)
        started, calls, samples, round_number = time.monotonic(), 0, [], 0
        while round_number == 0 or time.monotonic() - started < minutes * 60:
            prefix = f"soak{round_number}"
            first, run = create_delete_mix(signer, prefix, pairs)
            rest = [delete_request(signer, prefix, pairs + i)
                    for i in range(CREATE_DELETE_LAG)]  # the round's last live policies
            for requests, connections in ((first, 16), (run, 64), (rest, 16),
                                          (read_mix(signer, 2 * pairs), 64)):
                calls += _all_answered(server, requests, connections)
            round_number += 1
            samples.append(proc_status(server.pid)["VmRSS"])
            log(f"memory: {kind}, sustained load, round {round_number}: {calls:,} calls, "
                f"RSS {samples[-1]} MB")
        seconds = time.monotonic() - started
        wait_until_delivered(server)
        row = snapshot(server, "after sustained load", _count(server, "events"), kind)
        delivered = _count(server, "log_files WHERE delivered_at IS NOT NULL")
    return {**row, "soak_minutes": round(seconds / 60, 1), "soak_calls": calls,
            "soak_calls_per_second": round(calls / seconds), "soak_rss_mb_by_round": samples,
            "soak_log_files_delivered": delivered}


def _all_answered(server: servers.Server, requests: list[bytes], connections: int) -> int:
    outcome = closed_loop("127.0.0.1", server.port, requests, connections=connections,
                          max_seconds=600)
    if outcome.ok != len(requests):
        raise RuntimeError(f"sustained load: {outcome.ok} of {len(requests)} calls answered 2xx")
    return outcome.ok


def _count(server: servers.Server, rows: str) -> int:
    db = server.read_only_database()
    try:
        return db.execute(f"SELECT count(*) FROM {rows}").fetchone()[0]
    finally:
        db.close()


def console_download(server: servers.Server, fmt: str) -> dict[str, Any]:
    """The root user downloads every event of the last 90 days in its Region from the
    console, read as fast as it comes: events (as the console counted them), MB, seconds."""
    user = ConsoleUser(server.endpoint)
    if user.sign_in(ROOT_PASSWORD).status_code != 303:
        raise RuntimeError("cannot sign in to the console as root")
    export_id = f"bench-{fmt}"
    size, started = 0, time.perf_counter()
    with user.get(f"/console/events/export?range=90d&attr=&format={fmt}&export={export_id}",
                  stream=True) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - started
    shown = user.get(f"/console/events/export/progress?export={export_id}").text
    found = DOWNLOADED.search(shown)
    if found is None:
        raise RuntimeError(f"the {fmt} download did not end complete: {shown.strip()}")
    count = int(found.group(1).replace(",", ""))
    return {"download_format": fmt, "download_events": count,
            "download_mb": round(size / 1e6, 1), "download_seconds": round(seconds, 2),
            "download_events_per_second": round(count / seconds) if seconds else None}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("memory", __doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,1000000,10000000",
                        type=count_list(0, "store sizes (events)", "0,1000000,10000000"),
                        help="comma-separated store sizes (events); --quick uses 20000")
    parser.add_argument("--soak-minutes", type=float, default=3.0,
                        help="minutes of sustained load on a fresh store, RSS read after each "
                             "round (default 3; 0 skips it; --quick runs one round)")
    args = parser.parse_args(argv)
    if args.soak_minutes < 0:
        parser.error(f"--soak-minutes: expected 0 or more minutes, got {args.soak_minutes}")
    sizes = [20_000] if args.quick else args.sizes
    if args.skip_large:
        sizes = [size for size in sizes if size <= LARGE]
    kinds = store_kinds(args.servers)
    started = now_iso()
    rows: list[dict[str, Any]] = []
    described: dict = {}
    targets = []
    for kind in kinds:
        kind_rows = []
        for size in sizes:
            size_rows, described[kind] = run_size(size, args.out.resolve().parent,
                                                  lookup_rounds=1 if args.quick else 3,
                                                  burst=2_000 if args.quick else 30_000,
                                                  kind=kind)
            kind_rows += size_rows
        if args.soak_minutes or args.quick:
            kind_rows.append(run_soak(kind, args.out.resolve().parent,
                                      0 if args.quick else args.soak_minutes,
                                      pairs=500 if args.quick else SOAK_PAIRS))
        rows += kind_rows
        targets.append(target(f"server peak RSS (VmHWM, MB) with up to {max(sizes):,} stored "
                              f"events{store_label(kind)}",
                              max(row["hwm_mb"] for row in kind_rows), GOAL_MB,
                              higher_is_better=False))
    write_result(args.out, "memory", started, described, rows, targets,
                 notes=["VmRSS/VmHWM of the server process (/proc/<pid>/status); tree_rss_mb "
                        "adds any child processes"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
