"""Delivery throughput: records/s from the outbox into gzip log files, to the local bucket folder
and to S3 (moto), with a notification per file through SNS (moto), and the API's throughput
while a trail logs and delivers against without.

A backlog is made by the bulk loader (outbox rows for a multi-region trail, as the router
writes them); the server's delivery worker then drains it, timed from the database's own
log_files timestamps (first file fixed → last file stored).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable


from bench import base_parser, now_iso, target, write_result
from bench import servers, wrk
from bench.bulkload import MEMBER_ACCOUNTS, load_events, name_database
from bench.postgres import start_postgres
from bench.presigned import Signer, read_mix, replay
from bench.slowlink import measured_delay, slow_link
from searchtrail.audit.delivery import UNCLAIMED_RECORDS

BUCKET = "bench-delivery"
TRAIL = "bench-delivery"
TOPIC = "bench-delivery"  # each run's topic and its SQS queue: this, then the run's folder
GOAL_RECORDS_PER_SECOND = 50_000
GOAL_DROP_PERCENT = 10.0
# An organization trail's backlog, spread evenly over this many accounts and four Regions: a
# log file per (account, Region), so 200 files where the default account's trail makes four.
ORG_ACCOUNTS = 50
# S3 in a Region is tens of milliseconds a request away; moto on loopback is not.
S3_DELAY_MS = 25
POLL_SECONDS = 0.2  # how often the database is read while the worker drains
SETTLE_SECONDS = 60  # for a stopped trail to deliver its last second of records
PHASES = ("no trail", "delivering")
# What the server's trails have still to deliver: records no log file has claimed, log files
# and digests not yet stored (0 once everything is delivered).
UNDELIVERED = (f"{UNCLAIMED_RECORDS} + "
               "(SELECT count(*) FROM log_files WHERE delivered_at IS NULL) + "
               "(SELECT count(*) FROM digests WHERE delivered_at IS NULL)")


def _searchtrail_args(s3: str | None, sns: str | None = None) -> tuple[str, ...]:
    args = ("--delivery-interval", "1", "--digest-interval", "3600")
    return (args + (("--s3-endpoint-url", s3) if s3 else ())
            + (("--sns-endpoint-url", sns) if sns else ()))


def _notification_topic(sns: str, name: str) -> tuple[str, Callable[[], int]]:
    """A topic ``name`` on the SNS endpoint ``sns`` (moto's) with an SQS queue subscribed, as
    a notified consumer would; its ARN and a count of the messages the queue holds."""
    topics, sqs = servers.endpoint_client(sns, "sns"), servers.endpoint_client(sns, "sqs")
    topic = topics.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topics.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                     Attributes={"RawMessageDelivery": "true"})

    def queued() -> int:
        return int(sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"])

    return topic, queued


def _moto_env(s3: str | None) -> dict[str, str]:
    if s3 is None:
        return {}
    key, secret = servers.PEER_KEY
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1"}


def prepare(workdir: Path, records: int, s3: str | None, log: Any,
            database_url: str | None = None, accounts: int = 1,
            topic_arn: str | None = None) -> str:
    """A data dir with a logging trail and ``records`` bulk-loaded records; the trail's ARN.
    The bucket is in the local folder, or on the S3 endpoint ``s3`` (moto's, or a slow link
    to it).
    With ``database_url`` (an empty database) the data dir's store is that PostgreSQL one.
    With ``accounts`` > 1 the trail is an organization trail and the records are spread
    evenly over that many accounts and the loader's four Regions. With ``topic_arn`` the
    trail notifies that SNS topic of each log file."""
    organization = accounts > 1
    if workdir.exists():
        shutil.rmtree(workdir)
    if database_url:
        name_database(workdir / "data", database_url)
    if s3 is not None:
        servers.endpoint_client(s3, "s3").create_bucket(Bucket=BUCKET)
    args, env = _searchtrail_args(s3), _moto_env(s3)
    with servers.running("searchtrail", workdir, args, env) as server:
        if s3 is None:
            subprocess.run([sys.executable, "-m", "searchtrail.cli", "buckets", "create", BUCKET,
                            "--data-dir", str(server.data_dir)], check=True, capture_output=True)
        cloudtrail = server.client("cloudtrail")
        notify = {"SnsTopicName": topic_arn} if topic_arn else {}
        arn = cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET, IsMultiRegionTrail=True,
                                      EnableLogFileValidation=True,
                                      IsOrganizationTrail=organization, **notify)["TrailARN"]
        cloudtrail.start_logging(Name=TRAIL)
        account = arn.split(":")[4]
    spread = f", spread over {accounts} accounts" if organization else ""
    log(f"delivery: loading {records:,} records for {arn}{spread}")
    load_events(workdir / "data", records, deliveries=((arn, account),),
                members=accounts - 1 if organization else MEMBER_ACCOUNTS,
                organization=organization, log=lambda *_: None)
    return arn


def drain(server: servers.Server, pending: int, after_file: int, log: Any) -> dict[str, Any]:
    """Wait (bounded) until ``pending`` records are in stored log files (those with an id
    above ``after_file``, i.e. made by this server); time it."""
    conn = server.read_only_database()
    deadline = time.monotonic() + 120 + pending / 2_000
    began = time.monotonic()
    try:
        while True:
            delivered = conn.execute("SELECT coalesce(sum(records), 0) FROM log_files "
                                     "WHERE delivered_at IS NOT NULL AND id > ?",
                                     (after_file,)).fetchone()[0]
            if delivered >= pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {delivered:,}/{pending:,} records delivered in time")
            time.sleep(POLL_SECONDS)  # polling the store with a deadline
        wall = time.monotonic() - began
        files, first, last, records, groups = conn.execute(
            "SELECT count(*), min(created_at), max(delivered_at), sum(records), "
            "count(DISTINCT account || '/' || region) FROM log_files "
            "WHERE delivered_at IS NOT NULL AND id > ?", (after_file,)).fetchone()
    finally:
        conn.close()
    # PostgreSQL's sum() is a numeric (Decimal) and its times may be too
    records, seconds = int(records), float(last) - float(first)
    log(f"delivery: {records:,} records in {files} files in {seconds:.2f}s "
        f"({records / seconds:,.0f} records/s)")
    return {"records": records, "log_files": files, "account_regions": groups,
            "seconds": round(seconds, 3),
            "records_per_second": round(records / seconds) if seconds > 0 else None,
            "wall_seconds_from_ready": round(wall, 2)}


def await_notifications(server: servers.Server, after_file: int, records: int,
                        queued: Callable[[], int], log: Any) -> dict[str, Any]:
    """Wait (bounded) until every log file above ``after_file`` is notified and each
    notification is in the subscribed queue; the notifications' figures (``records``: the
    files' records)."""
    conn = server.read_only_database()
    deadline = time.monotonic() + 120
    try:
        while conn.execute("SELECT count(*) FROM log_files WHERE id > ? AND "
                           "notified_at IS NULL", (after_file,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise RuntimeError("log files were still waiting for their notification")
            time.sleep(POLL_SECONDS)  # polling the store with a deadline
        lags = [float(notified) - float(delivered) for delivered, notified in conn.execute(
            "SELECT delivered_at, notified_at FROM log_files WHERE id > ?", (after_file,))]
        first, last = conn.execute("SELECT min(created_at), max(notified_at) FROM log_files "
                                   "WHERE id > ?", (after_file,)).fetchone()
    finally:
        conn.close()
    while queued() < len(lags):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {queued()} of {len(lags)} notifications reached the queue")
        time.sleep(POLL_SECONDS)  # polling the queue with a deadline
    seconds = float(last) - float(first)
    log(f"delivery: {len(lags)} notifications, the last begun {seconds:.2f}s after the first "
        f"file was fixed; median {statistics.median(lags) * 1000:.0f} ms after its upload began")
    return {"notifications": len(lags), "queued_messages": queued(),
            "seconds_to_last_notification": round(seconds, 3),
            "records_per_second_notified": round(records / seconds) if seconds > 0 else None,
            "notification_after_upload_ms": {
                "median": round(statistics.median(lags) * 1000, 1),
                "max": round(max(lags) * 1000, 1)}}


def wait_until_delivered(server: servers.Server) -> None:
    """Wait (bounded) until the server's trails have delivered all they recorded (after a
    trail stops, a "no trail" run would otherwise carry the tail of the delivering run)."""
    conn = server.read_only_database()
    deadline = time.monotonic() + SETTLE_SECONDS
    try:
        while True:
            undelivered = conn.execute(f"SELECT {UNDELIVERED}").fetchone()[0]
            if undelivered == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the trails still had {undelivered:,} records, log "
                                   f"files and digests to deliver after {SETTLE_SECONDS} s")
            time.sleep(POLL_SECONDS)  # polling the store with a deadline
    finally:
        conn.close()


def delivery_lag(server: servers.Server) -> float | None:
    """The bench trail's delivery lag in the server's /metrics, as of the worker's last pass
    (the age of the oldest record it had not stored yet); None before its first pass."""
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    series = rf'^searchtrail_delivery_lag_seconds{{trail="[^"]*:trail/{TRAIL}"}} (\S+)$'
    found = re.search(series, text, re.M)
    return round(float(found[1]), 2) if found else None


def _backlog(server: servers.Server) -> tuple[int, int]:
    """(outbox rows no log file has claimed yet, the highest log file id so far)."""
    with contextlib.closing(server.read_only_database()) as conn:
        return conn.execute(f"SELECT {UNCLAIMED_RECORDS}, "
                            "(SELECT coalesce(max(id), 0) FROM log_files)").fetchone()


def delivery_run(workdir: Path, records: int, s3: str | None,
                 log: Any, database_url: str | None = None, accounts: int = 1,
                 where: str = "S3 (moto server)", notify: bool = False
                 ) -> tuple[dict[str, Any], servers.Server]:
    """Drain a bulk-loaded backlog to the local folder (``s3`` None) or the S3 endpoint ``s3``,
    described in the row as ``where``. With ``notify``, the trail notifies a topic on the same
    endpoint's SNS of each file, and the run waits for every notification."""
    topic_arn, queued = (_notification_topic(s3, f"{TOPIC}-{workdir.name}") if notify and s3
                         else (None, None))
    prepare(workdir, records, s3, log, database_url, accounts, topic_arn)
    args, env = _searchtrail_args(s3, s3 if topic_arn else None), _moto_env(s3)
    server = servers.make("searchtrail", workdir, args, env)
    pending, after_file = _backlog(server)  # read before it starts delivering
    with servers.serving(server):
        row = drain(server, pending, after_file, log)
        if queued is not None:
            row.update(await_notifications(server, after_file, row["records"], queued, log))
    row["destination"] = (where if s3 else "local bucket folder") + (
        ", notifying SNS (moto) there" if topic_arn else "") + (
        ", PostgreSQL store" if database_url else "") + (
        f", organization trail over {accounts} accounts" if accounts > 1 else "")
    bucket = workdir / "data" / "buckets" / BUCKET
    if s3 is None and bucket.is_dir():
        row["gzip_bytes"] = sum(p.stat().st_size for p in bucket.rglob("*.json.gz"))
    return row, server


def api_throughput(workdir: Path, calls: int, seconds: float, rounds: int,
                   log: Any) -> dict[str, Any]:
    """Read-mix calls/s with the trail logging and delivering (every second) and with it stopped.

    The phases alternate, and each round's drop compares the two phases of that round, so
    drift in the machine's load hits both alike; the result is the median round. Every other
    round runs its phases the other way round, so neither always runs second (on a store one
    run larger), and a "no trail" run starts only once the stopped trail has delivered what
    it recorded, so it does not carry the delivering run's last second. The server's
    CPU time per call is measured beside the rate: it is what delivering costs the API, and
    it scatters far less than a 2-core machine's calls/s.
    """
    with servers.running("searchtrail", workdir, _searchtrail_args(None)) as server:
        cloudtrail = server.client("cloudtrail")
        signer = Signer(server.host_header, *server.credentials())

        def enter(phase: str) -> None:
            if phase == "delivering":
                cloudtrail.start_logging(Name=TRAIL)
            else:
                cloudtrail.stop_logging(Name=TRAIL)
                wait_until_delivered(server)

        for phase in PHASES:  # warm-up, signing key included
            enter(phase)
            replay(server, read_mix(signer, min(calls, 2_000)), 1)
        rates: dict[str, list[float]] = {phase: [] for phase in PHASES}
        cpu: dict[str, list[float]] = {phase: [] for phase in PHASES}
        lags: list[float | None] = []  # at the end of each delivering run
        for number in range(rounds):
            for phase in PHASES if number % 2 == 0 else PHASES[::-1]:
                enter(phase)
                cpu_before = server.cpu_seconds()
                answered, took = replay(server, read_mix(signer, calls), seconds)
                rates[phase].append(answered / took)
                cpu[phase].append((server.cpu_seconds() - cpu_before) / answered * 1e6)
                lag = ""
                if phase == "delivering":
                    lags.append(delivery_lag(server))
                    lag = f", delivery lag {lags[-1]} s"
                log(f"delivery: API {phase}: {answered / took:,.0f} calls/s, "
                    f"{cpu[phase][-1]:.0f} µs server CPU per call{lag}")
        cloudtrail.stop_logging(Name=TRAIL)
        with contextlib.closing(server.read_only_database()) as conn:
            delivered = conn.execute("SELECT coalesce(sum(records), 0) FROM log_files "
                                     "WHERE delivered_at IS NOT NULL").fetchone()[0]
    drops = [100 * (1 - loaded / base) for loaded, base in zip(rates["delivering"],
                                                                rates["no trail"])]
    cpu_no_trail = statistics.median(cpu["no trail"])
    cpu_delivering = statistics.median(cpu["delivering"])
    generator = "wrk -t1 -c16" if wrk.available() else "asyncio client, 16 connections"
    return {"load_generator": generator,
            "seconds_per_run": seconds if wrk.available() else None, "rounds": rounds,
            "no_trail_calls_per_second": round(statistics.median(rates["no trail"])),
            "delivering_calls_per_second": round(statistics.median(rates["delivering"])),
            "runs": {k: [round(v) for v in values] for k, values in rates.items()},
            "drop_percent_per_round": [round(d, 1) for d in drops],
            "server_cpu_us_per_call": {"no trail": round(cpu_no_trail),
                                       "delivering": round(cpu_delivering)},
            "cpu_increase_percent": round(100 * (cpu_delivering / cpu_no_trail - 1), 1),
            "delivery_lag_seconds_after_delivering_runs": lags,
            "records_delivered_in_total": delivered,
            "drop_percent": round(statistics.median(drops), 1)}


def _delivery_on_postgres(workdir: Path, records: int) -> dict[str, Any]:
    """The local-folder delivery run again, the store in a private PostgreSQL server."""
    postgres = start_postgres()
    try:
        row, _ = delivery_run(workdir, records, None, print, postgres.database())
    finally:
        postgres.stop()
    return row


def _account_count(text: str) -> int:
    """An argparse type: a whole number of accounts, 0 or more."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a number of accounts such as 50 (0 skips "
                                         f"the organization trail's runs), got {text!r}")
    return count


def _organization_runs(accounts: int, s3_delay_ms: float, quick: bool) -> set[str]:
    """Where an organization trail's backlog is delivered: the local folder, S3, S3 far away,
    and S3 (far away, unless the delay is 0) with each file notified through SNS there. A
    quick run makes the last one only."""
    if accounts <= 1:
        return set()
    if quick:
        return {"notifying"}
    return {"local", "s3", "notifying"} | ({"distant s3"} if s3_delay_ms else set())


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("delivery", __doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, help="backlog size (default 500,000; quick 5,000)")
    parser.add_argument("--calls", type=int,
                        help="pre-signed requests per API run (default 20,000; quick 1,000)")
    parser.add_argument("--seconds", type=float, help="seconds per API run with wrk "
                        "(default 6; quick 2)")
    parser.add_argument("--rounds", type=int, help="API rounds, each a run without and a run "
                        "with a delivering trail (default 15; quick 2)")
    parser.add_argument("--s3-delay-ms", type=float,
                        help="one more organization run, to S3 through a link that holds each "
                        "request this long, as a distant S3 does (default 25; 0 skips it)")
    parser.add_argument("--org-accounts", type=_account_count,
                        help="accounts an organization trail's backlog is spread over, for the "
                        "organization trail's delivery runs (default 50; quick 5, to the "
                        "distant S3 only; 0 or 1 skips them)")
    args = parser.parse_args(argv)
    records = args.records or (5_000 if args.quick else 500_000)
    calls = args.calls or (1_000 if args.quick else 20_000)
    rounds = args.rounds or (2 if args.quick else 15)  # quick: both orders of the phases
    seconds = args.seconds or (2 if args.quick else 6)
    org_accounts = (5 if args.quick else ORG_ACCOUNTS) if args.org_accounts is None \
        else args.org_accounts
    s3_delay_ms = S3_DELAY_MS if args.s3_delay_ms is None else max(0.0, args.s3_delay_ms)
    org_runs = _organization_runs(org_accounts, s3_delay_ms, args.quick)
    on_postgres = "searchtrail-postgres" in args.servers.split(",")
    started = now_iso()
    root = args.out.resolve().parent / "delivery-work"  # beside --out: smoke runs stay apart
    rows: list[dict[str, Any]] = []
    described: dict[str, Any] = {}
    try:
        local, server = delivery_run(root / "local", records, None, print)
        rows.append(local)
        described["searchtrail"] = server.describe()
        org_rows: list[tuple[str, dict[str, Any]]] = []  # (destination, row)
        if "local" in org_runs:
            org_rows.append(("the local bucket folder", delivery_run(
                root / "org", records, None, print, accounts=org_accounts)[0]))
        with servers.running("moto", root / "moto") as moto:
            remote, _ = delivery_run(root / "s3", records, moto.endpoint, print)
            if "s3" in org_runs:
                org_rows.append(("S3 (moto)", delivery_run(
                    root / "org-s3", records, moto.endpoint, print, accounts=org_accounts)[0]))
            for run in ("distant s3", "notifying"):
                if run not in org_runs:
                    continue
                notify = run == "notifying"  # through the link too, unless its delay is 0
                where = f"S3 (moto) {s3_delay_ms:g} ms away" if s3_delay_ms else "S3 (moto)"
                with slow_link(("127.0.0.1", moto.port), s3_delay_ms / 1000) as link:
                    far, _ = delivery_run(root / f"org-s3-{run.replace(' ', '-')}", records,
                                          link.endpoint, print, accounts=org_accounts,
                                          where=where, notify=notify)
                    if s3_delay_ms:
                        far["measured_request_ms"] = round(measured_delay(link) * 1000, 1)
                org_rows.append((where + (", notifying SNS (moto) there" if notify else ""), far))
            described["moto"] = moto.describe()
        rows.append(remote)
        rows += [row for _, row in org_rows]
        api = api_throughput(root / "local", calls, seconds, rounds, print)
        rows.append({"destination": "API throughput (local bucket folder)", **api})
        if on_postgres:
            postgres_row = _delivery_on_postgres(root / "local-postgres", records)
            rows.append(postgres_row)
    finally:
        for name in ("local", "s3", "org", "org-s3", "org-s3-distant-s3", "org-s3-notifying",
                     "local-postgres"):
            shutil.rmtree(root / name / "data", ignore_errors=True)
    targets = [
        target("delivery to the local bucket folder (records/s)", local["records_per_second"],
               GOAL_RECORDS_PER_SECOND),
        target("delivery to S3 (moto) (records/s)", remote["records_per_second"],
               GOAL_RECORDS_PER_SECOND),
        target("API throughput drop while a trail delivers (%)", api["drop_percent"],
               GOAL_DROP_PERCENT, higher_is_better=False),
    ]
    for where, org_row in org_rows:  # a notifying run: records/s until the last is notified
        targets.append(target(f"delivery to {where}, organization trail over {org_accounts} "
                              "accounts (records/s)", org_row.get(
                                  "records_per_second_notified", org_row["records_per_second"]),
                              GOAL_RECORDS_PER_SECOND))
    if on_postgres:
        targets.append(target("delivery to the local bucket folder, PostgreSQL store "
                              "(records/s)", postgres_row["records_per_second"],
                              GOAL_RECORDS_PER_SECOND))
    write_result(args.out, "delivery", started, described, rows, targets,
                 notes=["records/s = records / (last log file stored − first log file fixed), "
                        "from the server's log_files table",
                        "organization trail rows: the same backlog spread evenly over the "
                        "accounts and the loader's four Regions, one log file per (account, "
                        "Region) at least",
                        "'ms away' row: the server's S3 requests pass a loopback proxy that "
                        "holds each request that long before moto sees it (bench/slowlink.py); "
                        "measured_request_ms is a HEAD's round trip through it",
                        "'notifying' row: the trail publishes a notification per log file to "
                        "an SNS topic on the same endpoint (moto's, through the proxy when "
                        "'ms away'), with an SQS queue subscribed; the row waits until every "
                        "file is notified and every message is queued; "
                        "notification_after_upload_ms is from a file's upload beginning to its "
                        "notification's; its target is records_per_second_notified, the "
                        "records / (last notification begun − first log file fixed)",
                        "API throughput: pre-signed ListCollections/BatchGetCollection "
                        "replayed over 16 keep-alive connections; 'delivering' = the trail "
                        "logs every call and the worker delivers every second; 'no trail' = "
                        "the same trail stopped; the drop is the median of the rounds' "
                        "drops (each round compares its own two runs)",
                        "server CPU per call: the server's user + system CPU time during a "
                        "run / calls answered (median of the rounds)",
                        "delivery lag: the trail's searchtrail_delivery_lag_seconds in /metrics "
                        "at the end of each delivering run, as of the worker's last pass (the "
                        "age of the oldest record it had not stored yet)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
