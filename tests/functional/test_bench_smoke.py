"""Smoke test of bench/: every benchmark's --quick mode against a real server, and the report.

Checks the shared JSON shape and the correctness parts of the figures (every searchtrail call
answered 2xx, one events row per 2xx); never a timing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import REPO
from bench.__main__ import benchmark_modules, module_servers
from bench import capacity, compare, servers, wrk
from tests.needs import unavailable

# each has a test of its own below (lookup and memory: on both stores, the PostgreSQL tests)
OWN = ("workload", "capacity", "latency", "validate", "storage", "delivery", "lookup", "memory",
       "retention")
MODULE_TIMEOUT = 240
# Four bench.callcost processes under callgrind, side by side on the cores, each instrumented
# only for its counted calls: ~25 s in all here (82 s when whole processes were instrumented,
# ~50x slower than native); a bound on a hang, not a speed check.
CALLGRIND_TIMEOUT = 600


def run_module(name: str, out: Path, *extra: str, timeout: float = MODULE_TIMEOUT) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-4000:]
    document = json.loads(out.read_text())
    assert document["benchmark"] == name
    assert {"started", "machine", "servers", "results", "targets"} <= set(document)
    assert document["machine"]["cpu_count"] >= 1
    assert document["machine"]["python_yardstick_ms"] > 0
    assert document["results"], "no result rows"
    for goal in document["targets"]:
        assert {"target", "value", "goal", "met"} <= set(goal)
        assert isinstance(goal["met"], bool)
    return document


def need_wrk() -> None:
    if not wrk.available():
        unavailable(wrk.INSTALL_HINT)


def test_workload_quick_answers_every_searchtrail_call(tmp_path: Path) -> None:
    document = run_module("workload", tmp_path / "workload.json", "--servers", "searchtrail")
    totals = [r for r in document["results"] if r["operation"] == "all"]
    assert [r["phase"] for r in totals] == ["create", "read", "delete"]
    assert all(r["calls"] > 0 and r["errors"] == 0 for r in totals), totals
    assert document["servers"]["searchtrail"]["version"]


def test_capacity_quick_records_one_row_per_2xx(tmp_path: Path) -> None:
    need_wrk()
    document = run_module("capacity", tmp_path / "capacity.json", "--servers", "searchtrail")
    timed = [r for r in document["results"] if "req_per_s" in r]
    checks = [r for r in document["results"] if "rows_added" in r]
    assert {(r["mix"], r["connections"]) for r in timed} == {
        (mix, count) for mix in ("read", "create_delete") for count in (16, 64)}
    # A 403 here would mean the pre-signed requests are signed wrongly.
    assert all(r["requests"] > 0 and r["non_2xx"] == 0 and r["socket_errors"] == 0
               for r in timed), timed
    # a server answering at all spends some CPU per call, and under a second of it
    assert all(0 < r["server_cpu_us_per_call"] < 1_000_000 for r in timed), timed
    assert {c["mix"] for c in checks} == {"read", "create_delete"}
    for check in checks:
        assert check["rows_added"] == check["answered_2xx"] == check["requests"], check
    assert document["servers"]["load_generator"]["name"] == "wrk"


def test_capacity_runs_searchtrail_on_its_own_postgresql_when_named(tmp_path: Path,
                                                                    postgres) -> None:
    need_wrk()  # (the postgres fixture: PostgreSQL is installed, or the test says so)
    document = run_module("capacity", tmp_path / "capacity.json", "--servers",
                          "searchtrail,searchtrail-postgres", "--mixes", "read",
                          "--connections", "16")
    timed = {r["server"]: r for r in document["results"] if "req_per_s" in r}
    ours = timed["searchtrail-postgres"]
    assert ours["non_2xx"] == 0 < ours["requests"], ours
    check = next(r for r in document["results"] if r.get("server") == "searchtrail-postgres"
                 and "rows_added" in r)  # counted in PostgreSQL
    assert check["rows_added"] == check["answered_2xx"] == check["requests"], check
    peer_goals = [t["target"] for t in document["targets"]
                  if "/ searchtrail-postgres" in t["target"]]
    assert peer_goals == [], "the PostgreSQL store is not a peer to beat 4x"
    assert any(r["peer"] == "searchtrail-postgres" for r in document["ratios"])


@pytest.mark.parametrize("name", ["lookup", "memory"])
def test_store_benchmarks_build_their_own_postgresql_store_when_named(
        name: str, tmp_path: Path, postgres) -> None:
    # (the postgres fixture: PostgreSQL is installed, or the test says so)
    document = run_module(name, tmp_path / f"{name}.json", "--servers",
                          "searchtrail,searchtrail-postgres")
    assert {row["server"] for row in document["results"]} == {"searchtrail",
                                                             "searchtrail-postgres"}
    assert set(document["servers"]) == {"searchtrail", "searchtrail-postgres"}
    assert [t["target"].endswith("(PostgreSQL store)") for t in document["targets"]] == [
        False, True]
    assert not list(tmp_path.glob("store-postgres-*")), "the PostgreSQL store is removed"
    if name == "memory":  # a round of sustained load on each store, every call recorded
        soaks = [row for row in document["results"] if row["phase"] == "after sustained load"]
        assert [row["server"] for row in soaks] == ["searchtrail", "searchtrail-postgres"]
        for row in soaks:
            assert len(row["soak_rss_mb_by_round"]) == 1 and row["soak_calls"] > 0, row
            assert row["store_events"] > row["soak_calls"], row  # and the set-up's calls
            assert row["soak_log_files_delivered"] > 0, row  # the trail delivered meanwhile


def test_capacity_runs_one_worker_per_core_when_named_and_rates_it_against_the_peers(
        tmp_path: Path) -> None:
    need_wrk()
    document = run_module("capacity", tmp_path / "capacity.json", "--servers",
                          "searchtrail-workers", "--mixes", "read", "--connections", "16")
    ours = next(r for r in document["results"] if "req_per_s" in r)
    assert ours["server"] == "searchtrail-workers" and ours["non_2xx"] == 0 < ours["requests"]
    check = next(r for r in document["results"] if "rows_added" in r)
    assert check["rows_added"] == check["answered_2xx"] == check["requests"], check

    def row(server: str, rate: float) -> dict:
        return {"server": server, "mix": "read", "connections": 64, "req_per_s": rate,
                "ok_per_s": rate, "non_2xx": 0, "socket_errors": 0}
    _, targets = capacity.summarise(
        [row("searchtrail", 3000), row("searchtrail-workers", 4000), row("ministack", 1000)],
        [], ["searchtrail", "searchtrail-workers", "ministack"], ["read"], [64])
    rated = {t["target"].split(" req/s")[0]: t["value"] for t in targets if "/ " in t["target"]}
    assert rated == {"read mix: searchtrail / ministack": 3.0,
                     f"read mix: searchtrail --workers {servers.WORKERS} / ministack": 4.0}


def test_make_bench_adds_the_workers_kind_to_capacity_only_beside_searchtrail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "WORKERS", 2)
    chosen = "searchtrail,moto,ministack"
    assert module_servers("capacity", chosen) == chosen + ",searchtrail-workers"
    assert module_servers("latency", chosen) == chosen + ",searchtrail-workers"
    assert module_servers("lookup", chosen) == chosen
    assert module_servers("capacity", "moto,ministack") == "moto,ministack"
    named = "searchtrail,searchtrail-workers"
    assert module_servers("capacity", named) == named
    monkeypatch.setattr(servers, "WORKERS", 1)  # one core: --workers 1 is the same server
    assert module_servers("capacity", chosen) == chosen


def test_capacity_asyncio_generator_when_wrk_is_absent(tmp_path: Path) -> None:
    document = run_module("capacity", tmp_path / "capacity.json", "--servers", "searchtrail",
                          "--mixes", "read", "--generator", "asyncio", "--fixed-count", "200")
    check = next(r for r in document["results"] if "rows_added" in r)
    assert check["rows_added"] == check["answered_2xx"] == check["requests"]


def test_capacity_compares_each_server_at_its_best_connection_count() -> None:
    def row(server: str, connections: int, rate: float) -> dict:
        return {"server": server, "mix": "read", "connections": connections,
                "req_per_s": rate, "ok_per_s": rate, "non_2xx": 0, "socket_errors": 0}
    rows = [row("searchtrail", 16, 3000), row("searchtrail", 16, 3200),
            row("searchtrail", 64, 4100), row("searchtrail", 64, 3900),
            row("ministack", 16, 2500), row("ministack", 64, 2000)]
    ratios, targets = capacity.summarise(rows, [], ["searchtrail", "ministack"], ["read"],
                                         [16, 64])
    best = next(r for r in ratios if r["connections"] == "capacity" and r["metric"] == "ok_per_s")
    assert (best["searchtrail"], best["peer_value"], best["at_connections"]) == (4000, 2500,
                                                                                 "64 / 16")
    assert best["ratio"] == 1.6
    values = {t["target"].split(",")[0]: t["value"] for t in targets}
    assert values["read mix: searchtrail durably recorded calls/s (2xx)"] == 4000
    assert values["read mix: the same at 16 connections"] == 3100
    with pytest.raises(argparse.ArgumentTypeError):
        capacity.connection_counts("16,,16")


@pytest.mark.parametrize("module, sizes, accepted", [
    ("lookup", "abc", False), ("lookup", "0,20000", False), ("lookup", "1000,1000", False),
    ("memory", "0,-5", False), ("memory", ",", False), ("memory", "0, 20000", True),
])
def test_bench_count_options_refuse_bad_lists_with_a_clear_error(
        module: str, sizes: str, accepted: bool) -> None:
    """--sizes lists are checked by argparse: a usage error naming the option, no traceback
    (memory measures an empty store, lookup needs events to look up)."""
    # An accepted list is converted before --help exits: nothing is measured either way.
    extra = ["--help"] if accepted else []
    done = subprocess.run([sys.executable, "-m", f"bench.{module}", "--sizes", sizes, *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    if accepted:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--sizes" in done.stderr and "expected distinct" in done.stderr


@pytest.mark.parametrize("accounts", ["-3", "fifty"])
def test_delivery_refuses_a_bad_account_count_with_a_clear_error(accounts: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.delivery", "--org-accounts", accounts],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--org-accounts" in done.stderr and "expected a number of accounts" in done.stderr


def test_latency_quick_is_paced_and_answered(tmp_path: Path) -> None:
    document = run_module("latency", tmp_path / "latency.json", "--servers",
                          "searchtrail,searchtrail-workers", "--rate", "500")
    assert [row["server"] for row in document["results"]] == ["searchtrail",
                                                               "searchtrail-workers"]
    for row in document["results"]:
        assert row["answered"] == row["requests"] == 500
        assert row["non_2xx"] == 0 and row["not_sent"] == 0
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert "login_profile_calls" not in row  # only asked for with --login-profiles
    assert [(t["target"].split(" p99")[0], t["goal"]) for t in document["targets"]] == [
        ("searchtrail", 20.0), (f"searchtrail --workers {servers.WORKERS}", 20.0)]
    assert document["ratios"] == []  # our two servers are not rated against each other


def test_latency_can_write_login_profiles_alongside(tmp_path: Path) -> None:
    document = run_module("latency", tmp_path / "latency.json", "--servers", "searchtrail",
                          "--rate", "500", "--login-profiles", "4")
    [row] = document["results"]
    assert row["answered"] == row["requests"] == 500 and row["non_2xx"] == 0
    assert row["login_profile_calls"] >= 2  # at least one create and its delete, answered


def test_validate_quick_agrees_and_records_the_s3_servers_cpu(tmp_path: Path) -> None:
    document = run_module("validate", tmp_path / "validate.json")
    rows = {row["destination"]: row for row in document["results"]}
    assert len(rows) == 3
    for destination, row in rows.items():
        assert row["validated"]["log_files"] == f"{row['log_files']}/{row['log_files']}"
        cpu = row["s3_server_cpu_seconds"]  # a quick run's may be under one clock tick
        assert len(cpu["aws"]) == len(row["runs"]["aws"]) and min(cpu["aws"]) >= 0
        if destination == "local bucket folder":  # ours read the folder, not the server
            assert set(cpu) == {"aws"} and row["speedup_ceiling"] is None
        else:
            assert len(cpu["searchtrail"]) == len(row["runs"]["searchtrail"])
            assert min(cpu["searchtrail"]) >= 0
            assert row["speedup_ceiling"] is None or row["speedup_ceiling"] > 0


@pytest.mark.parametrize("name", [m for m in benchmark_modules() if m not in OWN])
def test_other_benchmark_quick_writes_the_shared_shape(name: str, tmp_path: Path) -> None:
    run_module(name, tmp_path / f"{name}.json")


def test_delivery_quick_delivers_an_organization_trails_backlog_by_account_and_region(
        tmp_path: Path) -> None:
    document = run_module("delivery", tmp_path / "delivery.json")
    org_rows = [row for row in document["results"]
                if "organization trail over 5 accounts" in row.get("destination", "")]
    # quick: the organization trail's run to the distant S3 only, notifying SNS there
    assert [row["destination"].split(",")[:2] for row in org_rows] == [
        ["S3 (moto) 25 ms away", " notifying SNS (moto) there"]]
    # each request through the link waits its 25 ms
    assert org_rows[0]["measured_request_ms"] >= 25
    # a notification per log file, each in the subscribed queue
    assert org_rows[0]["notifications"] == org_rows[0]["log_files"] == org_rows[0][
        "queued_messages"], org_rows[0]
    assert 0 <= org_rows[0]["notification_after_upload_ms"]["median"] <= org_rows[0][
        "notification_after_upload_ms"]["max"]
    for row in org_rows:  # every record of every account, a file per (account, Region); and
        # StartLogging's own record unless the server delivered it before the backlog was loaded
        assert row["records"] in (5_000, 5_001) and row["account_regions"] == 5 * 4, row
        assert row["records_per_second"] > 0
    default_rows = [row for row in document["results"] if row.get("account_regions")
                    and row not in org_rows]
    assert default_rows and all(row["account_regions"] == 4 and row["records"] < 5_000
                                for row in default_rows)  # the default account's four Regions
    assert sum("organization trail" in goal["target"] for goal in document["targets"]) == 1
    api = next(row for row in document["results"] if "drop_percent" in row)
    # the trail's lag in /metrics, read after each delivering run (two rounds in quick)
    lags = api["delivery_lag_seconds_after_delivering_runs"]
    assert len(lags) == 2 and all(lag is not None and lag >= 0 for lag in lags), lags


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_retention_removes_every_backlog_and_measures_the_api_beside_each(
        store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = "searchtrail"
    if store == "postgresql":  # each run's store on a private PostgreSQL server of its own
        request.getfixturevalue("postgres")  # (PostgreSQL is installed, or the test says so)
        server = "searchtrail-postgres"
    document = run_module("retention", tmp_path / "retention.json", "--servers", server)
    assert {row["server"] for row in document["results"]} == {server}
    alone, *beside = document["results"]
    assert alone["run"] == "removal alone" and alone["complete"] and alone["records"] > 0
    assert [row["run"] for row in beside] == [
        "API while removing a backlog under a day late", "API while removing a backlog days late",
        "API while removing a backlog a day late, records expiring meanwhile"]
    # the backlogs retention paces apart: one unit a second, and more for each day late; a day
    # late, at least as many as keep pace with the records expiring meanwhile
    assert 0 < beside[0]["oldest_days_past_window"] < 1 <= 10 <= beside[1][
        "oldest_days_past_window"]
    assert 1 <= beside[2]["oldest_days_past_window"] < 2
    assert [row["expiring_per_second"] for row in beside] == [0, 0, 100]
    for row in beside:
        assert row["complete"] and row["removed_while_answering"] > 0, row
        assert row["removing_calls_per_second"] > 0 and row["after_calls_per_second"] > 0


def test_storage_reports_the_bytes_each_recorded_call_adds(tmp_path: Path) -> None:
    document = run_module("storage", tmp_path / "storage.json")
    rows = {row["mix"]: row for row in document["results"]}
    assert set(rows) == {"read", "create_delete"}
    for row in rows.values():
        assert row["events_recorded"] == row["answered_2xx"] == row["calls"] > 0, row
        assert row["bytes_per_call"] == pytest.approx(
            sum(row["bytes_per_call_by_table"].values()), abs=len(row["bytes_per_call_by_table"]))
        assert row["bytes_per_call_by_table"]["events"] > 500  # a record is ~1 KB of JSON
    assert "resources" in rows["create_delete"]["bytes_per_call_by_table"]  # policies, tokens


def test_report_renders_targets_and_ratios(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "capacity.json").write_text(json.dumps({
        "benchmark": "capacity", "started": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu_count": 2, "python": "3.11"}, "servers": {"moto": {"version": "5.2.5"}},
        "results": [{"server": "searchtrail", "req_per_s": 6000.0},
                    {"server": "searchtrail", "rows_added": 10, "answered_2xx": 10}],
        "targets": [{"target": "read mix calls/s", "value": 6000.0, "goal": 5000, "met": True},
                    {"target": "ratio vs moto", "value": 3.5, "goal": 4, "met": False}],
        "ratios": [{"metric": "req_per_s", "peer": "moto", "ratio": 3.5}],
        "host_stall_probe": {"seconds": 10.0, "stall_episodes": 6, "worst_slowdown": 13.1}}))
    (results / "broken.json").write_text("{not json")
    completed = subprocess.run([sys.executable, "-m", "bench.report", "--results-dir",
                                str(results)], cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    report = (results / "report.md").read_text()
    assert "| capacity | read mix calls/s | 6,000.0 | 5,000 | ✔ met |" in report
    assert "| capacity | ratio vs moto | 3.5 | 4 | ✘ not met |" in report
    assert "| req_per_s | moto | 3.5 |" in report
    assert "| searchtrail | 10 | 10 |" in report  # the check rows get their own table
    assert "Host CPU stall probe" in report and "| 10 | 6 | 13.1 |" in report
    assert "broken.json" in completed.stderr


def test_compare_runs_a_base_commit_beside_this_checkout_and_removes_its_worktree(
        tmp_path: Path) -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    document = run_module("compare", tmp_path / "compare.json", "--base", "HEAD")
    assert [r["build"] for r in document["results"]] == [head, "this checkout"]
    for row in document["results"]:
        assert len(row["runs_calls_per_second"]) == 1 and row["median_calls_per_second"] > 0
        assert row["median_server_cpu_us_per_call"] > 0
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"],
                               capture_output=True, text=True, check=True).stdout
    assert "bench-compare-" not in worktrees


def test_callcost_answers_the_calls_it_is_asked_for() -> None:
    for operation in ("BatchGetCollection", "CreateDeleteMix"):  # any answer but 200 fails it
        done = subprocess.run([sys.executable, "-m", "bench.callcost", operation, "16", "32"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    for args, message in ((["ListCollections", "5", "2"], "SEND must not exceed SIGNED"),
                          (["ListCollections", "x", "2"], "SIGNED"),
                          (["DeleteEverything", "1", "1"], "no requests for 'DeleteEverything'")):
        done = subprocess.run([sys.executable, "-m", "bench.callcost", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.timeout(CALLGRIND_TIMEOUT + 60)
def test_compare_counts_instructions_per_call_with_callgrind(tmp_path: Path) -> None:
    """--metric instructions: callgrind's count of one call in process, for a base commit and
    this checkout (the same code here, so the counts agree)."""
    if shutil.which("valgrind") is None:
        unavailable(compare.VALGRIND_HINT)
    document = run_module("compare", tmp_path / "compare.json", "--base", "HEAD", "--metric",
                          "instructions", timeout=CALLGRIND_TIMEOUT)
    (row,) = document["results"]
    assert row["operation"] == "ListCollections" and row["calls"] == 64
    counts = [value for name, value in row.items() if name.startswith("instructions_per_call")]
    assert len(counts) == 2 and all(100_000 < count < 10_000_000 for count in counts)
    assert abs(row["change_percent"]) < 10  # 64 calls: a smoke run, not a measurement


def test_callcost_refuses_to_count_outside_callgrind() -> None:
    """--instrument-calls asks callgrind to start counting; without callgrind it must stop with
    a message, not answer calls that nothing counts."""
    if shutil.which("callgrind_control") is None:
        unavailable(compare.VALGRIND_HINT)
    done = subprocess.run([sys.executable, "-m", "bench.callcost", "ListCollections", "1", "1",
                           "0", "--instrument-calls"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "needs this process to run under valgrind" in done.stderr
    assert "Traceback" not in done.stderr
