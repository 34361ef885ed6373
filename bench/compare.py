"""Two commits of searchtrail side by side on the read mix: calls/s and server CPU per call,
or instructions per call.

`python -m bench.compare --base REV` checks REV out into a temporary git worktree and
alternates runs of it and of this checkout (one fresh server per run, the store seeded as in
`bench.capacity`, the same pre-signed requests replayed by wrk). On a 2-core machine one run
scatters by ±10–15%, so only the medians of several alternating rounds, measured in the same
sitting, say whether a change helped. The base runs on this checkout's virtualenv, so it
must not need other dependencies.

`--metric instructions` counts instead, with valgrind's callgrind, the instructions one call
costs in process (`bench.callcost`: the handler the HTTP protocol calls, no sockets), for
ListCollections, BatchGetCollection and the create/delete mix: the difference between a run
that answers `--calls` calls and one that answers none. Repeated runs agree within ~0.1%, so
a change of 1% shows; it counts CPU work, not time (cache misses, the kernel and fsync are
not in it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from bench import REPO, base_parser, compile_sources, now_iso, rawclient, servers, write_result
from bench.callcost import INSTRUMENT_FLAG, OPERATIONS, WARMUP_CALLS
from bench.presigned import Signer, read_mix, replay, seed_requests

THIS_CHECKOUT = "this checkout"


def commit_of(rev: str) -> str:
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"--base: git does not know {rev!r}: {found.stderr.strip()}")
    return found.stdout.strip()


@contextlib.contextmanager
def base_sources(base: str) -> Iterator[tuple[dict[str, Path], Path]]:
    """({build: its src folder}, a scratch folder): ``base`` checked out into a temporary git
    worktree beside this checkout, removed again afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        tree = Path(scratch) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                        str(tree), base], check=True)
        try:
            yield {base: tree / "src", THIS_CHECKOUT: REPO / "src"}, Path(scratch)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)


def one_run(source: Path, workdir: Path, calls: int, seconds: float,
            connections: int) -> tuple[float, float]:
    """(calls/s, server CPU µs per call) of a fresh server running the package in ``source``."""
    shutil.rmtree(workdir, ignore_errors=True)
    with servers.running("searchtrail", workdir, env={"PYTHONPATH": str(source)}) as server:
        signer = Signer(server.host_header, *server.credentials())
        seeds = seed_requests(signer)
        seeded = rawclient.closed_loop("127.0.0.1", server.port, seeds, 1)
        if seeded.ok != len(seeds):
            raise RuntimeError(f"seeding the read store got {seeded.statuses}")
        requests = read_mix(signer, calls)
        replay(server, requests, min(seconds, 2), connections)  # warm-up
        cpu_before = server.cpu_seconds()
        answered, took = replay(server, requests, seconds, connections)
        return answered / took, (server.cpu_seconds() - cpu_before) / answered * 1e6


VALGRIND_HINT = "valgrind is missing: apt-get install valgrind (needed by --metric instructions)"
_TOTALS = re.compile(rb"^totals: (\d+)", re.MULTILINE)


