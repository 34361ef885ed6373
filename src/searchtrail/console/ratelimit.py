"""Failed sign-in throttling: a sliding window of failures per user and per source address,
counted in the store so that every node sharing it enforces the same limits."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Limit:
    failures: int  # at most this many within the window; then the key waits
    window: float  # seconds


class SignInThrottle:
    """A key (user or source address) with ``failures`` recent failures waits until its oldest
    one leaves the window; a success clears its user's failures (not its address's)."""

    def __init__(self, *, per_user: Limit, per_address: Limit,
                 clock: Callable[[], float] = time.time) -> None:
        self._per_user = per_user
        self._per_address = per_address
        self._clock = clock  # wall clock: nodes compare each other's failure times

    def retry_after(self, conn: sqlite3.Connection, account_id: str, user_name: str,
                    source_ip: str) -> float:
        """Seconds until this attempt may be checked; 0 when it may now."""
        now = self._clock()
        return max(self._wait(conn, _user_key(account_id, user_name), self._per_user, now),
                   self._wait(conn, _address_key(source_ip), self._per_address, now))

    def failed(self, conn: sqlite3.Connection, account_id: str, user_name: str,
               source_ip: str) -> None:
        """Count a failure, inside the transaction that records the attempt."""
        now = self._clock()
        conn.execute("DELETE FROM signin_failures WHERE at <= ?",
                     (now - max(self._per_user.window, self._per_address.window),))
        for key in (_user_key(account_id, user_name), _address_key(source_ip)):
            conn.execute("INSERT INTO signin_failures (key, at) VALUES (?, ?)", (key, now))

    def succeeded(self, conn: sqlite3.Connection, account_id: str, user_name: str) -> None:
        """Forget the user's failures, inside the transaction that records the sign-in."""
        conn.execute("DELETE FROM signin_failures WHERE key = ?",
                     (_user_key(account_id, user_name),))

    @staticmethod
    def _wait(conn: sqlite3.Connection, key: str, limit: Limit, now: float) -> float:
        count, oldest = conn.execute(
            "SELECT count(*), min(at) FROM signin_failures WHERE key = ? AND at > ?",
            (key, now - limit.window)).fetchone()
        if count < limit.failures:
            return 0.0
        return max(0.0, oldest + limit.window - now)


def _user_key(account_id: str, user_name: str) -> str:
    return f"user:{account_id}/{user_name.lower()}"


def _address_key(source_ip: str) -> str:
    return f"address:{source_ip}"
