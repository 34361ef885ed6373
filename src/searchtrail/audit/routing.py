"""Which logging trails take a record: decided in the record's own transaction."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Callable

import orjson

from searchtrail.audit.selectors import compile_trail, trail_covers
from searchtrail.store import kinds
from searchtrail.store.sqlite.resources import ResourceChanges, SqliteResources

# Services whose events are global (recorded in us-east-1): IAM, Organizations, console sign-in.
GLOBAL_SOURCES: frozenset[str] = frozenset({"iam.amazonaws.com", "organizations.amazonaws.com",
                                            "signin.amazonaws.com"})


class TrailRouter:
    """Reads the account's trails (and the organization's) and keeps compiled selectors.

    With ``changes`` (the writer's resource change counters) the trails read for an account
    are reused until a trail or setting is written (on a store shared by several nodes, until
    the transaction ends), so a call costs no query; without it they are read on every call.
    A compiled predicate is reused while its trail document text is unchanged.
    """

    def __init__(self, changes: ResourceChanges | None = None) -> None:
        self._changes = changes
        self._compiled: dict[str, tuple[str, dict[str, Any], Callable[[dict], bool]]] = {}
        self._trail_rows: dict[str, tuple[tuple[int, ...], list[tuple[str, str]]]] = {}

    def deliveries(self, conn: sqlite3.Connection, account: str, region: str,
                   record: dict[str, Any], moment: datetime | None = None,
                   ) -> tuple[tuple[str, str], ...]:
        """The (trail ARN, account) pairs that take ``record``, made at ``moment``: the trails
        logging now, and, as on AWS, a trail stopped at or after that moment (so a StopLogging
        call's own record is in the files of the trail it stops)."""
        rows = self._trails_for(conn, account)
        if not rows:
            return ()
        global_service = record.get("eventSource") in GLOBAL_SOURCES
        targets = []
        for arn, text in rows:
            trail, wants = self._compile(arn, text)
            if not trail.get("IsLogging") and (
                    moment is None or "StopLoggingTime" not in trail
                    or trail["StopLoggingTime"] < moment.timestamp()):
                continue
            trail_account = arn.split(":")[4]
            if trail_account != account and not trail.get("IsOrganizationTrail"):
                continue
            if trail_covers(trail, account, region, global_service) and wants(record):
                targets.append((arn, account))
        return tuple(targets)

    def _trails_for(self, conn: sqlite3.Connection, account: str) -> list[tuple[str, str]]:
        generation = (self._changes.generation(kinds.TRAIL, kinds.SETTING)
                      if self._changes is not None else None)
        cached = self._trail_rows.get(account)
        if generation is not None and cached is not None and cached[0] == generation:
            return cached[1]
        rows = conn.execute(
            "SELECT key, doc FROM resources WHERE account IN (?, ?) AND region = '' AND kind = ?",
            (account, kinds.default_account(SqliteResources(conn, "", "")) or account,
             kinds.TRAIL)).fetchall()
        if generation is not None:
            self._trail_rows[account] = (generation, rows)
        return rows

    def _compile(self, arn: str, text: str) -> tuple[dict[str, Any], Callable[[dict], bool]]:
        cached = self._compiled.get(arn)
        if cached is not None and cached[0] == text:
            return cached[1], cached[2]
        trail = orjson.loads(text)
        wants = compile_trail(trail)
        self._compiled[arn] = (text, trail, wants)
        return trail, wants
