"""Driver errors translated to store errors in exactly one place."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

from searchtrail.store.api import Conflict, StoreUnavailable


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        # disk full, I/O error, locked beyond the busy timeout, read-only file system
        raise StoreUnavailable(str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(str(exc)) from exc
