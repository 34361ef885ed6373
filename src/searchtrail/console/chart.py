"""Events over time as a stacked bar chart: bins over the filter's range, one series per event
name (or error code), laid out for a server-rendered SVG."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

BIN_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400)
MAX_BINS = 48
MAX_SERIES = 6  # the most frequent keys; the rest are "Other"
OTHER = "Other"
# Okabe-Ito: tells apart for the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7f7f7f")
WIDTH = 960
HEIGHT = 200
SPLITS = {"name": "Event name", "error": "Error code"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    total: int


@dataclass(frozen=True)
class Chart:
    split: str
    start: datetime
    end: datetime
    step: int  # seconds per bin
    bins: list[datetime]
    counts: list[dict[str, int]]  # per bin: series label -> events
    series: list[Series]
    bars: list[Bar]
    peak: int
    total: int
    truncated: bool  # only the newest events were counted
    width: int = WIDTH
    height: int = HEIGHT


def split_key(record: dict[str, Any], split: str) -> str:
    if split == "error":
        return record.get("errorCode") or "(no error)"
    return record.get("eventName", "")


def bin_step(start: datetime, end: datetime) -> int:
    span = max(1.0, (end - start).total_seconds())
    return next((step for step in BIN_STEPS if span / step <= MAX_BINS), BIN_STEPS[-1])


def build_chart(records: Iterable[dict[str, Any]], start: datetime, end: datetime, split: str,
                *, truncated: bool = False) -> Chart:
    step = bin_step(start, end)
    origin = int(start.timestamp()) // step * step
    count = max(1, -(-(int(end.timestamp()) - origin) // step))
    bins = [datetime.fromtimestamp(origin + i * step, timezone.utc) for i in range(count)]
    keyed: list[tuple[int, str]] = []
    for record in records:
        moment = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        seconds = int(moment.replace(tzinfo=timezone.utc).timestamp())
        index = min((seconds - origin) // step, count - 1)  # the range's end is inclusive
        if 0 <= index and seconds <= end.timestamp():
            keyed.append((index, split_key(record, split)))
    totals = Counter(key for _, key in keyed)
    top = [key for key, _ in totals.most_common(MAX_SERIES)]
    labels = top + ([OTHER] if len(totals) > len(top) else [])
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    counts: list[dict[str, int]] = [dict.fromkeys(labels, 0) for _ in range(count)]
    for index, key in keyed:
        counts[index][key if key in top else OTHER] += 1
    peak = max((sum(bin_counts.values()) for bin_counts in counts), default=0)
    series = [Series(label, colors[label],
                     totals[label] if label != OTHER else
                     sum(n for key, n in totals.items() if key not in top)) for label in labels]
    return Chart(split, start, end, step, bins, counts, series,
                 _bars(bins, counts, labels, colors, peak, step), peak, len(keyed), truncated)


def _bars(bins: list[datetime], counts: list[dict[str, int]], labels: list[str],
          colors: dict[str, str], peak: int, step: int) -> list[Bar]:
    if peak == 0:
        return []
    slot = WIDTH / len(bins)
    gap = min(2.0, slot * 0.15)
    bars = []
    for i, (moment, bin_counts) in enumerate(zip(bins, counts)):
        y = float(HEIGHT)
        for label in labels:
            n = bin_counts[label]
            if not n:
                continue
            height = HEIGHT * n / peak
            y -= height
            until = moment + timedelta(seconds=step)
            bars.append(Bar(i * slot + gap / 2, y, slot - gap, height, colors[label],
                            f"{moment:%Y-%m-%d %H:%M}–{until:%H:%M} UTC: {label}: {n}"))
    return bars
