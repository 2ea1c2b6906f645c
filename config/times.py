"""The one written form of a time: ISO 8601 in UTC, to the microsecond (`…T09:30:00.000001Z`)."""

from __future__ import annotations

import datetime as dt


def iso_time(value: dt.datetime) -> str:
    """`value` in UTC with all six digits of its microseconds (zeros too) and a `Z`; a naive
    time is taken as UTC, as USE_TZ stores every time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif value.utcoffset() != dt.timedelta(0):
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
