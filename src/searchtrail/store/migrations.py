"""Numbered migration scripts shipped inside a store package (NNNN_name.sql)."""

from __future__ import annotations

import logging
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


def announce_upgrade(current: int, scripts: list[tuple[int, str]]) -> None:
    """Log that an existing store's schema is being upgraded: a migration that rebuilds an
    index of a large store (0010's outbox index) holds start-up for a minute or more."""
    newest = scripts[-1][0] if scripts else current
    if 0 < current < newest:
        log.info("upgrading the store's schema from version %d to %d; on a store of "
                 "millions of events this can take a minute or more", current, newest,
                 extra={"from_version": current, "to_version": newest})
