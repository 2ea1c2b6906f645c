"""The only writer of derived numbers: the session counters, the daily activity, the error
groups by day and the tool calls by state.

A service describes what it changed, once, in its transaction: rows added (`rows_added`), rows
about to go (`rows_removed`), one tool call edited (`tool_call_changed`), sessions finished
(`sessions_finished`). Every rollup in `REGISTRY` hears of it. Loads that go around the services
(restore, demo data, the benchmark's dataset) end with `recount` or `bulk_sql`; `recount(check=
True)` names any drift without writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet

from sessions_app.models import Message, Session, ToolCall
from sessions_app.rollups.base import Added, After, Removed, Rollup, Statement, execute_in_order
from sessions_app.rollups.daily_activity import DailyActivityRollup
from sessions_app.rollups.error_groups import ErrorGroupsRollup
from sessions_app.rollups.session_counters import SessionCountersRollup
from sessions_app.rollups.tool_states import ToolStatesRollup

# In the order they hear of a change: the order writers lock their rows in.
REGISTRY: tuple[Rollup, ...] = (
    SessionCountersRollup(),
    DailyActivityRollup(),
    ErrorGroupsRollup(),
    ToolStatesRollup(),
)
BY_NAME = {rollup.name: rollup for rollup in REGISTRY}
TABLES = tuple(rollup for rollup in REGISTRY if rollup.model is not Session)  # tables of their own


def rows_added(
    *,
    sessions: Sequence[Session] = (),
    messages: Sequence[Message] = (),
    tool_calls: Sequence[ToolCall] = (),
) -> None:
    """Count rows just inserted, every rollup's statements sent together in one round trip."""
    rows = Added(sessions=sessions, messages=messages, tool_calls=tool_calls)
    statements: list[Statement] = []
    for rollup in REGISTRY:
        statements.extend(rollup.added(rows))
    execute_in_order(statements)


def _run(afters: list[Callable[[], list[Statement]] | None]) -> None:
    for after in afters:
        if after is not None:
            execute_in_order(after())


@contextmanager
def rows_removed(
    *,
    sessions: QuerySet[Session] | None = None,
    messages: QuerySet[Message] | None = None,
    tool_calls: QuerySet[ToolCall] | None = None,
    session_ids: Sequence[Any] = (),
) -> Iterator[None]:
    """Around a delete: what the rows counted for is read on entry, taken off on exit.
    `sessions`: whole sessions go; `session_ids`: the sessions that lose some of their rows."""
    rows = Removed(
        sessions=sessions, messages=messages, tool_calls=tool_calls, session_ids=session_ids
    )
    afters: list[After | None] = [rollup.removing(rows) for rollup in REGISTRY]
    yield
    _run(afters)


@contextmanager
def tool_call_changed(call: ToolCall) -> Iterator[None]:
    """Around an edit of one stored tool call (saved inside): it moves between states, error
    groups and error counts as its fields say."""
    hooks = [rollup.changing(call) for rollup in REGISTRY]
    yield
    _run([None if hook is None else (lambda hook=hook: hook(call)) for hook in hooks])


@contextmanager
def sessions_finished(sessions: Sequence[Session] | QuerySet[Session]) -> Iterator[None]:
    """Around finishing sessions (those in memory, or a queryset of the active ones, read on
    entry)."""
    afters = [rollup.finishing(sessions) for rollup in REGISTRY]
    yield
    _run(afters)


def _lock_tables() -> None:
    if connection.vendor == "postgresql":
        # Writers wait until the recount commits, so none is counted twice or missed: one that
        # committed before is in the rows counted, one that commits after adds its own change.
        tables = ", ".join(connection.ops.quote_name(r.model._meta.db_table) for r in REGISTRY)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


@transaction.atomic
def recount(
    *, only: Sequence[str] | None = None, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Count every derived number again from the rows it counts, in one transaction; returns
    the rows of each rollup (sessions, for the counters). `progress(name, rows)` hears of each."""
    _lock_tables()
    counts = {}
    for rollup in REGISTRY:
        if only is not None and rollup.name not in only:
            continue
        counts[rollup.name] = rollup.rebuild()
        if progress is not None:
            progress(rollup.name, counts[rollup.name])
    return counts


@transaction.atomic
def drift() -> dict[str, list[str]]:
    """What each rollup stores that a count from the rows does not give, named; read only."""
    return {rollup.name: rollup.drift() for rollup in REGISTRY}


def bulk_sql() -> tuple[list[str], dict[str, str]]:
    """PostgreSQL statements that fill every rollup from rows loaded in bulk (the rollup tables
    empty, the session counters zero), and their parameters."""
    return [sql for rollup in REGISTRY for sql in rollup.bulk_sql()], {"tz": settings.TIME_ZONE}


__all__ = [
    "BY_NAME",
    "REGISTRY",
    "TABLES",
    "Rollup",
    "bulk_sql",
    "drift",
    "recount",
    "rows_added",
    "rows_removed",
    "sessions_finished",
    "tool_call_changed",
]
