"""`searchtrail trail validate`: its options and its run, importable without typer (its
start-up is timed against `aws cloudtrail validate-logs`: it imports only what it uses)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from searchtrail.cli_common import (DATA_DIR, Option, err, open_store_or_exit, parse_time,
                                    region_or_exit, settings_or_exit)

OPTIONS = (
    Option("trail_arn", "arn:aws:cloudtrail:<region>:<account>:trail/<name>", required=True),
    Option("start_time", "ISO 8601 or epoch seconds", required=True),
    Option("end_time", "ISO 8601 or epoch seconds [default: now]"),
    Option("region", "Region whose digests to validate [default: the trail's home region]"),
    Option("account_id", "Member account (organization trails)"),
    Option("verbose", "Also list every valid file", switch=True),
    Option("s3_endpoint_url", "The S3-compatible endpoint the trail delivers to [default: the "
                              "one the server last started on the data dir delivered to; "
                              "without one, the local bucket folder]"),
    DATA_DIR,
)
# The exit code when it cannot validate, as the AWS CLI's validate-logs: 1 says files are
# INVALID and nothing else, so a script that alarms on it never mistakes a wrong ARN or an
# unreadable store for tampering.
FATAL = 255


def validate_trail_files(*, trail_arn: str, start_time: str, end_time: Optional[str],
                         region: Optional[str], account_id: Optional[str], verbose: bool,
                         s3_endpoint_url: Optional[str], data_dir: Optional[Path]) -> None:
    """Validate a trail's digest chain and log files like `aws cloudtrail validate-logs`.

    Also reports a missing newest digest (tail truncation), which the AWS CLI cannot see.
    """
    import contextlib
    import re
    from datetime import timedelta

    from searchtrail.installation import object_store, organization_id, signing_keys_in
    from searchtrail.audit.objectstore import ObjectStoreError
    from searchtrail.audit.stores.s3reader import open_s3_reader
    from searchtrail.audit.validation import (LOCAL_FETCH_THREADS, REMOTE_FETCH_THREADS,
                                              NoPublicKeysFound, validate_trail)
    from searchtrail.store import kinds
    from searchtrail.store.sqlite.resources import SqliteResources

    match = re.fullmatch(r"arn:[^:]+:cloudtrail:([^:]+):(\d{12}):trail/(.+)", trail_arn)
    if not match:
        err.print("[red]error:[/red] --trail-arn must look like "
                  "arn:aws:cloudtrail:us-east-1:111122223333:trail/name")
        raise SystemExit(2)
    home, owner, name = match.groups()
    region_or_exit(home, "the trail ARN's Region")  # else "No digests found", as if valid
    if region is not None:
        region_or_exit(region)
    from searchtrail.endpoint import delivers_to

    settings = settings_or_exit(data_dir=data_dir, s3_endpoint_url=s3_endpoint_url)
    settings = replace(settings, s3_endpoint_url=delivers_to(settings))
    now = datetime.now(timezone.utc)
    start = parse_time(start_time, "--start-time")
    end = parse_time(end_time, "--end-time") or now
    try:
        conn = open_store_or_exit(settings, read_only=True)  # an auditor's copy may be read-only
    except SystemExit:  # told already; its code (1) would read as INVALID files
        raise SystemExit(FATAL) from None
    trail = SqliteResources(conn, owner, "").get(kinds.TRAIL, trail_arn)
    if trail is None:
        err.print(f"[red]error:[/red] A trail could not be found for {trail_arn}")
        conn.close()
        raise SystemExit(FATAL)
    if trail.get("IsOrganizationTrail") and not account_id:
        # as the AWS CLI: an organization trail holds every account's files, so say whose
        err.print("[red]error:[/red] Missing required parameter for organization trail: "
                  "'--account-id'")
        conn.close()
        raise SystemExit(FATAL)
    account = account_id or owner
    source = region or home
    keys = signing_keys_in(SqliteResources(conn, "", ""))
    newest = conn.execute(
        "SELECT max(end_time) FROM digests WHERE trail_arn = ? AND account = ? AND region = ? "
        "AND delivered_at IS NOT NULL AND end_time <= ?",
        (trail_arn, account, source, end.timestamp())).fetchone()[0]
    # digests are expected since the trail began logging with validation on (it writes none
    # without it, and the AWS CLI then finds nothing wrong)
    started = max(filter(None, (trail.get("StartLoggingTime"),
                                trail.get("ValidationEnabledTime"))), default=None)
    bars, advance = (progress_bars() if sys.stderr.isatty()
                     else (contextlib.nullcontext(), None))
    with bars:
        try:
            # A read-only S3 reader starts in milliseconds; a boto3 client takes ~0.3 s.
            store = (open_s3_reader(settings.s3_endpoint_url, region=settings.default_region)
                     if settings.s3_endpoint_url else object_store(settings))
            report = validate_trail(
                store=store, bucket=trail["S3BucketName"],
                prefix=trail.get("S3KeyPrefix") or None,
                org_id=organization_id(conn) if trail.get("IsOrganizationTrail") else None,
                account=account, trail_name=name, home_region=home, source_region=source,
                start=start, end=end, trail_arn=trail_arn, now=now,
                public_keys=lambda s, e: [(k.fingerprint, k.public_der)
                                          for k in keys.public_keys(account, source, s, e, now,
                                                                    create=False)],
                digest_interval=timedelta(seconds=settings.digest_interval), progress=advance,
                logging=bool(trail.get("IsLogging") and trail.get("LogFileValidationEnabled")),
                logging_since=datetime.fromtimestamp(started, timezone.utc) if started else None,
                # digestEndTime has whole seconds: compare at that resolution
                latest_digest_end=datetime.fromtimestamp(int(newest), timezone.utc) if newest else None,
                fetch_threads=(REMOTE_FETCH_THREADS if settings.s3_endpoint_url
                               else LOCAL_FETCH_THREADS))
        except (NoPublicKeysFound, ObjectStoreError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise SystemExit(FATAL) from None
        finally:
            conn.close()
    stdout, stderr = report.render_text(verbose)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    raise SystemExit(report.exit_code)


def progress_bars() -> tuple[Any, Any]:
    """Progress bars on a terminal (rich, imported only then) and the callback that moves
    them, which the validator's threads call too."""
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    console=err.console, transient=True)
    tasks: dict[str, int] = {}  # phase -> its task id
    lock = threading.Lock()

    def advance(phase: str, done: int, total: int) -> None:
        with lock:
            if phase not in tasks:
                tasks[phase] = bars.add_task(f"checking {phase}", total=total)
            bars.update(tasks[phase], completed=done, total=total)

    return bars, advance
