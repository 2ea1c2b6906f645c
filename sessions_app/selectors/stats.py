"""Reads of the stats: totals, tool calls by state and per-day series, from the rollups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import (
    Sum,
)
from django.utils import timezone

from sessions_app.models import (
    DailyActivity,
    ToolCallState,
    ToolStateCount,
)


def activity_stats(*, agent: int | None = None, days: int = 30) -> dict[str, Any]:
    """Totals and a per-day series for one agent or all: sessions, messages, tool calls by state,
    success rate. Totals and the series come from DailyActivity, the states from ToolStateCount:
    a row per agent and day or state, whatever the number of sessions, messages or tool calls."""
    activity = DailyActivity.objects.all()
    if agent is not None:
        activity = activity.filter(agent_id=agent)
    totals = activity.aggregate(
        sessions=Sum("sessions", default=0),
        active_sessions=Sum("active_sessions", default=0),
        messages=Sum("messages", default=0),
        tool_calls=Sum("tool_calls", default=0),
        tool_errors=Sum("tool_errors", default=0),
    )
    counts = ToolStateCount.objects.all()
    if agent is not None:
        counts = counts.filter(agent_id=agent)
    by_state = {state: 0 for state in ToolCallState.values}
    for row in counts.order_by().values("state").annotate(n=Sum("calls")):
        by_state[row["state"]] = row["n"]
    finished = by_state[ToolCallState.COMPLETED] + by_state[ToolCallState.FAILED]
    success_rate = by_state[ToolCallState.COMPLETED] / finished if finished else None

    today = timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    per_day = {
        row["day"]: row
        for row in activity.filter(day__gte=start)
        .order_by()
        .values("day")
        .annotate(messages=Sum("messages"), tool_errors=Sum("tool_errors"))
    }
    series = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        row = per_day.get(day, {})
        series.append(
            {
                "day": day,
                "messages": row.get("messages", 0),
                "tool_errors": row.get("tool_errors", 0),
            }
        )
    return {
        **totals,
        "tool_calls_by_state": by_state,
        "success_rate": success_rate,
        "per_day": series,
    }


def agent_activity(
    *, agent_ids: list[int], since: dt.date | None = None
) -> dict[int, dict[str, int]]:
    """Per agent: sessions started, messages, tool calls and errors from `since` (a day) on,
    summed from DailyActivity: a row per agent and day, never the sessions or messages."""
    activity = DailyActivity.objects.filter(agent_id__in=agent_ids)
    if since is not None:
        activity = activity.filter(day__gte=since)
    rows = (
        activity.order_by()
        .values("agent_id")
        .annotate(
            sessions=Sum("sessions", default=0),
            messages=Sum("messages", default=0),
            tool_calls=Sum("tool_calls", default=0),
            tool_errors=Sum("tool_errors", default=0),
        )
    )
    return {row.pop("agent_id"): row for row in rows}
