"""Oracles over a client History: stored records, state vs record (atomicity), delivered files.

API:

    records = stored_records(server)            # every stored record, parsed
    check_store(history.ops, records)                     -> CheckResult
    check_atomicity(history.ops, records, effect=..., observe=...) -> CheckResult
    digests = read_digests(s3, bucket, delivered.digest_keys)
    check_delivery(expected_records, delivered, digests, stored_ids=...) -> CheckResult
    sql_refused(database, statements)                     -> {statement: refused?}

A CheckResult has `records_checked`, `lost`, `duplicated`, `phantom` (ledger counters, see
`counts()`), `problems` (readable lines) and `ok`. Rules (plan §3.0):
- ok call, status < 500 → exactly one record with its requestID, eventName and errorCode
  (none on 2xx); calls refused before authentication (UNRECORDED_CODES) → none, as on AWS;
- ok 5xx or info (indeterminate) → at most one; fail (nothing sent) → none;
- no record with a tid never sent; no two records share an eventID, nor a requestID
  within one account.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable

from tests.functional.trails import DIGEST_KEY, Delivered
from tests.reliability.history import Op, tid_of

# Refused before the caller is authenticated: searchtrail logs and counts them, records nothing.
UNRECORDED_CODES = frozenset({
    "MissingAuthenticationTokenException", "IncompleteSignatureException",
    "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
    "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
    "MissingAuthenticationToken", "ExpiredToken", "UnknownOperationException",
    "RequestEntityTooLargeException", "RequestTimeoutException",
    "RequestHeaderFieldsTooLargeException", "InvalidAction", "MissingAction"})
MAX_PROBLEMS = 50  # keep failure messages readable; the counters hold the totals


@dataclass
class CheckResult:
    name: str
    records_checked: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def counts(self) -> dict[str, int]:
        """The ledger's counters, for `ledger.add(scenario, **result.counts())`."""
        return {"records_checked": self.records_checked, "lost": self.lost,
                "duplicated": self.duplicated, "phantom": self.phantom}

    def __str__(self) -> str:
        head = (f"{self.name}: {len(self.problems)} problem(s); checked {self.records_checked}, "
                f"lost {self.lost}, duplicated {self.duplicated}, phantom {self.phantom}")
        return "\n  ".join([head, *self.problems[:MAX_PROBLEMS]])


def stored_records(server: Any) -> list[dict[str, Any]]:
    """Every record in a ServerProcess's store, in commit order (safe while it runs)."""
    conn = server.store()
    try:
        rows = conn.execute("SELECT record FROM events ORDER BY seq").fetchall()
        return [json.loads(text) for (text,) in rows]
    finally:
        conn.close()


