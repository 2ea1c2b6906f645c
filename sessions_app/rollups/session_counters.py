"""Session counters: each session's messages, tool calls and failed tool calls, kept on the
session row so that lists never aggregate over messages. An append also moves the session's
last activity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions_app.models import Message, Session, ToolCall
from sessions_app.rollups.base import (
    Added,
    After,
    Removed,
    Rollup,
    Statement,
    differences,
    greatest,
    moment,
)

COUNTERS = ("message_count", "tool_call_count", "error_count")


def _pk(session_id: Any) -> Any:
    return Session._meta.pk.get_db_prep_value(session_id, connection)


def _counted(rows: Any, **filters: Any) -> Coalesce:
    """The count of `rows` of the outer session, as a subquery."""
    per_session = (
        rows.filter(session=OuterRef("pk"), **filters)
        .order_by()
        .values("session")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(per_session, output_field=IntegerField()), 0)


def counted() -> dict[str, Coalesce]:
    """Each counter as the rows give it, to annotate or update sessions with."""
    return {
        "message_count": _counted(Message.objects),
        "tool_call_count": _counted(ToolCall.objects),
        "error_count": _counted(ToolCall.objects, is_error=True),
    }


class SessionCountersRollup(Rollup):
    name = "session counters"
    model = Session

    def added(self, rows: Added) -> list[Statement]:
        per_session: dict[Any, list[Any]] = {}  # session -> [messages, calls, errors, latest]
        for message in rows.messages:
            entry = per_session.setdefault(message.session_id, [0, 0, 0, None])
            entry[0] += 1
            if entry[3] is None or entry[3] < message.created_at:
                entry[3] = message.created_at
        for call in rows.tool_calls:
            entry = per_session.setdefault(call.session_id, [0, 0, 0, None])
            entry[1] += 1
            entry[2] += int(call.is_error)
        if not per_session:
            return []
        table = connection.ops.quote_name(Session._meta.db_table)
        counts = (
            f"UPDATE {table} SET message_count = message_count + %s, "
            "tool_call_count = tool_call_count + %s, error_count = error_count + %s"
        )
        with_activity = (
            f"{counts}, last_activity_at = {greatest()}(last_activity_at, %s), updated_at = %s "
            "WHERE id = %s"
        )
        without = f"{counts}, updated_at = %s WHERE id = %s"
        now = moment(timezone.now())
        statements: list[Statement] = []
        for session_id, (messages, calls, errors, latest) in sorted(
            per_session.items(), key=lambda item: str(item[0])
        ):
            if latest is None:
                statements.append((without, [messages, calls, errors, now, _pk(session_id)]))
            else:
                statements.append(
                    (
                        with_activity,
                        [messages, calls, errors, moment(latest), now, _pk(session_id)],
                    )
                )
        return statements

    def removing(self, rows: Removed) -> After | None:
        if rows.sessions is not None or not rows.session_ids:
            return None  # whole sessions go, counters and all
        ids = list(rows.session_ids)

        def removed() -> list[Statement]:
            # Counted again from the rows left: as cheap as a difference, and exact whatever was
            # stored before.
            Session.objects.filter(pk__in=ids).update(**counted(), updated_at=timezone.now())
            return []

        return removed

    def changing(self, call: ToolCall) -> Callable[[ToolCall], list[Statement]]:
        was_error = call.is_error

        def changed(call: ToolCall) -> list[Statement]:
            delta = int(call.is_error) - int(was_error)
            if not delta:
                return []
            table = connection.ops.quote_name(Session._meta.db_table)
            sql = f"UPDATE {table} SET error_count = error_count + %s WHERE id = %s"
            return [(sql, [delta, _pk(call.session_id)])]

        return changed

    def counted_from(self, using: str) -> QuerySet:
        return Message.objects.using(using)

    def rebuild(self) -> int:
        return Session.objects.update(**counted())

    def drift(self) -> list[str]:
        names = {name: f"counted_{name}" for name in COUNTERS}
        off = Q()
        for name, as_counted in names.items():
            off |= ~Q(**{name: F(as_counted)})
        drifted = (
            Session.objects.annotate(**{names[n]: e for n, e in counted().items()})
            .filter(off)
            .values_list("pk", *COUNTERS, *names.values())
        )
        stored, recounted = {}, {}
        for pk, *values in drifted:
            stored[str(pk)] = tuple(values[: len(COUNTERS)])
            recounted[str(pk)] = tuple(values[len(COUNTERS) :])
        return differences(f"{self.name} (messages, tool calls, errors)", stored, recounted)

    def bulk_sql(self) -> list[str]:
        sessions = Session._meta.db_table
        return [
            f"""
UPDATE {sessions} AS s SET message_count = c.messages, tool_call_count = c.tool_calls,
    error_count = c.errors
FROM (
    SELECT session_id, sum(messages) AS messages, sum(tool_calls) AS tool_calls,
           sum(errors) AS errors FROM (
        SELECT session_id, count(*) AS messages, 0 AS tool_calls, 0 AS errors
        FROM {Message._meta.db_table} GROUP BY 1
        UNION ALL
        SELECT session_id, 0, count(*), count(*) FILTER (WHERE is_error)
        FROM {ToolCall._meta.db_table} GROUP BY 1
    ) AS rows GROUP BY session_id
) AS c WHERE s.id = c.session_id
"""
        ]
