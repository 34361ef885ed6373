"""Access-key lookup for SigV4: finds the secret and the principal behind a key id.

Long-term keys (``AKIA…``) become Root or IAMUser principals; temporary credentials
(``ASIA…``, issued by STS) become the principal their stored session describes
(AssumedRole, FederatedUser, or Root/IAMUser for GetSessionToken) and carry their session
token and ``expires_at``: from that instant SigV4 refuses them with ExpiredTokenException.
Inactive or deleted keys are not found (UnrecognizedClientException).

Changes take effect on the next call: whoever changes a key or what a principal is built
from (status, deletion, user or role tags) calls ``forget(access_key_id)`` — or
``forget(None)`` when many keys may be affected. ``IamProvider(changed=resolver.forget)``
does so for every such IAM operation. Because the signal fires inside the changing call's
transaction, before it commits, a forgotten key is not cached again for ``BYPASS_SECONDS``:
every lookup in that window reads the store, so a lookup racing the commit cannot pin the
old state in the cache.

Processes sharing a store (the worker processes of one server, the nodes on one PostgreSQL
store) each have a resolver; given a ``signal`` (:class:`ChangeSignal`), a ``forget`` in one
raises it, and every other resolver, which looks at it before each lookup, then forgets every
key itself.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

from searchtrail.auth.identities import Identities, session_principal
from searchtrail.auth.principals import Principal, root_principal, user_principal
from searchtrail.store.sqlite.resources import SqliteResources

log = logging.getLogger("searchtrail.auth")

CACHE_SECONDS = 1.0  # keys created by another process (the CLI) show up within this
BYPASS_SECONDS = 10.0  # after forget(): no caching of that key (or of any key) this long
MAX_CACHED = 10_000  # bound memory against key-id scanning


class ChangeSignal(Protocol):
    """How processes sharing a store tell each other that something changed."""

    def raise_signal(self) -> bool:
        """Tell the other processes; False if they could not be told."""

    def raised_elsewhere(self) -> bool:
        """Whether another process raised it since the last look (True when unsure)."""

    @property
    def working(self) -> bool:
        """Whether it can be raised and heard now (for the health check)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    owner: Principal
    expires_at: datetime | None = None  # temporary credentials only


class CredentialResolver:
    """Reads keys through its own read-only connection; a short cache keeps the hot path fast."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 clock: Callable[[], float] = time.monotonic,
                 signal: ChangeSignal | None = None) -> None:
        self._connect = connect
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Credential | None]] = {}
        self._bypass: dict[str, float] = {}  # key id -> no caching until this clock value
        self._bypass_all_until = float("-inf")
        self._signal = signal  # the other processes' forget() raises it

    def _identities(self) -> Identities:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return Identities(SqliteResources(conn, "", ""))

    def lookup(self, access_key_id: str) -> Credential | None:
        if self._signal is not None and self._signal.raised_elsewhere():
            self._forget_here(None)
        now = self._clock()
        cached = self._cache.get(access_key_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        credential = self._load(access_key_id)
        with self._lock:
            if self._bypassed(access_key_id, now):
                self._cache.pop(access_key_id, None)
            else:
                if len(self._cache) > MAX_CACHED:
                    self._cache.clear()
                self._cache[access_key_id] = (now, credential)
        return credential

    def forget(self, access_key_id: str | None = None) -> None:
        """Drop a key from the cache (None: every key); see the module docstring."""
        self._forget_here(access_key_id)
        if self._signal is not None and not self._signal.raise_signal():
            log.warning("cannot tell the other processes that a key changed: their cached keys "
                        "expire within %s s", CACHE_SECONDS)

    def _forget_here(self, access_key_id: str | None) -> None:
        until = self._clock() + BYPASS_SECONDS
        with self._lock:
            if access_key_id is None:
                self._cache.clear()
                self._bypass_all_until = until
            else:
                self._cache.pop(access_key_id, None)
                if len(self._bypass) > MAX_CACHED:
                    self._bypass.clear()
                    self._bypass_all_until = until
                self._bypass[access_key_id] = until

    def _bypassed(self, access_key_id: str, now: float) -> bool:
        if now < self._bypass_all_until:
            return True
        until = self._bypass.get(access_key_id)
        if until is None:
            return False
        if now < until:
            return True
        del self._bypass[access_key_id]
        return False

    def _load(self, access_key_id: str) -> Credential | None:
        identities = self._identities()
        doc = identities.access_key_doc(access_key_id)
        if doc is None or doc.get("Status", "Active") != "Active":
            return None
        if doc.get("SessionToken"):
            return Credential(access_key_id, doc["SecretAccessKey"], doc["SessionToken"],
                              session_principal(doc, identities),
                              datetime.fromtimestamp(doc["Expiration"], timezone.utc))
        if doc.get("UserName") is None:
            principal = root_principal(doc["AccountId"], access_key_id)
        else:
            user = identities.get_user(doc["AccountId"], doc["UserName"])
            if user is None:
                return None
            principal = user_principal(doc["AccountId"], user, access_key_id)
        return Credential(access_key_id, doc["SecretAccessKey"], None, principal)
