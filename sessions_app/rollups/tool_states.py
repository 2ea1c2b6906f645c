"""Tool calls by state, per agent: the stats' states and success rate read it. A state change
moves one call; a delete subtracts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet

from sessions_app.models import ToolCall, ToolStateCount
from sessions_app.rollups.base import (
    Added,
    After,
    Removed,
    Rollup,
    Statement,
    differences,
    execute_in_order,
)

StateDeltas = dict[tuple[int, str], int]  # (agent, state) -> calls


def tool_states_of_rows(tool_calls: Sequence[ToolCall]) -> StateDeltas:
    """What calls in memory add to the tool calls by state."""
    deltas: StateDeltas = {}
    for call in tool_calls:
        key = (call.agent_id, call.state)
        deltas[key] = deltas.get(key, 0) + 1
    return deltas


def tool_states_of_queryset(tool_calls: Any) -> StateDeltas:
    """What stored calls count for, grouped in the database (used before deleting them)."""
    rows = tool_calls.order_by().values("agent_id", "state").annotate(n=Count("pk"))
    return {(row["agent_id"], row["state"]): row["n"] for row in rows}


def upserts(deltas: StateDeltas, *, sign: int = 1) -> list[Statement]:
    """One upsert per (agent, state), in a fixed order so that concurrent writers lock the same
    rows in the same order."""
    table = connection.ops.quote_name(ToolStateCount._meta.db_table)
    sql = (
        f"INSERT INTO {table} (agent_id, state, calls) VALUES (%s, %s, %s) "
        f"ON CONFLICT (agent_id, state) DO UPDATE SET calls = {table}.calls + excluded.calls"
    )
    return [
        (sql, [agent_id, state, sign * n]) for (agent_id, state), n in sorted(deltas.items()) if n
    ]


class ToolStatesRollup(Rollup):
    name = "tool calls by state"
    model = ToolStateCount

    def added(self, rows: Added) -> list[Statement]:
        return upserts(tool_states_of_rows(rows.tool_calls))

    def removing(self, rows: Removed) -> After | None:
        if rows.tool_calls is None:
            return None
        states = tool_states_of_queryset(rows.tool_calls)
        return lambda: upserts(states, sign=-1)

    def changing(self, call: ToolCall) -> Callable[[ToolCall], list[Statement]]:
        state_was = call.state

        def changed(call: ToolCall) -> list[Statement]:
            if call.state == state_was:
                return []
            return upserts({(call.agent_id, state_was): -1, (call.agent_id, call.state): 1})

        return changed

    def counted_from(self, using: str) -> QuerySet:
        return ToolCall.objects.using(using)

    def rebuild(self) -> int:
        ToolStateCount.objects.all().delete()
        execute_in_order(upserts(tool_states_of_queryset(ToolCall.objects.all())))
        return ToolStateCount.objects.count()

    def drift(self) -> list[str]:
        stored = dict(
            ((agent_id, state), calls)
            for agent_id, state, calls in ToolStateCount.objects.exclude(calls=0).values_list(
                "agent_id", "state", "calls"
            )
        )
        return differences(self.name, stored, tool_states_of_queryset(ToolCall.objects.all()))

    def bulk_sql(self) -> list[str]:
        return [
            f"INSERT INTO {ToolStateCount._meta.db_table} (agent_id, state, calls) "
            f"SELECT agent_id, state, count(*) FROM {ToolCall._meta.db_table} "
            "GROUP BY agent_id, state"
        ]
