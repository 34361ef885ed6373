"""The searchtrail command: serve, env, iam, events."""

from __future__ import annotations

import errno
import inspect
import secrets
import signal
import socket
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import orjson
import typer

from searchtrail.cli_common import (DATA_DIR, Option, err, exit_store_unavailable,
                                    open_store_or_exit, parse_time, region_or_exit,
                                    settings_or_exit, store_location)
from searchtrail.cli_validate import OPTIONS as VALIDATE_OPTIONS, validate_trail_files
from searchtrail.config import MAX_WORKERS, Settings

SWITCH_INTERVAL_SECONDS = 0.0005
# Net allocations that start a young collection (Python's default is 700).
YOUNG_COLLECTION_THRESHOLD = 10_000

# Plain help: rich markup would eat the "[default: ...]" at the end of each option's help.
PLAIN: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}
app = typer.Typer(help="searchtrail: an OpenSearch Serverless control plane with a CloudTrail "
                       "audit trail.", add_completion=False, **PLAIN)
iam_app = typer.Typer(help="Manage IAM users and access keys in the data directory.", **PLAIN)
events_app = typer.Typer(help="Read event history (the same query as LookupEvents).", **PLAIN)
buckets_app = typer.Typer(help="Local buckets that trails can deliver to (the embedded store).",
                          **PLAIN)
trail_app = typer.Typer(help="Work with trails' delivered files.", **PLAIN)
accounts_app = typer.Typer(help="Accounts served by this installation.", **PLAIN)
app.add_typer(accounts_app, name="accounts")
app.add_typer(iam_app, name="iam")
app.add_typer(buckets_app, name="buckets")
app.add_typer(trail_app, name="trail")
app.add_typer(events_app, name="events")

DataDir = typer.Option(None, DATA_DIR.flag, help=DATA_DIR.help)


def _print_version(asked: bool) -> None:
    """``--version``: the release, and the store schema versions it writes (a store written
    by a newer one is refused; an older one is upgraded by `serve`)."""
    if not asked:
        return
    from searchtrail import __version__
    from searchtrail.store.migrations import numbered_scripts

    sqlite_schema = numbered_scripts("searchtrail.store.sqlite")[-1][0]
    postgres_schema = numbered_scripts("searchtrail.store.postgres")[-1][0]
    print(f"searchtrail {__version__} (store schema: SQLite {sqlite_schema}, "
          f"PostgreSQL {postgres_schema})")
    raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version,
        help="Print the version and the store schema versions it writes, then exit")) -> None:
    """searchtrail: an OpenSearch Serverless control plane with a CloudTrail audit trail."""


def _typer_command(options: tuple[Option, ...], body: Callable[..., None]) -> Callable[..., None]:
    """A typer command made from the Option specs the launcher's fast parser reads (typer reads
    a function's signature: this one is built from the specs), running ``body``."""
    def command(**values: Any) -> None:
        body(**values)

    parameters, annotations = [], {}
    for option in options:
        kind: Any = (bool if option.switch else Optional[Path] if option.path
                     else str if option.required else Optional[str])
        default = False if option.switch else ... if option.required else None
        parameters.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=kind, default=typer.Option(
                                                default, option.flag, help=option.help)))
        annotations[option.name] = kind
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__name__, command.__doc__ = body.__name__, body.__doc__
    return command


trail_app.command("validate", epilog=(
    "Example: searchtrail trail validate --trail-arn \"$(aws cloudtrail describe-trails --query "
    "'trailList[0].TrailARN' --output text)\" --start-time 2026-01-01T00:00:00Z --verbose"
))(_typer_command(VALIDATE_OPTIONS, validate_trail_files))


@app.command(epilog=(
    "Examples: searchtrail serve (SQLite in ./.searchtrail, port 4680); searchtrail serve "
    "--delivery-interval 5 --digest-interval 60 (trails deliver within seconds, to try them). "
    "Every option can also be a SEARCHTRAIL_<NAME> variable or a line of "
    "<data-dir>/searchtrail.toml (README, \"The searchtrail command\")."))
