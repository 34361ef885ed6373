"""Benchmarks of searchtrail against its peers; this module holds the result-file shape they share.

Each benchmark writes `bench/results/<name>.json`:
`{"benchmark", "started", "machine", "servers", "results": [rows], "targets": [...]}`, plus an
optional `"ratios"` list that `bench.report` turns into the comparison table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
SERVER_KINDS = ("searchtrail", "moto", "ministack")
# Run only when named: searchtrail with its store on a private PostgreSQL server, and
# searchtrail with one worker process per core (`serve --workers`)
OPTIONAL_KINDS = ("searchtrail-postgres", "searchtrail-workers")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


YARDSTICK_ITERATIONS = 1_000_000


def python_yardstick_ms() -> float:
    """Best of three runs of a fixed pure-Python loop, in ms: how fast one core runs this
    interpreter, so that sittings on different (or differently loaded) hosts can be set side
    by side. Lower is faster."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(YARDSTICK_ITERATIONS):
            total += i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


STALL_PROBE_WORK = 3000  # iterations of the probe's fixed unit of work (~0.5 ms on these hosts)
STALL_RATIO = 2.5  # a probe this many times slower than the median is slowed down
STALL_GAP_SECONDS = 0.05  # slow probes closer than this belong to one episode
STALL_MIN_PROBES = 3  # an episode has at least this many slow probes (one is noise)


def host_stall_probe(seconds: float) -> dict[str, Any]:
    """A fixed unit of CPU work every ~2 ms for ``seconds``, nothing else running: episodes
    where it runs several times slower than its median show a host that takes CPU away from
    this machine (a VM's vCPUs throttled or shared) while the guest sees no steal time. Any
    server stalls through them, so they set a latency benchmark's tail."""
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        total = 0
        for i in range(STALL_PROBE_WORK):
            total += i * i
        samples.append((started, time.perf_counter() - started))
        time.sleep(0.002)
    return stall_episodes(samples, seconds)


def stall_episodes(samples: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """Summary of (start, duration) probe samples: how many stall episodes, the longest, the
    worst slowdown against the median, and the share of the time spent in them."""
    median = percentile(sorted(duration for _, duration in samples), 50)
    episodes: list[list[float]] = []  # [start, end, worst ratio, slow probes]
    for started, duration in samples:
        if duration < STALL_RATIO * median:
            continue
        ratio = duration / median
        if episodes and started - episodes[-1][1] <= STALL_GAP_SECONDS:
            episode = episodes[-1]
            episode[1] = started + duration
            episode[2] = max(episode[2], ratio)
            episode[3] += 1
        else:
            episodes.append([started, started + duration, ratio, 1])
    stalls = [e for e in episodes if e[3] >= STALL_MIN_PROBES]
    lengths = [end - start for start, end, _, _ in stalls]
    return {"seconds": seconds, "probes": len(samples), "median_us": round(median * 1e6),
            "stall_episodes": len(stalls),
            "longest_stall_ms": round(max(lengths, default=0.0) * 1000, 1),
            "worst_slowdown": round(max((e[2] for e in stalls), default=1.0), 1),
            "stalled_share_pct": round(100 * sum(lengths) / seconds, 1)}


def _cpu_model() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    fields = {}
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name.strip(), value.strip())
    mhz = fields.get("cpu MHz")
    return {"cpu_model": fields.get("model name"), "cpu_mhz": float(mhz) if mhz else None}


def machine_info() -> dict[str, Any]:
    """The machine as the result is written (the benchmark's servers have stopped)."""
    meminfo = Path("/proc/meminfo")
    total_kb = next((int(line.split()[1]) for line in meminfo.read_text().splitlines()
                     if line.startswith("MemTotal:")), 0) if meminfo.exists() else 0
    return {"cpu_count": os.cpu_count(), **_cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), "memory_gb": round(total_kb / 2**20, 1),
            "load_avg_at_write": [round(x, 2) for x in os.getloadavg()],
            "python_yardstick_ms": python_yardstick_ms()}


def compile_sources(*folders: Path) -> None:
    """Bytecode for the Python files under ``folders``, as an installed package has it. An
    editable install and a fresh worktree have none, and with ``PYTHONDONTWRITEBYTECODE`` (set
    in this sandbox) every process would compile them again, a cost no installed user pays."""
    import compileall

    for folder in folders:
        compileall.compile_dir(folder, quiet=1)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return None
    rank = math.ceil(q / 100 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, rank))]


def latency_summary(seconds: Iterable[float]) -> dict[str, float | None]:
    """p50/p90/p99/max in milliseconds."""
    ordered = sorted(seconds)
    as_ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    return {"p50_ms": as_ms(percentile(ordered, 50)), "p90_ms": as_ms(percentile(ordered, 90)),
            "p99_ms": as_ms(percentile(ordered, 99)),
            "max_ms": as_ms(ordered[-1] if ordered else None)}


def target(name: str, value: float | None, goal: float, higher_is_better: bool = True) -> dict:
    met = value is not None and (value >= goal if higher_is_better else value <= goal)
    return {"target": name, "value": value, "goal": goal, "met": met}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json",
                        help=f"result JSON file (default bench/results/{name}.json)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long version (smoke test)")
    parser.add_argument("--servers", default=",".join(SERVER_KINDS),
                        help="comma-separated subset of: " + ", ".join(SERVER_KINDS)
                        + "; also " + ", ".join(OPTIONAL_KINDS) + " when named")
    parser.add_argument("--skip-large", action="store_true",
                        help="skip the 10M-event store (for modules that build large stores)")
    return parser


def count_list(minimum: int, what: str, example: str) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated distinct whole numbers, none below ``minimum``
    (``what`` and ``example`` name them in the error)."""
    kind = {0: "non-negative", 1: "positive"}.get(minimum, f"(each at least {minimum})")

    def parse(text: str) -> list[int]:
        try:
            counts = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            counts = []
        if not counts or min(counts) < minimum or len(set(counts)) != len(counts):
            raise argparse.ArgumentTypeError(
                f"expected distinct {kind} {what} such as {example}, got {text!r}")
        return counts

    return parse


def chosen_servers(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    known = (*SERVER_KINDS, *OPTIONAL_KINDS)
    unknown = set(kinds) - set(known)
    if unknown or not kinds:
        raise SystemExit(f"--servers: choose from {', '.join(known)} (got {text!r})")
    return kinds


def write_result(path: Path, name: str, started: str, servers: dict, results: list[dict],
                 targets: list[dict], ratios: list[dict] | None = None,
                 notes: list[str] | None = None, host: dict | None = None) -> dict:
    document = {"benchmark": name, "started": started, "machine": machine_info(),
                "servers": servers, "results": results, "targets": targets}
    if host is not None:
        document["host_stall_probe"] = host
    if ratios is not None:
        document["ratios"] = ratios
    if notes:
        document["notes"] = notes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return document
