"""A lookup row's key: one signed 64-bit integer per (account, Region, attribute, value), so
event history's index rows are three integers (key, event time, seq) instead of four texts."""

from __future__ import annotations

import functools
import hashlib

# Distinct values a process remembers the keys of: a call's 5-7 lookup rows then cost a cache
# hit each (~0.04 µs) instead of a SHA-256 (~0.8 µs). A pure function's memo, bounded: an
# entry holds its four texts (~325 bytes with a resource ARN), and a sustained load of
# resources made and deleted fills the memo with names used once (65,536 entries added 21 MB
# to the server's RSS in `bench.memory`'s 3 minutes); the values used by every call stay.
CACHED_KEYS = 4_096


@functools.lru_cache(maxsize=CACHED_KEYS)
def lookup_key(account: str, region: str, attr: str, value: str) -> int:
    """The key of the lookup rows of ``attr`` = ``value`` in an account's Region history.

    Two different tuples share a key with probability ~2^-64 (birthday bound: ~3e-8 among a
    million distinct values); LookupEvents checks every record it finds by key against the
    attribute, so a shared key can never show a record under a value it does not carry.
    PostgreSQL's migration 0016 defines the same function in SQL (checked against this one by
    ``test_postgres_store``)."""
    text = f"{len(account)}:{account}{len(region)}:{region}{len(attr)}:{attr}{value}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)
