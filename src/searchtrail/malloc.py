"""glibc malloc tuning for the long-running server: buffers of megabytes (a log file being
built, a page of a download) go back to the system when freed instead of staying in a heap."""

from __future__ import annotations

import ctypes

# mallopt's parameter number for the size from which an allocation gets its own mapping
_M_MMAP_THRESHOLD = -3
# glibc's default. Left to itself glibc raises the threshold to the size of every mapped block
# freed (up to 32 MiB), so the delivery worker's log files, a few MB each, then come from its
# thread's heap, which they fragment: RSS crept from 86 to 122 MB over 10 minutes of calls
# with a trail delivering every second, and stayed ~90 MB with the threshold fixed
# (bench/README.md, "(e) Server memory").
MMAP_THRESHOLD_BYTES = 128 * 1024


def fix_mmap_threshold(size: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix malloc's mmap threshold at ``size`` (which also stops glibc moving it, and the trim
    threshold with it); False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, size) == 1
