"""Daily activity: messages, tool calls, failed tool calls, sessions started and sessions still
active, per agent per day. The charts' series and the stats' totals read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from sessions_app.models import DailyActivity, Message, Session, ToolCall
from sessions_app.rollups.base import (
    Added,
    After,
    Removed,
    Rollup,
    Statement,
    activity_day,
    day_sql,
    differences,
    execute_in_order,
)


@dataclass
class ActivityChange:
    """What one agent's day of DailyActivity gains (or, negative, loses): its columns by name."""

    messages: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    sessions: int = 0
    active_sessions: int = 0


ACTIVITY_COLUMNS = tuple(f.name for f in fields(ActivityChange))
ActivityDeltas = dict[tuple[int, dt.date], ActivityChange]  # (agent, day) -> change


def activity_of_rows(
    *,
    messages: Sequence[Message] = (),
    tool_calls: Sequence[ToolCall] = (),
    sessions: Sequence[Session] = (),
    sign: int = 1,
) -> ActivityDeltas:
    """What rows in memory add to (or, with sign=-1, take from) the daily activity."""
    days: dict[dt.datetime, dt.date] = {}  # the rows of a batch mostly share one time

    def day(value: dt.datetime) -> dt.date:
        if value not in days:
            days[value] = activity_day(value)
        return days[value]

    deltas: ActivityDeltas = {}

    def change(agent_id: int, at: dt.datetime) -> ActivityChange:
        return deltas.setdefault((agent_id, day(at)), ActivityChange())

    for message in messages:
        change(message.agent_id, message.created_at).messages += sign
    for call in tool_calls:
        entry = change(call.agent_id, call.created_at)
        entry.tool_calls += sign
        entry.tool_errors += sign * int(call.is_error)
    for session in sessions:
        entry = change(session.agent_id, session.created_at)
        entry.sessions += sign
        entry.active_sessions += sign * int(session.finished_at is None)
    return deltas


def activity_of_queryset(
    *, messages: Any = None, tool_calls: Any = None, sessions: Any = None
) -> ActivityDeltas:
    """What stored rows count for, grouped in the database (used before deleting them)."""
    # Each kind of row, with what it counts for, by ActivityChange's names.
    kinds = (
        (messages, {"messages": Count("pk")}),
        (
            tool_calls,
            {"tool_calls": Count("pk"), "tool_errors": Count("pk", filter=Q(is_error=True))},
        ),
        (
            sessions,
            {
                "sessions": Count("pk"),
                "active_sessions": Count("pk", filter=Q(finished_at__isnull=True)),
            },
        ),
    )
    deltas: ActivityDeltas = {}
    for rows, counts in kinds:
        if rows is None:
            continue
        per_day = (
            rows.order_by()
            .annotate(day=TruncDate("created_at"))
            .values("agent_id", "day")
            .annotate(**counts)
        )
        for row in per_day:
            entry = deltas.setdefault((row["agent_id"], row["day"]), ActivityChange())
            for name in counts:
                setattr(entry, name, getattr(entry, name) + row[name])
    return deltas


def daily_activity_add(deltas: ActivityDeltas, *, sign: int = 1) -> None:
    """Add (or subtract) per-day counts. For tests that plant numbers: writes go through the
    registry's hooks."""
    execute_in_order(upserts(deltas, sign=sign))


def upserts(deltas: ActivityDeltas, *, sign: int = 1) -> list[Statement]:
    """One upsert per (agent, day), in a fixed order so that concurrent writers lock the same
    rows in the same order."""
    table = connection.ops.quote_name(DailyActivity._meta.db_table)
    columns = ", ".join(ACTIVITY_COLUMNS)
    values = ", ".join(["%s"] * len(ACTIVITY_COLUMNS))
    sums = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in ACTIVITY_COLUMNS)
    sql = (
        f"INSERT INTO {table} (agent_id, day, {columns}) VALUES (%s, %s, {values}) "
        f"ON CONFLICT (agent_id, day) DO UPDATE SET {sums}"
    )
    return [
        (sql, [agent_id, day.isoformat(), *(sign * n for n in astuple(change))])
        for (agent_id, day), change in sorted(deltas.items(), key=lambda item: item[0])
        if any(astuple(change))
    ]


def _counted() -> ActivityDeltas:
    return activity_of_queryset(
        messages=Message.objects.all(),
        tool_calls=ToolCall.objects.all(),
        sessions=Session.objects.all(),
    )


class DailyActivityRollup(Rollup):
    name = "daily activity"
    model = DailyActivity

    def added(self, rows: Added) -> list[Statement]:
        return upserts(
            activity_of_rows(
                messages=rows.messages, tool_calls=rows.tool_calls, sessions=rows.sessions
            )
        )

    def removing(self, rows: Removed) -> After:
        deltas = activity_of_queryset(
            messages=rows.messages, tool_calls=rows.tool_calls, sessions=rows.sessions
        )
        return lambda: upserts(deltas, sign=-1)

    def changing(self, call: ToolCall) -> Callable[[ToolCall], list[Statement]]:
        was_error = call.is_error

        def changed(call: ToolCall) -> list[Statement]:
            delta = int(call.is_error) - int(was_error)
            day = activity_day(call.created_at)
            return upserts({(call.agent_id, day): ActivityChange(tool_errors=delta)})

        return changed

    def finishing(self, sessions: Sequence[Session] | QuerySet[Session]) -> After:
        if isinstance(sessions, QuerySet):
            active = activity_of_queryset(sessions=sessions)
        else:
            active = activity_of_rows(sessions=[s for s in sessions if s.finished_at is None])
        deltas = {
            key: ActivityChange(active_sessions=change.active_sessions)
            for key, change in active.items()
        }
        return lambda: upserts(deltas, sign=-1)

    def counted_from(self, using: str) -> QuerySet:
        return Session.objects.using(using)

    def rebuild(self) -> int:
        DailyActivity.objects.all().delete()
        execute_in_order(upserts(_counted()))
        return DailyActivity.objects.count()

    def drift(self) -> list[str]:
        stored = {
            (agent_id, day): tuple(values)
            for agent_id, day, *values in DailyActivity.objects.values_list(
                "agent_id", "day", *ACTIVITY_COLUMNS
            )
            if any(values)
        }
        counted = {key: astuple(change) for key, change in _counted().items()}
        counted = {key: values for key, values in counted.items() if any(values)}
        return differences(f"{self.name} {ACTIVITY_COLUMNS}", stored, counted)

    def bulk_sql(self) -> list[str]:
        table = DailyActivity._meta.db_table
        return [
            f"""
INSERT INTO {table} (agent_id, day, messages, tool_calls, tool_errors, sessions,
    active_sessions)
SELECT agent_id, day, sum(messages), sum(tool_calls), sum(tool_errors), sum(sessions),
       sum(active_sessions) FROM (
    SELECT agent_id, {day_sql()} AS day, count(*) AS messages, 0 AS tool_calls,
           0 AS tool_errors, 0 AS sessions, 0 AS active_sessions
    FROM {Message._meta.db_table} GROUP BY 1, 2
    UNION ALL
    SELECT agent_id, {day_sql()}, 0, count(*), count(*) FILTER (WHERE is_error), 0, 0
    FROM {ToolCall._meta.db_table} GROUP BY 1, 2
    UNION ALL
    SELECT agent_id, {day_sql()}, 0, 0, 0, count(*), count(*) FILTER (WHERE finished_at IS NULL)
    FROM {Session._meta.db_table} GROUP BY 1, 2
) AS activity GROUP BY agent_id, day
"""
        ]
