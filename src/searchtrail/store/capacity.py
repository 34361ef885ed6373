"""Free space of the event store's filesystem, polled off the request path, so an operator is
warned before the store fills up and calls start failing closed (AU-5(1))."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("searchtrail.store.capacity")


@dataclass(frozen=True)
class CapacityReading:
    total_bytes: int
    available_bytes: int  # what the server's user may still write (statvfs f_bavail)

    @property
    def used_ratio(self) -> float:
        if self.total_bytes <= 0:
            return 0.0
        return 1.0 - self.available_bytes / self.total_bytes


def filesystem_capacity(path: Path) -> CapacityReading:
    """One statvfs call: cheap, no I/O on the store itself."""
    stats = os.statvfs(path)
    return CapacityReading(total_bytes=stats.f_blocks * stats.f_frsize,
                           available_bytes=stats.f_bavail * stats.f_frsize)


class CapacityWatcher:
    """Measures every ``interval`` seconds on its own thread; logs a WARNING when the used share
    reaches ``warning_ratio`` (and once more when it drops back), and hands every reading to
    ``publish(reading, warning)`` (the metrics)."""

    def __init__(self, measure: Callable[[], CapacityReading], *, warning_ratio: float,
                 interval: float, publish: Callable[[CapacityReading, bool], None] | None = None,
                 path: str = "") -> None:
        self._measure = measure
        self._warning_ratio = warning_ratio
        self._interval = interval
        self._publish = publish
        self._path = path  # for log lines only
        self._state: tuple[CapacityReading | None, bool] = (None, False)  # swapped whole
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="searchtrail-capacity",
                                        daemon=True)

    def start(self) -> None:
        self.check()  # a first reading before the server takes calls
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except OSError as exc:  # the data dir vanished or is unreadable: say so, keep polling
                log.error("cannot read the event store's free space", extra={"path": self._path,
                                                                               "detail": str(exc)})

    def check(self) -> CapacityReading:
        reading = self._measure()
        warning = reading.used_ratio >= self._warning_ratio
        details = {"path": self._path, "used_ratio": round(reading.used_ratio, 4),
                   "available_bytes": reading.available_bytes,
                   "total_bytes": reading.total_bytes, "warning_ratio": self._warning_ratio}
        was_warning = self._state[1]
        if warning and not was_warning:
            log.warning("event store filesystem is %.0f%% full; calls fail closed (503) when it "
                        "is full", 100 * reading.used_ratio, extra=details)
        elif was_warning and not warning:
            log.info("event store filesystem back below the warning level", extra=details)
        self._state = (reading, warning)
        if self._publish is not None:
            self._publish(reading, warning)
        return reading

    def report(self) -> dict[str, Any]:
        """For /_searchtrail/health: the last reading, not a new one."""
        reading, warning = self._state
        if reading is None:
            return {"warning": False, "warningRatio": self._warning_ratio}
        return {"usedRatio": round(reading.used_ratio, 4),
                "availableBytes": reading.available_bytes, "totalBytes": reading.total_bytes,
                "warning": warning, "warningRatio": self._warning_ratio}
