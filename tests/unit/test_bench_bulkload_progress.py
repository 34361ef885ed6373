"""bench.bulkload's progress lines (how far the load is and the time left at its rate so far),
and the setting that keeps a bench store's records."""

from __future__ import annotations

from bench.bulkload import _progress, keep_every_record
from searchtrail.config import CONFIG_FILE_NAME, load_settings


def test_a_progress_line_gives_the_share_done_the_rate_and_the_minutes_left() -> None:
    # 2M of 10M in 100 s: 20,000 events/s, 8M left = 400 s, about 7 min
    assert _progress(2_000_000, 10_000_000, 100.0) == (
        "  2,000,000/10,000,000 events (20%), 20,000 events/s, about 7 min left")


def test_the_last_line_and_a_line_before_any_time_passed_give_no_estimate() -> None:
    assert _progress(10_000_000, 10_000_000, 971.0) == (
        "  10,000,000/10,000,000 events (100%), 10,299 events/s")
    assert _progress(5, 10, 0.0) == "  5/10 events (50%), 0 events/s"


def test_a_bench_store_keeps_every_record_once_and_keeps_its_other_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # its records reach back past 90 days once it has been kept a while
    (tmp_path / CONFIG_FILE_NAME).write_text('database_url = "postgresql://db"\n')
    keep_every_record(tmp_path)
    keep_every_record(tmp_path)
    settings = load_settings({"data_dir": tmp_path}, environ={})
    assert settings.retention_check_seconds == 0
    assert settings.database_url == "postgresql://db"
