"""What an event-history page shows: one lookup attribute, a time range (a preset or absolute,
at most 90 days), the chosen columns, and how a CloudTrail record fills a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from searchtrail.audit.query import EventFilter
from searchtrail.audit.record import lookup_username

MAX_RANGE = timedelta(days=90)
PAGE_SIZE = 50  # LookupEvents' largest page

# The attribute keys as the CloudTrail console names them.
ATTRIBUTE_LABELS: dict[str, str] = {
    "ReadOnly": "Read-only",
    "EventName": "Event name",
    "Username": "User name",
    "EventSource": "Event source",
    "ResourceType": "Resource type",
    "ResourceName": "Resource name",
    "AccessKeyId": "AWS access key",
    "EventId": "Event ID",
}

PRESETS: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "3h": ("Last 3 hours", timedelta(hours=3)),
    "12h": ("Last 12 hours", timedelta(hours=12)),
    "1d": ("Last day", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_PRESET = "1d"
CUSTOM = "custom"
DEFAULT_ATTRIBUTE = ("ReadOnly", "false")  # as the CloudTrail console opens


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    default: bool


COLUMNS: tuple[Column, ...] = (
    Column("name", "Event name", True),
    Column("time", "Event time", True),
    Column("user", "User name", True),
    Column("source", "Event source", True),
    Column("rtype", "Resource type", True),
    Column("rname", "Resource name", True),
    Column("key", "AWS access key", False),
    Column("region", "AWS region", False),
    Column("error", "Error code", False),
    Column("id", "Event ID", False),
    Column("readonly", "Read-only", False),
    Column("ip", "Source IP address", False),
)
DEFAULT_COLUMNS = tuple(column.key for column in COLUMNS if column.default)


@dataclass(frozen=True)
class HistoryFilter:
    attribute: tuple[str, str] | None
    range_key: str  # a PRESETS key or CUSTOM
    start: datetime  # the resolved window, UTC, whole seconds
    end: datetime
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    errors: dict[str, str] = field(default_factory=dict)  # form field -> what is wrong

    def lookup_params(self, *, limit: int = PAGE_SIZE, token: str | None = None) -> dict[str, Any]:
        """LookupEvents' request, as the wire carries it (epoch seconds)."""
        params: dict[str, Any] = {"StartTime": int(self.start.timestamp()),
                                  "EndTime": int(self.end.timestamp()), "MaxResults": limit}
        if self.attribute:
            params["LookupAttributes"] = [{"AttributeKey": self.attribute[0],
                                           "AttributeValue": self.attribute[1]}]
        if token:
            params["NextToken"] = token
        return params

    def event_filter(self, account_id: str, region: str) -> EventFilter:
        """The EventFilter LookupEvents builds from ``lookup_params`` (so its tokens fit)."""
        return EventFilter(account_id, region, self.attribute,
                           datetime.fromtimestamp(int(self.start.timestamp()), timezone.utc),
                           datetime.fromtimestamp(int(self.end.timestamp()), timezone.utc))

    def query(self, *, pin: bool = True, **extra: Any) -> str:
        """The URL query that shows this filter again: pinned to the same window, or (``pin``
        False) with a preset range ending at the time it is opened."""
        pairs: list[tuple[str, str]] = []
        key, value = self.attribute or ("", "")
        pairs += [("attr", key), ("value", value), ("range", self.range_key)]
        if self.range_key == CUSTOM:
            pairs += [("start", _local(self.start)), ("end", _local(self.end))]
        elif pin:
            pairs.append(("at", str(int(self.end.timestamp()))))
        if self.columns != DEFAULT_COLUMNS:
            pairs += [("cols", column) for column in self.columns]
        for name, item in extra.items():
            for one in (item if isinstance(item, (list, tuple)) else [item]):
                if one is not None:
                    pairs.append((name, str(one)))
        return urlencode(pairs)

    @property
    def start_local(self) -> str:
        return _local(self.start)

    @property
    def end_local(self) -> str:
        return _local(self.end)

    @property
    def attribute_label(self) -> str:
        return ATTRIBUTE_LABELS.get(self.attribute[0], "") if self.attribute else ""


