"""I/O errors on the event store's writes and syncs (plan §3.1 R4), injected with libfiu: the
server fails closed while they last and serves again, without a restart, once they stop."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from searchtrail.audit.delivery import MAX_BACKOFF_SECONDS
from tests.functional.server import ServerProcess
from tests.functional.trails import wait_for
from tests.needs import unavailable
from tests.reliability.failclosed import FAIL_CLOSED, MixedLoad, listed_names, stop_and_judge
from tests.reliability.history import History, Op

pytestmark = pytest.mark.reliability

FIU_LIBRARIES = ("/usr/lib/fiu/fiu_run_preload.so", "/usr/lib/fiu/fiu_posix_preload.so")
# SQLite writes its WAL and database with pwrite and syncs them with fdatasync or fsync; sockets
# and the server's log use write and send, which stay sound, so every call still gets an answer.
FAULT_POINTS = ("posix/io/rw/pwrite", "posix/io/rw/pwritev", "posix/io/sync/fsync",
                "posix/io/sync/fdatasync")
PROBABILITY = 0.02  # the plan's; a commit writes several WAL pages, so about half the calls fail
MAX_CALLS_PER_THREAD = 100_000  # bounds the loop should the clock misbehave
RECOVERY_SECONDS = 10
R4 = MixedLoad("r4")


class FaultPoints:
    """libfiu's failure points in one server process, switched on and off while it runs."""

    def __init__(self, fifo_prefix: Path) -> None:
        missing = [path for path in FIU_LIBRARIES if not Path(path).exists()]
        if missing or shutil.which("fiu-ctrl") is None:
            unavailable("libfiu is missing: apt-get install fiu-utils")
        self.fifo_prefix = fifo_prefix

    def env(self) -> dict[str, str]:
        """The server's environment: libfiu preloaded with every point off, and its control
        pipe."""
        return {"LD_PRELOAD": " ".join(FIU_LIBRARIES), "FIU_CTRL_FIFO": str(self.fifo_prefix),
                "FIU_ENABLE": ""}

    def enable(self, pid: int, probability: float) -> None:
        self._control(pid, [f"enable_random name={point},probability={probability}"
                            for point in FAULT_POINTS])

    def disable(self, pid: int) -> None:
        self._control(pid, [f"disable name={point}" for point in FAULT_POINTS])

    def _control(self, pid: int, commands: list[str]) -> None:
        options = [part for command in commands for part in ("-c", command)]
        done = subprocess.run(["fiu-ctrl", "-f", str(self.fifo_prefix), *options, str(pid)],
                              capture_output=True, text=True, timeout=30)
        # fiu-ctrl exits 0 even when a process refused a command; it says so on stdout
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_r4_io_errors_fail_closed_and_the_server_recovers_without_restart(
        tmp_path: Path, profile, ledger) -> None:
    threads = profile.pick(ci=4, full=8)
    seconds_of_load = profile.pick(ci=4.0, full=120.0)  # the plan's 2 min in the full run
    faults = FaultPoints(tmp_path / "fiu")
    server = ServerProcess(tmp_path / "data", env=faults.env(),
                           args=["--delivery-interval", "1", "--digest-interval", "2"])
    try:
        server.start()
        history = History()
        setup = R4.start(server, history)
        aoss = history.wrap(server.client("opensearchserverless", validate=False))
        before = [R4.call(history, aoss, "before", i) for i in range(8)]
        assert all(op.succeeded for op in before), [op for op in before if not op.succeeded]

        faults.enable(server.process.pid, PROBABILITY)
        try:
            with ThreadPoolExecutor(threads) as pool:
                batches = list(pool.map(
                    lambda n: _calls(server, history, f"faulty{n}", seconds_of_load),
                    range(threads)))
        finally:
            faults.disable(server.process.pid)
        during = [op for batch in batches for op in batch]
        assert server.process.poll() is None, "the server must stay up through I/O errors"

        healed = time.monotonic()
        wait_for(lambda: history.call(aoss, "list_collections").succeeded,
                 seconds=RECOVERY_SECONDS, step=0.2, what="calls served again after the errors")
        recovered_after = time.monotonic() - healed
        # Policies whose delete failed closed are still there; a long run would otherwise
        # reach the account's network-policy quota. Deleting them all is the first test of
        # writes after the errors.
        leftovers = sorted(name for name in listed_names(
            history, aoss, "list_security_policies", "securityPolicySummaries", type="network")
            if name.startswith(f"{R4.prefix}-faulty"))
        removed = [history.call(aoss, "delete_security_policy", subject=f"policy/{name}",
                                name=name, type="network") for name in leftovers]
        assert all(op.succeeded for op in removed), [op for op in removed if not op.succeeded]
        after = [R4.call(history, aoss, "after", i) for i in range(8)]
        assert all(op.succeeded for op in after), [op for op in after if not op.succeeded]

        # a delivery that failed meanwhile retries after its back-off
        verdict = stop_and_judge(server, history, R4, setup,
                                 closing_seconds=30 + MAX_BACKOFF_SECONDS)
    finally:
        server.stop()

    outcomes = Counter(_kind(op) for op in during)
    failed_commits = server.log().count("failed to commit")
    verdict.record(ledger, "R4", faults_injected=outcomes["fail-closed"],
                   calls_made=len(history.ops))
    ledger.note("R4", calls_with_faults=len(during), outcomes=dict(outcomes),
                failed_commits_logged=failed_commits,
                seconds_to_recover=round(recovered_after, 2), leftovers_deleted=len(removed))
    # the faults fired, and calls went on succeeding between them
    assert outcomes["fail-closed"] > 0 and outcomes["2xx"] > 0, outcomes
    assert outcomes["other"] == 0, [op for op in during if _kind(op) == "other"]
    verdict.assert_holds()


