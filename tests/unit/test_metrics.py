"""The delivery backlog's series in /metrics: one per trail, gone with the trail."""

from __future__ import annotations

from searchtrail.audit.delivery import Backlog
from searchtrail.gateway.metrics import Metrics

AUDIT = "arn:aws:cloudtrail:us-east-1:111122223333:trail/audit"
OTHER = "arn:aws:cloudtrail:us-east-1:111122223333:trail/other"


def series(metrics: Metrics, name: str) -> dict[str, float]:
    return {sample.labels["trail"]: sample.value
            for family in metrics.registry.collect() if family.name == name
            for sample in family.samples}


def test_each_trails_backlog_is_a_series_until_the_trail_is_no_longer_told() -> None:
    metrics = Metrics()
    assert metrics.registry.get_sample_value(
        "searchtrail_delivery_last_pass_timestamp_seconds") == 0  # no pass yet
    metrics.delivery_backlog({AUDIT: Backlog(42.5, 3), OTHER: Backlog(0.0, 0)})
    assert series(metrics, "searchtrail_delivery_lag_seconds") == {AUDIT: 42.5, OTHER: 0.0}
    assert series(metrics, "searchtrail_delivery_waiting_log_files") == {AUDIT: 3, OTHER: 0}

    metrics.delivery_backlog({AUDIT: Backlog(0.0, 0)})  # OTHER was deleted
    assert series(metrics, "searchtrail_delivery_lag_seconds") == {AUDIT: 0.0}
    assert series(metrics, "searchtrail_delivery_waiting_log_files") == {AUDIT: 0}

    metrics.delivery_backlog({})  # every trail deleted: the pass still counts
    assert series(metrics, "searchtrail_delivery_lag_seconds") == {}
    assert 0 < metrics.registry.get_sample_value(
        "searchtrail_delivery_last_pass_timestamp_seconds")

    metrics.delivery_backlog({AUDIT: Backlog(1.0, 0)})
    metrics.delivery_backlog(None)  # this node stopped delivering
    assert series(metrics, "searchtrail_delivery_lag_seconds") == {}
    assert metrics.registry.get_sample_value(
        "searchtrail_delivery_last_pass_timestamp_seconds") == 0
    text = metrics.render().decode()
    assert "# TYPE searchtrail_delivery_lag_seconds gauge" in text
    assert AUDIT not in text
