"""API schemas that more than one app's API uses: the stats, read by the sessions' and the
agents' routers alike."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class StatsQuery(Schema):
    days: int = Field(default=30, ge=1, le=366, description="Length of the per-day series.")


class DayOut(Schema):
    day: dt.date
    messages: int
    tool_errors: int


class StatsOut(Schema):
    agent: int | None = Field(description="The agent's id, or null for all agents.")
    sessions: int
    active_sessions: int
    messages: int
    tool_calls: int
    tool_errors: int
    tool_calls_by_state: dict[str, int]
    success_rate: float | None = Field(
        description="completed / (completed + failed); null before any call finished."
    )
    per_day: list[DayOut]
