"""Error groups by day: the failed tool calls of each (agent, tool, fingerprint) per day, their
first and last time and greatest message, and the sessions whose latest failure in the group falls
on that day, so that a sum from any day on counts each session hit since then once. Adds upsert;
removals recount the days they touched and move each session hit to its latest remaining
failure."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from sessions_app.models import ErrorGroupDay, ToolCall, codepoint_order
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
    moment,
)

GroupDayKey = tuple[int, str, str, dt.date]  # (agent, tool name, fingerprint, day)
SessionGroup = tuple[uuid.UUID, str, str]  # (session, tool name, fingerprint)
_GROUP_DAY_KEY = "agent_id = %s AND tool_name = %s AND error_fingerprint = %s AND day = %s"


@dataclass
class _GroupDay:
    failures: int
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    sample_message: str

    def count(self, call: ToolCall) -> None:
        self.failures += 1
        self.first_seen_at = min(self.first_seen_at, call.created_at)
        self.last_seen_at = max(self.last_seen_at, call.created_at)
        self.sample_message = max(self.sample_message, call.error_message)


@dataclass(frozen=True)
class RemovedFailures:
    """Failed calls of one session in one group on one day, about to go (or to change)."""

    agent_id: int
    session_id: uuid.UUID
    tool_name: str
    error_fingerprint: str
    day: dt.date
    latest: dt.datetime


def _group_day_key(call: ToolCall) -> GroupDayKey:
    return (call.agent_id, call.tool_name, call.error_fingerprint, activity_day(call.created_at))


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _latest_failures(
    groups: set[SessionGroup], *, exclude: Sequence[int] = ()
) -> dict[SessionGroup, dt.datetime]:
    """The latest stored failure of each (session, tool, fingerprint), leaving out `exclude`."""
    if not groups:
        return {}
    # Written out: building it through the ORM cost more than running it, on every append with
    # a failure. Values go in and come out as the ORM's would.
    session_field = ToolCall._meta.get_field("session")
    sessions = {session_field.get_db_prep_value(s, connection): s for s, _, _ in groups}
    tools = sorted({tool for _, tool, _ in groups})
    created_at = ToolCall._meta.get_field("created_at").cached_col
    converters = connection.ops.get_db_converters(created_at)  # SQLite's times are text
    table = connection.ops.quote_name(ToolCall._meta.db_table)
    sql = (
        f"SELECT session_id, tool_name, error_fingerprint, MAX(created_at) FROM {table} "
        f"WHERE is_error AND session_id IN ({', '.join(['%s'] * len(sessions))}) "
        f"AND tool_name IN ({', '.join(['%s'] * len(tools))})"
    )
    if exclude:
        sql += f" AND id NOT IN ({', '.join(['%s'] * len(exclude))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} GROUP BY session_id, tool_name, error_fingerprint",
            [*sessions, *tools, *exclude],
        )
        rows = cursor.fetchall()
    latest = {}
    for session, tool, fingerprint, at in rows:
        group = (sessions[session], tool, fingerprint)
        if group in groups:
            for convert in converters:
                at = convert(at, created_at, connection)
            latest[group] = at
    return latest


def _group_day_params(key: GroupDayKey) -> list[Any]:
    agent_id, tool_name, fingerprint, day = key
    return [agent_id, tool_name, fingerprint, connection.ops.adapt_datefield_value(day)]


def upserts(tool_calls: Sequence[ToolCall]) -> list[Statement]:
    """Count stored calls that failed into their groups' days (others in `tool_calls` are left
    out): one upsert per (agent, group, day), in key order so that concurrent writers lock the
    same rows in the same order. The sessions' earlier failures in the groups are read here,
    when the statements are built."""
    failed = [call for call in tool_calls if call.is_error]
    if not failed:
        return []
    added: dict[GroupDayKey, _GroupDay] = {}
    newest: dict[SessionGroup, ToolCall] = {}
    for call in failed:
        key = _group_day_key(call)
        if key in added:
            added[key].count(call)
        else:
            added[key] = _GroupDay(1, call.created_at, call.created_at, call.error_message)
        group = (call.session_id, call.tool_name, call.error_fingerprint)
        if group not in newest or newest[group].created_at < call.created_at:
            newest[group] = call
    earlier = _latest_failures(set(newest), exclude=[call.pk for call in failed])
    sessions: Counter[GroupDayKey] = Counter()
    for group, call in newest.items():
        day = activity_day(call.created_at)
        before = earlier.get(group)
        if before is None or activity_day(before) < day:
            sessions[_group_day_key(call)] += 1
            if before is not None:
                earlier_day = activity_day(before)
                sessions[(call.agent_id, call.tool_name, call.error_fingerprint, earlier_day)] -= 1

    table = connection.ops.quote_name(ErrorGroupDay._meta.db_table)
    if connection.vendor == "postgresql":
        least, greatest, codepoint = "LEAST", "GREATEST", ' COLLATE "C"'
    else:
        least, greatest, codepoint = "min", "max", ""
    upsert = (
        f"INSERT INTO {table} (agent_id, tool_name, error_fingerprint, day, failures, sessions, "
        "first_seen_at, last_seen_at, sample_message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (agent_id, tool_name, error_fingerprint, day) DO UPDATE SET "
        f"failures = {table}.failures + excluded.failures, "
        f"sessions = {table}.sessions + excluded.sessions, "
        f"first_seen_at = {least}({table}.first_seen_at, excluded.first_seen_at), "
        f"last_seen_at = {greatest}({table}.last_seen_at, excluded.last_seen_at), "
        f"sample_message = {greatest}({table}.sample_message{codepoint}, "
        f"excluded.sample_message{codepoint})"
    )
    # A session's hit moving to a later day leaves an earlier day that has its row already.
    shift = f"UPDATE {table} SET sessions = sessions + %s WHERE {_GROUP_DAY_KEY}"
    statements: list[Statement] = []
    for key in sorted(added.keys() | {k for k, n in sessions.items() if n}):
        day = added.get(key)
        if day is None:
            statements.append((shift, [sessions[key], *_group_day_params(key)]))
            continue
        statements.append(
            (
                upsert,
                [
                    *_group_day_params(key),
                    day.failures,
                    sessions[key],
                    moment(day.first_seen_at),
                    moment(day.last_seen_at),
                    day.sample_message,
                ],
            )
        )
    return statements


def error_groups_of_rows(tool_calls: Sequence[ToolCall]) -> list[RemovedFailures]:
    """What calls in memory count for in the error groups (used before they change)."""
    return [
        RemovedFailures(
            call.agent_id,
            call.session_id,
            call.tool_name,
            call.error_fingerprint,
            activity_day(call.created_at),
            call.created_at,
        )
        for call in tool_calls
        if call.is_error
    ]


def error_groups_of_queryset(*, tool_calls: Any) -> list[RemovedFailures]:
    """What stored calls count for in the error groups, grouped in the database (used before
    deleting them)."""
    rows = (
        tool_calls.filter(is_error=True)
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values_list("agent_id", "session_id", "tool_name", "error_fingerprint", "day")
        .annotate(latest=Max("created_at"))
    )
    return [RemovedFailures(*row) for row in rows]


def _lock_group_days(keys: Sequence[GroupDayKey]) -> None:
    """Lock the day rows of `keys` in key order (code-point order, as Python sorts the keys the
    adds upsert by), before recounting them from calls other writers may be adding."""
    if not connection.features.has_select_for_update:
        return  # SQLite: one writer at a time
    table = connection.ops.quote_name(ErrorGroupDay._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            rows = ", ".join(["(%s, %s, %s, %s::date)"] * len(chunk))
            cursor.execute(
                f"SELECT id FROM {table} WHERE (agent_id, tool_name, error_fingerprint, day) "
                f'IN (VALUES {rows}) ORDER BY agent_id, tool_name COLLATE "C", '
                'error_fingerprint COLLATE "C", day FOR UPDATE',
                [p for key in chunk for p in _group_day_params(key)],
            )


def _per_group_day(failed: QuerySet[ToolCall]) -> QuerySet[ToolCall]:
    """`failed` grouped by (agent, tool, fingerprint, day): each group day's failures, first and
    last failure, and sample message, as rows in that order."""
    return (
        failed.annotate(day=TruncDate("created_at"))
        .values_list("agent_id", "tool_name", "error_fingerprint", "day")
        .annotate(
            failures=Count("pk"),
            first=Min("created_at"),
            last=Max("created_at"),
            sample=Max(codepoint_order("error_message")),
        )
    )


def _count_group_days(keys: set[GroupDayKey]) -> dict[GroupDayKey, _GroupDay]:
    """The stored failures of each (agent, group, day) in `keys`, counted afresh."""
    days = {day for _, _, _, day in keys}
    rows = _per_group_day(
        ToolCall.objects.filter(
            is_error=True,
            agent_id__in={agent for agent, _, _, _ in keys},
            tool_name__in={tool for _, tool, _, _ in keys},
            error_fingerprint__in={fp for _, _, fp, _ in keys},
            created_at__gte=_day_start(min(days)),
            created_at__lt=_day_start(max(days) + dt.timedelta(days=1)),
        ).order_by()
    )
    return {
        (a, t, f, d): _GroupDay(n, first, last, sample)
        for a, t, f, d, n, first, last, sample in rows
        if (a, t, f, d) in keys
    }


def error_groups_remove(
    removed: Sequence[RemovedFailures], *, whole_sessions: bool = False
) -> None:
    """After failed calls were deleted or changed: recount the days they were counted in, and
    move each session hit to the day of the session's latest remaining failure in the group
    (`whole_sessions`: the sessions went with all their calls, so none remains to look for)."""
    if not removed:
        return
    touched = {(r.agent_id, r.tool_name, r.error_fingerprint, r.day) for r in removed}
    gone: dict[SessionGroup, RemovedFailures] = {}
    for r in removed:
        group = (r.session_id, r.tool_name, r.error_fingerprint)
        if group not in gone or gone[group].latest < r.latest:
            gone[group] = r
    left = {} if whole_sessions else _latest_failures(set(gone))
    sessions: Counter[GroupDayKey] = Counter()
    for group, r in gone.items():
        remaining = left.get(group)
        before = activity_day(max(r.latest, remaining) if remaining else r.latest)
        after = activity_day(remaining) if remaining else None
        if before != after:
            sessions[(r.agent_id, r.tool_name, r.error_fingerprint, before)] -= 1
            if after is not None:
                sessions[(r.agent_id, r.tool_name, r.error_fingerprint, after)] += 1

    keys = sorted(touched | {k for k, n in sessions.items() if n})
    _lock_group_days(keys)
    counts = _count_group_days(touched)
    table = connection.ops.quote_name(ErrorGroupDay._meta.db_table)
    recount = (
        f"UPDATE {table} SET failures = %s, sessions = sessions + %s, first_seen_at = %s, "
        f"last_seen_at = %s, sample_message = %s WHERE {_GROUP_DAY_KEY}"
    )
    shift = f"UPDATE {table} SET sessions = sessions + %s WHERE {_GROUP_DAY_KEY}"
    empty = f"DELETE FROM {table} WHERE {_GROUP_DAY_KEY}"
    statements: list[Statement] = []
    for key in keys:
        params = _group_day_params(key)
        if key not in touched:
            statements.append((shift, [sessions[key], *params]))
        elif key not in counts:
            statements.append((empty, params))
        else:
            day = counts[key]
            statements.append(
                (
                    recount,
                    [
                        day.failures,
                        sessions[key],
                        moment(day.first_seen_at),
                        moment(day.last_seen_at),
                        day.sample_message,
                        *params,
                    ],
                )
            )
    # The rows are locked already: grouping the statements by kind cannot deadlock.
    statements.sort(key=lambda statement: statement[0])
    execute_in_order(statements)


def _error_groups_change(was: list[RemovedFailures], message_was: str, call: ToolCall) -> None:
    """After an edit of a call: recount the group day it was counted in (if it had failed), and
    count it into its group if it fails now in another group than before, or only now."""
    group_was = (was[0].tool_name, was[0].error_fingerprint) if was else None
    group = (call.tool_name, call.error_fingerprint) if call.is_error else None
    if group == group_was and (group is None or call.error_message == message_was):
        return
    error_groups_remove(was)  # the recount counts the call again if it stayed in its group
    if group is not None and group != group_was:
        execute_in_order(upserts([call]))


def _counted() -> Iterator[ErrorGroupDay]:
    """Every (agent, group, day) row counted afresh from the failed tool calls, unsaved."""
    failed = ToolCall.objects.filter(is_error=True).order_by()
    sessions: Counter[GroupDayKey] = Counter(
        (agent_id, tool, fp, activity_day(latest))
        for _session, agent_id, tool, fp, latest in failed.values_list(
            "session_id", "agent_id", "tool_name", "error_fingerprint"
        ).annotate(latest=Max("created_at"))
    )
    rows = _per_group_day(failed)
    for agent_id, tool, fp, day, n, first, last, sample in rows.iterator():
        yield ErrorGroupDay(
            agent_id=agent_id,
            tool_name=tool,
            error_fingerprint=fp,
            day=day,
            failures=n,
            sessions=sessions[(agent_id, tool, fp, day)],
            first_seen_at=first,
            last_seen_at=last,
            sample_message=sample,
        )


VALUES = ("failures", "sessions", "first_seen_at", "last_seen_at", "sample_message")


class ErrorGroupsRollup(Rollup):
    name = "error groups by day"
    model = ErrorGroupDay

    def added(self, rows: Added) -> list[Statement]:
        return upserts(rows.tool_calls)

    def removing(self, rows: Removed) -> After | None:
        if rows.tool_calls is None:
            return None
        failures = error_groups_of_queryset(tool_calls=rows.tool_calls)
        whole_sessions = rows.sessions is not None

        def removed() -> list[Statement]:
            error_groups_remove(failures, whole_sessions=whole_sessions)
            return []

        return removed

    def changing(self, call: ToolCall) -> Callable[[ToolCall], list[Statement]]:
        was, message_was = error_groups_of_rows([call]), call.error_message

        def changed(call: ToolCall) -> list[Statement]:
            _error_groups_change(was, message_was, call)
            return []

        return changed

    def counted_from(self, using: str) -> QuerySet:
        return ToolCall.objects.using(using).filter(is_error=True)

    def rebuild(self) -> int:
        ErrorGroupDay.objects.all().delete()
        ErrorGroupDay.objects.bulk_create(_counted(), batch_size=1000)
        return ErrorGroupDay.objects.count()

    def drift(self) -> list[str]:
        key = ("agent_id", "tool_name", "error_fingerprint", "day")
        stored = {
            tuple(row[:4]): tuple(row[4:])
            for row in ErrorGroupDay.objects.values_list(*key, *VALUES)
        }
        counted = {
            tuple(getattr(row, f) for f in key): tuple(getattr(row, f) for f in VALUES)
            for row in _counted()
        }
        return differences(self.name, stored, counted)

    def bulk_sql(self) -> list[str]:
        # Each session counts on the day of its latest failure in a group; the sample is the
        # greatest message in code-point order.
        return [
            f"""
INSERT INTO {ErrorGroupDay._meta.db_table} (agent_id, tool_name, error_fingerprint, day,
    failures, sessions, first_seen_at, last_seen_at, sample_message)
SELECT agent_id, tool_name, error_fingerprint, day, count(*), count(*) FILTER (WHERE latest),
       min(created_at), max(created_at), max(error_message COLLATE "C")
FROM (
    SELECT agent_id, tool_name, error_fingerprint, {day_sql()} AS day, created_at, error_message,
           row_number() OVER (PARTITION BY session_id, tool_name, error_fingerprint
                              ORDER BY created_at DESC) = 1 AS latest
    FROM {ToolCall._meta.db_table} WHERE is_error
) AS failures GROUP BY agent_id, tool_name, error_fingerprint, day
"""
        ]
