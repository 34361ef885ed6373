"""Command-line pieces importable without typer: option specs, the error console, settings and
time parsing, shared by the typer app (`cli.py`) and the commands that start without it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn, Optional

from searchtrail.config import Settings, load_settings


@dataclass(frozen=True)
class Option:
    """One `--option` of a command: the fast parser reads it, and typer registers the command
    from it (`cli._typer_command`), so both accept exactly the same arguments."""

    name: str  # the parameter's name; the flag is --name-with-dashes
    help: str
    required: bool = False
    switch: bool = False  # present or absent, no value
    path: bool = False  # its value becomes a Path

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


DATA_DIR = Option("data_dir", "Data directory [default: ./.searchtrail]", path=True)


class _ErrorConsole:
    """rich's stderr console, made at the first message: importing rich takes ~20 ms, which
    every command (`trail validate` among them) would otherwise pay to print nothing."""

    def __init__(self) -> None:
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The rich Console itself (progress bars draw on it)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def print(self, *objects: Any) -> None:
        # Unwrapped: a message's ARNs and paths stay whole for whoever copies them, and a log
        # or a pipe gets one line per message (rich would wrap at 80 columns there).
        self.console.print(*objects, soft_wrap=True)


err = _ErrorConsole()


def settings_or_exit(**flags: object) -> Settings:
    """The settings from flags, env and TOML; a bad value is told and exits 2."""
    try:
        return load_settings(flags)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None


def store_location(settings: Settings, mask: str = "***") -> str:
    """Where the store is, for messages: the SQLite file, or the PostgreSQL URL with ``mask``
    for its password."""
    if not settings.database_url:
        return str(settings.database_path)
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(settings.database_url)
        parts.password  # noqa: B018 (raises ValueError when the URL is malformed)
    except ValueError:
        return "the PostgreSQL store (its URL is malformed, so it is not shown)"
    if parts.password is None:
        return settings.database_url
    netloc = parts.netloc.replace(":" + parts.password + "@", f":{mask}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def exit_store_unavailable(settings: Settings, exc: BaseException) -> NoReturn:
    err.print(f"[red]error:[/red] cannot open the store at {store_location(settings)}: {exc}")
    raise SystemExit(1) from None


def open_store_or_exit(settings: Settings, read_only: bool = False) -> Any:
    """The store's connection, its schema up to date; one that cannot be opened (PostgreSQL
    down, a file not writable) is told, with where and why, and exits 1. ``read_only``: for
    a command that only reads, which then works on a store it may not write."""
    import sqlite3

    from searchtrail.installation import open_database

    if not settings.database_url and not settings.database_path.exists():
        # Opening would make an empty store here, and the command would then report what
        # that empty store lacks instead of the real problem.
        err.print(f"[red]error:[/red] no store in {settings.data_dir}: give the --data-dir of "
                  "a server (`searchtrail serve` makes its store there as it starts). For a "
                  "server on PostgreSQL, set SEARCHTRAIL_DATABASE_URL (or database_url in "
                  f"{settings.data_dir / 'searchtrail.toml'}) to its URL.")
        raise SystemExit(1)
    try:
        # the server upgrades, never a command
        return open_database(settings, upgrade=False, read_only=read_only)
    except sqlite3.Error as exc:
        exit_store_unavailable(settings, exc)


def region_or_exit(region: str, what: str = "--region") -> None:
    """Exit 2 unless ``region`` is a region name: a server refuses every call signed for
    another, and a store has nothing recorded in one, so it would answer nothing at all."""
    from searchtrail.arns import is_region

    if not is_region(region):
        err.print(f"[red]error:[/red] {what} {region!r} is not a region name such as "
                  "us-east-1 or eu-west-3.")
        raise SystemExit(2)


def parse_time(value: Optional[str], option: str) -> Optional[datetime]:
    """ISO 8601 or epoch seconds, in UTC when no zone is given; anything else exits 2."""
    if value is None:
        return None
    try:
        parsed = (datetime.fromtimestamp(float(value), timezone.utc) if value.replace(".", "").isdigit()
                  else datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        err.print(f"[red]error:[/red] {option} {value!r}: use ISO 8601 "
                  "(2026-11-30T09:00:00Z) or epoch seconds.")
        raise SystemExit(2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
