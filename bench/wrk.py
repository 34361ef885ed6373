"""Drive Debian's `wrk` with a file of pre-signed requests and read its results back as a dict.

The Lua script loads `<length>\\n<bytes>` records (bench.presigned.write_request_file) and
replays them in order, one distinct request per call. In fixed-count mode its `delay()` lets
exactly N requests out and then parks every connection, so the server's row count can be
compared with the number of 2xx answers; it marks the moment all N are answered with a file.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

INSTALL_HINT = "wrk is missing: apt-get install wrk (Debian's package), or use --generator asyncio"
PARKED_MS = 86_400_000  # a day: a parked connection never sends again within a run
# How long wrk may still take to read the last answers once the server has recorded every
# request (they are committed before they are answered).
ANSWERS_GRACE_SECONDS = 10.0

_LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local n = tonumber(string.sub(data, pos, nl - 1))
    reqs[#reqs + 1] = string.sub(data, nl + 1, nl + n)
    pos = nl + n + 1
  end
  npool = #reqs
  limit = tonumber(args[2]) or 0
  answered_file = args[3]
  issued = 0
  verifying = true
  granted = 0
  ok = 0
  answered = 0
end

function request()
  -- wrk calls request() once after init() only to check the script; that call sends nothing
  if verifying then
    verifying = false
    return reqs[1]
  end
  issued = issued + 1
  return reqs[(issued - 1) % npool + 1]
end

function done(summary, latency, requests)
  local t = threads[1]
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"non_2xx_3xx":%d,"timeouts":%d,"issued":%d,"pool":%d,' ..
    '"lua_answered":%d,"lua_2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    t:get("issued"), t:get("npool"), t:get("answered"), t:get("ok"),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max)
  io.write("BENCHJSON " .. out .. "\n")
end
"""

# Only in fixed-count mode: defining delay()/response() costs wrk time on every request.
_LUA_FIXED_COUNT = r"""
function delay()
  granted = granted + 1
  if granted > limit then return %d end
  return 0
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then ok = ok + 1 end
  -- every request answered: tell the runner, which stops wrk (its main thread sleeps out the
  -- duration whatever its threads do)
  if answered == limit then assert(io.open(answered_file, "w")):close() end
end
""" % PARKED_MS


def available() -> bool:
    return shutil.which("wrk") is not None


def write_script(path: Path, fixed_count: bool) -> Path:
    path.write_text(_LUA_COMMON + (_LUA_FIXED_COUNT if fixed_count else ""))
    return path


def run(endpoint: str, request_file: Path, workdir: Path, *, seconds: float, connections: int,
        limit: int = 0,
        until: Callable[[], bool] | None = None) -> dict:
    """Run wrk; with `limit`, send exactly that many requests and stop once all are answered,
    or once `until()` is true and the answers still on their way have had
    ANSWERS_GRACE_SECONDS, or at the deadline.

    Returns wrk's counters (see the Lua `done`), plus `wall_s` and `wrk_cpu_s` (from the
    rusage of reaped children, which is wrk alone while it runs).
    """
    if not available():
        raise RuntimeError(INSTALL_HINT)
    script = write_script(workdir / ("fixed.lua" if limit else "replay.lua"), bool(limit))
    # One thread: a single Lua state orders the requests (creates before their deletes) and
    # counts them; the prototype found -t1 enough to keep wrk far from being the bottleneck.
    answered_file = workdir / "answered"
    answered_file.unlink(missing_ok=True)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), endpoint, "--", str(request_file),
               str(limit), str(answered_file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if limit:
            deadline, recorded = time.monotonic() + seconds, False
            while (time.monotonic() < deadline and process.poll() is None
                   and not answered_file.exists()):
                if not recorded and until is not None and until():
                    # all recorded, so the answers are on their way to wrk (or lost)
                    deadline, recorded = min(deadline,
                                             time.monotonic() + ANSWERS_GRACE_SECONDS), True
                time.sleep(0.05)  # polling wrk's file and the row count, bounded by the deadline
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        stdout, stderr = process.communicate(timeout=seconds + 60)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout[-2000:]}")
    counters = json.loads(line.removeprefix("BENCHJSON "))
    counters["wall_s"] = round(wall, 3)
    counters["wrk_cpu_s"] = round((after.ru_utime - before.ru_utime)
                                  + (after.ru_stime - before.ru_stime), 3)
    return counters
