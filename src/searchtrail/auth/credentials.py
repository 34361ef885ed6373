"""Access-key lookup for SigV4: finds the secret and the principal behind a key id."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

from searchtrail.auth.identities import Identities
from searchtrail.auth.principals import Principal, root_principal, user_principal
from searchtrail.store.sqlite.resources import SqliteResources

CACHE_SECONDS = 1.0  # keys created by another process (the CLI) show up within this


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    owner: Principal


class CredentialResolver:
    """Reads keys through its own read-only connection; a short cache keeps the hot path fast."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._clock = clock
        self._local = threading.local()
        self._cache: dict[str, tuple[float, Credential | None]] = {}

    def _identities(self) -> Identities:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return Identities(SqliteResources(conn, "", ""))

    def lookup(self, access_key_id: str) -> Credential | None:
        now = self._clock()
        cached = self._cache.get(access_key_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        credential = self._load(access_key_id)
        if len(self._cache) > 10_000:  # bound memory against key-id scanning
            self._cache.clear()
        self._cache[access_key_id] = (now, credential)
        return credential

    def forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)

    def _load(self, access_key_id: str) -> Credential | None:
        identities = self._identities()
        key = identities.find_access_key(access_key_id)
        if key is None or key.status != "Active":
            return None
        if key.user_name is None:
            principal = root_principal(key.account_id, key.access_key_id)
        else:
            user = identities.get_user(key.account_id, key.user_name)
            if user is None:
                return None
            principal = user_principal(key.account_id, user, key.access_key_id)
        return Credential(key.access_key_id, key.secret_access_key, None, principal)
