"""`searchtrail trail validate` against `aws cloudtrail validate-logs` on the same delivered files
(one trail, one Region, many log files and a chain of signed digests made by a real server).

Destinations: the local bucket folder, and S3 on a moto server. The folder is validated twice:
ours reading it directly (the AWS CLI reads it through the server's read-only S3 API), and both
tools reading it through that S3 API, so the same requests to the same fast server. On moto both
read over HTTP too, but every GET costs moto about 2 ms of CPU, which bounds either tool: each
row records that server's CPU per run and the speedup it leaves possible (``speedup_ceiling``).

Both tools start from bytecode: pip compiled awscli's when it installed it, and searchtrail's
package is compiled here first (an editable install is not compiled, and with
PYTHONDONTWRITEBYTECODE set Python never caches it, so every run would compile it again).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


import searchtrail
from bench import base_parser, compile_sources, now_iso, ratio, target, write_result
from bench import servers
from bench.delivery import UNDELIVERED
from bench.presigned import Signer, read_mix
from bench.rawclient import open_loop

BUCKET = "bench-validate"
TRAIL = "bench-validate"
REGION = "us-east-1"
GOAL_RATIO = 3.0
CALLS_PER_SECOND = 100
POLL_SECONDS = 0.5
REPEAT = 5  # runs of each tool, best kept: the machine's two cores are shared
COUNTS = {"digests": re.compile(r"(\d+)/(\d+) digest files valid"),
          "log_files": re.compile(r"(\d+)/(\d+) log files valid")}


def produce(server: servers.Server, seconds: float, rate: float, digest_interval: float,
            moto: servers.Server | None, log: Any) -> tuple[str, dict[str, int]]:
    """Calls at a steady rate while the trail delivers every second; then StopLogging and
    wait for the chain's final digest. Returns the trail ARN and the file counts."""
    if moto is None:
        subprocess.run([sys.executable, "-m", "searchtrail.cli", "buckets", "create", BUCKET,
                        "--data-dir", str(server.data_dir)], check=True, capture_output=True)
    cloudtrail = server.client("cloudtrail", REGION)
    arn = cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET,
                                  EnableLogFileValidation=True)["TrailARN"]
    cloudtrail.start_logging(Name=TRAIL)
    signer = Signer(server.host_header, *server.credentials())
    requests = read_mix(signer, int(seconds * rate))
    log(f"validate: {len(requests):,} calls over {seconds:.0f}s to make log files")
    open_loop("127.0.0.1", server.port, requests, rate=rate, connections=8,
              max_seconds=seconds * 2 + 30)
    cloudtrail.stop_logging(Name=TRAIL)
    counts = _wait_closed(server, stopped_at=time.time(), seconds=120 + digest_interval * 3)
    log(f"validate: {counts['log_files']} log files, {counts['digests']} digests")
    return arn, counts


