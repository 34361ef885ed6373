"""Delivery leadership among nodes sharing a PostgreSQL store: one session advisory lock."""

from __future__ import annotations

import logging

import psycopg

from searchtrail.store.postgres.connection import cut_after

log = logging.getLogger("searchtrail.delivery")

# Held by the one node whose delivery worker runs (a constant shared by all nodes; not the
# write lock's).
DELIVERY_LOCK_KEY = 0x5EA4C47A12


class DeliveryLease:
    """``held()`` says whether this node delivers now. The lock belongs to a connection of its
    own: when the node dies its connection closes and the server frees the lock, so another
    node's next pass takes over; a node frozen for the lease's seconds loses it the same way
    (the server ends the idle session); a node that lost its connection stops delivering.

    Two nodes never write one digest chain at once even so: the worker's units check, under
    the write lock, that the chain still ends where they read it (audit/delivery.py)."""

    def __init__(self, url: str, seconds: float) -> None:
        self._url = url
        self._seconds = seconds
        self._conn: psycopg.Connection | None = None
        self._holding = False

    @property
    def holding(self) -> bool:
        """Whether the last ``held()`` found this node delivering (asks nothing)."""
        return self._holding

    def held(self) -> bool:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._holding = False
                self._conn = self._connect()
            with cut_after(self._conn):  # a server that hangs costs a pass, not the worker
                if self._holding:
                    self._conn.execute("SELECT 1")  # still connected, so still the holder
                else:
                    self._holding = bool(self._conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (DELIVERY_LOCK_KEY,)).fetchone()[0])
                    if self._holding:
                        log.info("this node now delivers the trails")
        except psycopg.Error as exc:
            if self._holding:
                log.warning("delivery lease lost: %s", exc)
            self.close()
        return self._holding

    def _connect(self) -> psycopg.Connection:
        """The lock's own session; the server ends it once it has been idle ``seconds`` (a node
        frozen that long, by SIGSTOP or a paused VM, loses the lease and another takes it; on
        waking, its first ``held()`` finds the session gone). The holder pings every pass."""
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        try:
            conn.execute(f"SET idle_session_timeout = {int(self._seconds * 1000)}")
        except psycopg.errors.UndefinedObject:  # before PostgreSQL 14: held until it dies
            log.warning("PostgreSQL before 14: a frozen node keeps the delivery lease")
        return conn

    def close(self) -> None:
        self._holding = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
