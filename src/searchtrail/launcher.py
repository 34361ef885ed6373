"""The `searchtrail` entry point: commands whose start-up users time (`trail validate`) are
parsed here with argparse from their Option specs, without importing typer (~30 ms a run);
every other command, and --help or any argument this would refuse, goes to the typer app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from searchtrail import cli_validate
from searchtrail.cli_common import Option

FAST_COMMANDS: dict[tuple[str, ...], tuple[tuple[Option, ...], Callable[..., None]]] = {
    ("trail", "validate"): (cli_validate.OPTIONS, cli_validate.validate_trail_files),
}


class _Refused(Exception):
    """An argument the fast parser will not judge: typer parses again and words the error."""


class _RefusingParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def run_fast(argv: list[str]) -> bool:
    """Run a FAST_COMMANDS command if argv is one with arguments typer would accept the same
    way; False (nothing run) otherwise. The command's SystemExit passes through."""
    found = FAST_COMMANDS.get(tuple(argv[:2]))
    if found is None or any(arg in ("--help", "-h") for arg in argv):
        return False
    options, command = found
    parser = _RefusingParser(add_help=False, allow_abbrev=False)
    for option in options:
        if option.switch:
            parser.add_argument(option.flag, dest=option.name, action="store_true")
        else:
            parser.add_argument(option.flag, dest=option.name, required=option.required,
                                type=Path if option.path else None)
    try:
        parsed, unknown = parser.parse_known_args(argv[2:])
    except _Refused:
        return False
    if unknown:
        return False
    command(**vars(parsed))
    return True


def main() -> None:
    if not run_fast(sys.argv[1:]):
        from searchtrail.cli import app

        app()
