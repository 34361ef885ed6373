"""`python -m bench`: every benchmark module in turn, each in its own process, then the report."""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time

import bench
from bench import RESULTS_DIR, REPO, SERVER_KINDS, peers, servers, wrk

FIRST = ("workload", "capacity", "latency")
NOT_BENCHMARKS = {"__main__", "servers", "peers", "report", "presigned", "rawclient", "wrk",
                  "compare", "callcost", "postgres", "slowlink"}  # compare takes two commits of
# ours, no peers; callcost is what compare --metric instructions counts; postgres starts a
# server; slowlink is the delivery benchmark's distant S3


def benchmark_modules() -> list[str]:
    """The framework's benchmarks first, then every other bench module with a main(), by name."""
    found = sorted(info.name for info in pkgutil.iter_modules(bench.__path__)
                   if info.name not in NOT_BENCHMARKS)
    return [name for name in FIRST if name in found] + [n for n in found if n not in FIRST]


# The modules that also measure `serve --workers` (one worker per core) in the same sitting.
WITH_WORKERS = ("capacity", "latency")


def module_servers(module: str, chosen: str) -> str:
    """The servers one module runs: capacity and latency also measure `serve --workers`
    beside the same peers, when searchtrail is chosen."""
    kinds = chosen.split(",")
    if module in WITH_WORKERS and "searchtrail" in kinds and servers.WORKERS_KIND not in kinds \
            and servers.WORKERS > 1:
        kinds.append(servers.WORKERS_KIND)
    return ",".join(kinds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds-long versions (smoke)")
    parser.add_argument("--skip-large", action="store_true",
                        help="passed to every module: skip the 10M-event store")
    parser.add_argument("--only", default="", help="comma-separated modules to run (default all)")
    parser.add_argument("--servers", default=",".join(SERVER_KINDS),
                        help="servers compared (default all three)")
    args = parser.parse_args(argv)
    modules = benchmark_modules()
    if args.only:
        wanted = [m.strip() for m in args.only.split(",") if m.strip()]
        unknown = set(wanted) - set(modules)
        if unknown:
            parser.error(f"--only: unknown {', '.join(sorted(unknown))}; have {', '.join(modules)}")
        modules = [m for m in modules if m in wanted]
    if set(args.servers.split(",")) - {"searchtrail"}:
        peers.ensure()
    if not wrk.available():
        print(f"bench: {wrk.INSTALL_HINT}", file=sys.stderr)

    flags = (["--quick"] if args.quick else []) + (["--skip-large"] if args.skip_large else [])
    failed, timings = [], {}
    for name in modules:
        out = RESULTS_DIR / f"{name}.json"
        print(f"bench: running {name} ...", file=sys.stderr)
        started = time.monotonic()
        code = subprocess.run([sys.executable, "-m", f"bench.{name}", "--out", str(out), *flags,
                               "--servers", module_servers(name, args.servers)],
                              cwd=REPO).returncode
        timings[name] = round(time.monotonic() - started, 1)
        if code != 0:
            failed.append(name)
            print(f"bench: {name} failed with exit code {code}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "bench.report"], cwd=REPO, check=True)
    print("bench: seconds per module: " + ", ".join(f"{k} {v}" for k, v in timings.items()),
          file=sys.stderr)
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
