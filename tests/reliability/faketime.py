"""libfaketime (Debian's faketime package) for servers whose wall clock a test sets or steps."""

from __future__ import annotations

import glob
from pathlib import Path

from tests.needs import unavailable


def faketime_path() -> str | None:
    """The multi-threaded libfaketime, or None when it is not installed."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
                   + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


def faketime_library() -> str:
    """libfaketime, or the test fails (in CI) or is skipped (elsewhere) saying how to get it."""
    library = faketime_path()
    if library is None:
        unavailable("libfaketime is missing: apt-get install faketime")
    return library


class SteppedClock:
    """A server's wall clock at an offset from real time that the test moves while it runs.

    The offset lives in a file libfaketime rereads every second; the monotonic clock is left
    alone, as a real clock step (NTP, an operator) leaves it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set_offset(0)

    def env(self, library: str) -> dict[str, str]:
        return {"LD_PRELOAD": library, "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_CACHE_DURATION": "1",
                # timers waiting on a faked monotonic clock hang
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def set_offset(self, seconds: int) -> None:
        staged = self.path.with_suffix(".new")
        staged.write_text(f"{seconds:+d}\n")
        staged.replace(self.path)  # atomic: libfaketime never reads half a line
