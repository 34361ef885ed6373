"""What a test does when the machine lacks a tool or a privilege it needs."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, where `.ci/run` installs every tool the tests use; skip elsewhere. Both say
    ``reason`` (what is missing and how to get it)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
