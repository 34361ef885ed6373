"""Prometheus metrics for /metrics, on a registry of the app's own (no global collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._calls = Counter("searchtrail_calls", "Recorded API calls",
                              ["service", "operation", "error_code"], registry=self.registry)
        self._rejected = Counter("searchtrail_rejected_requests",
                                 "Requests refused before an operation ran (auth, routing)",
                                 ["error_code"], registry=self.registry)
        self.writer_commits = Gauge("searchtrail_writer_commits", "Group commits so far",
                                    registry=self.registry)
        self.writer_units = Gauge("searchtrail_writer_units", "Units of work committed",
                                  registry=self.registry)

    def call(self, service: str, operation: str, error_code: str) -> None:
        self._calls.labels(service, operation, error_code).inc()

    def rejected(self, error_code: str) -> None:
        self._rejected.labels(error_code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