def _calls(server: ServerProcess, history: History, batch: str, seconds: float) -> list[Op]:
    """One client thread's calls for ``seconds``: its own client, its own resource names."""
    aoss = history.wrap(server.client("opensearchserverless", validate=False))
    deadline = time.monotonic() + seconds
    made: list[Op] = []
    for i in range(MAX_CALLS_PER_THREAD):
        if time.monotonic() >= deadline:
            break
        made.append(R4.call(history, aoss, batch, i))
    return made


def _kind(op: Op) -> str:
    if op.succeeded:
        return "2xx"
    if (op.error_code, op.status) in FAIL_CLOSED:
        return "fail-closed"
    return "4xx" if op.outcome == "ok" and op.status < 500 else "other"


def _health(server: ServerProcess) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(server.endpoint + "/_searchtrail/health", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_health_says_unavailable_while_commits_fail(tmp_path: Path) -> None:
    """A store that reads but cannot write (a full disk, a read-only file): calls fail closed,
    and health must not tell a load balancer "ok" meanwhile."""
    faults = FaultPoints(tmp_path / "fiu")
    server = ServerProcess(tmp_path / "data", env=faults.env())
    try:
        server.start()
        aoss = server.client("opensearchserverless", validate=False)
        assert _health(server)[0] == 200
        faults._control(server.process.pid, [f"enable name={point}" for point in FAULT_POINTS])
        try:
            for attempt in range(3):  # one failure alone says nothing of the next commit
                assert _health(server)[0] == 200
                with pytest.raises(Exception) as refused:
                    aoss.create_security_policy(name=f"never-stored-{attempt}", type="network",
                                                policy='[{"Rules":[{"ResourceType":"collection"'
                                                       ',"Resource":["collection/x"]}],'
                                                       '"AllowFromPublic":true}]')
                assert "ServiceUnavailable" in str(refused.value)
            status, report = _health(server)
            assert status == 503 and report["storeError"].startswith("commits are failing")
        finally:
            faults.disable(server.process.pid)
        aoss.list_collections()  # a commit that succeeds clears it
        assert _health(server)[0] == 200
    finally:
        server.stop()
