"""Simulated power loss (plan §3.1 R3): once the server has died (right after a write, or by
kill -9), the writes it never synced are undone as a power cut could leave them, and no
acknowledged call may lose its record."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.functional.server import ServerProcess
from tests.reliability.history import History
from tests.reliability.ledger import Ledger, Profile
from tests.reliability.powercut import CutReport, PowerCut, build_shim
from tests.reliability.test_crash import (HEALTHY_SECONDS, Load, integrity, prepare, restart,
                                          verify)
from tests.reliability.test_crash_delivery import (FAST_DELIVERY, Traffic, catch_up_and_check,
                                                   logging_trail)

pytestmark = pytest.mark.reliability

DATABASE = "searchtrail.sqlite3"
ARMED_SECONDS = 5.0  # under load the next write comes within milliseconds
ROWS = 200
# Commits one row per transaction, says how many it committed, then dies without closing the
# database (closing would checkpoint and sync the WAL).
COMMITTER = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA synchronous=" + sys.argv[2])
for n in range(int(sys.argv[3])):
    conn.execute("INSERT INTO rows (n) VALUES (?)", (n,))
print(n + 1, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("powercut"))


def run_until_killed(power: PowerCut, script: str, *args: str) -> str:
    """Run a small Python script under the journal until it kills itself; what it printed."""
    done = subprocess.run([sys.executable, "-c", script, *args],
                          env={**os.environ, **power.env()}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == -9, done.stderr
    return done.stdout


# Writes a file through the calls SQLite uses, syncing halfway, then dies.
SCRIBBLER = """
import os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
folder = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY)
os.fsync(folder)                    # the file's name lasts
os.pwrite(fd, b"a" * 3000, 0)
os.pwrite(fd, b"b" * 700, 2000)
os.fsync(fd)
os.pwrite(fd, b"c" * 1500, 2500)   # over the synced bytes and past their end
os.ftruncate(fd, 1000)              # a shrink
os.pwrite(fd, b"d" * 600, 5000)     # past the end: a hole
os.write(fd, b"e" * 10)             # at the file position (0)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("keep, expected", [
    (0.0, b"a" * 2000 + b"b" * 700 + b"a" * 300),
    (1.0, b"e" * 10 + b"a" * 990 + b"\0" * 4000 + b"d" * 600),
])
def test_r3_a_cut_restores_the_synced_file_or_replays_every_later_write(
        shim: Path, tmp_path: Path, keep: float, expected: bytes) -> None:
    path = tmp_path / "file"
    power = PowerCut(shim, tmp_path / "journal", path)
    run_until_killed(power, SCRIBBLER, str(path))
    report = power.cut(random.Random(0), keep=keep, tear=0.0)
    assert report.unsynced == 4
    assert path.read_bytes() == expected
    assert not power.journal.exists()


