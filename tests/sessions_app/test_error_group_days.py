"""The error-group rollup: exact after every write, and equal to grouping the failures."""

import datetime as dt
import importlib
import threading
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from agents.services import agent_delete
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import ErrorGroupDay, Message, Session, ToolCall, ToolStateCount
from sessions_app.rollups import BY_NAME
from sessions_app.selectors import daily_counts, tool_error_groups
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    message_append,
    messages_delete,
    session_delete,
    tool_call_add,
    tool_call_finish,
    tool_call_update,
    tool_calls_delete,
)
from tests.factories import AgentFactory, SessionFactory, error_group_days

pytestmark = pytest.mark.django_db

FAR = timezone.now() + dt.timedelta(days=365)


def _midnight(days_ago: int) -> dt.datetime:
    day = timezone.localdate() - dt.timedelta(days=days_ago)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _assert_exact() -> None:
    """The rollup is what a recount gives, and every window from midnight on, for all agents
    and for each, reads from it what grouping the failures themselves gives."""
    kept = error_group_days()
    BY_NAME["error groups by day"].rebuild()
    assert kept == error_group_days()
    agents = [None, *Session.objects.values_list("agent_id", flat=True).distinct()]
    week = timezone.localdate() - dt.timedelta(days=6)
    for since in [None, *(_midnight(n) for n in range(6))]:
        for agent in agents:
            from_rollup = _with_series(
                tool_error_groups(agent=agent, since=since, daily_from=week, days=7)
            )
            # An end to the window makes the selector group the failures themselves.
            from_calls = _with_series(
                tool_error_groups(agent=agent, since=since, until=FAR, daily_from=week, days=7)
            )
            assert from_rollup == from_calls, (since, agent)


def _with_series(groups) -> list[dict]:
    series = []
    for group in groups:
        counts = daily_counts(group, 7)  # takes the day_ columns off the group
        series.append({**group, "series": counts})
    return series


def _fail(session: Session, tool: str, error: str, *, days_ago: int = 0, call_id: str = "") -> None:
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                created_at=timezone.now() - dt.timedelta(days=days_ago),
                tool_calls=[
                    ToolCallIn(tool_name=tool, call_id=call_id, state="failed", error_message=error)
                ],
            )
        ],
    )


def _group(**filters) -> dict:
    [group] = tool_error_groups(**filters)
    return group


def test_it_counts_a_session_hit_over_several_days_once():
    session = SessionFactory(created_at=timezone.now() - dt.timedelta(days=4))
    _fail(session, "search", "Index 3 offline", days_ago=4)
    _fail(session, "search", "Index 4 offline", days_ago=2, call_id="late")
    _fail(SessionFactory(), "search", "Index 5 offline")
    _assert_exact()
    assert (_group()["count"], _group()["sessions"]) == (3, 2)
    assert _group(since=_midnight(3))["sessions"] == 2
    assert _group(since=_midnight(1))["sessions"] == 1
    week = _group(daily_from=timezone.localdate() - dt.timedelta(days=6), days=7)
    assert daily_counts(week, 7) == [0, 0, 1, 0, 1, 0, 1]

    # Its latest failure goes: the session's hit moves back to the day of the one before.
    tool_calls_delete(tool_calls=ToolCall.objects.filter(call_id="late"))
    _assert_exact()
    assert _group(since=_midnight(3))["sessions"] == 1
    assert _group()["sessions"] == 2


def test_it_follows_edits_that_move_a_call_between_groups():
    session = SessionFactory(created_at=timezone.now() - dt.timedelta(days=3))
    _fail(session, "search", "Index 3 offline", days_ago=3)
    _fail(session, "search", "Index 4 offline", days_ago=1, call_id="moving")
    moving = ToolCall.objects.get(call_id="moving")

    tool_call_update(tool_call_id=moving.pk, error_message="Quota of 10 exceeded")
    _assert_exact()
    assert {g["error_fingerprint"] for g in tool_error_groups()} == {
        "Index <n> offline",
        "Quota of <n> exceeded",
    }
    tool_call_update(tool_call_id=moving.pk, tool_name="fetch")
    _assert_exact()
    tool_call_update(tool_call_id=moving.pk, error_message="Quota of 99 exceeded!")
    _assert_exact()
    assert _group(tool_name="fetch")["sample_message"] == "Quota of 99 exceeded!"
    tool_call_update(tool_call_id=moving.pk, error_message="Index 9 offline", tool_name="search")
    _assert_exact()
    assert (_group()["count"], _group()["sessions"]) == (2, 1)
    tool_call_update(tool_call_id=moving.pk, state="completed", is_error=False, error_message="")
    _assert_exact()
    assert _group()["count"] == 1
    assert _group()["last_seen"] < timezone.now() - dt.timedelta(days=2)