def counted_instructions(source: Path, scratch: Path, operation: str, send: int,
                         calls: int, warmup: int) -> int:
    """callgrind's total for one ``bench.callcost`` process answering ``send`` of ``calls``
    signed ``operation`` requests, after ``warmup`` read-mix calls, with the package in
    ``source``."""
    handle, name = tempfile.mkstemp(prefix=f"callgrind-{operation}-{send}-", suffix=".out",
                                    dir=scratch)  # runs go side by side: a file of its own
    os.close(handle)
    out = Path(name)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, "-m", "bench.callcost", operation, str(send), str(calls), str(warmup),
         INSTRUMENT_FLAG],  # instrumented from the counted calls on: start-up runs ~7x faster
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{REPO}",
             "PYTHONHASHSEED": "0"})  # the same dict and set orders in every run
    if done.returncode != 0:
        raise RuntimeError(f"callgrind run of {operation} failed ({done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    found = _TOTALS.search(out.read_bytes())
    if found is None:
        raise RuntimeError(f"no totals line in {out}")
    out.unlink()
    return int(found.group(1))


def compare_instructions(sources: dict[str, Path], scratch: Path, calls: int,
                         operations: tuple[str, ...], warmup: int) -> list[dict[str, Any]]:
    """Instructions per call of each build: (the run answering ``calls``) − (the run answering
    none), everything else being the same in both. The runs go side by side, one per core:
    callgrind counts instructions, which do not depend on how busy the machine is."""
    runs = [(operation, build, send) for operation in operations for build in sources
            for send in (0, calls)]
    with ThreadPoolExecutor(max_workers=max(1, min(len(runs), os.cpu_count() or 1))) as pool:
        totals = dict(zip(runs, pool.map(
            lambda run: counted_instructions(sources[run[1]], scratch, run[0], run[2], calls,
                                             warmup),
            runs)))
    rows = []
    for operation in operations:
        counted = {build: (totals[operation, build, calls] - totals[operation, build, 0]) / calls
                   for build in sources}
        base, this = counted.values()
        rows.append({"operation": operation, "calls": calls,
                     **{f"instructions_per_call ({build})": round(value)
                        for build, value in counted.items()},
                     "change_percent": round(100 * (this / base - 1), 2)})
        print(f"compare: {operation}: {round(base):,} → {round(this):,} instructions per call "
              f"({rows[-1]['change_percent']:+.2f}%)", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("compare", __doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD~1",
                        help="the commit to compare this checkout with (default HEAD~1)")
    parser.add_argument("--rounds", type=int, help="rounds, each a run of both (4; quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per timed run (6; quick 1)")
    parser.add_argument("--calls", type=int,
                        help="pre-signed requests per run (20,000; quick 400)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--metric", choices=("rate", "instructions"), default="rate",
                        help="rate: calls/s and server CPU under wrk (default); instructions: "
                             "callgrind's count per call in process (--calls 1600; quick 64)")
    args = parser.parse_args(argv)
    if args.metric == "instructions":
        return _main_instructions(args)
    rounds = args.rounds or (1 if args.quick else 4)
    seconds = args.seconds or (1.0 if args.quick else 6.0)
    calls = args.calls or (400 if args.quick else 20_000)
    base = commit_of(args.base)
    started = now_iso()
    rates: dict[str, list[float]] = {base: [], THIS_CHECKOUT: []}
    cpu: dict[str, list[float]] = {base: [], THIS_CHECKOUT: []}
    with base_sources(base) as (sources, scratch):
        for number in range(rounds):
            order = list(sources) if number % 2 == 0 else list(sources)[::-1]
            for build in order:  # alternating, so the machine's drift hits both alike
                rate, per_call = one_run(sources[build], scratch / "server", calls, seconds,
                                         args.connections)
                rates[build].append(rate)
                cpu[build].append(per_call)
                print(f"compare: round {number + 1}/{rounds} {build}: {rate:,.0f} calls/s, "
                      f"{per_call:.0f} µs server CPU per call", file=sys.stderr, flush=True)
    results = [{"build": build, "commit": build if build != THIS_CHECKOUT else None,
                "runs_calls_per_second": [round(r) for r in rates[build]],
                "median_calls_per_second": round(statistics.median(rates[build])),
                "runs_server_cpu_us_per_call": [round(c) for c in cpu[build]],
                "median_server_cpu_us_per_call": round(statistics.median(cpu[build]))}
               for build in rates]
    change = 100 * (results[1]["median_calls_per_second"] / results[0]["median_calls_per_second"]
                    - 1)
    print(f"compare: this checkout against {base}: {change:+.1f}% calls/s (median of {rounds})",
          file=sys.stderr)
    write_result(args.out, "compare", started, {}, results, [], notes=[
        f"read mix on a seeded store, {args.connections} connections, {seconds:g} s per run, "
        f"{rounds} alternating rounds; this checkout's calls/s change: {change:+.1f}%"])
    return 0


def _main_instructions(args: Any) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit(f"bench.compare: {VALGRIND_HINT}")
    calls = args.calls or (64 if args.quick else 1600)
    operations = OPERATIONS[:1] if args.quick else OPERATIONS
    base = commit_of(args.base)
    started = now_iso()
    # A smoke run's warm-up only has to fill the caches once: under callgrind each call
    # costs ~40 times its native time.
    warmup = 16 if args.quick else WARMUP_CALLS
    with base_sources(base) as (sources, scratch):
        compile_sources(*sources.values(), REPO / "bench")  # not counted, but ~8 s a run
        rows = compare_instructions(sources, scratch, calls, operations, warmup)
    write_result(args.out, "compare", started, {}, rows, [], notes=[
        f"instructions per call counted by callgrind in process (bench.callcost): a run "
        f"answering {calls} calls minus one answering none, each after {warmup} warm-up "
        f"calls; runs agree within ~0.1%"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
