"""Read-only store connections for console reads, one per worker thread."""

from __future__ import annotations

import sqlite3
import threading
from typing import Callable


class ThreadConnections:
    """Hands each thread its own read-only connection, opened on first use."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn
