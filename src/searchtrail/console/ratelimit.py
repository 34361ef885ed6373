"""Failed sign-in throttling: a sliding window of failures per user and per source address,
counted in the store so that every node sharing it enforces the same limits.

An attempt is admitted on the event loop against the failures stored plus the attempts of
this process still being checked, and counts among the latter at once: attempts sent together
cannot all pass the check before any of their failures is stored. One that only those being
checked keep out waits for them (they may succeed) rather than be refused. Failures that no
record can hold (a sign-in to an account that does not exist) are kept in memory, per user
and per source address."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable

# Failures kept in memory: at most this many keys (addresses, users), each its newest only.
MAX_MEMORY_KEYS = 10_000
# How long an attempt may wait for those being checked before it is told to retry.
PENDING_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class Limit:
    failures: int  # at most this many within the window; then the key waits
    window: float  # seconds


@dataclass(frozen=True)
class Window:
    """What the store holds of one key's recent failures, read for an attempt."""

    key: str
    limit: Limit
    count: int
    oldest: float | None


class Admission:
    """An admitted attempt's place among those being checked; ``done`` gives it back."""

    def __init__(self, throttle: "SignInThrottle", keys: tuple[str, ...]) -> None:
        self._throttle = throttle
        self._keys: tuple[str, ...] | None = keys

    def done(self) -> None:
        if self._keys is not None:
            self._throttle._release(self._keys)
            self._keys = None


class SignInThrottle:
    """A key (user or source address) with ``failures`` recent failures waits until its oldest
    one leaves the window; a success clears its user's failures (not its address's)."""

    def __init__(self, *, per_user: Limit, per_address: Limit,
                 clock: Callable[[], float] = time.time) -> None:
        self._per_user = per_user
        self._per_address = per_address
        self._clock = clock  # wall clock: nodes compare each other's failure times
        self._pending: dict[str, int] = {}  # key -> this process's attempts being checked
        self._remembered: dict[str, list[float]] = {}  # key -> failures no record holds
        self._released: asyncio.Event | None = None  # set when an admission is given back
        self._releases = 0  # admissions given back so far

    def windows(self, conn: sqlite3.Connection, account_id: str, user_name: str | None,
                source_ip: str) -> list[Window]:
        """The stored failures of the attempt's keys, its user's (``user_name`` None: the
        account's root) and its address's; on a worker thread."""
        now = self._clock()
        keys = [(_address_key(source_ip), self._per_address),
                (_user_key(account_id, user_name), self._per_user)]
        windows = []
        for key, limit in keys:
            count, oldest = conn.execute(
                "SELECT count(*), min(at) FROM signin_failures WHERE key = ? AND at > ?",
                (key, now - limit.window)).fetchone()
            windows.append(Window(key, limit, count, oldest))
        return windows

    async def admitted(self, read: Callable[[], Any]) -> tuple[float, Admission | None]:
        """(seconds to wait, None) when a key has reached its limit; else (0, the attempt's
        admission). ``read`` gives the attempt's Windows (awaitable). While only attempts
        being checked keep it out, it waits for one of them to end, then counts again."""
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        while True:
            releases = self._releases
            windows = await read()
            if self._releases != releases and time.monotonic() < deadline:
                # an attempt ended meanwhile: its failure may be stored after the read began
                # and its place given back before it ended; counting both would miss it
                continue
            wait, admission = self.admit(windows)
            left = deadline - time.monotonic()
            if admission is not None or wait > 0 or left <= 0:
                return (wait or 1.0, None) if admission is None else (0.0, admission)
            if self._released is None:
                self._released = asyncio.Event()
            try:
                await asyncio.wait_for(self._released.wait(), left)
            except TimeoutError:
                pass

    def admit(self, windows: list[Window]) -> tuple[float, Admission | None]:
        """(seconds to wait, None) when a key has reached its limit by its failures (stored or
        kept in memory); (0, None) when the attempts still being checked fill it; else (0,
        the attempt's admission). On the event loop: no await between count and reservation."""
        now = self._clock()
        wait, busy = 0.0, False
        for window in windows:
            since = now - window.limit.window
            kept = [at for at in self._remembered.get(window.key, ()) if at > since]
            count = window.count + len(kept) + self._pending.get(window.key, 0)
            if count < window.limit.failures:
                continue
            oldest = min([at for at in (window.oldest, *kept) if at is not None], default=None)
            if window.count + len(kept) >= window.limit.failures and oldest is not None:
                wait = max(wait, oldest + window.limit.window - now)
            else:  # full of attempts being checked: one of them may yet succeed
                busy = True
        if wait > 0 or busy:
            return wait, None
        keys = tuple(window.key for window in windows)
        for key in keys:
            self._pending[key] = self._pending.get(key, 0) + 1
        return 0.0, Admission(self, keys)

    def _release(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
        self._releases += 1
        if self._released is not None:  # those waiting count again
            self._released.set()
            self._released = None

    def failed(self, conn: sqlite3.Connection, account_id: str, user_name: str | None,
               source_ip: str) -> None:
        """Count a failure, inside the transaction that records the attempt."""
        now = self._clock()
        conn.execute("DELETE FROM signin_failures WHERE at <= ?",
                     (now - max(self._per_user.window, self._per_address.window),))
        for key in (_user_key(account_id, user_name), _address_key(source_ip)):
            conn.execute("INSERT INTO signin_failures (key, at) VALUES (?, ?)", (key, now))

    def remember_failure(self, account_id: str, user_name: str | None, source_ip: str) -> None:
        """Count a failure no record holds (no such account), in this process's memory: as a
        stored one counts, so that an account that does not exist is throttled as one that
        does (the 6th wrong guess answered 429 there, 401 here)."""
        now = self._clock()
        for key, limit in ((_address_key(source_ip), self._per_address),
                           (_user_key(account_id, user_name), self._per_user)):
            if key not in self._remembered and len(self._remembered) >= MAX_MEMORY_KEYS:
                self._remembered.clear()  # a flood of keys: start afresh rather than grow
            kept = [at for at in self._remembered.get(key, ()) if at > now - limit.window]
            self._remembered[key] = [*kept[-limit.failures:], now]

    def succeeded(self, conn: sqlite3.Connection, account_id: str,
                  user_name: str | None) -> None:
        """Forget the user's failures, inside the transaction that records the sign-in."""
        conn.execute("DELETE FROM signin_failures WHERE key = ?",
                     (_user_key(account_id, user_name),))


def _user_key(account_id: str, user_name: str | None) -> str:
    # The root's key cannot be an IAM user's: a user named Root no longer shares its count
    # (nor clears it by signing in). IAM user names hold no ':'.
    return f"user:{account_id}/{':root' if user_name is None else user_name.lower()}"


def _address_key(source_ip: str) -> str:
    return f"address:{source_ip}"
