"""Failed sign-in throttling: a sliding window of failures per key (user, source address)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class FailureLimiter:
    """At most ``limit`` failures per key within ``window`` seconds; then the key waits until
    its oldest failure leaves the window. A success clears the key."""

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            failures = self._recent(key)
            if failures is None or len(failures) < self._limit:
                return 0.0
            return max(0.0, failures[0] + self._window - self._clock())

    def failed(self, key: str) -> None:
        with self._lock:
            if len(self._failures) >= self._max_keys and key not in self._failures:
                self._evict()
            self._failures.setdefault(key, deque()).append(self._clock())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _evict(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        if len(self._failures) >= self._max_keys:  # still full: forget the oldest half
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]


class SignInThrottle:
    """The limiters a sign-in attempt is checked against: its user and its source address."""

    def __init__(self, per_user: FailureLimiter, per_address: FailureLimiter) -> None:
        self._per_user = per_user
        self._per_address = per_address

    def retry_after(self, account_id: str, user_name: str, source_ip: str) -> float:
        return max(self._per_user.retry_after(f"{account_id}/{user_name.lower()}"),
                   self._per_address.retry_after(source_ip))

    def failed(self, account_id: str, user_name: str, source_ip: str) -> None:
        self._per_user.failed(f"{account_id}/{user_name.lower()}")
        self._per_address.failed(source_ip)

    def succeeded(self, account_id: str, user_name: str, source_ip: str) -> None:
        self._per_user.succeeded(f"{account_id}/{user_name.lower()}")