def run_destination(workdir: Path, seconds: float, digest_interval: float, repeat: int,
                    moto: servers.Server | None, log: Any) -> tuple[list[dict[str, Any]], dict]:
    """Make a day of files on one destination, then time both validators on them: one row per
    way searchtrail reads them (see the module docstring)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    args: tuple[str, ...] = ("--delivery-interval", "1", "--digest-interval", str(digest_interval))
    env = {}
    if moto is not None:
        args += ("--s3-endpoint-url", moto.endpoint)
        env = {"AWS_ACCESS_KEY_ID": servers.PEER_KEY[0],
               "AWS_SECRET_ACCESS_KEY": servers.PEER_KEY[1]}
        moto.client("s3", REGION).create_bucket(Bucket=BUCKET)
    with servers.running("searchtrail", workdir, args, env) as server:
        arn, counts = produce(server, seconds, CALLS_PER_SECOND, digest_interval, moto, log)
        s3_endpoint = moto.endpoint if moto else server.endpoint + "/_s3"  # the AWS CLI's
        s3_server = moto or server  # the one answering the AWS CLI's GETs
        if moto is not None:
            ways = [("S3 (moto server)", s3_endpoint, servers.PEER_KEY)]
        else:
            ways = [("local bucket folder", None, None),
                    ("local bucket folder over the server's S3 API (both tools)", s3_endpoint,
                     server.credentials())]
        rows = [{"destination": name, **counts,
                 **compare(server, arn, s3_endpoint, endpoint, key, repeat, s3_server, log)}
                for name, endpoint, key in ways]
        return rows, server.describe()


def _wait_closed(server: servers.Server, stopped_at: float, seconds: float) -> dict[str, int]:
    """Everything delivered and a digest ending after StopLogging stored (bounded wait)."""
    deadline = time.monotonic() + seconds
    conn = server.read_only_database()
    try:
        while time.monotonic() < deadline:
            pending, last_end, files, digests = conn.execute(
                f"SELECT {UNDELIVERED}, (SELECT max(end_time) FROM digests), "
                "(SELECT count(*) FROM log_files), (SELECT count(*) FROM digests)").fetchone()
            if pending == 0 and last_end is not None and last_end >= stopped_at - 2:
                return {"log_files": files, "digests": digests}
            time.sleep(POLL_SECONDS)  # polling the store with a deadline
    finally:
        conn.close()
    raise RuntimeError("the trail's final digest was not stored in time")


def _timed(command: list[str], env: dict[str, str], s3_server: servers.Server
           ) -> tuple[float, float, str, int]:
    """Wall seconds of the command, CPU seconds the S3 server spent meanwhile, its output and
    exit code."""
    cpu_before = s3_server.cpu_seconds()
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, **env})
    wall = time.perf_counter() - began
    return (wall, s3_server.cpu_seconds() - cpu_before, done.stdout + done.stderr,
            done.returncode)


def _parsed(output: str) -> dict[str, str | None]:
    found = {}
    for name, pattern in COUNTS.items():
        match = pattern.search(output)
        found[name] = f"{match.group(1)}/{match.group(2)}" if match else None
    return found


def compare(server: servers.Server, arn: str, s3_endpoint: str, ours_endpoint: str | None,
            ours_key: tuple[str, str] | None, repeat: int, s3_server: servers.Server,
            log: Any) -> dict[str, Any]:
    """Both validators on the same trail, alternating, ``repeat`` times each; the best times.

    The AWS CLI reads ``s3_endpoint``; ours reads ``ours_endpoint`` with ``ours_key``, or the
    bucket folder itself when that is None. ``s3_server`` answers ``s3_endpoint``: the CPU it
    spends during each run is recorded, and when ours reads it too, the speedup a validator
    costing nothing but that server's answers would reach (``speedup_ceiling``: the server
    answers on one core, so a run cannot take less wall time than that CPU)."""
    key = server.credentials()
    common = ["--trail-arn", arn, "--start-time", "2020-01-01T00:00:00Z", "--region", REGION]
    aws_env = {"AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint, "AWS_ENDPOINT_URL_S3": s3_endpoint,
               "AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1],
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    ours_env = ({"AWS_ACCESS_KEY_ID": ours_key[0], "AWS_SECRET_ACCESS_KEY": ours_key[1],
                 "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
                if ours_key else {})
    aws_cmd = [sys.executable, "-m", "awscli", "cloudtrail", "validate-logs", *common]
    ours_cmd = [sys.executable, "-m", "searchtrail", "trail", "validate", *common,
                "--data-dir", str(server.data_dir)]
    if ours_endpoint:
        ours_cmd += ["--s3-endpoint-url", ours_endpoint]
    times: dict[str, list[float]] = {"aws": [], "searchtrail": []}
    s3_cpu: dict[str, list[float]] = {"aws": [], "searchtrail": []}
    outputs: dict[str, dict[str, str | None]] = {}
    for _ in range(repeat):
        for name, command, env in (("aws", aws_cmd, aws_env), ("searchtrail", ours_cmd, ours_env)):
            seconds, cpu, output, code = _timed(command, env, s3_server)
            outputs[name] = _parsed(output)
            if code != 0 or outputs[name]["log_files"] is None:
                raise RuntimeError(f"{name} validation failed ({code}):\n{output[-2000:]}")
            times[name].append(seconds)
            s3_cpu[name].append(cpu)
            log(f"validate: {name}: {seconds:.2f}s (S3 server CPU {cpu:.2f}s) {outputs[name]}")
    if outputs["aws"] != outputs["searchtrail"]:
        raise RuntimeError(f"the validators disagree: {outputs}")
    best = {name: min(values) for name, values in times.items()}
    if not ours_endpoint:  # ours read the folder itself: only the AWS CLI used the server
        del s3_cpu["searchtrail"]
    return {"aws_seconds": round(best["aws"], 3),
            "searchtrail_seconds": round(best["searchtrail"], 3),
            "runs": {name: [round(v, 3) for v in values] for name, values in times.items()},
            "s3_server_cpu_seconds": {name: [round(v, 2) for v in values]
                                      for name, values in s3_cpu.items()},
            "validated": outputs["aws"],
            "speedup": ratio(best["aws"], best["searchtrail"]),
            "speedup_ceiling": (ratio(best["aws"], min(s3_cpu["searchtrail"]))
                                if ours_endpoint else None)}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("validate", __doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="how long calls are made (default 150; "
                        "one log file a second, quick 2)")
    parser.add_argument("--repeat", type=int,
                        help=f"runs of each validator (default {REPEAT}; quick 1)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (2 if args.quick else 150)
    repeat = args.repeat or (1 if args.quick else REPEAT)
    digest_interval = 2 if args.quick else 10
    started = now_iso()
    root = args.out.resolve().parent / "validate-work"  # beside --out: smoke runs stay apart
    rows, targets, described = [], [], {}
    compile_sources(Path(searchtrail.__file__).parent)
    with servers.running("moto", root / "moto") as moto:
        described["moto"] = moto.describe()
        for store in (None, moto):
            made, described["searchtrail"] = run_destination(
                root / ("s3" if store else "local"), seconds, digest_interval, repeat, store, print)
            rows += made
            targets += [target(f"trail validate speedup over aws cloudtrail validate-logs "
                               f"({row['destination']})", row["speedup"], GOAL_RATIO)
                        for row in made]
    for name in ("local", "s3"):
        shutil.rmtree(root / name / "data", ignore_errors=True)
    write_result(args.out, "validate", started, described, rows, targets,
                 notes=["wall time of each command (process start included), best of the runs; "
                        "both validate the same trail and must report the same counts",
                        "both tools run from bytecode (searchtrail's package compiled first, "
                        "as pip compiled awscli's)",
                        "s3_server_cpu_seconds: CPU the server answering the S3 requests spent "
                        "during each run; speedup_ceiling: the AWS CLI's best time over the "
                        "least of that CPU in our runs, the speedup a validator costing nothing "
                        "but the server's answers would reach (it answers on one core)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
