"""LookupEvents latency (p50/p99) per lookup attribute and time range, first and second page,
against a real server on bulk-loaded stores (1M and 10M events; ``--quick``: 20k).

Requests are signed before the clock starts and sent one at a time over one keep-alive
connection as raw HTTP, so the figures are the server's answer time plus a loopback hop.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench import base_parser, count_list, latency_summary, now_iso, target, write_result
from bench import servers
from bench.bulkload import LARGE, Store, provisioned_store, store_kinds, store_label
from searchtrail.audit.query import LOOKUP_ATTRIBUTES

TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
CONTENT_TYPE = "application/x-amz-json-1.1"
USER_AGENT = "searchtrail-bench/lookup"
GOAL_P99_MS = 20.0
HOUR, DAY = 3600, 86400
READ_TIMEOUT = 60.0


def time_ranges(anchor: int) -> dict[str, tuple[int, int] | None]:
    """Ranges anchored at the store's newest loaded event (so a reused store keeps its shape)."""
    return {
        "none": None,
        "last hour": (anchor - HOUR, anchor),
        "last day": (anchor - DAY, anchor),
        "last 30 days": (anchor - 30 * DAY, anchor),
        "10 min, 60 days ago": (anchor - 60 * DAY, anchor - 60 * DAY + 600),
    }


@dataclass(frozen=True)
class Case:
    attribute: str  # "(none)" for no lookup attribute
    value: str | None
    range_name: str
    time_range: tuple[int, int] | None

    def params(self, next_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"MaxResults": 50}
        if self.value is not None:
            params["LookupAttributes"] = [{"AttributeKey": self.attribute,
                                           "AttributeValue": self.value}]
        if self.time_range:
            params["StartTime"], params["EndTime"] = self.time_range
        if next_token:
            params["NextToken"] = next_token
        return params


def cases(store: Store) -> list[Case]:
    """Every attribute (with its most common value in the queried partition) × every range."""
    values = store.manifest["values"]
    ranges = time_ranges(store.newest)
    chosen: list[tuple[str, str | None]] = [("(none)", None)]
    chosen += [(attr, values[attr]["common"]) for attr in LOOKUP_ATTRIBUTES if attr in values]
    return [Case(attr, value, name, span)
            for attr, value in chosen for name, span in ranges.items()]


