"""`clientToken` idempotency for the mutating aoss operations.

The first successful call with a token stores a fingerprint of the request (every member
except `clientToken`), the response and the resources it touched, in the same unit of work
as the change itself. Within `TOKEN_LIFETIME_MS`:
- same operation, same token, same request -> the stored response again, nothing changes;
- same operation, same token, different request -> ConflictException.
Failed calls store nothing (their transaction is rolled back), so a retry with the same
token runs normally. Tokens are scoped per account, Region and operation.

Records are keyed `<day>/<operation>/<token>` (day = UTC days since the epoch of the first
call), so a lookup reads today's and yesterday's key in one query, and whole days that can
only hold expired records are deleted from one range of keys, in chunks, until a marker
remembers how far they went (each process remembers what it read of it, see ``PrunedDays``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Callable

import orjson

from .common import KIND_IDEMPOTENCY, conflict, epoch_ms

DAY_MS = 24 * 60 * 60 * 1000
TOKEN_LIFETIME_MS = DAY_MS
KIND_PRUNED = "aoss.idempotency-pruned"  # key "marker" -> {"throughDay"}
# A day of a load test leaves millions of records, deleted inside some write call under the
# write turn: one call deletes at most PRUNE_CHUNK of them, and a process at most one chunk
# per scope every PRUNE_INTERVAL_MS, so no call waits on more than one chunk.
PRUNE_CHUNK = 1000
PRUNE_INTERVAL_MS = 100

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]


def fingerprint(params: dict[str, Any]) -> str:
    request = {key: value for key, value in params.items() if key != "clientToken"}
    encoded = orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()


def _key(day: int, operation: str, token: str) -> str:
    return f"{day:06d}/{operation}/{token}"


def _keys(operation: str, token: str, now_ms: int) -> list[str]:
    """The keys a token's record may have: today's, then yesterday's."""
    today = now_ms // DAY_MS
    return [_key(day, operation, token) for day in (today, today - 1)]


def token_records(operation: str, params: dict[str, Any],
                  now: datetime) -> list[tuple[str, str]]:
    """The (kind, key) of each record a call of ``operation`` reads first, when it carries a
    token: what the writer may read ahead for a batch of calls in one statement."""
    token = params.get("clientToken")
    if token is None:
        return []
    return [(KIND_IDEMPOTENCY, key) for key in _keys(operation, token, epoch_ms(now))]


class PrunedDays:
    """How far each scope's expired records are known to be gone, as read from its marker:
    once today's prune is seen done, later calls today skip the marker's read. The marker
    only moves forward (on every node), so a remembered day is never ahead of it."""

    def __init__(self, chunk: int = PRUNE_CHUNK, interval_ms: int = PRUNE_INTERVAL_MS) -> None:
        self._through: dict[tuple[str, str], int] = {}
        self._next_chunk_at: dict[tuple[str, str], int] = {}
        self._chunk = chunk
        self._interval_ms = interval_ms

    def prune(self, call: Any, now_ms: int) -> None:
        """Delete the records of days whose tokens have all expired (days <= today - 2), one
        chunk of their range of keys at a time; the marker moves once a chunk finds it done."""
        last_expired_day = now_ms // DAY_MS - 2
        scope = (call.account_id, call.region)
        if self._through.get(scope, -1) >= last_expired_day:
            return
        if 0 < self._next_chunk_at.get(scope, 0) - now_ms <= self._interval_ms:
            return  # a chunk went a moment ago (a clock set back does not stop the prune)
        marker = call.resources.get(KIND_PRUNED, "marker")
        if marker is not None and marker["throughDay"] >= last_expired_day:
            # Remembered only as read, never as written here. A marker an earlier call of this
            # batch wrote may still roll back with it: then the missed days wait for the next
            # day's prune, whose range covers them.
            self._through[scope] = marker["throughDay"]
            return
        deleted = call.resources.delete_below(KIND_IDEMPOTENCY, f"{last_expired_day + 1:06d}",
                                              limit=self._chunk)
        if deleted < self._chunk:
            call.resources.put(KIND_PRUNED, "marker", {"throughDay": last_expired_day})
        else:
            self._next_chunk_at[scope] = now_ms + self._interval_ms


def idempotent(operation: str, handler: Handler, pruned: PrunedDays) -> Handler:
    def run(call: Any, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("clientToken")
        if token is None:
            return handler(call, params)
        digest = fingerprint(params)
        now_ms = epoch_ms(call.now)
        keys = _keys(operation, token, now_ms)
        found = call.resources.get_many(KIND_IDEMPOTENCY, keys)
        for key in keys:
            seen = found.get(key)
            if seen is None or now_ms >= seen["expiresAt"]:
                continue
            if seen["fingerprint"] != digest:
                raise conflict(
                    f"The client token {token} was already used for a {operation} request with "
                    "different parameters. Use a new client token for a different request."
                )
            call.referenced_resources.extend(dict(entry) for entry in seen["referencedResources"])
            return seen["response"]
        response = handler(call, params)
        key = keys[0]
        call.resources.put(
            KIND_IDEMPOTENCY,
            key,
            {
                "key": key,
                "fingerprint": digest,
                "response": response,
                "referencedResources": list(call.referenced_resources),
                "expiresAt": now_ms + TOKEN_LIFETIME_MS,
            },
        )
        pruned.prune(call, now_ms)
        return response

    run.__name__ = getattr(handler, "__name__", operation)
    run.__doc__ = handler.__doc__
    return run
