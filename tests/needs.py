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


def file_modes_binding(command: list[str]) -> list[str]:
    """``command`` run so that file modes bind it: as root (which writes whatever a mode
    says), through capsh with the capabilities that override them dropped."""
    import shlex
    import shutil

    if os.geteuid() != 0:
        return command
    if shutil.which("capsh") is None:
        unavailable("capsh is missing: apt-get install libcap2-bin")
    return ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--",
            "-c", shlex.join(command)]
