"""Numbered migration scripts shipped inside a store package (NNNN_name.sql)."""

from __future__ import annotations

from importlib import resources as package_files


def numbered_scripts(package: str) -> list[tuple[int, str]]:
    """(number, SQL text) of every script in ``package``'s migrations folder, in order."""
    folder = package_files.files(package).joinpath("migrations")
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(scripts)