class LookupClient:
    """Signed LookupEvents over one raw keep-alive HTTP/1.1 connection."""

    def __init__(self, server: servers.Server, region: str = "us-east-1") -> None:
        access_key, secret = server.credentials()
        self.host = server.host_header
        self.region = region
        self._auth = SigV4Auth(Credentials(access_key, secret), "cloudtrail", region)
        self._sock = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def sign(self, params: dict[str, Any]) -> bytes:
        body = json.dumps(params, separators=(",", ":")).encode()
        request = AWSRequest(method="POST", url=f"http://{self.host}/", data=body,
                             headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET,
                                      "User-Agent": USER_AGENT,
                                      "amz-sdk-invocation-id": str(uuid.uuid4())})
        self._auth.add_auth(request)
        head = [f"POST / HTTP/1.1\r\nHost: {self.host}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in request.headers.items())
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(head).encode() + body

    def roundtrip(self, raw: bytes) -> tuple[int, bytes, float]:
        """(status, body, seconds from the first byte sent to the last byte read)."""
        started = time.perf_counter()
        self._sock.sendall(raw)
        status_line = self._reader.readline()
        length = 0
        while True:
            line = self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = self._reader.read(length)
        elapsed = time.perf_counter() - started
        return int(status_line.split(b" ", 2)[1]), body, elapsed

    def page(self, case: Case, token: str | None = None) -> tuple[float, int, str | None]:
        """(seconds, events on the page, next token) of one LookupEvents call."""
        status, body, elapsed = self.roundtrip(self.sign(case.params(token)))
        if status != 200:
            raise RuntimeError(f"LookupEvents {case} answered {status}: {body[:300]!r}")
        reply = json.loads(body)
        return elapsed, len(reply.get("Events", ())), reply.get("NextToken")


def measure(client: LookupClient, all_cases: list[Case], repeat: int) -> list[dict[str, Any]]:
    """Each case's first page, then its second page; repetitions interleave the cases."""
    cold: dict[Case, float] = {}
    first: dict[Case, list[float]] = {case: [] for case in all_cases}
    second: dict[Case, list[float]] = {case: [] for case in all_cases}
    sizes: dict[Case, tuple[int, int]] = {}
    for case in all_cases:  # warm-up pass, kept apart: the first touch of cold pages
        cold[case] = client.page(case)[0]
    for _ in range(repeat):
        for case in all_cases:
            elapsed, count, token = client.page(case)
            first[case].append(elapsed)
            count2 = 0
            if token:
                elapsed2, count2, _ = client.page(case, token)
                second[case].append(elapsed2)
            sizes[case] = (count, count2)
    rows = []
    for case in all_cases:
        rows.append({
            "attribute": case.attribute, "value": case.value, "time_range": case.range_name,
            "events_page1": sizes[case][0], "events_page2": sizes[case][1],
            "cold_ms": round(cold[case] * 1000, 3),
            "page1": latency_summary(first[case]), "page2": latency_summary(second[case]),
            "samples": repeat,
        })
    return rows


def run_size(store: Store, repeat: int, kind: str = "searchtrail",
             log: Any = print) -> tuple[list[dict[str, Any]], dict]:
    # the server finds a PostgreSQL store in the data dir's searchtrail.toml
    with servers.running("searchtrail", store.data_dir.parent) as server:
        client = LookupClient(server)
        try:
            log(f"lookup: {kind}, {store.events:,} events, {len(cases(store))} cases × {repeat}")
            rows = measure(client, cases(store), repeat)
        finally:
            client.close()
        described = server.describe()
    for row in rows:
        row["store_events"] = store.events
        row["server"] = kind
    return rows, described


def _measure_size(kind: str, size: int, repeat: int,
                  root: Path) -> tuple[list[dict[str, Any]], dict, dict]:
    """One store size on one kind of store (kept in ``root``): its rows, the server, how the
    store was built. SQLite stores are kept for the next run; a PostgreSQL one lives on a
    private server, built anew and removed afterwards."""
    with provisioned_store(kind, size, root) as store:
        rows, described = run_size(store, repeat, kind)
    return rows, described, store.manifest


def worst_p99(rows: list[dict[str, Any]]) -> float | None:
    values = [row[page]["p99_ms"] for row in rows for page in ("page1", "page2")
              if row[page]["p99_ms"] is not None]
    return max(values) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lookup", __doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000",
                        type=count_list(1, "store sizes (events)", "1000000,10000000"),
                        help="comma-separated store sizes (events); --quick uses 20000")
    parser.add_argument("--repeat", type=int, help="samples per case (default 200; quick 10)")
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else args.sizes
    if args.skip_large:
        sizes = [size for size in sizes if size <= LARGE]
    repeat = args.repeat or (10 if args.quick else 200)
    kinds = store_kinds(args.servers)
    started = now_iso()
    rows: list[dict[str, Any]] = []
    targets, described, notes = [], {}, []
    for kind in kinds:
        for size in sizes:
            size_rows, described[kind], build = _measure_size(kind, size, repeat,
                                                                args.out.resolve().parent)
            rows += size_rows
            worst = worst_p99(size_rows)
            print(f"lookup: {kind} {size:,} events: worst p99 {worst} ms", file=sys.stderr)
            if size == max(sizes):
                targets.append(target(f"LookupEvents worst-case p99 (ms) on {size:,} events"
                                      f"{store_label(kind)}", worst, GOAL_P99_MS,
                                      higher_is_better=False))
            notes.append(f"{kind}: store of {size:,} events built in {build['load_seconds']}s "
                         f"({build['events_per_second']:,} events/s, "
                         f"{build['database_bytes'] / 1e9:.2f} GB)")
    notes.append("time ranges are anchored at the newest bulk-loaded event; 'none' is the "
                 "default (the last 90 days up to now)")
    write_result(args.out, "lookup", started, described, rows, targets, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
