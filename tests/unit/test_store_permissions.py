"""The SQLite store holds secret keys, password hashes and the digests' signing keys: its
files are readable by their owner only, and a new data dir is the owner's alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from searchtrail.config import load_settings
from searchtrail.installation import open_database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def store_files(data_dir: Path) -> list[Path]:
    files = sorted(data_dir.glob("searchtrail.sqlite3*"))
    assert {f.name for f in files} >= {"searchtrail.sqlite3", "searchtrail.sqlite3-wal",
                                       "searchtrail.sqlite3-shm"}, files
    return files


def test_a_new_store_is_its_owners_alone(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual default, which leaves new files world-readable
    try:
        settings = load_settings({"data_dir": tmp_path / "data"})
        conn = open_database(settings)
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert mode(settings.data_dir) == 0o700
        assert {f.name: mode(f) for f in store_files(settings.data_dir)} == {
            f.name: 0o600 for f in store_files(settings.data_dir)}
        conn.close()
    finally:
        os.umask(old_umask)


def test_an_older_stores_files_lose_group_and_other_access(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path / "data"})
    conn = open_database(settings)
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    files = store_files(settings.data_dir)
    for path in files:
        os.chmod(path, 0o644)
    reopened = open_database(settings)  # as a server started on an older store does
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    reopened.close()
    conn.close()
