"""The server's malloc tuning: with the mmap threshold fixed, a block of megabytes allocated
after a larger one was freed still gets its own mapping, so freeing it gives it back."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Frees an 8 MiB block (glibc then raises its threshold to 8 MiB unless it is fixed), then
# holds a 4 MiB one and prints the bytes malloc holds in mappings of their own (mallinfo2).
_PROBE = """
import ctypes, sys
from searchtrail.malloc import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
freed = bytearray(8 << 20)
del freed
held = bytearray(4 << 20)
print(mallinfo2().hblkhd)
"""


def _mapped_bytes_holding_4_mib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_block_of_megabytes_keeps_its_own_mapping_once_the_threshold_is_fixed() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc tuning applies to glibc only")
    assert _mapped_bytes_holding_4_mib("fixed") >= 4 << 20
    # glibc's own behaviour, which the tuning is for: the block comes from the heap
    assert _mapped_bytes_holding_4_mib("default") < 4 << 20

