"""Helpers for trail tests: read delivered files, check the key layout, run the validators."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Callable

from tests.clients import boto3_client

LOG_KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P=y)(?P=m)(?P=d)T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$")
DIGEST_KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/"
    r"CloudTrail-Digest/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail-Digest_(?P=region)_(?P<trail>[A-Za-z0-9._-]+)_(?P<home>[a-z0-9-]+)_"
    r"(?P=y)(?P=m)(?P=d)T\d{6}Z\.json\.gz$")


@dataclass
class Delivered:
    log_keys: list[str]
    digest_keys: list[str]
    records_by_key: dict[str, list[dict]]

    def event_ids(self) -> list[str]:
        return [r["eventID"] for records in self.records_by_key.values() for r in records]

    def request_ids(self) -> list[str]:
        return [r["requestID"] for records in self.records_by_key.values() for r in records]


def read_bucket(s3, bucket: str) -> Delivered:  # type: ignore[no-untyped-def]
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    logs = [k for k in keys if "/CloudTrail/" in k]
    digests = [k for k in keys if "/CloudTrail-Digest/" in k]
    records = {}
    for key in logs:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        records[key] = json.loads(gzip.decompress(body))["Records"]
    return Delivered(logs, digests, records)


def stored_count(server, sql: str, *params: object) -> int:  # type: ignore[no-untyped-def]
    """A count (or any one value) read from the server's own store."""
    with closing(server.store()) as conn:
        return conn.execute(sql, params).fetchone()[0]


def wait_for(condition: Callable[[], object], *, seconds: float, what: str, step: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(step)  # polling a condition with a deadline
    raise AssertionError(f"timed out after {seconds}s waiting for {what} (last: {last!r})")


def aws_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "awscli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def searchtrail_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchtrail", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def counts(output: str) -> tuple[str | None, str | None]:
    digests = re.search(r"(\d+/\d+) digest files valid", output)
    logs = re.search(r"(\d+/\d+) log files valid", output)
    return (digests.group(1) if digests else None, logs.group(1) if logs else None)


def validate_both(server, trail_arn: str, *, s3_endpoint: str, region: str,  # type: ignore[no-untyped-def]
                  server_env: dict[str, str] | None = None, delivers_to: str | None = None):
    """Run `aws cloudtrail validate-logs` and `searchtrail trail validate` on the same trail."""
    key_id, secret = server.credentials()
    env = {"AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint, "AWS_ENDPOINT_URL_S3": s3_endpoint,
           "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    common = ("--trail-arn", trail_arn, "--start-time", "2020-01-01T00:00:00Z",
              "--region", region, "--verbose")
    aws = aws_cli("cloudtrail", "validate-logs", *common, env=env)
    store = ("--s3-endpoint-url", delivers_to) if delivers_to else ()
    ours = searchtrail_cli("trail", "validate", *common, *store, "--data-dir", str(server.data_dir),
                           env=server_env or {})
    return aws, ours


def chain_closed(server, trail_name: str) -> bool:  # type: ignore[no-untyped-def]
    """After StopLogging: everything delivered and each chain's final digest stored.

    Read from the server's own database, which says what it has fixed and what it has stored.
    """
    from searchtrail.audit.delivery import UNCLAIMED_RECORDS

    status = server.client("cloudtrail").get_trail_status(Name=trail_name)
    stopped = status.get("StopLoggingTime")
    if stopped is None:
        return False
    conn = server.store()
    try:
        pending = conn.execute(
            "SELECT (SELECT count(*) FROM log_files WHERE delivered_at IS NULL) + "
            f"(SELECT count(*) FROM digests WHERE delivered_at IS NULL) + {UNCLAIMED_RECORDS}"
        ).fetchone()[0]
        open_chains = conn.execute(
            "SELECT count(*) FROM (SELECT account, region, max(end_time) AS last FROM digests "
            "GROUP BY account, region) AS chains WHERE last < ?",
            (stopped.timestamp(),)).fetchone()[0]
        chains = conn.execute("SELECT count(*) FROM digests").fetchone()[0]
        # a file delivered at or after its chain's last digest end waits for the next digest
        # (a file can be dated after the final one: another node's clock ran ahead)
        uncovered = conn.execute(
            "SELECT count(*) FROM log_files AS f WHERE f.delivered_at >= (SELECT max(end_time) "
            "FROM digests AS d WHERE d.trail_arn = f.trail_arn AND d.account = f.account "
            "AND d.region = f.region)").fetchone()[0]
    finally:
        conn.close()
    return pending == 0 and open_chains == 0 and uncovered == 0 and chains > 0


def local_s3(server):  # type: ignore[no-untyped-def]
    """An S3 client on the server's read-only S3 API over its local bucket folder."""
    key_id, secret = server.credentials()
    return boto3_client("s3", region_name="us-east-1", endpoint_url=server.endpoint + "/_s3",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
