"""Files that survive a power cut: written to a temporary name, fsynced, renamed into place,
and their directory fsynced (a rename lasts only once its directory has been synced)."""

from __future__ import annotations

import os
import secrets
from contextlib import suppress

TEMP_PREFIX = ".searchtrail-tmp-"


def sync_directory(path: bytes | str) -> None:
    _sync(path, os.O_RDONLY | os.O_DIRECTORY)


def sync_file(path: bytes | str | os.PathLike) -> None:
    """Flush a file written without fsync (its dirty pages, whoever wrote them) to disk."""
    _sync(path, os.O_RDONLY)


def _sync(path: bytes | str | os.PathLike, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def synced_temp_file(directory: bytes, data: bytes, *, mode: int = 0o644) -> bytes:
    """A new file in ``directory`` holding ``data``, fsynced (its name not yet durable); its
    path. The new file gets ``mode`` less the umask."""
    temp = os.path.join(directory, (TEMP_PREFIX + secrets.token_hex(8)).encode())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def replace_file(directory: bytes, name: bytes, data: bytes, *, mode: int = 0o644) -> None:
    """Atomic, durable create-or-replace of ``directory/name`` (the directory must exist):
    after a crash or power cut the name holds either the old file or all of ``data``."""
    temp = synced_temp_file(directory, data, mode=mode)
    try:
        os.replace(temp, os.path.join(directory, name))
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    sync_directory(directory)