def serve(
    host: Optional[str] = typer.Option(None, help="Address to listen on [default: 127.0.0.1]"),
    port: Optional[int] = typer.Option(None, help="Port [default: 4680]"),
    data_dir: Optional[Path] = DataDir,
    tls_cert: Optional[Path] = typer.Option(None, help="PEM certificate: serve HTTPS"),
    tls_key: Optional[Path] = typer.Option(None, help="PEM private key for --tls-cert"),
    log_level: Optional[str] = typer.Option(None, help="debug, info, warning or error"),
    delivery_interval: Optional[float] = typer.Option(
        None, min=1, help="Seconds between log file deliveries per trail [default: 300]"),
    digest_interval: Optional[float] = typer.Option(
        None, min=1, help="Seconds between digest files per trail and region [default: 3600]"),
    retention_days: Optional[int] = typer.Option(
        None, min=1, help="Days of event history; older records leave the store once every "
                          "trail has delivered them [default: 90]"),
    s3_endpoint_url: Optional[str] = typer.Option(
        None, help="Deliver trails to this S3-compatible endpoint (credentials from the standard "
                   "AWS chain) instead of the local bucket folder"),
    sns_endpoint_url: Optional[str] = typer.Option(
        None, help="SNS-compatible endpoint for delivery notifications [default: AWS SNS in "
                   "the topic's Region, credentials from the standard AWS chain; a topic with a "
                   "webhook (SEARCHTRAIL_NOTIFICATION_WEBHOOKS) is POSTed to instead]"),
    database_url: Optional[str] = typer.Option(
        None, help="postgresql://user@host:port/database: keep state and events in PostgreSQL, "
                   "shared by every node given the same URL [default: SQLite in --data-dir]"),
    workers: Optional[int] = typer.Option(
        None, min=1, max=MAX_WORKERS,
        help="Server processes sharing the port and the store, one per core to use "
             "[default: 1]"),
    change_delivery_destination: bool = typer.Option(
        False, help="On PostgreSQL: make this node's S3 endpoint (or the local bucket folder) "
                    "where the store's trails deliver from now on, instead of refusing to "
                    "start with one other than the nodes' (restart every node with it)"),
) -> None:
    """Start the server on one port for every API (SQLite in --data-dir, or PostgreSQL)."""
    import gc

    from searchtrail.endpoint import advertise, answers, current, record
    from searchtrail.workers import listening_sockets, share_metrics, supervise

    settings = settings_or_exit(host=host, port=port, data_dir=data_dir, tls_cert=tls_cert,
                                tls_key=tls_key, log_level=log_level,
                                delivery_interval=delivery_interval,
                                digest_interval=digest_interval,
                                retention_days=retention_days,
                                s3_endpoint_url=s3_endpoint_url,
                                sns_endpoint_url=sns_endpoint_url, database_url=database_url,
                                workers=workers)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        err.print("[red]error:[/red] --tls-cert and --tls-key go together.")
        raise typer.Exit(2)
    if settings.tls_cert:
        _check_tls_files(settings.tls_cert, settings.tls_key)  # type: ignore[arg-type]
    new_data_dir = not settings.data_dir.exists()  # a start that fails leaves no installation
    if settings.workers > 1:
        share_metrics(settings.metrics_folder)  # before the imports below load the metrics

    import uvicorn

    from searchtrail.app import (WouldReplaceInstallation, build_app,
                                 delivery_destination_conflict, ensure_default_account)
    from searchtrail.gateway.httpserver import GracefulServer, SearchtrailHttpProtocol
    from searchtrail.logs import configure_logging
    from searchtrail.malloc import fix_mmap_threshold

    configure_logging(settings.log_level)
    # A server already answering on this data dir: found before the store is opened, which
    # upgrades its schema, and that must not happen under an older searchtrail still running.
    earlier = current(settings) if settings.endpoint_path.exists() else None
    if earlier is not None and not answers(earlier.url):
        earlier = None
    if earlier is not None:
        _refuse_upgrade_beside(settings, earlier.url)
    try:
        account, new_key = ensure_default_account(settings)
    except sqlite3.Error as exc:
        exit_store_unavailable(settings, exc)
    except WouldReplaceInstallation as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _warn_if_open_to_others(settings.data_dir)
    try:
        recorded = delivery_destination_conflict(settings, change_delivery_destination)
    except sqlite3.Error as exc:
        exit_store_unavailable(settings, exc)
    if recorded is not None:
        given = settings.s3_endpoint_url or "the local bucket folder"
        same = (f"--s3-endpoint-url {recorded}" if recorded.startswith(("http://", "https://"))
                else "no --s3-endpoint-url")
        err.print(f"[red]error:[/red] this store's trails deliver to {recorded}, and this node "
                  f"would deliver to {given}: every node must deliver to the same place. Start "
                  f"it with {same}, or, to move every node's trails, restart them all with the "
                  "new endpoint, the first with --change-delivery-destination.")
        raise typer.Exit(1)
    # Bound before any worker starts: a port in use is told once, and the workers share it
    # (a socket each).
    try:
        socks = listening_sockets(settings.host, settings.port, settings.workers)
    except OSError as exc:
        hint = (" Another server (searchtrail or not) holds it: stop that one, or give this one "
                "--port N (--port 0 takes any free port; `searchtrail env` follows)."
                if exc.errno == errno.EADDRINUSE else "")
        if new_data_dir:  # made by this start: no account, key or store is left behind
            import shutil

            shutil.rmtree(settings.data_dir, ignore_errors=True)
        err.print(f"[red]error:[/red] cannot listen on {settings.endpoint_url}: "
                  f"{exc.strerror or exc}.{hint}")  # a host that does not resolve: gaierror's
        raise typer.Exit(1) from None
    # Recorded for `searchtrail env`, which then needs no --port or --host of its own.
    endpoint = advertise(settings, socks[0].getsockname()[1])
    beside = earlier if earlier is not None and earlier.url != endpoint.url else None

    def give_back_the_endpoint() -> None:
        """The server this one stood beside still answers: env points back at it."""
        if beside is not None and current(settings).url == endpoint.url \
                and answers(beside.url):
            record(settings, beside)

    def run_worker(worker: int, sock: socket.socket,
                   after_shutdown: Callable[[], None] | None = None) -> None:
        server = build_app(settings, worker=worker)
        # What start-up built (~64,000 objects: service models, compiled shapes, the console)
        # lives as long as the server: frozen out of the cyclic collector, whose full
        # collections would walk it all (17-21 ms each) while every request waits
        # (bench/README.md).
        gc.collect()
        gc.freeze()
        # At 700, the objects of calls still in flight (not garbage) started a young
        # collection every ~25 calls at capacity: ~3 us of every call (bench/README.md).
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
        protocol = SearchtrailHttpProtocol.configured(
            client_timeout=settings.client_timeout_seconds, aws_calls=server.aws_calls,
            s3_apis=server.s3_apis)
        config = uvicorn.Config(server, http=protocol, loop="uvloop", access_log=False,
                                log_level="warning", lifespan="on",
                                ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
                                timeout_graceful_shutdown=10,
                                proxy_headers=False)  # the gateway applies --trusted-proxies
        if settings.workers == 1:  # (a worker has its supervisor's handling: workers.py)
            # uvicorn takes SIGTERM over now, for a graceful stop, and raises it again once
            # stopped: the handling from before the start-up's own, below, applies then
            signal.signal(signal.SIGTERM, before_start)
        GracefulServer(config, after_shutdown).run(sockets=[sock])

    # Told to stop while it starts (before uvicorn takes the signal over): exit through the
    # finally below, which hands the endpoint back, not at once with it still advertised.
    before_start = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        _banner(settings, endpoint, beside, database_url, account, new_key)
        fix_mmap_threshold()  # a long-running process: big buffers back to the system when freed
        # The commit thread and the delivery worker take the GIL back after every SQLite call;
        # the default 5 ms switch interval makes them wait behind the event loop
        # (measured: bench/README.md).
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        if settings.workers == 1:
            run_worker(0, socks[0], give_back_the_endpoint)
        else:
            raise typer.Exit(supervise(socks, run_worker))
    finally:
        give_back_the_endpoint()