def parse_filter(params: Mapping[str, Any], now: datetime) -> HistoryFilter:
    """The filter of a page's query string; mistakes are reported in ``errors``, never raised.

    ``params`` has ``get(name)`` and ``getlist(name)`` (Starlette's QueryParams)."""
    errors: dict[str, str] = {}
    now = now.replace(microsecond=0)
    if "attr" not in params:
        attribute: tuple[str, str] | None = DEFAULT_ATTRIBUTE
    else:
        key = params.get("attr") or ""
        value = (params.get("value") or "").strip()
        attribute = None
        if key:
            if key not in ATTRIBUTE_LABELS:
                errors["attr"] = "Choose one of the listed lookup attributes."
            elif not value:
                errors["value"] = f"Enter a value for {ATTRIBUTE_LABELS[key]}."
            else:
                attribute = (key, value)
    range_key = params.get("range") or DEFAULT_PRESET
    if any(_edited(params, name) for name in ("start", "end")):
        range_key = CUSTOM  # the user typed a date: they mean it, whatever the preset says
    if range_key == CUSTOM:
        start = _parse_local(params.get("start"), "start", errors)
        end = _parse_local(params.get("end"), "end", errors)
        if start and end:
            if start >= end:
                errors["end"] = "The end must be after the start."
            elif end - start > MAX_RANGE:
                errors["end"] = "A time range can cover at most 90 days."
            elif start < now - MAX_RANGE:
                errors["start"] = ("Event history keeps 90 days: choose a start after "
                                   f"{_local(now - MAX_RANGE).replace('T', ' ')} UTC.")
        if errors.get("start") or errors.get("end") or not (start and end):
            start, end = now - PRESETS[DEFAULT_PRESET][1], now
    else:
        if range_key not in PRESETS:
            errors["range"] = "Choose one of the listed time ranges."
            range_key = DEFAULT_PRESET
        end = now
        pinned = whole_number(params.get("at"))
        if pinned is not None and pinned <= now.timestamp():
            end = datetime.fromtimestamp(pinned, timezone.utc)
        start = end - PRESETS[range_key][1]
    chosen = tuple(column for column in params.getlist("cols")
                   if column in {c.key for c in COLUMNS}) if hasattr(params, "getlist") else ()
    columns = tuple(c.key for c in COLUMNS if c.key in chosen) or DEFAULT_COLUMNS
    return HistoryFilter(attribute, range_key, start, end, columns, errors)


def _edited(params: Mapping[str, Any], name: str) -> bool:
    """Whether the form's ``name`` date was changed from the value the page showed in it
    (``shown_<name>``; links carry neither)."""
    shown = params.get(f"shown_{name}")
    typed = (params.get(name) or "").strip()
    return shown is not None and bool(typed) and _with_seconds(typed) != _with_seconds(
        shown.strip())


def _with_seconds(value: str) -> str:
    """A datetime-local value with its seconds: a browser sends HH:MM when they are 0."""
    return value + ":00" if len(value) == 16 else value


def _parse_local(raw: str | None, name: str, errors: dict[str, str]) -> datetime | None:
    if not raw:
        errors[name] = f"Enter a {name} date and time (UTC)."
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).replace(microsecond=0)
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        errors[name] = "Use the form YYYY-MM-DDTHH:MM (UTC)."
        return None


def whole_number(raw: str | None, digits: int = 12) -> int | None:
    """A query value of at most ``digits`` ASCII digits as an int, else None (``str.isdigit``
    takes other scripts' digits and ``int`` refuses texts of thousands of digits)."""
    if raw and len(raw) <= digits and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def _local(moment: datetime) -> str:
    """A datetime-local input's value (UTC)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# --- rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """One record as the table, the CSV file and the detail page show it."""

    record: dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.record.get("eventID", "")

    def cell(self, column: str) -> str:
        record = self.record
        identity = record.get("userIdentity") or {}
        resources = record.get("resources") or ()
        if column == "name":
            return record.get("eventName", "")
        if column == "time":
            return record.get("eventTime", "")
        if column == "user":
            return lookup_username(identity)
        if column == "source":
            return record.get("eventSource", "")
        if column == "rtype":
            return ", ".join(item.get("type", "") for item in resources if item.get("type"))
        if column == "rname":
            return ", ".join(item.get("ARN", "") for item in resources if item.get("ARN"))
        if column == "key":
            return identity.get("accessKeyId", "")
        if column == "region":
            return record.get("awsRegion", "")
        if column == "error":
            return record.get("errorCode", "")
        if column == "id":
            return record.get("eventID", "")
        if column == "readonly":
            return "true" if record.get("readOnly") else "false"
        if column == "ip":
            return record.get("sourceIPAddress", "")
        raise KeyError(column)


def column_labels(keys: Sequence[str]) -> list[str]:
    labels = {column.key: column.label for column in COLUMNS}
    return [labels[key] for key in keys]