# Replaces one file atomically, makes a folder with a file in it, and removes another file, the
# way the local folder store does; the directories are synced only when argv[2] says "sync".
RENAMER = """
import os, signal, sys
root, sync = sys.argv[1], sys.argv[2] == "sync"
def sync_folder(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
write(os.path.join(root, ".tmp"), b"new")
os.replace(os.path.join(root, ".tmp"), os.path.join(root, "object"))
os.unlink(os.path.join(root, "gone"))
os.mkdir(os.path.join(root, "folder"))
write(os.path.join(root, "folder", "inner"), b"inner")
sync_folder(os.path.join(root, "folder"))  # the inner name lasts if the folder's own does
if sync:
    sync_folder(root)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("sync, keep, expected", [
    ("sync", 0.0, {"object": b"new", "folder/inner": b"inner"}),
    ("nosync", 1.0, {"object": b"new", "folder/inner": b"inner"}),
    ("nosync", 0.0, {"object": b"old", "gone": b"gone"}),
])
def test_r3_a_name_lasts_only_once_its_directory_is_synced(
        shim: Path, tmp_path: Path, sync: str, keep: float, expected: dict[str, bytes]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "object").write_bytes(b"old")
    (root / "gone").write_bytes(b"gone")
    power = PowerCut(shim, tmp_path / "journal", root)
    run_until_killed(power, RENAMER, str(root), sync)
    report = power.cut(random.Random(0), keep=keep, tear=0.0)
    files = {str(path.relative_to(root)): path.read_bytes()
             for path in root.rglob("*") if path.is_file()}
    assert files == expected
    assert report.names_unsynced == (0 if sync == "sync" else 4)  # "inner" is synced
    assert not power.backups.exists() and not power.journal.exists()


def _commit_then_die(shim: Path, directory: Path, synchronous: str) -> tuple[Path, PowerCut, int]:
    database = directory / "rows.sqlite3"
    setup = sqlite3.connect(database)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE rows (n INTEGER)")
    setup.commit()
    setup.close()  # a clean close: the table is on disk before the journalled process starts
    power = PowerCut(shim, directory / "journal", database)
    committed = run_until_killed(power, COMMITTER, str(database), synchronous, str(ROWS))
    return database, power, int(committed)


def _rows_and_integrity(database: Path) -> tuple[int, str]:
    conn = sqlite3.connect(database)
    try:
        return (conn.execute("SELECT count(*) FROM rows").fetchone()[0],
                conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_r3_the_cut_loses_commits_a_normal_sync_never_made_durable(shim: Path,
                                                                  tmp_path: Path) -> None:
    """The harness can fail: WAL with synchronous=NORMAL does not sync at commit, so a cut
    that loses every unsynced write loses those commits (SQLite documents exactly this)."""
    database, power, committed = _commit_then_die(shim, tmp_path, "NORMAL")
    report = power.cut(random.Random(1), keep=0.0, tear=0.0)
    rows, check = _rows_and_integrity(database)
    assert committed == ROWS
    assert report.dropped > 0 and str(database) + "-wal" in report.files
    assert rows < committed
    assert check == "ok"


@pytest.mark.parametrize("seed", range(4))
def test_r3_full_sync_keeps_every_commit_whatever_the_cut(shim: Path, tmp_path: Path,
                                                          seed: int) -> None:
    database, power, committed = _commit_then_die(shim, tmp_path, "FULL")
    keep, tear = ((0.0, 0.0), (0.0, 1.0), (0.5, 0.25), (1.0, 0.0))[seed]
    power.cut(random.Random(seed), keep=keep, tear=tear)
    assert _rows_and_integrity(database) == (committed, "ok")


def crash_at_next_write(server: ServerProcess) -> bool:
    """Arm the shim's crash point: the server kills itself right after its next write to the
    database, before any sync covers it. False if no write came (then it is killed anyway)."""
    server.process.send_signal(signal.SIGUSR2)
    try:
        server.process.wait(timeout=ARMED_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    crashed = server.process.returncode == -signal.SIGKILL
    server.kill9()  # reaps it (a no-op signal once it has exited) and closes its log
    return crashed


@dataclass
class Cuts:
    """The power cuts of one run: even ones crash the server right after one of its writes, odd
    ones kill it at once; the first loses every unsynced change, so every run loses something."""

    power: PowerCut
    rng: random.Random
    reports: list[CutReport] = field(default_factory=list)
    at_write: list[CutReport] = field(default_factory=list)

    def crash_and_cut(self, server: ServerProcess, stop_load: Callable[[], None]) -> CutReport:
        """Kill the server, stop the load, cut the power."""
        first = not self.reports
        if len(self.reports) % 2:
            server.kill9()
            crashed_at_write = False
        else:
            crashed_at_write = crash_at_next_write(server)
        stop_load()
        keep, tear = (0.0, 0.0) if first else (self.rng.random(), self.rng.uniform(0.0, 0.5))
        report = self.power.cut(self.rng, keep=keep, tear=tear)
        self.reports.append(report)
        if crashed_at_write:
            self.at_write.append(report)
        return report

    def counts(self) -> dict[str, int]:
        return {"crashes_at_a_write": len(self.at_write),
                "unsynced_changes": sum(r.unsynced for r in self.reports),
                "lost_changes": sum(r.dropped for r in self.reports),
                "torn_changes": sum(r.torn for r in self.reports),
                "unsynced_names": sum(r.names_unsynced for r in self.reports),
                "lost_names": sum(r.names_lost for r in self.reports)}

    def assert_each_crash_at_a_write_had_something_to_lose(self) -> None:
        assert len(self.at_write) == (len(self.reports) + 1) // 2, self.counts()
        assert all(r.unsynced + r.names_unsynced > 0 for r in self.at_write), self.at_write
        first = self.reports[0]
        assert first.dropped == first.unsynced and first.names_lost == first.names_unsynced
        assert first.dropped + first.names_lost > 0, first


@pytest.mark.timeout(1800)  # full size: 100 cuts, each checked against the whole store (~7 min)
def test_r3_power_loss_under_load_loses_no_acknowledged_call(shim: Path, tmp_path: Path,
                                                             profile: Profile,
                                                             ledger: Ledger) -> None:
    """Even cuts crash right after a write (a commit half-written), odd ones at a random
    moment (`crash_and_cut`)."""
    cuts = profile.pick(ci=6, full=100)
    threads = profile.pick(ci=4, full=8)
    rng = random.Random(0x9E3)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    power = PowerCut(shim, tmp_path / "journal", data_dir / DATABASE)
    history = History()
    server = ServerProcess(data_dir, env=power.env()).start()
    made = Cuts(power, rng)
    healthy: list[float] = []
    failures: list[str] = []
    try:
        load = Load(history, server, threads, seed=3, denied_key=prepare(server, history))
        for round_ in range(cuts):
            load.start()
            threading.Event().wait(rng.uniform(0.5, 2.0))  # the crash point: a random moment
            made.crash_and_cut(server, load.stop)
            server, seconds = restart(server)
            healthy.append(seconds)
            store, atomicity, check = verify(server, history)
            failures += [f"cut {round_}: {r}" for r in (store, atomicity) if not r.ok]
            failures += [f"cut {round_}: integrity_check {check!r}"] if check != "ok" else []
    finally:
        server.stop()
    ops = history.ops
    outcomes = Counter(op.outcome for op in ops)
    ledger.add("R3", calls_made=len(ops), kills=cuts,
               corrupt_stores=sum("integrity_check" in f for f in failures),
               unexpected_5xx=sum(op.outcome == "ok" and op.status >= 500 for op in ops),
               **store.counts())
    ledger.note("R3", threads=threads, outcomes=dict(outcomes), **made.counts(),
                healthy_seconds_max=round(max(healthy), 2))
    assert not failures, "\n".join(failures)
    assert max(healthy) <= HEALTHY_SECONDS
    assert outcomes["ok"] > 100 * cuts // 2, f"too little load to mean anything: {outcomes}"
    made.assert_each_crash_at_a_write_had_something_to_lose()
    # here only the database's contents change under load: each of those cuts lost contents
    assert all(r.unsynced > 0 for r in made.at_write), made.at_write
    assert made.reports[0].dropped > 0, made.reports[0]


BUCKET = "powercut-trail"
TRAIL = "powercut"


@pytest.mark.timeout(1800)  # full size: 40 cuts with a trail delivering every second (~2 min)
def test_r3_power_loss_while_delivering_to_a_folder_loses_no_log_file(
        shim: Path, tmp_path: Path, profile: Profile, ledger: Ledger) -> None:
    """The same cuts over the whole data directory while a trail delivers every second to a
    local folder: the database, log files, digests, their metadata and folders, the
    credentials file, and every name among them. After the last cut every record must be in
    exactly one log file that is really in the bucket, and both validators must pass."""
    cuts = profile.pick(ci=4, full=40)
    rng = random.Random(0xF01D)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    power = PowerCut(shim, tmp_path / "journal", data_dir)
    history = History()
    server = ServerProcess(data_dir, args=FAST_DELIVERY, env=power.env()).start()
    made = Cuts(power, rng)
    failures: list[str] = []
    try:
        root_key = server.credentials()
        trail_arn = logging_trail(server, BUCKET, TRAIL, env=power.env())
        traffic = Traffic(history, server)
        for round_ in range(cuts):
            traffic.start()
            threading.Event().wait(rng.uniform(0.5, 3.0))  # the crash point: a random moment
            made.crash_and_cut(server, traffic.stop)
            server, _ = restart(server)
            # without it no client could call again: stop here, saying why
            assert _credentials(server) == root_key, f"cut {round_}: the root key file was lost"
            if (check := integrity(server)) != "ok":
                failures.append(f"cut {round_}: integrity_check {check!r}")
        trail = catch_up_and_check(server, history, TRAIL, trail_arn, BUCKET)
    finally:
        server.stop()
    ledger.add("R3", calls_made=len(history.ops), kills=cuts, **trail.delivery.counts())
    ledger.note("R3 while delivering", log_files=len(trail.delivered.log_keys),
                digests=len(trail.delivered.digest_keys), **made.counts())
    assert not failures, "\n".join(failures)
    trail.assert_whole(calls_at_least=50 * cuts)
    made.assert_each_crash_at_a_write_had_something_to_lose()


def _credentials(server: ServerProcess) -> tuple[str, str] | None:
    """The root key in the data directory's credentials file; None if it has none."""
    try:
        return server.credentials()
    except KeyError:  # no [default] section: the file is missing or empty
        return None