def _warn_if_open_to_others(data_dir: Path) -> None:
    """A data dir made before the first start (mkdir's 0755) keeps its mode: say what that
    shares, since the store's files are owner-only but the trail buckets' are not."""
    try:
        mode = data_dir.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        err.print(f"[yellow]warning:[/yellow] {data_dir} is open to other users (mode {mode:o}):"
                  " its local trail buckets (log files hold session tokens, as AWS's do) are "
                  f"theirs to read. `chmod 700 {data_dir}` keeps them yours.")


def _refuse_upgrade_beside(settings: Settings, url: str) -> None:
    """Exit when the store's schema is older than this searchtrail's while another server
    answers on its data dir: that one runs an older searchtrail, which the upgrade would
    leave failing every call."""
    from searchtrail.installation import open_database
    from searchtrail.store.migrations import OlderSchema

    try:
        open_database(settings, upgrade=False).close()
    except OlderSchema as exc:
        err.print(f"[red]error:[/red] another server on {settings.data_dir} answers at {url}, "
                  f"and its store's schema is version {exc.current}, older than this "
                  f"searchtrail's {exc.newest}: that server runs an older searchtrail, which an "
                  "upgrade of the store would leave failing every call. Stop it, then start "
                  "this one, which upgrades the store.")
        raise typer.Exit(1) from None
    except sqlite3.Error:
        return  # told as the store's error when this server opens it


