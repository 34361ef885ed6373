"""One frozen Settings object, from command-line flags over SEARCHTRAIL_* variables over a TOML file."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

ENV_PREFIX = "SEARCHTRAIL_"
CONFIG_FILE_NAME = "searchtrail.toml"
MAX_WORKERS = 64


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4680
    data_dir: Path = Path(".searchtrail")
    default_region: str = "us-east-1"
    max_body_bytes: int = 1024 * 1024
    clock_skew_seconds: int = 300
    collection_create_seconds: float = 3.0
    collection_delete_seconds: float = 3.0
    trusted_proxies: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    retention_days: int = 90  # event history's window; older records leave once delivered
    # how often expired records are looked for; 0: never removed (the store keeps them all)
    retention_check_seconds: float = 60.0
    delivery_interval: float = 300.0
    digest_interval: float = 3600.0
    s3_endpoint_url: str | None = None  # trails deliver here; None: the local bucket folder
    # to connect to the S3 endpoint, and for each read; a failed attempt is tried twice more
    s3_timeout_seconds: float = 5.0
    # postgresql://user@host/db: state and events in PostgreSQL, shared by several nodes;
    # None: the embedded SQLite file in data_dir
    database_url: str | None = None
    # Several nodes: a delivering node frozen this long hands delivery to another
    delivery_lease_seconds: float = 30.0
    sns_endpoint_url: str | None = None
    notification_webhooks: Mapping[str, str] = field(default_factory=dict)  # topic name → URL
    log_level: str = "info"
    capacity_warning_ratio: float = 0.75  # warn when the data dir's filesystem is this full
    capacity_check_seconds: float = 10.0
    client_timeout_seconds: float = 30.0  # a request must arrive whole within this (slowloris)
    workers: int = 1  # server processes sharing the port and the store
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "searchtrail.sqlite3"

    @property
    def write_turn_path(self) -> Path:
        """The lock file the worker processes take turns on to write the SQLite store."""
        return self.data_dir / "searchtrail.write-turn"

    @property
    def metrics_folder(self) -> Path:
        """Where the worker processes keep their metrics' values for /metrics to sum."""
        return self.data_dir / "metrics"

    @property
    def credential_changes_path(self) -> Path:
        """The file a worker process replaces when a key changes, for the others to notice."""
        return self.data_dir / "credentials-changed"

    @property
    def exports_folder(self) -> Path:
        """Where the worker processes share the progress of console downloads."""
        return self.data_dir / "exports"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def endpoint_path(self) -> Path:
        """Where a running server records the URL clients reach it at (`endpoint.py`)."""
        return self.data_dir / "endpoint.json"

    @property
    def endpoint_url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


LOG_LEVELS = ("debug", "info", "warning", "error")


def _number(name: str, raw: Any, kind: type) -> Any:
    """``raw`` as an int or a float; a ValueError naming the setting when it is not one (a
    TOML ``true`` or ``1.5`` for a whole number is not one, nor is NaN or an infinity)."""
    if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(f"{name} {raw!r}: give a " + (
            "whole number" if kind is int else "number"))
    try:
        value = kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} {raw!r}: give " + (
            "a whole number" if kind is int else "a number")) from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {raw!r}: give a finite number")
    return value


# The least value of a number setting (the flags' own minimums), and what it is, for the error
# that a variable or the TOML file giving less gets as a flag would.
_LEAST: dict[str, tuple[float, bool, str]] = {  # name -> (bound, bound allowed, what it is)
    "delivery_interval": (1, True, "seconds between log file deliveries per trail"),
    "digest_interval": (1, True, "seconds between digest files per trail and Region"),
    "max_body_bytes": (1, True, "the largest request body accepted, in bytes"),
    "client_timeout_seconds": (0, False, "seconds a request has to arrive whole"),
    "clock_skew_seconds": (0, True, "seconds a request's signing time may differ from the "
                                    "server's"),
    "collection_create_seconds": (0, True, "seconds a collection stays CREATING"),
    "collection_delete_seconds": (0, True, "seconds a collection stays DELETING"),
    "delivery_lease_seconds": (0, False, "seconds a frozen delivering node keeps delivery"),
    "capacity_check_seconds": (0, False, "seconds between free-space checks"),
    "capacity_warning_ratio": (0, False, "how full the data directory's filesystem may get "
                                         "before a warning, a ratio up to 1"),
}


def _at_least(name: str, raw: Any, kind: type) -> Any:
    value = _number(name, raw, kind)
    bound, inclusive, what = _LEAST[name]
    if value < bound or (value == bound and not inclusive) or (
            name == "capacity_warning_ratio" and value > 1):
        least = f"{bound} or more" if inclusive else f"more than {bound}"
        raise ValueError(f"{name} {raw!r}: give {what} ({least})")
    return value


