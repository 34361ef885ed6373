"""Prometheus metrics for /metrics, on a registry of the app's own (no global collectors); with
several worker processes, every worker's values summed from their files in a shared folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from searchtrail.store.capacity import CapacityReading
from searchtrail.workers import MULTIPROCESS_VARIABLE

if TYPE_CHECKING:
    from searchtrail.audit.delivery import Backlog
    from searchtrail.store.sqlite.writer import WriterStats


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, shared_folder: Path | None = None) -> None:
        """``shared_folder``: where the worker processes' values are, given to each of them
        in ``MULTIPROCESS_VARIABLE`` too; None for one process."""
        if shared_folder is not None and os.environ.get(MULTIPROCESS_VARIABLE) != str(
                shared_folder):
            raise RuntimeError(f"{MULTIPROCESS_VARIABLE} must name {shared_folder} before "
                               "prometheus_client is imported (workers.share_metrics)")
        self.registry = CollectorRegistry()
        self._shared_folder = shared_folder
        self._calls = Counter("searchtrail_calls", "Recorded API calls",
                              ["service", "operation", "error_code"], registry=self.registry)
        self._call_counters: dict[tuple[str, str, str], Any] = {}
        self._rejected = Counter("searchtrail_rejected_requests",
                                 "Requests refused before an operation ran (auth, routing)",
                                 ["error_code"], registry=self.registry)
        self._failed_closed = Counter(
            "searchtrail_failed_closed_requests", "AWS API calls answered 503 because the store "
            "could not look their key up or record them (nothing was changed)",
            registry=self.registry)
        self._writer_commits = Gauge("searchtrail_writer_commits", "Group commits so far",
                                     registry=self.registry, multiprocess_mode="livesum")
        self._writer_failed_commits = Gauge(
            "searchtrail_writer_failed_commits", "Group commits the store refused so far (their "
            "calls failed closed)", registry=self.registry, multiprocess_mode="livesum")
        self._writer_units = Gauge("searchtrail_writer_units", "Units of work committed",
                                   registry=self.registry, multiprocess_mode="livesum")
        self._writer_units_read_ahead = Gauge(
            "searchtrail_writer_units_read_ahead", "Units whose first reads (token records) "
            "were read ahead with their batch's (PostgreSQL)", registry=self.registry,
            multiprocess_mode="livesum")
        self._records_removed = Counter("searchtrail_records_removed",
                                        "Records removed from the store past event history's "
                                        "window (retention)", registry=self.registry)
        self._retention_overdue = Gauge(
            "searchtrail_retention_overdue_seconds", "How long past event history's window the "
            "oldest record still stored is: a trail that has not delivered it keeps it, and "
            "every later one (the log names the trail); 0 when none is",
            registry=self.registry, multiprocess_mode="livemax")
        self._delivery_rows_removed = Counter(
            "searchtrail_delivery_rows_removed", "Log-file, digest and (deleted trails') claim-"
            "mark rows removed from the store past event history's window (retention)", ["table"],
            registry=self.registry)
        self._capacity_used = Gauge("searchtrail_store_capacity_used_ratio",
                                    "Used share of the event store's filesystem (0..1)",
                                    registry=self.registry, multiprocess_mode="max")
        self._capacity_warning = Gauge("searchtrail_store_capacity_warning",
                                       "1 while the event store's filesystem is above the "
                                       "warning level", registry=self.registry,
                                       multiprocess_mode="max")

        # Set by the delivering worker after each delivery pass, one series per trail
        self._delivery_lag = Gauge(
            "searchtrail_delivery_lag_seconds", "Age (by eventTime) of the oldest record a "
            "trail has recorded and not yet stored in its bucket; 0 when none waits",
            ["trail"], registry=self.registry, multiprocess_mode="livemax")
        self._delivery_waiting_files = Gauge(
            "searchtrail_delivery_waiting_log_files", "Log files a trail has fixed and not yet "
            "stored in its bucket (they wait for a retry when it fails)", ["trail"],
            registry=self.registry, multiprocess_mode="livemax")
        # A pass that never ends (the store unreachable) leaves the two above as they were
        self._delivery_pass = Gauge(
            "searchtrail_delivery_last_pass_timestamp_seconds", "When this node last ended a "
            "delivery pass (Unix time); 0 on a node that does not deliver",
            registry=self.registry, multiprocess_mode="livemax")
        self._backlog_trails: set[str] = set()

    def writer_committed(self, stats: WriterStats) -> None:
        self._writer_commits.set(stats.commits)
        self._writer_failed_commits.set(stats.failed_commits)
        self._writer_units.set(stats.units)
        self._writer_units_read_ahead.set(stats.units_read_ahead)

    def store_capacity(self, reading: CapacityReading, warning: bool) -> None:
        self._capacity_used.set(reading.used_ratio)
        self._capacity_warning.set(1 if warning else 0)

    def records_removed(self, count: int) -> None:
        self._records_removed.inc(count)

    def retention_overdue(self, seconds: float) -> None:
        self._retention_overdue.set(seconds)

    def delivery_rows_removed(self, table: str, count: int) -> None:
        self._delivery_rows_removed.labels(table).inc(count)

    def delivery_backlog(self, trails: dict[str, Backlog] | None) -> None:
        """Every trail's backlog after a delivery pass, or None on a node that does not
        deliver; trails not named (deleted, or all of them then) leave /metrics."""
        if trails is None:
            trails = {}
            self._delivery_pass.set(0)
        else:
            self._delivery_pass.set(time.time())
        for arn in self._backlog_trails - trails.keys():
            for gauge in (self._delivery_lag, self._delivery_waiting_files):
                if self._shared_folder is None:
                    gauge.remove(arn)
                else:  # prometheus_client cannot remove a series from the workers' files
                    gauge.labels(arn).set(0)
        for arn, backlog in trails.items():
            self._delivery_lag.labels(arn).set(backlog.lag_seconds)
            self._delivery_waiting_files.labels(arn).set(backlog.waiting_log_files)
        self._backlog_trails = set(trails)

    def call(self, service: str, operation: str, error_code: str) -> None:
        key = (service, operation, error_code)
        counter = self._call_counters.get(key)
        if counter is None:  # labels() takes a lock and builds a key on every call
            counter = self._call_counters[key] = self._calls.labels(*key)
        counter.inc()

    def failed_closed(self) -> None:
        self._failed_closed.inc()

    def rejected(self, error_code: str) -> None:
        self._rejected.labels(error_code).inc()

    def render(self) -> bytes:
        if self._shared_folder is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, str(self._shared_folder))
        return generate_latest(every_worker)
