"""Event history queries shared by LookupEvents and the console: filters, paging tokens, rows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import orjson

from searchtrail.audit.eventid import EventIdCodec
from searchtrail.audit.record import lookup_values
from searchtrail.store.sqlite.events import StoredEvent, query_events

LOOKUP_ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType",
                     "ResourceName", "EventSource", "AccessKeyId")


class InvalidToken(Exception):
    """A paging token that was forged, corrupted or replayed with other filters."""


@dataclass(frozen=True)
class EventFilter:
    account: str
    region: str
    attribute: tuple[str, str] | None
    start: datetime | None  # None: the oldest retained event
    end: datetime | None  # None: now

    def fingerprint(self) -> str:
        parts = [self.account, self.region, repr(self.attribute),
                 self.start.isoformat() if self.start else "-",
                 self.end.isoformat() if self.end else "-"]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EventPage:
    events: list[StoredEvent]
    next_token: str | None


class PageTokens:
    """Opaque, HMAC-signed cursors bound to the filter they were issued for."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, flt: EventFilter, last: StoredEvent, *, until: int) -> str:
        body = orjson.dumps({"f": flt.fingerprint(), "t": last.event_time, "s": last.seq,
                             "u": until})
        mac = hmac.digest(self._secret, body, "sha256")[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def read(self, flt: EventFilter, token: str) -> dict[str, int]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, body = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, hmac.digest(self._secret, body, "sha256")[:16]):
                raise InvalidToken("signature mismatch")
            data = orjson.loads(body)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            raise InvalidToken(str(exc)) from exc
        if data.get("f") != flt.fingerprint():
            raise InvalidToken("token was issued for other parameters")
        return data


class EventHistory:
    """Pages through one account and region's events, newest first, within retention."""

    def __init__(self, tokens: PageTokens, retention_days: int,
                 event_ids: EventIdCodec | None = None) -> None:
        self._tokens = tokens
        self._retention = timedelta(days=retention_days)
        self._event_ids = event_ids  # an EventId names its row: no lookup index needed

    def bind(self, conn: Any) -> "BoundHistory":
        return BoundHistory(self, conn)

    def page(self, conn: Any, flt: EventFilter, *, limit: int, token: str | None,
             now: datetime) -> EventPage:
        oldest = now - self._retention
        start = max(flt.start, oldest) if flt.start else oldest
        end = int((flt.end or now).timestamp())
        before = None
        if token:
            cursor = self._tokens.read(flt, token)
            before = (cursor["t"], cursor["s"])
            end = cursor["u"]  # a page sequence keeps the end it started with
        event_seq = (self._event_ids.decode(flt.attribute[1])
                     if self._event_ids is not None and flt.attribute is not None
                     and flt.attribute[0] == "EventId" else None)
        events = query_events(conn, account=flt.account, region=flt.region,
                              # events carry whole seconds: a start inside one begins at the next
                              start=math.ceil(start.timestamp()), end=end,
                              attribute=flt.attribute, before=before, limit=limit + 1,
                              event_seq=event_seq,
                              carries=_carrying(flt.attribute) if flt.attribute else None)
        next_token = None
        if len(events) > limit:
            events = events[:limit]
            next_token = self._tokens.issue(flt, events[-1], until=end)
        return EventPage(events, next_token)


class BoundHistory:
    """EventHistory on one connection: what a provider gets as ``call.events``."""

    def __init__(self, history: EventHistory, conn: Any) -> None:
        self._history = history
        self._conn = conn

    def page(self, flt: EventFilter, *, limit: int, token: str | None, now: datetime) -> EventPage:
        return self._history.page(self._conn, flt, limit=limit, token=token, now=now)


def _carrying(attribute: tuple[str, str]) -> Callable[[str], bool]:
    """Whether a record's text carries the attribute's value: what its lookup rows were made
    from (audit/record.py), so a record another value's key found is left out."""
    name, value = attribute
    if name == "EventId":
        return lambda record: orjson.loads(record).get("eventID") == value
    return lambda record: attribute in lookup_values(orjson.loads(record), event_id=False)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