def _text(name: str, raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{name} {raw!r}: give {what}")
    return raw.strip()


def _postgres_url(raw: Any) -> bool:
    if not isinstance(raw, str) or not raw.startswith(("postgresql://", "postgres://")):
        return False
    try:
        parts = urlsplit(raw)
        parts.port, parts.hostname  # noqa: B018 (each raises ValueError when malformed)
    except ValueError:
        return False
    return True


def _coerce(name: str, raw: Any) -> Any:
    default = getattr(Settings, name, None)
    if name == "data_dir":
        return Path(_text(name, raw if isinstance(raw, str) else str(raw),
                          "the server's data directory"))
    if name == "host":  # never empty: an empty host would listen on every address
        return _text(name, raw, "the address to listen on, such as 127.0.0.1")
    if name in ("tls_cert", "tls_key"):
        return Path(_text(name, str(raw) if isinstance(raw, Path) else raw,
                          "the path of a PEM file")) if raw not in (None, "") else None
    if name == "notification_webhooks":
        if isinstance(raw, str):
            pairs = (part.split("=", 1) for part in raw.split(",") if "=" in part)
            return {topic.strip(): url.strip() for topic, url in pairs}
        if not isinstance(raw, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise ValueError(f"notification_webhooks {raw!r}: give a table of topic name = "
                             "URL, or topic=url,topic=url")
        return dict(raw)
    if name == "database_url" and raw and not _postgres_url(raw):
        # the value is not repeated: it may hold a password
        raise ValueError("database_url: give a postgresql://user@host:port/database URL, or "
                         "leave it unset for the embedded SQLite store")
    if name == "workers" and not 1 <= _number(name, raw, int) <= MAX_WORKERS:
        raise ValueError(f"workers {raw!r}: give a number of server processes from 1 to "
                         f"{MAX_WORKERS}")
    if name == "retention_days" and _number(name, raw, int) < 1:
        raise ValueError(f"retention_days {raw!r}: give the days event history keeps, 1 or "
                         "more (records older than that leave the store once every trail has "
                         "delivered them)")
    if name == "retention_check_seconds" and _number(name, raw, float) < 0:
        raise ValueError(f"retention_check_seconds {raw!r}: give how often to look for expired "
                         "records, in seconds, or 0 to keep every record")
    if name == "s3_timeout_seconds" and not _number(name, raw, float) > 0:
        raise ValueError(f"s3_timeout_seconds {raw!r}: give how long delivery waits for the S3 "
                         "endpoint to connect and for each read, in seconds (more than 0)")
    if name == "port" and not 0 <= _number(name, raw, int) <= 65535:
        raise ValueError(f"port {raw!r}: give a TCP port from 1 to 65535, or 0 for any free "
                         "port")
    if name in _LEAST:
        return _at_least(name, raw, type(default))
    if name == "log_level":
        if str(raw).lower() not in LOG_LEVELS:
            raise ValueError(f"log_level {raw!r}: give {', '.join(LOG_LEVELS[:-1])} or "
                             f"{LOG_LEVELS[-1]}")
        return str(raw).lower()
    if name in ("s3_endpoint_url", "sns_endpoint_url", "database_url"):
        return raw or None
    if name == "trusted_proxies":
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if not isinstance(raw, (list, tuple)) or not all(isinstance(p, str) for p in raw):
            raise ValueError(f"trusted_proxies {raw!r}: give a list of addresses or networks, "
                             "such as [\"10.0.0.0/8\"]")
        return tuple(raw)
    if isinstance(default, bool):
        return str(raw).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return _number(name, raw, int)
    if isinstance(default, float):
        return _number(name, raw, float)
    if isinstance(default, str) and not isinstance(raw, str):
        raise ValueError(f"{name} {raw!r}: give a text value")
    return raw


def load_settings(flags: Mapping[str, Any] | None = None, *,
                  environ: Mapping[str, str] | None = None,
                  config_file: Path | None = None) -> Settings:
    """Merge the three sources; unknown keys in the TOML file are an error, not ignored."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    names = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}

    data_dir = flags.get("data_dir") or environ.get(ENV_PREFIX + "DATA_DIR") or Settings.data_dir
    config_file = config_file or Path(data_dir) / CONFIG_FILE_NAME
    if config_file.is_file():
        try:
            with config_file.open("rb") as handle:
                from_file = tomllib.load(handle)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{config_file}: not valid TOML: {error}") from None
        unknown = set(from_file) - names
        if unknown:
            raise ValueError(f"{config_file}: unknown setting(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(names))}")
        values.update(from_file)
    for name in names:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    values.update({k: v for k, v in flags.items() if k in names})
    return Settings(**{name: _coerce(name, raw) for name, raw in values.items()})
