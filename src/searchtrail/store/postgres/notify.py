"""Signals between the processes on one PostgreSQL store (nodes and their workers): NOTIFY on a
channel, heard by each process's own LISTEN session, which is read without waiting."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import psycopg

from searchtrail.store.postgres.connection import cut_after

log = logging.getLogger("searchtrail.store")

RECONNECT_SECONDS = 1.0  # between attempts to open a lost listening session
CONNECT_TIMEOUT_SECONDS = 5


class PostgresSignal:
    """``raise_signal()`` notifies every process listening on ``channel``;
    ``raised_elsewhere()`` says whether another process did since the last look.

    The look costs no round trip: it reads what PostgreSQL has already sent to this process's
    session (a non-blocking read of its socket). A notification reaches the other sessions as
    soon as PostgreSQL passes it on, well before the raising call's own commit and answer.
    The session is opened here. Without a working one (lost with the server or the network)
    the answer is True, since a notification may have been missed, and the session is opened
    again, at most once per RECONNECT_SECONDS."""

    def __init__(self, url: str, channel: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not channel.isidentifier():
            raise ValueError(f"not a channel name: {channel!r}")
        self._url = url
        self._channel = channel
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._own_pid = 0
        self._heard = False  # heard since the last look
        self._next_attempt = float("-inf")
        self._opened_before = False
        with self._lock:
            self._session()

    def raised_elsewhere(self) -> bool:
        with self._lock:
            conn = self._session()
            if conn is None:
                return True
            try:
                pgconn = conn.pgconn
                pgconn.consume_input()
                while (notification := pgconn.notifies()) is not None:
                    self._heard |= notification.be_pid != self._own_pid
            except psycopg.Error as exc:
                self._lose(exc)
                return True
            heard, self._heard = self._heard, False
            return heard

    def raise_signal(self) -> bool:
        """Notify the other processes; False if that could not be done."""
        with self._lock:
            conn = self._session()
            if conn is None:
                return False
            try:
                with cut_after(conn):
                    conn.execute(f"NOTIFY {self._channel}")
            except psycopg.Error as exc:
                self._lose(exc)
                return False
            return True

    @property
    def working(self) -> bool:
        """Whether this process has its listening session (none: it trusts no cached key)."""
        return self._conn is not None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _session(self) -> psycopg.Connection | None:
        """The listening session, opened if it is not and an attempt is due."""
        if self._conn is not None:
            return self._conn
        now = self._clock()
        if now < self._next_attempt:
            return None
        self._next_attempt = now + RECONNECT_SECONDS
        try:
            conn = psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                conn.execute(f"LISTEN {self._channel}")
            except psycopg.Error:
                conn.close()
                raise
        except psycopg.Error as exc:
            log.warning("cannot listen for changes on %s: %s", self._channel, exc)
            return None
        # notifications our own NOTIFY brings back, read while it runs, are ours: ignored
        conn.add_notify_handler(self._on_notify)
        self._own_pid = conn.info.backend_pid
        self._conn = conn
        self._heard = self._opened_before  # anything may have happened while there was none
        self._opened_before = True
        return conn

    def _on_notify(self, notification: psycopg.Notify) -> None:
        self._heard |= notification.pid != self._own_pid

    def _lose(self, exc: Exception) -> None:
        log.warning("lost the session listening for changes on %s: %s", self._channel, exc)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
