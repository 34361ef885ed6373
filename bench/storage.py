"""Store bytes per recorded call: a real server answers N calls of each `bench.capacity` mix,
and the store's size by table is read before and after (SQLite's pages from `dbstat`,
PostgreSQL's relations with their indexes and TOAST). Sizes disks; no target.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import base_parser, now_iso, write_result
from bench import servers
from bench.bulkload import store_kinds
from bench.presigned import Signer, create_delete_mix, read_mix, seed_requests
from bench.rawclient import closed_loop

PREFIX = "disk"  # the create/delete mix's policy names
SQLITE_SIZES = "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
POSTGRES_SIZES = ("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE n.nspname = current_schema() AND c.relkind = 'r'")


def store_size(server: servers.Server) -> tuple[int, dict[str, int]]:
    """(events stored, bytes by table or index) as the server's store holds them now."""
    postgres = server.kind == "searchtrail-postgres"
    db = server.read_only_database()
    try:
        sizes = dict(db.execute(POSTGRES_SIZES if postgres else SQLITE_SIZES).fetchall())
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()
    return events, {name: int(size) for name, size in sizes.items()}


def measure(server: servers.Server, calls: int, kind: str) -> list[dict[str, Any]]:
    signer = Signer(server.host_header, *server.credentials())
    closed_loop("127.0.0.1", server.port, seed_requests(signer), connections=1)
    rows = []
    for mix in ("read", "create_delete"):
        if mix == "read":
            requests = read_mix(signer, calls)
        else:
            first, requests = create_delete_mix(signer, PREFIX, calls // 2)
            closed_loop("127.0.0.1", server.port, first, connections=1)
        events_before, before = store_size(server)
        outcome = closed_loop("127.0.0.1", server.port, requests, connections=16,
                              max_seconds=600)
        events_after, after = store_size(server)
        recorded = events_after - events_before
        grown = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        rows.append({
            "server": kind, "mix": mix, "calls": len(requests), "answered_2xx": outcome.ok,
            "events_recorded": recorded,
            "bytes_per_call": round(sum(grown.values()) / recorded) if recorded else None,
            "bytes_per_call_by_table": {name: round(size / recorded)
                                        for name, size in sorted(grown.items())
                                        if size and recorded}})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("storage", __doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000,
                        help="calls of each mix (default 20,000; --quick 2,000)")
    args = parser.parse_args(argv)
    calls = 2_000 if args.quick else args.calls
    if calls < 2:
        parser.error("--calls must be at least 2")
    started = now_iso()
    rows: list[dict[str, Any]] = []
    described = {}
    for kind in store_kinds(args.servers):
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as work, \
                servers.running(kind, Path(work)) as server:
            kind_rows = measure(server, calls, kind)
            described[kind] = server.describe()
        for row in kind_rows:
            print(f"storage: {kind}, {row['mix']}: {row['bytes_per_call']:,} bytes per recorded "
                  f"call {row['bytes_per_call_by_table']}")
        rows += kind_rows
    write_result(args.out, "storage", started, described, rows, [],
                 notes=["bytes the store grew by per recorded call, by table or index; "
                        "SQLite from dbstat (pages in use, WAL included), PostgreSQL from "
                        "pg_total_relation_size"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
