"""Simulated power loss (plan §3.1 R3): after a kill -9, undo the writes a process never synced.

`powercut.c`, preloaded into the process, journals every write, truncation and sync of the
files under a path prefix. `PowerCut.cut` then gives each such file the state a disk could be
left in by a power cut: everything up to the file's last completed sync, plus a random subset of
the later writes, some of them torn (only some of their 512-byte sectors reach the disk).
Writes may reach the disk in any order; directory entries are not modelled.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.needs import unavailable

SOURCE = Path(__file__).with_name("powercut.c")
SECTOR = 512


def build_shim(directory: Path) -> Path:
    """Compile the journal shim into `directory` (the machine's C compiler, Debian's gcc)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        unavailable("a C compiler is missing for the power-loss shim: apt-get install gcc")
    library = directory / "powercut.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(library),
                    str(SOURCE), "-ldl", "-lpthread"], check=True, capture_output=True)
    return library


@dataclass(frozen=True)
class Entry:
    kind: str          # "W" write, "T" truncate, "S" sync
    path: str
    offset: int = 0    # W: where; T: the new size
    old_size: int = 0  # the file's size before
    old: bytes = b""   # W: the bytes overwritten; T: the bytes a shrink dropped
    new: bytes = b""   # W: the bytes written


def read_journal(path: Path) -> list[Entry]:
    data = path.read_bytes() if path.exists() else b""
    entries: list[Entry] = []
    at = 0
    while at < len(data):
        kind = chr(data[at])
        (length,) = struct.unpack_from("<I", data, at + 1)
        at += 5
        name = data[at:at + length].decode()
        at += length
        if kind == "W":
            offset, size, old_size, old_length = struct.unpack_from("<4Q", data, at)
            at += 32
            old, at = data[at:at + old_length], at + old_length
            new, at = data[at:at + size], at + size
            entries.append(Entry("W", name, offset, old_size, old, new))
        elif kind == "T":
            new_size, old_size, cut = struct.unpack_from("<3Q", data, at)
            at += 24
            entries.append(Entry("T", name, new_size, old_size, data[at:at + cut]))
            at += cut
        elif kind == "S":
            entries.append(Entry("S", name))
        else:
            raise ValueError(f"power-cut journal {path} is damaged at byte {at - 5 - length}")
    return entries


@dataclass
class CutReport:
    unsynced: int = 0  # writes and truncations after their file's last sync
    kept: int = 0
    torn: int = 0
    dropped: int = 0
    files: list[str] = field(default_factory=list)


class PowerCut:
    """One process's journal, and the cut applied to its files after the process is killed."""

    def __init__(self, library: Path, journal: Path, prefix: Path) -> None:
        self.library, self.journal, self.prefix = library, journal, prefix

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": str(self.library), "POWERCUT_JOURNAL": str(self.journal),
                "POWERCUT_PREFIX": str(self.prefix)}

    def cut(self, rng: random.Random, *, keep: float, tear: float) -> CutReport:
        """Apply a power cut to the killed process's files, then start a fresh journal (what
        the next process writes is what the next cut can lose). Each unsynced change is kept
        with probability `keep`, torn with `tear`, else lost."""
        entries = read_journal(self.journal)
        last_sync = {e.path: i for i, e in enumerate(entries) if e.kind == "S"}
        unsynced: dict[str, list[Entry]] = {}
        for i, entry in enumerate(entries):
            if entry.kind != "S" and i > last_sync.get(entry.path, -1):
                unsynced.setdefault(entry.path, []).append(entry)
        report = CutReport(files=sorted(unsynced))
        for path, changes in unsynced.items():
            with open(path, "r+b") as file:
                for entry in reversed(changes):
                    _undo(file, entry)
                for entry in changes:
                    report.unsynced += 1
                    roll = rng.random()
                    if roll < keep:
                        report.kept += 1
                        _redo(file, entry, rng, torn=False)
                    elif roll < keep + tear:
                        report.torn += 1
                        _redo(file, entry, rng, torn=True)
                    else:
                        report.dropped += 1
        self.journal.unlink(missing_ok=True)
        return report


def _undo(file, entry: Entry) -> None:  # type: ignore[no-untyped-def]
    if entry.kind == "W":
        file.seek(entry.offset)
        file.write(entry.old)
        if _size(file) > entry.old_size:  # the write had grown the file
            file.truncate(entry.old_size)
    else:  # T: back to the size before, with the bytes a shrink dropped
        file.truncate(entry.old_size)
        if entry.old:
            file.seek(entry.offset)
            file.write(entry.old)
    file.flush()


def _redo(file, entry: Entry, rng: random.Random, *, torn: bool) -> None:  # type: ignore[no-untyped-def]
    if entry.kind == "T":
        if not torn:  # a torn truncation is taken as one that did not happen
            file.truncate(entry.offset)
    else:
        sectors = range(0, len(entry.new), SECTOR)
        if torn and len(sectors) > 1:
            sectors = sorted(rng.sample(list(sectors), rng.randrange(1, len(sectors))))
        elif torn:
            return
        for start in sectors:
            file.seek(entry.offset + start)
            file.write(entry.new[start:start + SECTOR])
    file.flush()


def _size(file) -> int:  # type: ignore[no-untyped-def]
    return os.fstat(file.fileno()).st_size
