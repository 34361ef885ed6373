"""Server memory (VmRSS, VmHWM) against the number of stored events: idle after start, after
LookupEvents over every case, after a burst of calls, and after console downloads of every
event of the last 90 days (JSON, then CSV); stores of 0, 1M and 10M events. With --servers
searchtrail-postgres the stores are built on a private PostgreSQL server too.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import base_parser, count_list, now_iso, target, write_result
from bench import servers
from bench.bulkload import (LARGE, Store, default_data_dir, provisioned_store, store_kinds,
                            store_label)
from bench.lookup import LookupClient, cases
from bench.presigned import Signer, read_mix
from bench.rawclient import closed_loop
from tests.e2e.console_http import ROOT_PASSWORD, ConsoleUser, set_console_password

GOAL_MB = 200.0
DOWNLOAD_FORMATS = ("json", "csv")
DOWNLOADED = re.compile(r"Download complete: ([\d,]+) event")


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
                        help="comma-separated store sizes (events); --quick uses 0,20000")
    args = parser.parse_args(argv)
    sizes = [0, 20_000] if args.quick else args.sizes
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
