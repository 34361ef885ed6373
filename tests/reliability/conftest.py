"""Reliability fixtures: the run's profile and the ledger written to a JSON summary at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.ledger import Ledger, Profile

DEFAULT_SUMMARY = Path("test-artifacts") / "reliability-summary.json"


@pytest.fixture(scope="session")
def profile() -> Profile:
    return Profile.from_environment()


@pytest.fixture(scope="session")
def ledger(profile: Profile, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    tally = Ledger(profile)
    yield tally
    # One summary from several processes: `make test` names its runs; xdist's workers share
    # their session's run id.
    run = os.environ.get("SEARCHTRAIL_RELIABILITY_RUN") or getattr(
        request.config, "workerinput", {}).get("testrunuid")
    tally.write(Path(os.environ.get("SEARCHTRAIL_RELIABILITY_SUMMARY", DEFAULT_SUMMARY)), run)
