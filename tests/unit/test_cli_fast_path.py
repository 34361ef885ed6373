"""The launcher's fast path for `trail validate`: the same arguments as typer's parsing (both
are made from one list of Option specs), and typer itself for help and anything it would refuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from searchtrail import cli, cli_common, cli_validate, launcher

ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"


@pytest.fixture
def calls(monkeypatch):  # type: ignore[no-untyped-def]
    """The keyword arguments the fast path hands to the command (which does not run)."""
    seen: list[dict] = []
    monkeypatch.setitem(launcher.FAST_COMMANDS, ("trail", "validate"),
                        (cli_validate.OPTIONS, lambda **kwargs: seen.append(kwargs)))
    return seen


def _typer_passes(argv: list[str]) -> dict:
    """What typer hands the command made from the same specs for argv (after `trail validate`)."""
    seen: list[dict] = []
    app = typer.Typer()
    app.command()(cli._typer_command(cli_validate.OPTIONS, lambda **kwargs: seen.append(kwargs)))
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("argv", [
    ["--trail-arn", ARN, "--start-time=2020-01-01", "--verbose", "--data-dir", "/tmp/d",
     "--region", "eu-west-1"],
    ["--start-time", "0", "--trail-arn", ARN],
    ["--trail-arn", ARN, "--start-time", "0", "--end-time", "5", "--account-id", "210987654321",
     "--s3-endpoint-url", "http://127.0.0.1:9000"],
])
def test_options_arrive_as_typer_passes_them(calls, argv) -> None:  # type: ignore[no-untyped-def]
    assert launcher.run_fast(["trail", "validate", *argv])
    assert calls == [_typer_passes(argv)]


def test_values_and_defaults(calls) -> None:  # type: ignore[no-untyped-def]
    assert launcher.run_fast(["trail", "validate", "--trail-arn", ARN, "--start-time=2020-01-01",
                              "--verbose", "--data-dir", "/tmp/d", "--region", "eu-west-1"])
    assert launcher.run_fast(["trail", "validate", "--start-time", "0", "--trail-arn", ARN])
    assert calls == [{"trail_arn": ARN, "start_time": "2020-01-01", "end_time": None,
                      "region": "eu-west-1", "account_id": None, "verbose": True,
                      "s3_endpoint_url": None, "data_dir": Path("/tmp/d")},
                     {"trail_arn": ARN, "start_time": "0", "end_time": None, "region": None,
                      "account_id": None, "verbose": False, "s3_endpoint_url": None,
                      "data_dir": None}]


@pytest.mark.parametrize("argv", [
    ["trail", "validate", "--help"],
    ["trail", "validate", "--trail-arn", ARN],  # --start-time is required
    ["trail", "validate", "--trail-arn", ARN, "--start-time", "0", "--bogus"],
    ["trail", "validate", "--trail-arn"],
    ["trail", "validate", "--trail-a", ARN, "--start-time", "0"],  # no abbreviations
    ["trail", "validate", "--verbose=yes", "--trail-arn", ARN, "--start-time", "0"],
    ["events", "lookup"],
    [],
])
def test_typer_answers_help_errors_and_other_commands(calls, argv) -> None:  # type: ignore[no-untyped-def]
    assert launcher.run_fast(argv) is False
    assert calls == []


def test_exit_codes_pass_through(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def fails(**kwargs):  # type: ignore[no-untyped-def]
        raise SystemExit(1)

    monkeypatch.setitem(launcher.FAST_COMMANDS, ("trail", "validate"),
                        (cli_validate.OPTIONS, fails))
    with pytest.raises(SystemExit) as exited:
        launcher.run_fast(["trail", "validate", "--trail-arn", ARN, "--start-time", "0"])
    assert exited.value.code == 1


def test_typer_registers_validate_from_the_same_specs() -> None:
    command = typer.main.get_command(cli.app).commands["trail"].commands["validate"]
    assert [(p.name, p.opts, p.required, p.help) for p in command.params] == [
        (o.name, [o.flag], o.required, o.help) for o in cli_validate.OPTIONS]


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} "
             "& {'typer', 'click', 'rich', 'boto3', 'botocore', 'pydantic', 'uvicorn'})))")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_entry_point_leaves_heavy_imports_to_the_commands_that_need_them() -> None:
    """`trail validate` is timed against the AWS CLI: every import at start is paid per run."""
    assert _loaded_after("import searchtrail.launcher") == []
    assert _loaded_after("import searchtrail.cli") == ["typer"]


def test_validate_runs_without_typer(tmp_path: Path) -> None:
    """The whole command, through `python -m searchtrail`, up to its answer for a trail that is
    not there (rich is imported then, to print the error)."""
    ran = ("import runpy\nsys.argv = ['searchtrail', 'trail', 'validate', '--trail-arn', "
           f"{ARN!r}, '--start-time', '0', '--data-dir', {str(tmp_path)!r}]\n"
           "try:\n    runpy.run_module('searchtrail', run_name='__main__')\n"
           "except SystemExit as done:\n    assert done.code == 255, done.code")
    assert _loaded_after(ran) == ["rich"]


def test_error_messages_still_go_through_rich(capsys) -> None:  # type: ignore[no-untyped-def]
    console = cli_common._ErrorConsole()
    console.print("[red]error:[/red] something to fix")
    assert capsys.readouterr().err == "error: something to fix\n"


def test_progress_bars_draw_on_the_error_console() -> None:
    """On a terminal the validator's threads move rich progress bars on stderr's console."""
    bars, advance = cli_validate.progress_bars()
    with bars:
        advance("digests", 1, 2)
        advance("digests", 2, 2)
        advance("log files", 3, 10)
    assert [(t.description, t.completed, t.total) for t in bars.tasks] == [
        ("checking digests", 2, 2), ("checking log files", 3, 10)]
