"""Timestamps as AWS writes them on the wire: epoch seconds, ISO 8601 and RFC 822, to the
millisecond.

AWS keeps times to the millisecond: JSON services send epoch seconds as a number with up to three
decimals (``1454022144.869``, ``1453076702.0``), query services ISO 8601 with ``.SSS`` only when
the milliseconds are not zero. Naive datetimes are taken as UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Callable

_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch as a float, truncated to the millisecond (AWS's precision)."""
    # Subtracting is several times faster than calendar.timegm(utctimetuple()) and exact;
    # milliseconds are summed as integers so the float is rounded only once.
    delta = moment - (_EPOCH_NAIVE if moment.tzinfo is None else _EPOCH_AWARE)
    return ((delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000) / 1000


def iso8601(moment: datetime, fraction_digits: int = 3) -> str:
    """``2024-05-06T07:08:09Z``, with ``.123`` (or ``fraction_digits`` digits) when not whole."""
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}"[:fraction_digits].rstrip("0")
    return f"{text}.{fraction.ljust(fraction_digits, '0')}Z" if fraction else f"{text}Z"


def rfc822(moment: datetime) -> str:
    """``Mon, 06 May 2024 07:08:09 GMT``: whole seconds, as HTTP dates are."""
    moment = (moment.astimezone(timezone.utc) if moment.tzinfo
              else moment.replace(tzinfo=timezone.utc))
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


WIRE_FORMATTERS: dict[str, Callable[[datetime], Any]] = {
    "unixTimestamp": epoch_seconds,
    "iso8601": iso8601,
    "rfc822": rfc822,
}
