"""The CLI's fast path for `trail validate` (cli._run_fast): the same arguments as typer's
parsing, and typer itself for help and anything it would refuse."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from searchtrail import cli

ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"


@pytest.fixture
def calls(monkeypatch):  # type: ignore[no-untyped-def]
    """The keyword arguments the fast path hands to the command (which does not run)."""
    seen: list[dict] = []

    @functools.wraps(cli.validate_trail_files)  # the same signature, typer options included
    def record(**kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)

    monkeypatch.setitem(cli.FAST_COMMANDS, ("trail", "validate"), record)
    return seen


def test_options_arrive_as_typer_would_pass_them(calls) -> None:  # type: ignore[no-untyped-def]
    assert cli._run_fast(["trail", "validate", "--trail-arn", ARN, "--start-time=2020-01-01",
                          "--verbose", "--data-dir", "/tmp/d", "--region", "eu-west-1"])
    assert calls == [{"trail_arn": ARN, "start_time": "2020-01-01", "end_time": None,
                      "region": "eu-west-1", "account_id": None, "verbose": True,
                      "s3_endpoint_url": None, "data_dir": Path("/tmp/d")}]


def test_defaults_are_the_signatures(calls) -> None:  # type: ignore[no-untyped-def]
    assert cli._run_fast(["trail", "validate", "--start-time", "0", "--trail-arn", ARN])
    assert calls[0]["verbose"] is False and calls[0]["data_dir"] is None


@pytest.mark.parametrize("argv", [
    ["trail", "validate", "--help"],
    ["trail", "validate", "--trail-arn", ARN],  # --start-time is required
    ["trail", "validate", "--trail-arn", ARN, "--start-time", "0", "--bogus"],
    ["trail", "validate", "--trail-arn"],
    ["trail", "validate", "--trail-a", ARN, "--start-time", "0"],  # no abbreviations
    ["events", "lookup"],
    [],
])
def test_typer_answers_help_errors_and_other_commands(calls, argv) -> None:  # type: ignore[no-untyped-def]
    assert cli._run_fast(argv) is False
    assert calls == []


def test_exit_codes_pass_through(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    @functools.wraps(cli.validate_trail_files)
    def fails(**kwargs):  # type: ignore[no-untyped-def]
        raise cli.typer.Exit(1)

    monkeypatch.setitem(cli.FAST_COMMANDS, ("trail", "validate"), fails)
    with pytest.raises(SystemExit) as exited:
        cli._run_fast(["trail", "validate", "--trail-arn", ARN, "--start-time", "0"])
    assert exited.value.code == 1


def test_the_cli_module_leaves_heavy_imports_to_the_commands_that_need_them() -> None:
    """`trail validate` is timed against the AWS CLI: every import at start is paid per run."""
    import subprocess
    import sys

    probe = ("import sys, searchtrail.cli; print(' '.join(sorted({m.split('.')[0] for m in "
             "sys.modules} & {'rich', 'boto3', 'botocore', 'pydantic', 'uvicorn'})))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_error_messages_still_go_through_rich(capsys) -> None:  # type: ignore[no-untyped-def]
    console = cli._ErrorConsole()
    console.print("[red]error:[/red] something to fix")
    assert capsys.readouterr().err == "error: something to fix\n"
