"""Reads of the error groups: failed tool calls grouped by (tool, fingerprint), from the
ErrorGroupDay rollup when the window starts at midnight, from the calls otherwise."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from django.db.models import (
    Count,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from config.database import INT32_MAX
from config.errors import InvalidInput
from config.keyset import Page, encode_cursor
from config.querysets import filter_given
from sessions_app.models import (
    ErrorGroupDay,
    ToolCall,
    codepoint_order,
)
from sessions_app.selectors.search import tool_call_list


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _starts_a_day(moment: dt.datetime | None) -> bool:
    if moment is None:
        return True
    try:
        return timezone.localtime(moment).time() == dt.time.min
    except OverflowError:  # a moment at the edge of year 1 or 9999: no day row starts there
        return False


def error_group_days(
    *,
    agent: int | None = None,
    tool_name: str = "",
    fingerprint: str | None = None,
    since: dt.date | None = None,
) -> QuerySet[ErrorGroupDay]:
    """Rows of the error-group rollup: failures per (agent, tool, fingerprint, day)."""
    return filter_given(
        ErrorGroupDay.objects.all(),
        agent_id=agent,
        tool_name=tool_name or None,
        error_fingerprint=fingerprint,  # "" is a value here, not "no filter"
        day__gte=since,
    )


class _FailuresOn(RawSQL):
    """The failures of one day's rows, an aggregate over ErrorGroupDay: the same SQL as
    `Sum("failures", filter=Q(day=day))`, written out because thirty of those (a sparkline) cost
    more to build through the ORM than the query costs to run."""

    contains_aggregate = True

    def __init__(self, day: dt.date) -> None:
        super().__init__(
            "SUM(failures) FILTER (WHERE day = %s)", [day.isoformat()], output_field=IntegerField()
        )

    def get_group_by_cols(self) -> list[Any]:
        return []


def tool_error_groups(
    *,
    agent: int | None = None,
    tool_name: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    daily_from: dt.date | None = None,
    days: int = 0,
) -> QuerySet:
    """Failing tool calls grouped by (tool, fingerprint): count, sessions hit, first and last
    seen, a sample message, and with `days` the failures of each day from `daily_from` on as
    `day_0`, `day_1`, …; the biggest group first.

    A window that starts at midnight (or is open) and has no end is summed from ErrorGroupDay,
    a few hundred small rows whatever the number of calls. Any other window cuts through a day
    row, so it groups the failures themselves, served by the partial index on failures.
    """
    if until is None and _starts_a_day(since):
        groups = error_group_days(
            agent=agent,
            tool_name=tool_name,
            since=timezone.localdate(since) if since is not None else None,
        )
        numbers = {
            "count": Sum("failures"),
            "sessions": Sum("sessions"),
            "first_seen": Min("first_seen_at"),
            "last_seen": Max("last_seen_at"),
            "sample_message": Max(codepoint_order("sample_message")),
        }
        daily = {
            f"day_{i}": _FailuresOn(daily_from + dt.timedelta(days=i))
            for i in range(days if daily_from else 0)
        }
    else:
        groups = tool_call_list(
            agent=agent,
            tool_name=tool_name,
            is_error=True,
            created_after=since,
            created_before=until,
        )
        numbers = {
            "count": Count("id"),
            "sessions": Count("session_id", distinct=True),
            "first_seen": Min("created_at"),
            "last_seen": Max("created_at"),
            "sample_message": Max(codepoint_order("error_message")),
        }
        daily = {
            f"day_{i}": Count(
                "id",
                filter=Q(
                    created_at__gte=_day_start(daily_from + dt.timedelta(days=i)),
                    created_at__lt=_day_start(daily_from + dt.timedelta(days=i + 1)),
                ),
            )
            for i in range(days if daily_from else 0)
        }
    return (
        groups.order_by()
        .values("tool_name", "error_fingerprint")
        .annotate(**numbers, **daily)
        .order_by(*ERROR_GROUP_ORDERING)
    )


ERROR_GROUP_ORDERING = ("-count", "tool_name", "error_fingerprint")


def error_groups_after(token: str) -> Q:
    """The groups after a cursor (`encode_cursor(ERROR_GROUP_ORDERING, group)`) in
    `tool_error_groups`' order: a filter on the aggregate, so a HAVING clause. A forged cursor
    is `InvalidInput`."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        count, tool, fingerprint = payload["v"]
        if payload["o"] != list(ERROR_GROUP_ORDERING) or not (
            isinstance(count, int) and isinstance(tool, str) and isinstance(fingerprint, str)
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidInput(
            "The cursor is not valid for this list: pass back the `next_cursor` you were given.",
            field="cursor",
        ) from None
    if "\x00" in tool + fingerprint or not 0 <= count <= INT32_MAX:
        raise InvalidInput("The cursor is not valid for this list.", field="cursor")
    return (
        Q(count__lt=count)
        | Q(count=count, tool_name__gt=tool)
        | Q(count=count, tool_name=tool, error_fingerprint__gt=fingerprint)
    )


def tool_error_group_page(
    groups: QuerySet, *, cursor: str | None, size: int
) -> Page[dict[str, Any]]:
    """One page of `tool_error_groups`, after `cursor`: by keyset on the aggregates, no OFFSET."""
    if cursor:
        groups = groups.filter(error_groups_after(cursor))
    rows = list(groups[: size + 1])
    next_cursor = encode_cursor(ERROR_GROUP_ORDERING, rows[size - 1]) if len(rows) > size else None
    return Page(items=rows[:size], next_cursor=next_cursor)


def daily_counts(group: dict[str, Any], days: int) -> list[int]:
    """The `day_0` … counts `tool_error_groups` annotated, oldest first, taken off `group`."""
    return [group.pop(f"day_{i}") or 0 for i in range(days)]


def tool_error_group_calls(*, tool_name: str, fingerprint: str) -> QuerySet:
    """The failed calls of one error group as rows to list: id, created_at, error_message,
    duration_ms, session_id, session_name, agent_name and the asking message's message_seq;
    order by `-created_at, -id` (served by `toolcall_error_group_idx`). Plain rows rather than
    four model instances per call, which took a page of them longer to build than to query."""
    return tool_call_list(tool_name=tool_name, fingerprint=fingerprint).values(
        "id",
        "created_at",
        "error_message",
        "duration_ms",
        "session_id",
        session_name=F("session__name"),
        agent_name=F("agent__name"),
        message_seq=F("message__seq"),
    )


def tool_error_group_summary(
    *, tool_name: str, fingerprint: str, daily_from: dt.date | None = None, days: int = 0
) -> dict[str, Any] | None:
    """Count, sessions hit, first and last seen, a sample message and, with `days`, the daily
    failures (see `tool_error_groups`) of one error group, over all agents and all time."""
    return (
        tool_error_groups(tool_name=tool_name, daily_from=daily_from, days=days)
        .filter(error_fingerprint=fingerprint)
        .order_by()
        .first()
    )


def tool_failure_leaders(
    *, since: dt.datetime, agent: int | None = None, limit: int = 8
) -> list[dict[str, Any]]:
    """The tools failing most since `since`: failures and sessions hit per tool."""
    calls = ToolCall.objects.filter(is_error=True, created_at__gte=since)
    if agent is not None:
        calls = calls.filter(agent_id=agent)
    return list(
        calls.order_by()
        .values("tool_name")
        .annotate(failures=Count("id"), sessions=Count("session_id", distinct=True))
        .order_by("-failures", "tool_name")[:limit]
    )