def test_it_follows_calls_that_fail_late_and_get_fixed():
    session = SessionFactory()
    added = tool_call_add(
        session_id=session.pk, call=ToolCallIn(tool_name="run_sql", state="running")
    )
    assert not ErrorGroupDay.objects.exists()
    tool_call_finish(tool_call_id=added.pk, error_message="relation users_7 does not exist")
    _assert_exact()
    assert _group()["sample_message"] == "relation users_7 does not exist"
    tool_call_finish(tool_call_id=added.pk, error_message="relation users_8 does not exist")
    _assert_exact()
    assert _group()["sample_message"] == "relation users_8 does not exist"
    tool_call_finish(tool_call_id=added.pk, state="completed")
    _assert_exact()
    assert not ErrorGroupDay.objects.exists()


def test_it_keeps_the_first_last_and_sample_of_what_is_left():
    agent = AgentFactory()
    sessions = [SessionFactory(agent=agent) for _ in range(3)]
    for i, session in enumerate(sessions):
        message_append(
            session_id=session.pk,
            messages=[
                MessageIn(role="user", text_content="Go"),
                MessageIn(
                    role="assistant",
                    created_at=timezone.now() - dt.timedelta(minutes=10 - i),
                    tool_calls=[
                        ToolCallIn(tool_name="lookup_order", state="failed", error_message=m)
                        # The greater message first: the sample is the greatest, not the last.
                        for m in (f"Order {i}{i} not found", f"Order {i} not found")
                    ],
                ),
            ],
        )
    _assert_exact()
    messages_delete(messages=Message.objects.filter(session=sessions[2], seq=1))
    _assert_exact()
    session_delete(session_id=sessions[0].pk)
    _assert_exact()
    group = _group()
    assert (group["count"], group["sessions"], group["sample_message"]) == (
        2,
        1,
        "Order 11 not found",
    )


def test_it_keeps_hostile_text_exact_through_the_rollup_writes():
    # On PostgreSQL the rollup writes of an append go as one string, values bound client-side.
    hostile = "100% failed: %s %(x)s '; DROP TABLE x; -- \\ \t\n \u00e9t\u00e9 \U0001f600"
    session = SessionFactory()
    _fail(session, "pct%tool'; --", hostile)
    _fail(session, "pct%tool'; --", hostile, days_ago=1)
    _assert_exact()
    group = _group()
    assert (group["tool_name"], group["sample_message"]) == ("pct%tool'; --", hostile)
    assert (group["count"], group["sessions"]) == (2, 1)


def test_it_takes_an_agents_rows_with_it():
    agent = AgentFactory()
    _fail(SessionFactory(agent=agent), "search", "Index 3 offline")
    _fail(SessionFactory(), "search", "Index 3 offline")
    counts = agent_delete(agent=agent)
    assert "errorgroupday" not in counts
    _assert_exact()
    assert _group()["count"] == 1


def test_it_is_filled_for_existing_data_by_its_migration():
    session = SessionFactory(created_at=timezone.now() - dt.timedelta(days=2))
    _fail(session, "search", "Index 3 offline", days_ago=2)
    _fail(session, "search", "Index 4 offline", call_id="b")
    _fail(SessionFactory(), "fetch", error_fingerprint("Timeout after 3s"))
    kept = error_group_days()
    ErrorGroupDay.objects.all().delete()
    migration = importlib.import_module("sessions_app.migrations.0004_error_group_day")
    migration.backfill(apps, SimpleNamespace(connection=connection))
    assert error_group_days() == kept


def test_it_takes_a_window_from_the_first_moment_there_is(settings):
    settings.TIME_ZONE = "America/New_York"  # where the first UTC moment has no local date
    _fail(SessionFactory(), "search", "Index 3 offline")
    since = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert [g["count"] for g in tool_error_groups(since=since)] == [1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_stays_exact_under_concurrent_writers():
    """Appends, edits and deletes in several sessions at once, all in the same group days:
    no deadlock, and the rollup is what a recount gives."""
    agent = AgentFactory()
    sessions = [SessionFactory(agent=agent) for _ in range(6)]
    errors: list[str] = []
    start = threading.Barrier(len(sessions))

    def writer(n: int, session: Session) -> None:
        try:
            start.wait()
            for i in range(6):
                _fail(session, "search", f"Index {i} offline", days_ago=i % 3, call_id=f"{n}-{i}")
                mine = ToolCall.objects.filter(session=session)
                if i % 3 == 1:
                    tool_call_update(
                        tool_call_id=mine.get(call_id=f"{n}-{i}").pk, error_message="Quota 1 hit"
                    )
                if i % 3 == 2:
                    tool_calls_delete(tool_calls=mine.filter(call_id=f"{n}-{i - 2}"))
            if n % 2:
                session_delete(session_id=session.pk)
        except Exception as exc:  # reported below, with the thread's number
            errors.append(f"writer {n}: {exc!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ErrorGroupDay.objects.exists()
    _assert_exact()
    # The tool calls by state, upserted by the same writers, are exact too.
    by_state = ToolCall.objects.values("agent_id", "state").annotate(n=Count("pk"))
    assert set(
        ToolStateCount.objects.exclude(calls=0).values_list("agent_id", "state", "calls")
    ) == {(row["agent_id"], row["state"], row["n"]) for row in by_state}
