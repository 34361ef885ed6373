"""The reliability summary when several pytest processes of one run write it (xdist workers,
`make test`'s parallel and serial runs): their tallies add up; another run's is replaced."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.ledger import Ledger, Profile


def tally(scenario: str, calls: int, **facts: object) -> Ledger:
    ledger = Ledger(Profile("ci"))
    ledger.add(scenario, calls_made=calls, lost=0)
    if facts:
        ledger.note(scenario, **facts)
    return ledger


def test_writers_of_one_run_add_up_and_keep_every_scenario(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    tally("R1", 10, p99_ms=4.0).write(path, run="make-1")
    tally("M1", 5).write(path, run="make-1")
    tally("R1", 3, p99_ms=6.0).write(path, run="make-1")
    summary = json.loads(path.read_text())
    assert summary["totals"]["calls_made"] == 18
    assert summary["scenarios"]["R1"] == {"calls_made": 13, "lost": 0, "p99_ms": 6.0}
    assert summary["scenarios"]["M1"] == {"calls_made": 5, "lost": 0}


def test_a_summary_of_another_run_or_of_no_run_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    tally("R1", 10).write(path, run="make-1")
    tally("M1", 5).write(path, run="make-2")
    assert json.loads(path.read_text())["totals"]["calls_made"] == 5
    tally("M1", 7).write(path)
    tally("M1", 2).write(path)
    summary = json.loads(path.read_text())
    assert summary["totals"]["calls_made"] == 2 and list(summary["scenarios"]) == ["M1"]
