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
def ledger(profile: Profile):  # type: ignore[no-untyped-def]
    tally = Ledger(profile)
    yield tally
    tally.write(Path(os.environ.get("SEARCHTRAIL_RELIABILITY_SUMMARY", DEFAULT_SUMMARY)))
