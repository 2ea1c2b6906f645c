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
from sessions_app.models import DailyActivity, ErrorGroupDay, Message, ToolCall, ToolStateCount
from sessions_app.selectors import activity_stats
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    daily_activity_rebuild,
    error_groups_rebuild,
    message_append,
    messages_delete,
    session_delete,
    session_finish,
    tool_call_add,
    tool_call_finish,
    tool_call_update,
    tool_calls_delete,
    tool_states_rebuild,
)
from tests.factories import AgentFactory, SessionFactory, conversation, error_group_days

pytestmark = pytest.mark.django_db


def _table() -> set[tuple]:
    return set(
        DailyActivity.objects.exclude(messages=0, tool_calls=0, tool_errors=0).values_list(
            "agent_id", "day", "messages", "tool_calls", "tool_errors"
        )
    )


def _tool_states() -> set[tuple]:
    return set(ToolStateCount.objects.exclude(calls=0).values_list("agent_id", "state", "calls"))


def _assert_matches_a_recount() -> None:
    """The daily activity, the error-group rollup and the tool calls by state, as the services
    kept them, are what a recount from the messages and tool calls gives."""
    kept, groups, states = _table(), error_group_days(), _tool_states()
    daily_activity_rebuild()
    error_groups_rebuild()
    tool_states_rebuild()
    assert kept == _table()
    assert groups == error_group_days()
    assert states == _tool_states()
    assert states == set(
        ToolCall.objects.values("agent_id", "state")
        .annotate(n=Count("pk"))
        .values_list("agent_id", "state", "n")
    )


def test_it_counts_every_write_and_delete_exactly():
    agent = AgentFactory()
    today, earlier = SessionFactory(agent=agent), SessionFactory(agent=agent)
    conversation(today, turns=3, failing=1)
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    message_append(
        session_id=earlier.pk,
        messages=[
            MessageIn(role="user", text_content="old", created_at=three_days_ago),
            MessageIn(
                role="assistant",
                created_at=three_days_ago,
                tool_calls=[ToolCallIn(tool_name="search", call_id="r", state="running")],
            ),
        ],
    )
    _assert_matches_a_recount()
    assert (
        DailyActivity.objects.get(agent=agent, day=timezone.localdate(three_days_ago)).messages == 2
    )

    running = ToolCall.objects.get(call_id="r")
    assert ToolStateCount.objects.get(agent=agent, state="running").calls == 1
    tool_call_finish(tool_call_id=running.pk, error_message="Timeout after 30s")
    assert ToolStateCount.objects.get(agent=agent, state="running").calls == 0
    _assert_matches_a_recount()
    tool_call_update(tool_call_id=running.pk, state="completed", is_error=False, error_message="")
    _assert_matches_a_recount()
    tool_call_update(tool_call_id=running.pk, tool_name="lookup")  # the state stays
    _assert_matches_a_recount()
    tool_call_finish(tool_call_id=running.pk, state="denied")
    _assert_matches_a_recount()
    added = tool_call_add(session_id=today.pk, call=ToolCallIn(tool_name="x", state="failed"))
    _assert_matches_a_recount()
    tool_calls_delete(tool_calls=ToolCall.objects.filter(pk=added.pk))
    _assert_matches_a_recount()
    messages_delete(messages=Message.objects.filter(session=today, seq__in=[1, 2]))
    _assert_matches_a_recount()
    session_delete(session_id=earlier.pk)
    _assert_matches_a_recount()
    assert not DailyActivity.objects.filter(day=timezone.localdate(three_days_ago)).exclude(
        messages=0
    )


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
    # Session totals, tool calls by state, and the per-day series: three queries.
    with django_assert_num_queries(3):
        stats = activity_stats(agent=agent.pk)
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
    assert sum(ErrorGroupDay.objects.values_list("failures", flat=True)) == (
        ToolCall.objects.filter(is_error=True).count()
    )
    assert sum(ToolStateCount.objects.values_list("calls", flat=True)) == ToolCall.objects.count()
