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
                        help="comma-separated subset of: " + ", ".join(SERVER_KINDS))
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
    unknown = set(kinds) - set(SERVER_KINDS)
    if unknown or not kinds:
        raise SystemExit(f"--servers: choose from {', '.join(SERVER_KINDS)} (got {text!r})")
    return kinds


def write_result(path: Path, name: str, started: str, servers: dict, results: list[dict],
                 targets: list[dict], ratios: list[dict] | None = None,
                 notes: list[str] | None = None) -> dict:
    document = {"benchmark": name, "started": started, "machine": machine_info(),
                "servers": servers, "results": results, "targets": targets}
    if ratios is not None:
        document["ratios"] = ratios
    if notes:
        document["notes"] = notes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return document