def records_by_tid(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    joined: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        tid = tid_of(record.get("userAgent"))
        if tid is not None:
            joined[tid].append(record)
    return joined


def check_store(ops: Iterable[Op], records: list[dict[str, Any]]) -> CheckResult:
    result = CheckResult("store")
    joined = records_by_tid(records)
    result.records_checked = sum(len(found) for found in joined.values())
    ops = list(ops)
    for op in ops:
        found = joined.get(op.tid, [])
        label = f"{op.operation} tid={op.tid} ({op.outcome} {op.status} {op.error_code})"
        expected_none = op.outcome == "fail" or (op.outcome == "ok"
                                                 and op.error_code in UNRECORDED_CODES)
        if expected_none:
            if found:
                result.phantom += len(found)
                result.problem(f"{label}: {len(found)} record(s) for a call never sent or "
                               "refused before authentication")
            continue
        if len(found) > 1:
            result.duplicated += len(found) - 1
            result.problem(f"{label}: {len(found)} records")
        must_exist = op.outcome == "ok" and op.status is not None and op.status < 500
        if not found:
            if must_exist:
                result.lost += 1
                result.problem(f"{label}: acknowledged but no record")
            continue
        record = found[0]
        if op.request_id and record.get("requestID") != op.request_id:
            result.problem(f"{label}: record requestID {record.get('requestID')}, "
                           f"response {op.request_id}")
        if record.get("eventName") != op.operation:
            result.problem(f"{label}: record eventName {record.get('eventName')}")
        if must_exist and record.get("errorCode") != op.error_code:
            result.problem(f"{label}: record errorCode {record.get('errorCode')!r}")
    sent = {op.tid for op in ops}
    for tid, found in joined.items():
        if tid not in sent:
            result.phantom += len(found)
            result.problem(f"tid={tid}: {len(found)} record(s) for a call never made")
    # Across all records, ours or not; copies of one op's record were counted above already.
    untracked = [r for r in records if tid_of(r.get("userAgent")) not in sent]
    for what, key in (("eventID", lambda r: r.get("eventID")),
                      ("requestID", lambda r: (r.get("recipientAccountId"), r.get("requestID")))):
        for value, seen in Counter(key(r) for r in records).items():
            if seen > 1:
                result.problem(f"{seen} records share {what} {value}")
        result.duplicated += sum(seen - 1 for seen in Counter(key(r) for r in untracked).values())
    return result


# effect(op) → (subject, state the subject has if the op was applied) for mutating ops, else None.
Effect = Callable[[Op], "tuple[Hashable, Any] | None"]


def check_atomicity(ops: Iterable[Op], records: list[dict[str, Any]], *, effect: Effect,
                    observe: Callable[[list[Hashable]], dict[Hashable, Any]]) -> CheckResult:
    """State and record commit together: a subject's state now equals the effect of the last op
    on it whose record says it succeeded (no errorCode), or None (absent) if there is none.

    Ops on one subject must be sequential (one client thread); `observe(subjects)` returns the
    current state of each subject (None or missing: absent).
    """
    result = CheckResult("atomicity")
    joined = records_by_tid(records)
    expected: dict[Hashable, Any] = {}
    reason: dict[Hashable, str] = {}
    for op in sorted(ops, key=lambda o: o.seq):
        change = effect(op)
        if change is None:
            continue
        subject, state = change
        expected.setdefault(subject, None)
        found = joined.get(op.tid, [])
        if found and "errorCode" not in found[0]:
            expected[subject] = state
            reason[subject] = f"{op.operation} tid={op.tid} ({op.outcome})"
        if op.succeeded and not found:
            result.problem(f"{op.operation} tid={op.tid} on {subject}: 2xx without a record")
    observed = observe(list(expected))
    for subject, state in expected.items():
        result.records_checked += 1
        now = observed.get(subject)
        if now != state:
            result.problem(f"{subject}: state {now!r}, but the records say {state!r} "
                           f"(last applied: {reason.get(subject, 'none')})")
    return result


@dataclass
class DigestFile:
    key: str
    body: dict[str, Any]
    signature: str | None

    @property
    def chain(self) -> tuple[str, str]:
        match = DIGEST_KEY.match(self.key)
        return (match["account"], match["region"]) if match else ("?", "?")


def bucket_etags(s3: Any, bucket: str) -> dict[str, str]:
    """key -> ETag of every object in the bucket."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", ())}


def read_digests(s3: Any, bucket: str, keys: Iterable[str]) -> list[DigestFile]:
    digests = []
    for key in keys:
        got = s3.get_object(Bucket=bucket, Key=key)
        digests.append(DigestFile(key, json.loads(gzip.decompress(got["Body"].read())),
                                  got.get("Metadata", {}).get("signature")))
    return digests


def check_delivery(expected: Iterable[dict[str, Any]], delivered: Delivered,
                   digests: list[DigestFile], *, stored_ids: set[str]) -> CheckResult:
    """`expected`: stored records the trail must carry; `stored_ids`: every stored eventID."""
    result = CheckResult("delivery")
    copies = Counter(r["eventID"] for records in delivered.records_by_key.values() for r in records)
    for record in expected:
        result.records_checked += 1
        seen = copies.get(record["eventID"], 0)
        if seen == 0:
            result.lost += 1
            result.problem(f"{record['eventName']} {record['eventID']}: stored, never delivered")
    for event_id, seen in copies.items():
        if seen > 1:
            result.duplicated += seen - 1
            result.problem(f"eventID {event_id} delivered {seen} times")
        if event_id not in stored_ids:
            result.phantom += 1
            result.problem(f"eventID {event_id} delivered but never stored")
    referenced = Counter(entry["s3Object"] for digest in digests
                         for entry in digest.body.get("logFiles", ()))
    for key in delivered.log_keys:
        if referenced.get(key, 0) != 1:
            result.problem(f"log file {key} referenced by {referenced.get(key, 0)} digests")
    for key in set(referenced) - set(delivered.log_keys):
        result.problem(f"digest references missing log file {key}")
    _check_chains(result, digests)
    return result


def _check_chains(result: CheckResult, digests: list[DigestFile]) -> None:
    """No fork (two digests naming one predecessor), links resolve, periods contiguous."""
    previous = Counter(d.body.get("previousDigestSignature") for d in digests
                       if d.body.get("previousDigestSignature"))
    for signature, seen in previous.items():
        if seen > 1:
            result.problem(f"fork: {seen} digests follow the digest signed {signature[:16]}…")
    by_signature = {d.signature: d for d in digests if d.signature}
    chains: dict[tuple[str, str], list[DigestFile]] = defaultdict(list)
    for digest in digests:
        chains[digest.chain].append(digest)
        link = digest.body.get("previousDigestSignature")
        if link:
            before = by_signature.get(link)
            if before is None:
                result.problem(f"{digest.key}: its previous digest is not in the bucket")
            elif (before.key != digest.body.get("previousDigestS3Object")
                  or before.body["digestEndTime"] != digest.body["digestStartTime"]):
                result.problem(f"{digest.key}: link to {before.key} does not match "
                               f"(start {digest.body['digestStartTime']}, previous end "
                               f"{before.body['digestEndTime']})")
    for chain, members in chains.items():
        members.sort(key=lambda d: d.body["digestStartTime"])
        for before, after in zip(members, members[1:]):
            restarted = not after.body.get("previousDigestSignature")
            if not restarted and after.body["digestStartTime"] != before.body["digestEndTime"]:
                result.problem(f"chain {chain}: gap or overlap between {before.key} "
                               f"and {after.key}")


def sql_refused(database: Path, statements: Iterable[str], *,
                reason: str = "append-only") -> dict[str, bool]:
    """Run each statement on the database file (the server may be running): was it refused
    with ``reason``? Used to show that the file itself protects what must never change."""
    conn = sqlite3.connect(database, timeout=10, isolation_level=None)
    refused = {}
    try:
        for statement in statements:
            try:
                conn.execute(statement)
                refused[statement] = False
            except sqlite3.DatabaseError as exc:
                refused[statement] = reason in str(exc)
    finally:
        conn.close()
    return refused
