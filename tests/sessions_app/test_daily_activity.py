import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from agents.services import agent_delete
from sessions_app import rollups
from sessions_app.models import (
    DailyActivity,
    ErrorGroupDay,
    Message,
    Session,
    ToolCall,
    ToolStateCount,
)
from sessions_app.selectors import activity_stats
from sessions_app.services import (
    ToolCallIn,
    session_delete,
    session_finish,
    session_start,
    sessions_finish,
    tool_call_add,
)
from tests.factories import AgentFactory, SessionFactory, conversation, error_group_days

pytestmark = pytest.mark.django_db


def _table() -> set[tuple]:
    return set(
        DailyActivity.objects.exclude(
            messages=0, tool_calls=0, tool_errors=0, sessions=0, active_sessions=0
        ).values_list(
            "agent_id",
            "day",
            "messages",
            "tool_calls",
            "tool_errors",
            "sessions",
            "active_sessions",
        )
    )


def _tool_states() -> set[tuple]:
    return set(ToolStateCount.objects.exclude(calls=0).values_list("agent_id", "state", "calls"))


def _assert_matches_a_recount() -> None:
    """The daily activity, the error-group rollup and the tool calls by state, as the services
    kept them, are what a recount from the sessions, messages and tool calls gives."""
    kept, groups, states = _table(), error_group_days(), _tool_states()
    assert not any(rollups.drift().values())
    rollups.recount()
    assert kept == _table()
    assert groups == error_group_days()
    assert states == _tool_states()
    assert states == set(
        ToolCall.objects.values("agent_id", "state")
        .annotate(n=Count("pk"))
        .values_list("agent_id", "state", "n")
    )


# Every service against a full recount, in random sequences: test_rollups_stateful.py.


def test_it_counts_the_sessions_started_each_day_and_those_still_active():
    agent = AgentFactory()
    last_week = timezone.now() - dt.timedelta(days=7)
    old = session_start(agent=agent, created_at=last_week)
    first, second, _third = (session_start(agent=agent) for _ in range(3))
    today, then = timezone.localdate(), timezone.localdate(last_week)

    def sessions_on(day: dt.date) -> tuple[int, int]:
        row = DailyActivity.objects.get(agent=agent, day=day)
        return row.sessions, row.active_sessions

    assert (sessions_on(today), sessions_on(then)) == ((3, 3), (1, 1))
    session_finish(session_id=first.pk)
    session_finish(session_id=first.pk)  # finished already: nothing changes
    assert sessions_on(today) == (3, 2)
    # The admin's action finishes only the active ones, and takes each off its own start day.
    assert sessions_finish(sessions=Session.objects.filter(agent=agent)) == 3
    assert (sessions_on(today), sessions_on(then)) == ((3, 0), (1, 0))
    _assert_matches_a_recount()
    session_delete(session_id=second.pk)
    session_delete(session_id=old.pk)
    assert (sessions_on(today), sessions_on(then)) == ((2, 0), (0, 0))
    active = session_start(agent=agent)
    session_delete(session_id=active.pk)  # an active one comes off both counts
    assert sessions_on(today) == (2, 0)
    _assert_matches_a_recount()
    stats = activity_stats(agent=agent.pk)
    assert (
        (stats["sessions"], stats["active_sessions"])
        == (2, 0)
        == (
            Session.objects.filter(agent=agent).count(),
            Session.objects.filter(agent=agent, finished_at=None).count(),
        )
    )


def test_it_counts_a_session_on_the_day_it_started_in_the_consoles_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    agent = AgentFactory()
    # 03:30 UTC on March 5 is 22:30 on March 4 in New York: the day the charts call it.
    session = session_start(agent=agent, created_at=dt.datetime(2026, 3, 5, 3, 30, tzinfo=dt.UTC))
    row = DailyActivity.objects.get(agent=agent)
    assert (row.day, row.sessions, row.active_sessions) == (dt.date(2026, 3, 4), 1, 1)
    _assert_matches_a_recount()  # the database's days agree
    session_finish(session_id=session.pk)
    assert DailyActivity.objects.get(agent=agent, day=dt.date(2026, 3, 4)).active_sessions == 0
    _assert_matches_a_recount()


