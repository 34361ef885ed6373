"""Driver errors translated to store errors in exactly one place."""

from __future__ import annotations

import sqlite3
from types import TracebackType

from searchtrail.store.api import Conflict, StoreUnavailable


class _Translated:
    """A plain context manager (no generator): it wraps every query on the hot path."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if exc is None:
            return False
        if isinstance(exc, sqlite3.IntegrityError):
            raise Conflict(str(exc)) from exc
        # disk full, I/O error, locked beyond the busy timeout, read-only file system
        if isinstance(exc, sqlite3.DatabaseError):  # OperationalError included
            raise StoreUnavailable(str(exc)) from exc
        return False


_TRANSLATED = _Translated()


def translated() -> _Translated:
    return _TRANSLATED
