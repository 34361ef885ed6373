"""Fast bulk loader: N realistic CloudTrail records written straight into a searchtrail data dir.

Rows go through the product's own ``append_events`` (events, lookup rows, outbox rows exactly as
the server writes them) in big transactions with ``synchronous=OFF`` and no journal during the
load only; the finished store is put back in WAL mode and a normal server opens it. A store
already built for the same size is reused (``bench-store.json`` marks a complete build).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import shutil
import sqlite3
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from searchtrail.app import ensure_default_account
from searchtrail.audit.query import LOOKUP_ATTRIBUTES
from searchtrail.audit.record import EVENT_VERSION, EventIds, lookup_values
from searchtrail.auth.identities import Identities
from searchtrail.config import CONFIG_FILE_NAME, Settings, load_settings
from searchtrail.durable import sync_file
from searchtrail.installation import open_database
from searchtrail.store.sqlite.events import EventRow, append_events
from searchtrail.store.sqlite.resources import SqliteResources

from bench.postgres import start_postgres

RESULTS = Path(__file__).resolve().parent / "results"
LARGE = 1_000_000  # --skip-large drops stores bigger than this
MANIFEST = "bench-store.json"
MANIFEST_VERSION = 1
SPAN_DAYS = 85  # inside the 90-day retention, so every loaded event can be looked up
STALE_DAYS = 20  # older stores are rebuilt: "60 days ago" must stay inside retention
BYTES_PER_EVENT = 2_000  # measured: record + lookup rows + indexes, with headroom
BATCH_EVENTS = 2_000  # rows handed to append_events at once
TRANSACTION_EVENTS = 200_000
CACHE_KIB = 3 * 1024 * 1024  # page cache while loading: random EventId keys stay in memory

DEFAULT_REGION = "us-east-1"
OTHER_REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-2")
MEMBER_ACCOUNTS = 3  # accounts besides the default one
GLOBAL_REGION = "us-east-1"  # where IAM's events are recorded
USER_AGENT = ("Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1.0 md/arch#x86_64 "
              "lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.35.0")

# (event source, name, weight, read only, resource type or None)
EVENT_NAMES: tuple[tuple[str, str, float, bool, str | None], ...] = (
    ("aoss", "ListCollections", 30, True, None),
    ("aoss", "BatchGetCollection", 20, True, "AWS::AOSS::Collection"),
    ("aoss", "CreateCollection", 2, False, "AWS::AOSS::Collection"),
    ("aoss", "DeleteCollection", 1.5, False, "AWS::AOSS::Collection"),
    ("aoss", "UpdateCollection", 1, False, "AWS::AOSS::Collection"),
    ("aoss", "ListTagsForResource", 2, True, "AWS::AOSS::Collection"),
    ("aoss", "TagResource", 0.5, False, "AWS::AOSS::Collection"),
    ("aoss", "ListSecurityPolicies", 5, True, None),
    ("aoss", "GetSecurityPolicy", 4, True, "AWS::AOSS::SecurityPolicy"),
    ("aoss", "CreateSecurityPolicy", 0.8, False, "AWS::AOSS::SecurityPolicy"),
    ("aoss", "ListAccessPolicies", 4, True, None),
    ("aoss", "GetAccessPolicy", 3, True, "AWS::AOSS::AccessPolicy"),
    ("aoss", "CreateAccessPolicy", 0.6, False, "AWS::AOSS::AccessPolicy"),
    ("aoss", "ListVpcEndpoints", 1.5, True, None),
    ("aoss", "BatchGetVpcEndpoint", 0.8, True, "AWS::AOSS::VpcEndpoint"),
    ("aoss", "GetAccountSettings", 2, True, None),
    ("aoss", "GetPoliciesStats", 1, True, None),
    ("aoss", "ListLifecyclePolicies", 1, True, None),
    ("aoss", "CreateLifecyclePolicy", 0.2, False, "AWS::AOSS::LifecyclePolicy"),
    ("aoss", "CreateSecurityConfig", 0.05, False, "AWS::AOSS::SecurityConfig"),
    ("iam", "GetUser", 3, True, None),
    ("iam", "ListUsers", 2, True, None),
    ("iam", "ListAccessKeys", 1, True, None),
    ("iam", "CreateUser", 0.3, False, None),
    ("iam", "CreateAccessKey", 0.3, False, None),
    ("iam", "PutUserPolicy", 0.2, False, None),
    ("iam", "GetRole", 1, True, "AWS::IAM::Role"),
    ("iam", "CreateRole", 0.1, False, "AWS::IAM::Role"),
    ("sts", "GetCallerIdentity", 8, True, None),
    ("sts", "AssumeRole", 3, True, "AWS::IAM::Role"),
    ("sts", "GetSessionToken", 0.5, True, None),
)
ARN_KIND = {
    "AWS::AOSS::Collection": "collection", "AWS::AOSS::SecurityPolicy": "security-policy",
    "AWS::AOSS::AccessPolicy": "access-policy", "AWS::AOSS::VpcEndpoint": "vpc-endpoint",
    "AWS::AOSS::LifecyclePolicy": "lifecycle-policy",
    "AWS::AOSS::SecurityConfig": "security-config",
}


@dataclass(frozen=True)
class Store:
    """A built store: where it is and what a benchmark may look up in it."""

    data_dir: Path
    events: int
    manifest: dict[str, Any]

    @property
    def account(self) -> str:
        return self.manifest["account"]

    @property
    def newest(self) -> int:
        return self.manifest["newest"]


# -- record generation ------------------------------------------------------------------------

def _random_id(rng: random.Random, length: int = 20) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=length))


def _key_id(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=16))


class Population:
    """Accounts, callers and resources the generated calls are spread over (seeded)."""

    def __init__(self, rng: random.Random, default_account: str, root_key: str,
                 members: int = MEMBER_ACCOUNTS) -> None:
        self.accounts = [default_account] + ["%012d" % rng.randrange(10**11, 10**12)
                                             for _ in range(members)]
        self.identities: dict[str, list[dict[str, Any]]] = {}
        self.identity_weights: dict[str, list[float]] = {}
        self.resources: dict[tuple[str, str, str], list[str]] = {}
        for account in self.accounts:
            people: list[dict[str, Any]] = [{
                "type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                "accountId": account,
                "accessKeyId": root_key if account == default_account else _key_id(rng, "AKIA")}]
            for index in range(40):
                name = f"user-{index:02d}"
                for _ in range(1 + index % 2):
                    people.append({
                        "type": "IAMUser", "principalId": _key_id(rng, "AIDA"),
                        "arn": f"arn:aws:iam::{account}:user/{name}", "accountId": account,
                        "accessKeyId": _key_id(rng, "AKIA"), "userName": name})
            for index in range(10):
                role, session = f"role-{index}", f"session-{index}"
                people.append({
                    "type": "AssumedRole", "principalId": f"{_key_id(rng, 'AROA')}:{session}",
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
                    "accountId": account, "accessKeyId": _key_id(rng, "ASIA"),
                    "sessionContext": {
                        "sessionIssuer": {"type": "Role", "principalId": _key_id(rng, "AROA"),
                                          "arn": f"arn:aws:iam::{account}:role/{role}",
                                          "accountId": account, "userName": role},
                        "attributes": {"creationDate": "2026-01-01T00:00:00Z",
                                       "mfaAuthenticated": "false"}}})
            self.identities[account] = people
            # a few busy callers and a long tail, as in a real account
            self.identity_weights[account] = list(itertools.accumulate(
                1.0 / (rank + 1) for rank in range(len(people))))
            for region in (DEFAULT_REGION, *OTHER_REGIONS):
                for resource_type, kind in ARN_KIND.items():
                    count = 2_000 if kind == "collection" else 200
                    self.resources[(account, region, resource_type)] = [
                        f"arn:aws:aoss:{region}:{account}:{kind}/{_random_id(rng)}"
                        for _ in range(count)]
            self.resources[(account, GLOBAL_REGION, "AWS::IAM::Role")] = [
                f"arn:aws:iam::{account}:role/role-{index}" for index in range(10)]


class RecordFactory:
    """Builds records with the server's key order and field rules (see audit/record.py)."""

    def __init__(self, seed: int, default_account: str, root_key: str,
                 members: int = MEMBER_ACCOUNTS, spread: bool = False) -> None:
        self.rng = random.Random(seed)
        self.population = Population(self.rng, default_account, root_key, members)
        self.default_account = default_account
        self._spread = spread
        self.ids = EventIds()
        self._names = EVENT_NAMES
        self._name_weights = list(itertools.accumulate(entry[2] for entry in EVENT_NAMES))

    def placement(self) -> tuple[str, str]:
        """(account, region): most calls in the default account and region, as in a lab;
        with ``spread``, every account and Region alike, as in an organization."""
        if self._spread:
            return (self.rng.choice(self.population.accounts),
                    self.rng.choice((DEFAULT_REGION, *OTHER_REGIONS)))
        draw = self.rng.random()
        if draw < 0.75:
            return self.default_account, DEFAULT_REGION
        if draw < 0.85:
            return self.default_account, self.rng.choice(OTHER_REGIONS)
        return (self.rng.choice(self.population.accounts[1:]),
                self.rng.choice((DEFAULT_REGION, *OTHER_REGIONS)))

    def record(self, account: str, region: str, when: int) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        service, name, _, read_only, resource_type = rng.choices(
            self._names, cum_weights=self._name_weights)[0]
        if service == "iam":
            region = GLOBAL_REGION
        people = self.population.identities[account]
        identity = rng.choices(people, cum_weights=self.population.identity_weights[account])[0]
        resources = []
        if resource_type is not None:
            pool = self.population.resources[(account, region if resource_type != "AWS::IAM::Role"
                                              else GLOBAL_REGION, resource_type)]
            for arn in rng.sample(pool, 1 + (name.startswith("BatchGet") and rng.random() < 0.3)):
                resources.append({"ARN": arn, "accountId": account, "type": resource_type})
        params, response = self._payload(service, name, account, resources, read_only)
        record = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": identity,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ("127.0.0.1" if rng.random() < 0.6
                                else f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
            "userAgent": USER_AGENT,
        }
        if rng.random() < 0.03:
            record["errorCode"] = "AccessDeniedException"
            record["errorMessage"] = (f"User: {identity['arn']} is not authorized to perform: "
                                      f"{service}:{name}")
            response = None
        record["requestParameters"] = params
        record["responseElements"] = response
        record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        record["eventID"] = self.ids.next()
        record["readOnly"] = read_only
        if resources:
            record["resources"] = resources
        record["eventType"] = "AwsApiCall"
        record["managementEvent"] = True
        record["recipientAccountId"] = account
        record["eventCategory"] = "Management"
        return region, record

    def _payload(self, service: str, name: str, account: str, resources: list[dict[str, str]],
                 read_only: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        ids = [item["ARN"].rsplit("/", 1)[1] for item in resources]
        if service == "aoss":
            if not ids and name.startswith("List"):
                return None, None
            params: dict[str, Any] = {"accountId": account}
            if name.startswith("BatchGet"):
                params["ids"] = ids
            elif ids:
                by_id = "Collection" in name or name.endswith("Resource")
                params["id" if by_id else "name"] = ids[0]
            if name.startswith("Create"):
                params.update({"type": "SEARCH", "description": "bench",
                               "clientToken": str(uuid.UUID(int=self.rng.getrandbits(128)))})
            if read_only:
                return params, None
            return params, {"detail": {"id": ids[0] if ids else "", "status": "ACTIVE",
                                       "arn": resources[0]["ARN"] if resources else ""}}
        if service == "iam":
            user = f"user-{self.rng.randrange(40):02d}"
            if name in ("ListUsers",):
                return None, None
            if name in ("GetRole", "CreateRole"):
                params = {"roleName": resources[0]["ARN"].rsplit("/", 1)[1]}
            else:
                params = {"userName": user}
            return params, None if read_only else {"user": {"userName": user, "path": "/"}}
        if name == "AssumeRole":
            return ({"roleArn": resources[0]["ARN"], "roleSessionName": "bench"},
                    {"credentials": {"accessKeyId": _key_id(self.rng, "ASIA"),
                                     "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                     "expiration": "Jan 1, 2026, 1:00:00 AM"}})
        return None, None


# -- loading ----------------------------------------------------------------------------------

def default_data_dir(events: int, root: Path = RESULTS) -> Path:
    """``<root>/store-<N>/data``: what a bench.servers searchtrail with workdir store-<N> serves.

    Benchmarks pass the folder of their --out file as ``root``, so a smoke run into a
    temporary folder never shares (or rebuilds) the stores in bench/results.
    """
    return root / f"store-{events}" / "data"


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def reusable(data_dir: Path, events: int) -> Store | None:
    """The store in ``data_dir`` if it is a complete, recent build of ``events`` events
    without outbox rows (a delivery backlog is no lookup store)."""
    manifest = read_manifest(data_dir)
    if not manifest or manifest.get("version") != MANIFEST_VERSION:
        return None
    if manifest.get("events") != events or manifest.get("deliveries"):
        return None
    if time.time() - manifest["newest"] > STALE_DAYS * 86400:
        return None
    return Store(data_dir, events, manifest)


def check_free_space(data_dir: Path, events: int) -> None:
    target = data_dir if data_dir.exists() else data_dir.parent
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free
    needed = int(events * BYTES_PER_EVENT * 1.2)
    if free < needed:
        raise SystemExit(
            f"Not enough free space for {events:,} events in {data_dir}: about "
            f"{needed / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free. Free some space or pass "
            f"--data-dir on a bigger disk (or fewer --events).")


def ensure_store(events: int, data_dir: Path | None = None, *, seed: int = 7,
                 database_url: str | None = None, log: Any = print) -> Store:
    """The store of ``events`` events in ``data_dir``: reused when already built, else built.
    With ``database_url`` (an empty PostgreSQL database) it is always built there, the data
    dir's searchtrail.toml naming it."""
    # absolute: bench.servers starts the server in its work folder
    data_dir = (data_dir or default_data_dir(events)).resolve()
    found = None if database_url else reusable(data_dir, events)
    if found:
        log(f"reusing {data_dir} ({events:,} events)")
        keep_every_record(data_dir)  # stores built before retention have no such setting
        upgrade_schema(data_dir, log)
        return found
    if data_dir.exists():
        shutil.rmtree(data_dir)
    if database_url:
        name_database(data_dir, database_url)
    else:
        check_free_space(data_dir, events)
    keep_every_record(data_dir)
    ensure_default_account(_settings(data_dir))
    return load_events(data_dir, events, seed=seed, log=log)


def name_database(data_dir: Path, database_url: str) -> None:
    """A new data dir whose searchtrail.toml names ``database_url``, a PostgreSQL store: the
    server, the CLI and the bulk loader all find it there."""
    data_dir.mkdir(parents=True)
    (data_dir / CONFIG_FILE_NAME).write_text(f'database_url = "{database_url}"\n')


def upgrade_schema(data_dir: Path, log: Any) -> None:
    """Bring a reused store's schema up to date here, before any server starts on it: a
    migration that rewrites its lookup rows takes minutes on 10M events, longer than a server's
    start is waited for."""
    started = time.perf_counter()
    open_database(_settings(data_dir)).close()
    took = time.perf_counter() - started
    if took > 1:
        log(f"upgraded the schema of {data_dir} in {took:.0f}s")


def keep_every_record(data_dir: Path) -> None:
    """Servers on this store remove no expired record. A kept store's records reach back
    SPAN_DAYS + STALE_DAYS, past event history's 90 days: retention would remove the oldest
    while a benchmark measures, and the store would no longer hold what its manifest says."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / CONFIG_FILE_NAME
    text = config.read_text() if config.exists() else ""
    if "retention_check_seconds" not in text:
        config.write_text(text + "retention_check_seconds = 0\n")


def store_kinds(servers: str) -> list[str]:
    """The servers of a ``--servers`` list that run on a bulk-loaded store (searchtrail by
    default)."""
    return [kind for kind in servers.split(",")
            if kind in ("searchtrail", "searchtrail-postgres")] or ["searchtrail"]


def store_label(kind: str) -> str:
    """What a target's name adds for the store ``kind`` runs on."""
    return "" if kind == "searchtrail" else " (PostgreSQL store)"


@contextlib.contextmanager
def provisioned_store(kind: str, events: int, root: Path) -> Iterator[Store]:
    """A store of ``events`` events for the server ``kind``: searchtrail's SQLite store in
    ``root``, reused when already built and kept for the next run; searchtrail-postgres's on
    a private PostgreSQL server, built anew and removed afterwards."""
    if kind == "searchtrail":
        yield ensure_store(events, default_data_dir(events, root))
        return
    postgres = start_postgres()
    folder = root / f"store-postgres-{events}"
    try:
        yield ensure_store(events, folder / "data", database_url=postgres.database())
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _settings(data_dir: Path) -> Settings:
    """The data dir's settings (its searchtrail.toml names a PostgreSQL store, if any)."""
    return load_settings({"data_dir": data_dir}, environ={})


def _root_key(data_dir: Path) -> str:
    for line in (data_dir / "credentials").read_text().splitlines():
        if line.startswith("aws_access_key_id"):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"no credentials in {data_dir}")


def _default_account(conn: sqlite3.Connection) -> str:
    account = Identities(SqliteResources(conn, "", "")).default_account()
    if account is None:
        raise RuntimeError("the data dir has no default account (run the server once first)")
    return account


def _event_times(count: int, newest: int, span_days: float) -> Iterator[int]:
    """Non-decreasing epoch seconds over ``span_days`` ending at ``newest`` (commit order)."""
    oldest = newest - int(span_days * 86400)
    span = newest - oldest
    for index in range(count):
        yield oldest + (span * index) // max(1, count - 1)


def _progress(done: int, total: int, elapsed: float) -> str:
    """A progress line with the time left at the rate so far (a 10M store takes ~15-35 min;
    the rate falls a little as the indexes grow, so the estimate runs slightly short)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    left = f", about {(total - done) / rate / 60:.0f} min left" if rate and done < total else ""
    return f"  {done:,}/{total:,} events ({100 * done / total:.0f}%), {rate:,.0f} events/s{left}"


def load_events(data_dir: Path, events: int, *, seed: int = 7,
                deliveries: tuple[tuple[str, str], ...] = (), members: int = MEMBER_ACCOUNTS,
                organization: bool = False, newest: int | None = None,
                span_days: float = SPAN_DAYS, log: Any = print) -> Store:
    """Append ``events`` records to an existing data dir (made by the server or ensure_store).

    ``deliveries`` are (trail ARN, account folder) pairs given to every record of the
    default account, as the trail router would. With ``organization`` the records are spread
    evenly over the default account and ``members`` others, and each goes to every trail
    named in ``deliveries`` in its own account's folder, as for an organization trail.
    The records' times spread evenly over the ``span_days`` before ``newest`` (default now).
    """
    settings = _settings(data_dir)
    postgres = settings.database_url is not None
    conn = open_database(settings)
    account = _default_account(conn)
    factory = RecordFactory(seed, account, _root_key(data_dir), members, spread=organization)
    newest = newest or int(time.time())
    counts: dict[str, Counter[str]] = {attr: Counter() for attr in LOOKUP_ATTRIBUTES}
    sample_ids: list[str] = []
    if not postgres:  # PostgreSQL keeps its own settings: the loader is one more client
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")
    started = time.monotonic()
    batch: list[EventRow] = []
    in_transaction = 0
    lookup_rows = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for index, when in enumerate(_event_times(events, newest, span_days)):
            row_account, row_region = factory.placement()
            region, record = factory.record(row_account, row_region, when)
            values = lookup_values(record)
            lookup_rows += len(values)
            default = row_account == account and region == DEFAULT_REGION
            if default:
                for attr, value in values:
                    if attr != "EventId":
                        counts[attr][value] += 1
                if index % 997 == 0:
                    sample_ids.append(record["eventID"])
            if organization:
                targets = tuple((arn, row_account) for arn, _ in deliveries)
            else:
                targets = deliveries if row_account == account else ()
            batch.append(EventRow(account=row_account, region=region, event_time=when,
                                  record=orjson.dumps(record).decode(), lookup_values=values,
                                  deliveries=targets))
            if len(batch) >= BATCH_EVENTS:
                append_events(conn, batch)
                in_transaction += len(batch)
                batch = []
                if in_transaction >= TRANSACTION_EVENTS:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN IMMEDIATE")
                    in_transaction = 0
                    log(_progress(index + 1, events, time.monotonic() - started))
        append_events(conn, batch)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
        raise
    load_seconds = time.monotonic() - started
    if postgres:
        database_bytes = conn.execute(
            "SELECT pg_database_size(current_database())").fetchone()[0]
    else:
        conn.execute("PRAGMA journal_mode = WAL")  # back to the product's settings
        database_bytes = (data_dir / "searchtrail.sqlite3").stat().st_size
    conn.execute("ANALYZE")
    conn.close()
    if not postgres:
        # Written with synchronous = OFF: flushed now, or the server's first fsync of the file
        # (its first checkpoint) would write the whole load back inside a measurement.
        sync_file(data_dir / "searchtrail.sqlite3")
    total_seconds = time.monotonic() - started
    manifest = {
        "version": MANIFEST_VERSION, "events": events, "account": account,
        "region": DEFAULT_REGION, "newest": newest, "oldest": newest - int(span_days * 86400),
        "deliveries": [list(d) for d in deliveries], "seed": seed,
        "member_accounts": members, "organization": organization,
        "load_seconds": round(load_seconds, 1), "total_seconds": round(total_seconds, 1),
        "events_per_second": round(events / load_seconds) if load_seconds else None,
        "lookup_rows": lookup_rows,
        "lookup_rows_per_second": round(lookup_rows / load_seconds) if load_seconds else None,
        "database_bytes": database_bytes,
        "default_partition_events": sum(counts["EventSource"].values()),
        "values": _samples(counts, sample_ids, factory.rng),
    }
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    log(f"loaded {events:,} events in {load_seconds:.1f}s "
        f"({manifest['events_per_second']:,} events/s, {lookup_rows:,} lookup rows); "
        f"ANALYZE and WAL switch {total_seconds - load_seconds:.1f}s; "
        f"{manifest['database_bytes'] / 1e9:.2f} GB")
    return Store(data_dir, events, manifest)


def _samples(counts: dict[str, Counter[str]], sample_ids: list[str],
             rng: random.Random) -> dict[str, dict[str, Any]]:
    """Per attribute, the most common value and a rare one (what a lookup benchmark queries)."""
    samples: dict[str, dict[str, Any]] = {}
    for attr, counter in counts.items():
        if attr == "EventId":
            if sample_ids:
                samples[attr] = {"common": rng.choice(sample_ids), "common_count": 1}
            continue
        if not counter:
            continue
        ranked = counter.most_common()
        common, common_count = ranked[0]
        rare, rare_count = ranked[-1]
        samples[attr] = {"common": common, "common_count": common_count,
                         "rare": rare, "rare_count": rare_count}
    return samples


def main(argv: list[str] | None = None) -> int:
    from bench import base_parser, now_iso, write_result

    parser = base_parser("bulkload", "Build (or reuse) bulk-loaded stores; report rows/s.")
    parser.add_argument("--events", type=int, action="append",
                        help="store size (repeatable); default 1,000,000 and 10,000,000")
    parser.add_argument("--data-dir", type=Path,
                        help="where to build (one size only); default bench/results/store-<N>/data")
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else (args.events or [1_000_000, 10_000_000])
    if args.skip_large:
        sizes = [size for size in sizes if size <= LARGE]
    if args.data_dir and len(sizes) > 1:
        parser.error("--data-dir takes one --events size")
    started = now_iso()
    rows = []
    for size in sizes:
        root = args.out.resolve().parent
        store = ensure_store(size, args.data_dir or default_data_dir(size, root))
        m = store.manifest
        rows.append({"events": size, "data_dir": str(store.data_dir),
                     "load_seconds": m["load_seconds"], "total_seconds": m["total_seconds"],
                     "events_per_second": m["events_per_second"],
                     "lookup_rows": m["lookup_rows"],
                     "lookup_rows_per_second": m["lookup_rows_per_second"],
                     "database_bytes": m["database_bytes"],
                     "bytes_per_event": round(m["database_bytes"] / size)})
    write_result(args.out, "bulkload", started, {}, rows, [],
                 notes=["figures are from the build that made each store (a reused store "
                        "keeps its build's figures)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
