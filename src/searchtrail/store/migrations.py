"""Numbered migration scripts shipped inside a store package (NNNN_name.sql)."""

from __future__ import annotations

import logging
import sqlite3  # the store's errors are sqlite3's on PostgreSQL too
from importlib import resources as package_files

log = logging.getLogger("searchtrail.store")


def numbered_scripts(package: str) -> list[tuple[int, str]]:
    """(number, SQL text) of every script in ``package``'s migrations folder, in order."""
    folder = package_files.files(package).joinpath("migrations")
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(scripts)


class OlderSchema(sqlite3.DatabaseError):
    """The store's schema is older than this searchtrail's, and it was not to be upgraded."""

    def __init__(self, message: str, current: int, newest: int) -> None:
        super().__init__(message)
        self.current = current  # the store's schema version (0: none yet)
        self.newest = newest  # this searchtrail's


def check_upgrade(current: int, scripts: list[tuple[int, str]], upgrade: bool = True) -> None:
    """Refuse a schema this searchtrail must not migrate, else log that an existing store's
    schema is being upgraded (a migration that rebuilds an index of a large store, 0010's
    outbox index, holds start-up for a minute or more). A store a newer searchtrail wrote is
    refused: this one would write into a schema it does not know. Without ``upgrade`` (the
    commands beside a server) an older schema is refused too: the server upgrades it, never a
    command under an older server still running on it."""
    newest = scripts[-1][0] if scripts else current
    if current > newest:
        raise sqlite3.DatabaseError(
            f"its schema is version {current}, written by a newer searchtrail than this one "
            f"(which knows versions up to {newest}): run that version, or a newer one")
    if current < newest and not upgrade:
        raise OlderSchema(
            f"its schema is version {current}, older than this searchtrail's {newest}: stop "
            "any older searchtrail server on it, then start this version's `searchtrail "
            "serve` on it, which upgrades it" if current else
            "it has no searchtrail schema yet: start `searchtrail serve` on it first",
            current, newest)
    if 0 < current < newest:
        log.info("upgrading the store's schema from version %d to %d; on a store of "
                 "millions of events this can take a minute or more", current, newest,
                 extra={"from_version": current, "to_version": newest})