def _banner(settings: Settings, endpoint: Any, beside: Any, database_url: Optional[str],
            account: str, new_key: Any) -> None:
    """What a starting server prints: where it listens, and how to sign in and set up a shell."""
    from searchtrail.endpoint import is_wildcard

    if beside is not None:
        err.print(f"[yellow]warning:[/yellow] another server on {settings.data_dir} answers at "
                  f"{beside.url}; both share its store. `searchtrail env` now points at this "
                  f"one, {endpoint.url}, and at that one again once this one stops.")
    print(f"searchtrail listening on {endpoint.url}" + (
        f" (and every other address: --host {settings.host})" if is_wildcard(settings.host)
        else ""), flush=True)
    command = sys.argv[0] if sys.argv[0].endswith("searchtrail") else "searchtrail"
    if database_url:  # the flag is this process's alone: another command needs it said again
        # a command to copy: its password is a slot to fill in, not a mask that fails
        command = (f"SEARCHTRAIL_DATABASE_URL='{store_location(settings, '<password>')}' "
                   f"{command}")
    print(f"web console at {endpoint.url}/console; a root password for it: {command} iam "
          f"set-console-password --root --data-dir {settings.data_dir}", flush=True)
    if new_key or settings.credentials_path.exists():
        print(f"default account {account}; credentials in {settings.credentials_path}"
              + (" (created)" if new_key else ""), flush=True)
        print(f"set up your shell with: eval \"$({command} env --data-dir "
              f"{settings.data_dir})\"", flush=True)
    elif database_url or settings.database_url:
        # another node made the account in the shared store and holds its credentials file
        print(f"default account {account}; its root credentials are in the credentials file "
              "of the node that created it (`searchtrail env` there sets up a shell)", flush=True)
    else:
        print(f"default account {account}; its credentials file {settings.credentials_path} is "
              f"missing: `{command} accounts root-key --data-dir {settings.data_dir}` makes a "
              "new root key and writes it", flush=True)


