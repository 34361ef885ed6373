"""Retention: how fast records past event history's 90 days leave the store, and what their
removal costs the API meanwhile. Bulk-loads N expired records into a fresh store and starts a
server that removes them. searchtrail only (the peers keep nothing), on SQLite and, when
named, on a private PostgreSQL server (searchtrail-postgres); no target.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import base_parser, now_iso, write_result
from bench import servers
from bench.bulkload import SPAN_DAYS, load_events, name_database, store_kinds
from bench.postgres import start_postgres
from bench.presigned import Signer, read_mix, replay
from searchtrail.audit.retention import KEEP_PACE_SPAN_SECONDS
from searchtrail.config import Settings

# The backlogs the API is measured beside: (the newest record's age, the days the records
# span, in days). Retention removes one unit a second beside a busy API while its oldest
# expired record is under a day past the window, and more the later it is (MAX_BUSY_UNITS);
# from a day late, at least as many as keep pace with the records expiring meanwhile.
WINDOW_DAYS = Settings.retention_days  # event history's: the default the server runs with
KEEPING_PACE = "a day late, records expiring meanwhile"
BACKLOGS = {
    # 90 days and an hour old to 90.5 days and an hour
    "under a day late": (WINDOW_DAYS + 1 / 24, 0.5),
    "days late": (WINDOW_DAYS + 10, SPAN_DAYS),  # 100 to 185 days old: at the cap
    # 91 days and an hour old to 91.5 days and an hour, with records expiring all along the runs
    # (EXPIRING_PER_SECOND): retention keeps pace with those (KEEP_PACE_SPAN_SECONDS)
    KEEPING_PACE: (WINDOW_DAYS + 1 + 1 / 24, 0.5),
}
# Records a second expiring beside KEEPING_PACE's backlog: twice what MAX_BUSY_UNITS removes
EXPIRING_PER_SECOND = 2_000
# Seconds of a server's start and of the time after the removing run, at most (the expiring
# records must outlast the run)
START_AND_MARGIN_SECONDS = 30
ALONE = "days late"  # removal alone goes at the idle pace whatever the backlog's age
KEEP = {"SEARCHTRAIL_RETENTION_CHECK_SECONDS": "0"}  # while the store is being made
REMOVE = {"SEARCHTRAIL_RETENTION_CHECK_SECONDS": "0.5"}
# One pass every half second (the worker's tick at this delivery interval), as a server whose
# trails deliver every second runs it.
ARGS = ("--delivery-interval", "1")
POLL_SECONDS = 0.2


def prepare(workdir: Path, records: int, backlog: str, on_postgres: bool = False,
            expiring: tuple[int, float] = (0, 0.0)) -> tuple[servers.Server, int, float]:
    """A fresh data dir holding ``records`` expired records as old as ``backlog`` says; the
    server (not started yet) that removes them, the last record's seq, and how many days the
    oldest record is past event history's window. ``on_postgres``: the store is in a private
    PostgreSQL server of its own, named in the data dir's searchtrail.toml (the server, the
    loader and read_only_database all find it there); the server's CPU includes its, and
    stopping the server stops it. ``expiring``: (records a second, seconds) that expire from
    a minute before the server starts until that many seconds after it has, loaded after the
    backlog."""
    postgres = start_postgres() if on_postgres else None
    try:
        if postgres:
            name_database(workdir / "data", postgres.database())
        with servers.running("searchtrail", workdir, ARGS, KEEP):
            pass  # the store, its account and keys
        newest_age_days, span_days = BACKLOGS[backlog]
        started = time.monotonic()
        load_events(workdir / "data", records,
                    newest=int(time.time() - newest_age_days * 86_400), span_days=span_days,
                    log=lambda *_: None)
        if expiring[0]:
            _load_expiring(workdir / "data", *expiring, records / (time.monotonic() - started))
        server = servers.make("searchtrail", workdir, ARGS, REMOVE)
        with contextlib.closing(server.read_only_database()) as conn:
            last, oldest = conn.execute("SELECT max(seq), min(event_time) FROM events").fetchone()
    except BaseException:
        if postgres:
            postgres.stop()
        raise
    server.postgres = postgres
    return server, last, (time.time() - oldest) / 86_400 - WINDOW_DAYS


def _load_expiring(data_dir: Path, per_second: int, seconds: float, load_rate: float) -> None:
    """Records stored ``per_second`` over the KEEP_PACE_SPAN_SECONDS before the window's edge
    and the ``seconds`` after it, counted from when the server will have started: loading them
    takes time too, at ``load_rate`` records a second (the backlog's)."""
    if per_second >= load_rate:
        raise RuntimeError(f"the loader stores {load_rate:,.0f} records a second: it cannot "
                           f"load {per_second:,} a second ahead of the clock")
    before = KEEP_PACE_SPAN_SECONDS  # what keeping pace counts from the start
    # until the edge passes the newest: the load, the server's start and ``seconds``
    ahead = (START_AND_MARGIN_SECONDS + seconds + before * per_second / load_rate) / (
        1 - per_second / load_rate)
    edge = time.time() - WINDOW_DAYS * 86_400
    load_events(data_dir, int(per_second * (before + ahead)), newest=int(edge + ahead),
                span_days=(before + ahead) / 86_400, log=lambda *_: None)


def _left(server: servers.Server, last_seq: int) -> int:
    """Loaded records not removed yet (the newest, ``last_seq``, always stays)."""
    with contextlib.closing(server.read_only_database()) as conn:
        return conn.execute("SELECT count(*) FROM events WHERE seq < ?", (last_seq,)).fetchone()[0]


def removal_alone(workdir: Path, records: int, log: Any,
                  on_postgres: bool = False) -> dict[str, Any]:
    """Records/s removed by a server answering nothing: from the first removal to the last
    removable record (the newest stays: the next seqs follow it)."""
    server, last, _ = prepare(workdir, records, ALONE, on_postgres)
    loaded = _left(server, last)
    deadline = time.monotonic() + 3_600
    with servers.serving(server):
        while _left(server, last) == loaded and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # polling the store with a deadline
        started, cpu_before, before = time.monotonic(), server.cpu_seconds(), _left(server, last)
        left = before
        while left and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            left = _left(server, last)
        took, cpu = time.monotonic() - started, server.cpu_seconds() - cpu_before
    removed = before - left  # timed from the first removal seen: the first batch is not
    log(f"retention: {removed:,} records removed in {took:.1f} s "
        f"({removed / took:,.0f} records/s, {cpu / removed * 1e6:.0f} µs server CPU each)")
    return {"run": "removal alone", "records": removed, "seconds": round(took, 2),
            "records_per_second": round(removed / took) if took else None,
            "server_cpu_us_per_record": round(cpu / removed * 1e6) if removed else None,
            "complete": left == 0}


def api_while_removing(workdir: Path, records: int, seconds: float, calls: int, backlog: str,
                       log: Any, on_postgres: bool = False, expiring_per_second: int = 0
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read-mix calls/s in one run of ``seconds`` while the ``backlog`` records are being
    removed, and in one as long once they all are; with the server's CPU per call. One
    unbroken run each: in a pause between runs the server would remove at the idle pace,
    which no sustained load lets it do. ``expiring_per_second``: records that also expire
    during the warm-up and the first run (``prepare``)."""
    warmup = min(seconds, 5)
    server, last, days_late = prepare(workdir, records, backlog, on_postgres,
                                      (expiring_per_second, warmup + seconds))
    loaded = _left(server, last)
    with servers.serving(server):
        signer = Signer(server.host_header, *server.credentials())
        requests = read_mix(signer, calls)
        replay(server, requests, warmup)  # warm-up: the server's caches, the key's
        before = _left(server, last)  # the first passes, before the load, go at the idle pace
        removing = _run(server, requests, seconds)
        left = _left(server, last)
        if not left:
            raise RuntimeError(f"every record was removed before the {seconds:.0f} s run "
                               "ended: load more (--records)")
        deadline = time.monotonic() + 3_600
        while _left(server, last) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # the rest goes at the idle pace; polled with a deadline
        # signed afresh: draining may outlast the 5 minutes of clock skew SigV4 allows
        after = _run(server, read_mix(signer, calls), seconds)
        complete = _left(server, last) == 0
        described = server.describe()
    drop = 100 * (1 - removing[0] / after[0])
    log(f"retention: {backlog}: {before - left:,} records removed in {removing[2]:.0f} s of "
        "answering calls")
    log(f"retention: {backlog}: API {removing[0]:,.0f} calls/s while removing, {after[0]:,.0f} "
        f"after ({drop:.1f}% drop); server CPU per call {removing[1]:.0f} and {after[1]:.0f} µs")
    return {"run": f"API while removing a backlog {backlog}", "records": loaded,
            "oldest_days_past_window": round(days_late, 2), "seconds_per_run": seconds,
            "expiring_per_second": expiring_per_second,
            "removed_while_answering": before - left,
            "removed_per_second_while_answering": round((before - left) / removing[2]),
            "removing_calls_per_second": round(removing[0]),
            "after_calls_per_second": round(after[0]),
            "drop_percent": round(drop, 1),
            "server_cpu_us_per_call": {"removing": round(removing[1]),
                                       "after": round(after[1])},
            "complete": complete}, described


def _run(server: servers.Server, requests: list[bytes],
         seconds: float) -> tuple[float, float, float]:
    """One replay of the read mix: (calls/s, server CPU µs per call, seconds it took)."""
    cpu_before = server.cpu_seconds()
    answered, took = replay(server, requests, seconds)
    return answered / took, (server.cpu_seconds() - cpu_before) / answered * 1e6, took


def _runs(work: Path, records: int, seconds: float, quick: bool,
          on_postgres: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Removal alone, then the API beside each backlog, each on a fresh store."""
    rows = [removal_alone(work / "alone", 4_000 if quick else records, print, on_postgres)]
    described: dict[str, Any] = {}
    for number, backlog in enumerate(BACKLOGS):
        expiring = 0 if backlog != KEEPING_PACE else 100 if quick else EXPIRING_PER_SECOND
        api, described = api_while_removing(work / f"api-{number}", records, seconds,
                                            1_000 if quick else 20_000, backlog, print,
                                            on_postgres, expiring)
        rows.append(api)
    return rows, described


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("retention", __doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int,
                        help="expired records loaded for each run (default 200,000; quick 4,000 and "
                        "10,000)")
    parser.add_argument("--seconds", type=float,
                        help="seconds of each API run (default 60; quick 1)")
    args = parser.parse_args(argv)
    records = args.records or (10_000 if args.quick else 200_000)
    seconds = args.seconds or (1.0 if args.quick else 60.0)
    if records < 2:
        parser.error("--records must be at least 2 (the newest record always stays)")
    started = now_iso()
    rows: list[dict[str, Any]] = []
    described: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as work:
        for kind in store_kinds(args.servers):
            print(f"retention: {kind}")
            kind_rows, described[kind] = _runs(Path(work) / kind, records, seconds, args.quick,
                                               kind == "searchtrail-postgres")
            rows += [{"server": kind, **row} for row in kind_rows]
    ages = "; ".join(f"{name}: the newest {age:g} days old, over {span:g} days"
                     for name, (age, span) in BACKLOGS.items())
    write_result(args.out, "retention", started, described, rows, [],
                 notes=[f"bulk-loaded expired records ({ages}); removal alone from the "
                        f"backlog {ALONE}; the server looks for expired records every 0.5 s "
                        "and removes up to 2,000 a pass in writer units of 100; beside a busy "
                        "API one unit a second, one more for each day the oldest is past the "
                        "window (audit/retention.py, MAX_BUSY_UNITS), and once it is a day or "
                        "more, at least as many as keep pace with the records expiring then "
                        f"(KEEP_PACE_SPAN_SECONDS; {KEEPING_PACE}: {EXPIRING_PER_SECOND:,} a "
                        "second, 100 when quick); no target",
                        "searchtrail-postgres: each run's store in a private PostgreSQL server "
                        "of its own, whose processes' CPU is counted in the server's"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
