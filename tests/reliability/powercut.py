"""Simulated power loss (plan §3.1 R3): after a kill -9, undo the writes a process never synced.

`powercut.c`, preloaded into the process, journals every write, truncation and sync of the
files under a path prefix, and every change to directory entries there. `PowerCut.cut` then
gives each such file the state a disk could be left in by a power cut: everything up to the
file's last completed sync, plus a random subset of the later writes, some of them torn (only
some of their 512-byte sectors reach the disk); writes may reach the disk in any order. A new
name, a rename, an unlink, a mkdir or an rmdir lasts only once its directory (both, for a
rename) has been synced after it, as POSIX promises; the others are kept or lost at random,
except that one touching a name an earlier lost one touched is lost too, so that what is left
is a state the file system could have reached.
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
    kind: str          # "W" write, "T" truncate, "S" sync; "N" new file, "R" rename,
                       # "U" unlink, "M" mkdir, "D" rmdir
    path: str
    inode: int = 0     # W, T, N and a file's S: the file
    offset: int = 0    # W: where; T: the new size
    old_size: int = 0  # the file's size before
    old: bytes = b""   # W: the bytes overwritten; T: the bytes a shrink dropped
    new: bytes = b""   # W: the bytes written
    directory: bool = False  # S: a directory was synced
    target: str = ""   # R: the new name
    backup: str = ""   # R, U: a hard link to the file the change unlinked ("" if none)


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
            inode, offset, size, old_size, old_length = struct.unpack_from("<5Q", data, at)
            at += 40
            old, at = data[at:at + old_length], at + old_length
            new, at = data[at:at + size], at + size
            entries.append(Entry("W", name, inode, offset, old_size, old, new))
        elif kind == "T":
            inode, new_size, old_size, cut = struct.unpack_from("<4Q", data, at)
            at += 32
            entries.append(Entry("T", name, inode, new_size, old_size, data[at:at + cut]))
            at += cut
        elif kind == "S":
            inode, directory = struct.unpack_from("<2Q", data, at)
            at += 16
            entries.append(Entry("S", name, inode, directory=bool(directory)))
        elif kind == "N":
            (inode,) = struct.unpack_from("<Q", data, at)
            at += 8
            entries.append(Entry("N", name, inode))
        elif kind == "R":
            target_length, backup_length = struct.unpack_from("<2Q", data, at)
            at += 16
            target, at = data[at:at + target_length].decode(), at + target_length
            backup, at = data[at:at + backup_length].decode(), at + backup_length
            entries.append(Entry("R", name, target=target, backup=backup))
        elif kind == "U":
            (backup_length,) = struct.unpack_from("<Q", data, at)
            at += 8
            backup, at = data[at:at + backup_length].decode(), at + backup_length
            entries.append(Entry("U", name, backup=backup))
        elif kind in "MD":
            entries.append(Entry(kind, name))
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
    names_unsynced: int = 0  # changes of directory entries before no sync of their directory
    names_lost: int = 0
    lost_names: list[str] = field(default_factory=list)


class PowerCut:
    """One process's journal, and the cut applied to its files after the process is killed."""

    def __init__(self, library: Path, journal: Path, prefix: Path) -> None:
        self.library, self.journal, self.prefix = library, journal, prefix

    @property
    def backups(self) -> Path:
        return self.journal.with_name(self.journal.name + ".keep")

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": str(self.library), "POWERCUT_JOURNAL": str(self.journal),
                "POWERCUT_PREFIX": str(self.prefix)}

    def cut(self, rng: random.Random, *, keep: float, tear: float) -> CutReport:
        """Apply a power cut to the killed process's files, then start a fresh journal (what
        the next process writes is what the next cut can lose). Each unsynced change of a
        file's contents is kept with probability `keep`, torn with `tear`, else lost; each
        unsynced change of a name is kept with probability `keep`, else lost."""
        entries = read_journal(self.journal)
        report = CutReport()
        self._cut_contents(entries, rng, keep, tear, report)
        self._cut_names(entries, rng, keep, report)
        self.journal.unlink(missing_ok=True)
        shutil.rmtree(self.backups, ignore_errors=True)
        return report

    def _cut_contents(self, entries: list[Entry], rng: random.Random, keep: float, tear: float,
                      report: CutReport) -> None:
        """Each file, found by its inode wherever later renames took it."""
        last_sync = {e.inode: i for i, e in enumerate(entries) if e.kind == "S" and e.inode}
        unsynced: dict[int, list[Entry]] = {}
        for i, entry in enumerate(entries):
            if entry.kind in "WT" and i > last_sync.get(entry.inode, -1):
                unsynced.setdefault(entry.inode, []).append(entry)
        where = self._paths_by_inode()
        report.files = sorted({e.path for changes in unsynced.values() for e in changes})
        for inode, changes in unsynced.items():
            if inode not in where:
                continue  # unlinked for good: its bytes are nowhere to be found after a cut
            with open(where[inode], "r+b") as file:
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

    def _paths_by_inode(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for root in (self.backups, self.prefix.parent):
            for folder, _, names in os.walk(root):
                for name in names:
                    path = os.path.join(folder, name)
                    if root == self.backups or path.startswith(str(self.prefix)):
                        found.setdefault(os.lstat(path).st_ino, path)
        return found

    def _cut_names(self, entries: list[Entry], rng: random.Random, keep: float,
                   report: CutReport) -> None:
        synced_at: dict[str, int] = {}  # each directory's last sync
        for i, entry in enumerate(entries):
            if entry.kind == "S" and entry.directory:
                synced_at[entry.path] = i
        lost: list[Entry] = []
        touched_by_lost: set[str] = set()
        for i, entry in enumerate(entries):
            if entry.kind not in "NRUMD":
                continue
            names = _names(entry)
            durable = all(synced_at.get(os.path.dirname(name), -1) > i for name in names)
            if not durable:
                report.names_unsynced += 1
            follows_a_lost_one = any(_under(name, touched_by_lost) for name in names)
            if follows_a_lost_one or (not durable and rng.random() >= keep):
                lost.append(entry)
                touched_by_lost.update(names)
        for entry in reversed(lost):
            _undo_name(entry)
        report.names_lost = len(lost)
        report.lost_names = [f"{e.kind} {' -> '.join(_names(e))}" for e in lost]


def _names(entry: Entry) -> tuple[str, ...]:
    return (entry.path, entry.target) if entry.kind == "R" else (entry.path,)


def _under(name: str, paths: set[str]) -> bool:
    """`name` or one of the folders above it is in `paths`."""
    while True:
        if name in paths:
            return True
        parent = os.path.dirname(name)
        if parent == name:
            return False
        name = parent


def _undo_name(entry: Entry) -> None:
    if entry.kind == "N":
        os.unlink(entry.path)
    elif entry.kind == "M":
        os.rmdir(entry.path)
    elif entry.kind == "D":
        os.mkdir(entry.path)
    elif entry.kind == "U":
        os.link(entry.backup, entry.path)
    else:  # R: the file back under its old name, and whatever it replaced back under the new
        os.rename(entry.target, entry.path)
        if entry.backup:
            os.link(entry.backup, entry.target)


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