def _check_tls_files(cert: Path, key: Path) -> None:
    """Exit with the reason when the certificate and key cannot serve TLS, before anything
    is bound or advertised."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError among them: files that are not PEM, or not a pair
        reason = ("they are not a PEM certificate and its private key"
                  if isinstance(exc, ssl.SSLError) else exc.strerror or str(exc))
        err.print(f"[red]error:[/red] cannot serve HTTPS with --tls-cert {cert} and --tls-key "
                  f"{key}: {reason}.")
        raise typer.Exit(2) from None


@app.command(epilog="Example: eval \"$(searchtrail env)\"; aws opensearchserverless "
                     "list-collections")
def env(data_dir: Optional[Path] = DataDir,
        region: str = typer.Option("us-east-1", help="Region to sign requests for")) -> None:
    """Print export lines that point boto3 and the AWS CLI at this server."""
    region_or_exit(region)
    settings = settings_or_exit(data_dir=data_dir)
    recover = (f"`searchtrail accounts root-key --data-dir {settings.data_dir}` makes a new "
               "root key and writes the file")
    if not settings.credentials_path.is_file():
        err.print(f"[red]error:[/red] no credentials at {settings.credentials_path}: start the "
                  f"server once with `searchtrail serve` to create them, or, if it has run "
                  f"and the file was lost, {recover}.")
        raise typer.Exit(1)
    import configparser  # here: ~6 ms of import that `trail validate` need not pay
    import shlex

    from searchtrail.endpoint import answers, current

    profile = configparser.ConfigParser()
    try:
        profile.read(settings.credentials_path, encoding="utf-8")
        key_id = profile["default"]["aws_access_key_id"]
        secret = profile["default"]["aws_secret_access_key"]
    except (configparser.Error, KeyError, UnicodeDecodeError) as exc:
        err.print(f"[red]error:[/red] {settings.credentials_path} is not a credentials file "
                  "with aws_access_key_id and aws_secret_access_key under [default] "
                  f"({type(exc).__name__}); remove it, then {recover}.")
        raise typer.Exit(1) from None
    endpoint = current(settings)  # where the running server said it listens
    for service in ("OPENSEARCHSERVERLESS", "CLOUDTRAIL", "STS", "IAM", "ORGANIZATIONS"):
        print(f"export AWS_ENDPOINT_URL_{service}={endpoint.url}")
    # a session token or profile left in the shell would override the keys below
    print("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE")
    print(f"export AWS_ACCESS_KEY_ID={key_id}")
    print(f"export AWS_SECRET_ACCESS_KEY={secret}")
    print(f"export AWS_ENDPOINT_URL_S3={endpoint.buckets_url}")
    if endpoint.ca_bundle:  # a self-signed certificate: clients verify it as their CA
        print(f"export AWS_CA_BUNDLE={shlex.quote(endpoint.ca_bundle)}")
    print(f"export AWS_DEFAULT_REGION={region}")
    print(f"export AWS_REGION={region}")
    if not answers(endpoint.url):  # told on stderr: the exports above still eval
        err.print(f"[yellow]warning:[/yellow] nothing answers at {endpoint.url} now; start the "
                  f"server with `searchtrail serve --data-dir {settings.data_dir}`.")


def _with_identities(settings: Settings, action, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    """``action(identities)`` in one transaction; ``read_only``: it only reads, so it also
    works on a store this user may not write (an auditor's copy)."""
    from searchtrail.auth.identities import Identities
    from searchtrail.protocol.errors import ServiceError
    from searchtrail.store.sqlite.resources import SqliteResources

    conn = open_store_or_exit(settings, read_only=read_only)
    try:
        conn.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        identities = Identities(SqliteResources(conn, "", ""))
        result = action(identities)
        conn.execute("COMMIT")
        return result
    except ServiceError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from None
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def _account(identities, account: Optional[str]) -> str:  # type: ignore[no-untyped-def]
    chosen = account or identities.default_account()
    if chosen is None:
        err.print("[red]error:[/red] no default account yet: start `searchtrail serve` once "
                  "or pass --account.")
        raise typer.Exit(1)
    if account is not None and not identities.account_exists(account):
        err.print(f"[red]error:[/red] no account {account} in this store "
                  "(`searchtrail accounts list` shows them).")
        raise typer.Exit(1)
    return chosen


@accounts_app.command("create")
def create_account(data_dir: Optional[Path] = DataDir) -> None:
    """Create another account and its root access key (prints them as JSON, once)."""
    now = datetime.now(timezone.utc)

    def create(ids):  # type: ignore[no-untyped-def]
        account = ids.create_account(now)
        return account, ids.create_access_key(account, None, now)

    account, key = _with_identities(settings_or_exit(data_dir=data_dir), create)
    print(orjson.dumps({"AccountId": account, "AccessKey": {
        "AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}},
        option=orjson.OPT_INDENT_2).decode())


@accounts_app.command("root-key")
def root_key(data_dir: Optional[Path] = DataDir,
             account: Optional[str] = typer.Option(None, help="Account id [default: the "
                                                   "default account]")) -> None:
    """Make a new root access key (prints it as JSON, once); for the default account whose
    credentials file is missing, write that file too (what `searchtrail env` reads)."""
    from searchtrail.app import write_credentials_file

    settings = settings_or_exit(data_dir=data_dir)
    now = datetime.now(timezone.utc)

    def create(ids):  # type: ignore[no-untyped-def]
        from searchtrail.protocol.errors import ServiceError

        chosen = _account(ids, account)
        try:
            return chosen, ids.default_account(), ids.create_access_key(chosen, None, now)
        except ServiceError as exc:
            if exc.code == "LimitExceeded":  # a root has two keys at most, as on AWS
                exc.message += (". Copy the credentials file of a node that has one (another "
                                "node's data dir), or delete an unused root key with "
                                "`aws iam delete-access-key` signed by the root first.")
            raise

    chosen, default, key = _with_identities(settings, create)
    if chosen == default and not settings.credentials_path.exists():
        write_credentials_file(settings, key)
        err.print(f"wrote {settings.credentials_path}")
    print(orjson.dumps({"AccountId": chosen, "AccessKey": {
        "AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}},
        option=orjson.OPT_INDENT_2).decode())


@accounts_app.command("list")
def list_accounts(data_dir: Optional[Path] = DataDir) -> None:
    """List the accounts; the default one is marked."""
    def read(ids):  # type: ignore[no-untyped-def]
        return ids.default_account(), ids.accounts()

    default, accounts = _with_identities(settings_or_exit(data_dir=data_dir), read,
                                         read_only=True)
    for account in accounts:
        print(account + ("  (default)" if account == default else ""))


def _valid_for(service: str, operation: str, params: dict[str, Any]) -> None:
    """Exit 2 with the API's own message when ``params`` break ``operation``'s model: what
    these commands make, the API must be able to name and manage."""
    from searchtrail.protocol.catalog import ServiceCatalog
    from searchtrail.protocol.validate import find_violations, violations_error

    model = ServiceCatalog.load([service]).service(service).operation_model(operation)
    violations = find_violations(model, params)
    if violations:
        err.print(f"[red]ValidationError:[/red] {violations_error(violations).message}")
        raise typer.Exit(2)


@iam_app.command("create-user")
def create_user(name: str, account: Optional[str] = typer.Option(None, help="Account id "
                "[default: the default account]"), data_dir: Optional[Path] = DataDir) -> None:
    """Create an IAM user (prints its JSON)."""
    _valid_for("iam", "CreateUser", {"UserName": name})
    now = datetime.now(timezone.utc)
    user = _with_identities(settings_or_exit(data_dir=data_dir),
                            lambda ids: ids.create_user(_account(ids, account), name, now))
    print(orjson.dumps({"User": user}, option=orjson.OPT_INDENT_2).decode())


@iam_app.command("create-access-key")
def create_access_key(name: str, account: Optional[str] = typer.Option(None, help="Account id "
                      "[default: the default account]"),
                      data_dir: Optional[Path] = DataDir) -> None:
    """Create an access key for an IAM user (prints AccessKeyId and SecretAccessKey once)."""
    now = datetime.now(timezone.utc)
    key = _with_identities(settings_or_exit(data_dir=data_dir),
                           lambda ids: ids.create_access_key(_account(ids, account), name, now))
    print(orjson.dumps({"AccessKey": {"UserName": name, "AccessKeyId": key.access_key_id,
                                      "SecretAccessKey": key.secret_access_key,
                                      "Status": key.status}},
                       option=orjson.OPT_INDENT_2).decode())


@iam_app.command("set-console-password")
def set_console_password(
    name: Optional[str] = typer.Argument(None, help="The IAM user (omit with --root)"),
    root: bool = typer.Option(False, "--root", help="Set the account root's password instead"),
    account: Optional[str] = typer.Option(None, help="Account id [default: the default account]"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input"),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Set the web console password of an IAM user (its login profile) or of the root.

    Read from a prompt or stdin, never from the command line; only a scrypt hash is kept."""
    from searchtrail.console.passwords import set_console_password as store_password

    if root == bool(name):
        err.print("[red]error:[/red] name an IAM user, or pass --root (not both).")
        raise typer.Exit(2)
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Console password", hide_input=True,
                                confirmation_prompt=True)
    if not password:
        err.print("[red]error:[/red] the password is empty.")
        raise typer.Exit(2)
    now = datetime.now(timezone.utc)

    def store(ids):  # type: ignore[no-untyped-def]
        chosen = _account(ids, account)
        store_password(ids, chosen, None if root else name, password, now)
        return chosen

    who = _with_identities(settings_or_exit(data_dir=data_dir), store)
    print(f"console password set for {'root' if root else name} in account {who}")


@buckets_app.command("create", epilog=(
    "Example: searchtrail buckets create audit-logs, then aws cloudtrail create-trail --name "
    "audit --s3-bucket-name audit-logs"))
def create_bucket(name: str,
                  account: Optional[str] = typer.Option(None, help="Owner account id "
                                                        "[default: the default account]"),
                  region: str = typer.Option("us-east-1", help="The bucket's region"),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Create a bucket in the local store (<data-dir>/buckets/NAME); refused when the server
    delivers to an S3-compatible store."""
    from searchtrail.audit.objectstore import ObjectStoreError
    from searchtrail.audit.stores.local import LocalFolderStore
    from searchtrail.endpoint import delivers_to

    settings = settings_or_exit(data_dir=data_dir)
    s3 = delivers_to(settings)
    if s3:  # a local bucket there would take trails' files off the S3 store every node uses
        err.print(f"[red]error:[/red] trails of the server on {settings.data_dir} deliver to the "
                  f"S3-compatible store at {s3}, not to local buckets: create the bucket "
                  f"there (e.g. `aws s3 mb s3://{name} --endpoint-url {s3}`).")
        raise typer.Exit(1)
    owner = _with_identities(settings, lambda ids: _account(ids, account))
    try:
        LocalFolderStore(settings.data_dir).create_bucket(name, owner, region)
    except ObjectStoreError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from None
    print(orjson.dumps({"Bucket": name, "Owner": owner, "Region": region}).decode())


@iam_app.command("set-oidc-jwks")
def set_oidc_jwks(provider_arn: str = typer.Option(..., help="arn:aws:iam::<account>:oidc-provider/<host>"),
                  jwks_file: Path = typer.Option(..., exists=True, dir_okay=False,
                                                 help="The provider's JSON Web Key Set"),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Give an OIDC provider its token-signing keys (never fetched from the network)."""
    try:
        jwks = orjson.loads(jwks_file.read_bytes())
    except orjson.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] {jwks_file} is not JSON: {exc}")
        raise typer.Exit(2) from None
    from searchtrail.auth.webidentity import public_key

    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        err.print(f"[red]error:[/red] {jwks_file} is not a JSON Web Key Set: it needs a "
                  '"keys" list of the provider\'s public keys.')
        raise typer.Exit(2)
    for position, key in enumerate(keys):
        try:  # a key no token could be verified with is a mistake to tell now
            public_key(key)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            err.print(f"[red]error:[/red] key {position} of {jwks_file} is not an RSA or EC "
                      f"public key (kty, n and e, or crv, x and y): {exc}")
            raise typer.Exit(2) from None
    account = provider_arn.split(":")[4] if provider_arn.count(":") >= 5 else ""
    _with_identities(settings_or_exit(data_dir=data_dir),
                     lambda ids: ids.set_oidc_jwks(account, provider_arn, jwks))
    print(f"{provider_arn}: {len(keys)} key(s) set")


@events_app.command("lookup", epilog=(
    "Example: searchtrail events lookup --attribute Username=alice --start-time "
    "2026-01-01T00:00:00Z --output json"))
def lookup(
    attribute: Optional[str] = typer.Option(None, help="KEY=VALUE, e.g. EventName=CreateCollection"),
    start_time: Optional[str] = typer.Option(None, help="ISO 8601 or epoch seconds"),
    end_time: Optional[str] = typer.Option(None, help="ISO 8601 or epoch seconds"),
    max_items: int = typer.Option(50, min=1, help="How many events to show in all"),
    output: str = typer.Option("table", help="json or table"),
    region: str = typer.Option("us-east-1", help="Region whose history to read"),
    account: Optional[str] = typer.Option(None, help="Account id [default: the default account]"),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Look up recorded events, newest first, paging through LookupEvents' pages for you."""
    from searchtrail.installation import event_id_codec
    from searchtrail.audit.query import LOOKUP_ATTRIBUTES, EventFilter, EventHistory, PageTokens
    from searchtrail.audit.record import lookup_username
    from searchtrail.auth.identities import Identities
    from searchtrail.store.sqlite.resources import SqliteResources

    if output not in ("json", "table"):
        err.print("[red]error:[/red] --output is json or table.")
        raise typer.Exit(2)
    region_or_exit(region)
    attr = None
    if attribute:
        key, sep, value = attribute.partition("=")
        if not sep or key not in LOOKUP_ATTRIBUTES or not value:
            err.print(f"[red]error:[/red] --attribute takes KEY=VALUE with KEY one of "
                      f"{', '.join(LOOKUP_ATTRIBUTES)}.")
            raise typer.Exit(2)
        attr = (key, value)
    settings = settings_or_exit(data_dir=data_dir)
    conn = open_store_or_exit(settings, read_only=True)  # an auditor's copy may be read-only
    chosen = _account(Identities(SqliteResources(conn, "", "")), account)
    try:  # a store a server has run on has its key; one that never recorded a call may not
        codec = event_id_codec(conn)
    except sqlite3.Error as exc:
        exit_store_unavailable(settings, exc)
    # the pages' tokens never leave this process: a key of its own will do
    history = EventHistory(PageTokens(secrets.token_bytes(32)), settings.retention_days, codec)
    start, end = parse_time(start_time, "--start-time"), parse_time(end_time, "--end-time")
    if start is not None and end is not None and start > end:  # as LookupEvents refuses it
        err.print("[red]error:[/red] --start-time must be before --end-time.")
        raise typer.Exit(2)
    flt = EventFilter(chosen, region, attr, start, end)
    now = datetime.now(timezone.utc)
    records, token = [], None
    while len(records) < max_items:
        page = history.page(conn, flt, limit=min(50, max_items - len(records)), token=token, now=now)
        records.extend(orjson.loads(event.record) for event in page.events)
        token = page.next_token
        if not token:
            break
    conn.close()
    if output == "json":
        sys.stdout.write(orjson.dumps({"Records": records}, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Event time", "Event name", "User", "Source", "Error", "Request id")
    for record in records:
        table.add_row(record["eventTime"], record["eventName"],
                      lookup_username(record.get("userIdentity", {})),
                      record["eventSource"], record.get("errorCode", ""), record.get("requestID", ""))
    # Piped output is not cut to 80 columns: nothing in a row may be lost to an ellipsis.
    Console(width=None if sys.stdout.isatty() else 250).print(table)


if __name__ == "__main__":
    from searchtrail.launcher import run_fast

    if not run_fast(sys.argv[1:]):
        app()
