"""The reliability suite's tally: what each scenario tried and found, written as one JSON summary."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Totals every scenario may add to; the acceptance figures are read from these.
COUNTERS = (
    "calls_made",          # requests sent by the suite's clients
    "kills",               # kill -9 / SIGTERM of a server process
    "faults_injected",     # store pauses, proxy faults, disk-full episodes, broken buckets
    "records_checked",     # stored or delivered records compared with the client's history
    "lost",                # acknowledged calls without their record
    "duplicated",          # records (or delivered copies) seen more than once
    "phantom",             # records for calls never made
    "bad_inputs",          # malformed, hostile or fuzzed requests sent
    "unexpected_5xx",      # 5xx answers where the plan expects a 4xx or 2xx
    "tamper_cases",        # tamperings tried
    "tamper_detected",     # ... that were reported by the validators expected to see them
    "corrupt_stores",      # integrity_check results other than "ok" after a crash
)


@dataclass(frozen=True)
class Profile:
    """`ci` (inside `make test`, a few minutes) or `full` (`make reliability`)."""

    name: str

    def pick(self, *, ci: Any, full: Any) -> Any:
        return full if self.name == "full" else ci

    @classmethod
    def from_environment(cls) -> "Profile":
        name = os.environ.get("SEARCHTRAIL_RELIABILITY", "ci")
        if name not in ("ci", "full"):
            raise ValueError(f"SEARCHTRAIL_RELIABILITY must be 'ci' or 'full', not {name!r}")
        return cls(name)


@dataclass
class Ledger:
    profile: Profile
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(self, scenario: str, **counts: int) -> None:
        """Add ``counts`` (names from COUNTERS) to the totals and to ``scenario``'s own line."""
        unknown = set(counts) - set(COUNTERS)
        if unknown:
            raise KeyError(f"unknown ledger counters: {sorted(unknown)}")
        line = self.scenarios.setdefault(scenario, {})
        for name, value in counts.items():
            self.totals[name] += value
            line[name] = line.get(name, 0) + value

    def note(self, scenario: str, **facts: Any) -> None:
        """Free-form figures for one scenario (latencies, counts of files...)."""
        self.scenarios.setdefault(scenario, {}).update(facts)

    def summary(self) -> dict[str, Any]:
        return {"profile": self.profile.name, "seconds": round(time.time() - self.started, 1),
                "totals": self.totals, "scenarios": self.scenarios}

    def write(self, path: Path, run: str | None = None) -> None:
        """Write the summary to ``path``. A ``run`` names the pytest processes that share one
        summary (`make test`'s parallel and serial runs, or one run's xdist workers): a
        summary already there from the same run is added to, not replaced."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = dict(self.summary(), run=run, started=self.started)
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
            if run is not None:
                document = _merged(_read_summary(path), document)
            path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _merged(earlier: dict[str, Any] | None, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with an earlier summary of the same run added in (counters summed, the
    scenarios' lines joined); an earlier summary of another run is replaced."""
    if earlier is None or earlier.get("run") != document["run"]:
        return document
    started = min(earlier.get("started", document["started"]), document["started"])
    totals = {name: earlier["totals"].get(name, 0) + value
              for name, value in document["totals"].items()}
    scenarios = {name: dict(line) for name, line in earlier["scenarios"].items()}
    for name, line in document["scenarios"].items():
        joined = scenarios.setdefault(name, {})
        for key, value in line.items():
            joined[key] = joined.get(key, 0) + value if key in COUNTERS else value
    return dict(document, started=started, seconds=round(time.time() - started, 1),
                totals=totals, scenarios=scenarios)