def test_the_session_counts_are_filled_for_existing_data_by_their_migration():
    agent = AgentFactory()
    for _ in range(2):
        conversation(SessionFactory(agent=agent), turns=1)
    session_finish(session_id=SessionFactory(agent=agent).pk)
    SessionFactory(created_at=timezone.now() - dt.timedelta(days=2))  # another agent, day
    kept = _table()
    DailyActivity.objects.update(sessions=0, active_sessions=0)
    DailyActivity.objects.filter(messages=0).delete()  # days with sessions alone: no row yet
    migration = importlib.import_module("sessions_app.migrations.0008_daily_activity_sessions")
    migration.backfill(apps, SimpleNamespace(connection=connection))
    assert _table() == kept
    assert {row[5:] for row in kept} == {(3, 2), (1, 1)}


def test_it_takes_pruned_sessions_off_the_charts():
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    session_finish(session_id=session.pk, at=timezone.now() - dt.timedelta(days=100))
    call_command("prune", "--older-than", "90d", verbosity=0)
    assert not Message.objects.exists()
    assert _table() == set()
    assert error_group_days() == set()
    assert _tool_states() == set()


def test_it_serves_the_overview_series_from_the_rollup(django_assert_num_queries):
    agent = AgentFactory()
    for _ in range(3):
        conversation(SessionFactory(agent=agent), turns=2, failing=1)
    conversation(SessionFactory(), turns=2)  # another agent's
    session_finish(session_id=Session.objects.filter(agent=agent).first().pk)
    # The totals, tool calls by state, and the per-day series, each from its rollup.
    with django_assert_num_queries(3):
        stats = activity_stats(agent=agent.pk)
    assert (stats["sessions"], stats["active_sessions"]) == (3, 2)
    assert stats["per_day"][-1] == {"day": timezone.localdate(), "messages": 12, "tool_errors": 3}
    assert sum(day["messages"] for day in stats["per_day"]) == stats["messages"] == 12
    # Every state, zeros included, for this agent only.
    assert stats["tool_calls_by_state"] == {
        "pending": 0,
        "approved": 0,
        "denied": 0,
        "running": 0,
        "completed": 3,
        "failed": 3,
    }
    assert stats["success_rate"] == 0.5
    with django_assert_num_queries(3):
        everyone = activity_stats()
    assert everyone["tool_calls_by_state"]["completed"] == 3 + 2


def test_it_takes_an_agents_tool_states_with_it():
    agent, other = AgentFactory(), AgentFactory()
    conversation(SessionFactory(agent=agent), turns=2, failing=1)
    conversation(SessionFactory(agent=other), turns=1)
    assert "toolstatecount" not in agent_delete(agent=agent)
    _assert_matches_a_recount()
    assert _tool_states() == {(other.pk, "completed", 1)}


def test_the_tool_states_are_filled_for_existing_data_by_their_migration():
    agent = AgentFactory()
    conversation(SessionFactory(agent=agent), turns=3, failing=1)
    tool_call_add(session_id=SessionFactory().pk, call=ToolCallIn(tool_name="x", state="pending"))
    kept = _tool_states()
    ToolStateCount.objects.all().delete()
    migration = importlib.import_module("sessions_app.migrations.0006_tool_state_count")
    migration.backfill(apps, SimpleNamespace(connection=connection))
    assert _tool_states() == kept and len(kept) == 3


def test_it_counts_the_demo_data_exactly():
    call_command("seed_demo", "--sessions", "20", "--seed", "3", verbosity=0)
    _assert_matches_a_recount()
    assert sum(DailyActivity.objects.values_list("messages", flat=True)) == Message.objects.count()
    assert sum(DailyActivity.objects.values_list("sessions", flat=True)) == Session.objects.count()
    assert sum(DailyActivity.objects.values_list("active_sessions", flat=True)) == (
        Session.objects.filter(finished_at=None).count()
    )
    assert sum(ErrorGroupDay.objects.values_list("failures", flat=True)) == (
        ToolCall.objects.filter(is_error=True).count()
    )
    assert sum(ToolStateCount.objects.values_list("calls", flat=True)) == ToolCall.objects.count()
