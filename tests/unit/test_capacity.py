"""The store capacity watcher: statvfs readings, and one warning per crossing of the level."""

from __future__ import annotations

import logging
import shutil

from searchtrail.store.capacity import CapacityReading, CapacityWatcher, filesystem_capacity

LOGGER = "searchtrail.store.capacity"


def test_filesystem_capacity_agrees_with_disk_usage(tmp_path) -> None:
    reading = filesystem_capacity(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    assert reading.total_bytes == usage.total
    assert 0 <= reading.available_bytes <= reading.total_bytes
    assert abs(reading.available_bytes - usage.free) < 64 * 1024 * 1024  # others write too
    assert 0.0 <= reading.used_ratio <= 1.0


def test_used_ratio_of_an_empty_and_a_full_filesystem() -> None:
    assert CapacityReading(total_bytes=1000, available_bytes=1000).used_ratio == 0.0
    assert CapacityReading(total_bytes=1000, available_bytes=0).used_ratio == 1.0
    assert CapacityReading(total_bytes=0, available_bytes=0).used_ratio == 0.0


def test_warns_once_when_crossing_the_level_and_reports_the_way_back(caplog) -> None:
    used_percent = iter([50, 75, 90, 60])  # statvfs stand-in: the filesystem fills, then frees
    published: list[tuple[float, bool]] = []
    watcher = CapacityWatcher(
        lambda: CapacityReading(total_bytes=100, available_bytes=100 - next(used_percent)),
        warning_ratio=0.75, interval=3600,
        publish=lambda reading, warning: published.append((reading.used_ratio, warning)))
    assert watcher.report() == {"warning": False, "warningRatio": 0.75}

    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(4):
            watcher.check()
            if len(published) == 3:
                assert watcher.report()["warning"] is True

    assert published == [(0.5, False), (0.75, True), (0.9, True), (0.6, False)]
    lines = [(r.levelname, r.used_ratio) for r in caplog.records if r.name == LOGGER]
    assert lines == [("WARNING", 0.75), ("INFO", 0.6)]
    assert watcher.report() == {"usedRatio": 0.6, "availableBytes": 40, "totalBytes": 100,
                                "warning": False, "warningRatio": 0.75}
