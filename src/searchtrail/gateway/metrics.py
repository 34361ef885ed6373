"""Prometheus metrics for /metrics, on a registry of the app's own (no global collectors)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from searchtrail.store.capacity import CapacityReading


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._calls = Counter("searchtrail_calls", "Recorded API calls",
                              ["service", "operation", "error_code"], registry=self.registry)
        self._call_counters: dict[tuple[str, str, str], Any] = {}
        self._rejected = Counter("searchtrail_rejected_requests",
                                 "Requests refused before an operation ran (auth, routing)",
                                 ["error_code"], registry=self.registry)
        self.writer_commits = Gauge("searchtrail_writer_commits", "Group commits so far",
                                    registry=self.registry)
        self.writer_units = Gauge("searchtrail_writer_units", "Units of work committed",
                                  registry=self.registry)
        self._capacity_used = Gauge("searchtrail_store_capacity_used_ratio",
                                    "Used share of the event store's filesystem (0..1)",
                                    registry=self.registry)
        self._capacity_warning = Gauge("searchtrail_store_capacity_warning",
                                       "1 while the event store's filesystem is above the "
                                       "warning level", registry=self.registry)

    def store_capacity(self, reading: CapacityReading, warning: bool) -> None:
        self._capacity_used.set(reading.used_ratio)
        self._capacity_warning.set(1 if warning else 0)

    def call(self, service: str, operation: str, error_code: str) -> None:
        key = (service, operation, error_code)
        counter = self._call_counters.get(key)
        if counter is None:  # labels() takes a lock and builds a key on every call
            counter = self._call_counters[key] = self._calls.labels(*key)
        counter.inc()

    def rejected(self, error_code: str) -> None:
        self._rejected.labels(error_code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
