"""`manage.py recount`: every derived number counted again from the rows, or checked."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Model

from sessions_app.models import DailyActivity, ErrorGroupDay, Message, Session, ToolStateCount
from tests.factories import SessionFactory, conversation

pytestmark = pytest.mark.django_db

ROLLUPS: tuple[type[Model], ...] = (DailyActivity, ErrorGroupDay, ToolStateCount)


def _rollups() -> dict[str, set[tuple]]:
    """Every rollup's rows by value (a recount writes new ids)."""
    return {
        model._meta.label: {
            tuple(v for k, v in row.items() if k != "id") for row in model.objects.values()
        }
        for model in ROLLUPS
    }


def test_it_counts_again_what_the_services_would_have_kept() -> None:
    conversation(SessionFactory(), turns=3, failing=2)
    conversation(SessionFactory(), turns=2)
    kept = _rollups()
    assert all(kept.values())
    # Rows that reached the database around the services, and rollups that drifted.
    Message.objects.filter(seq=0).delete()
    DailyActivity.objects.update(sessions=0, messages=1)
    ToolStateCount.objects.update(calls=99)
    out = io.StringIO()

    call_command("recount", stdout=out)

    recounted = _rollups()
    assert recounted["sessions_app.ToolStateCount"] == kept["sessions_app.ToolStateCount"]
    assert recounted["sessions_app.ErrorGroupDay"] == kept["sessions_app.ErrorGroupDay"]
    # Two messages fewer than the services counted: the ones deleted around them.
    assert (
        sum(DailyActivity.objects.values_list("messages", flat=True))
        == (Message.objects.count())
        == sum(row[2] for row in kept["sessions_app.DailyActivity"]) - 2
    )
    assert sum(DailyActivity.objects.values_list("sessions", flat=True)) == 2
    text = out.getvalue()
    for name, label in (
        ("daily activity", "DailyActivity"),
        ("tool calls by state", "ToolStateCount"),
    ):
        assert f"{name}: {len(kept['sessions_app.' + label])} rows" in text
    assert "Recounted in" in text


def test_it_is_quiet_at_verbosity_zero() -> None:
    conversation(SessionFactory(), turns=1)
    out = io.StringIO()
    call_command("recount", stdout=out, verbosity=0)
    assert out.getvalue() == ""
    assert sum(DailyActivity.objects.values_list("sessions", flat=True)) == 1


def test_it_counts_the_session_counters_again() -> None:
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    Session.objects.filter(pk=session.pk).update(message_count=40, error_count=0)
    call_command("recount", verbosity=0)
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count, session.error_count) == (4, 2, 1)


def test_check_names_what_drifted_writes_nothing_and_exits_1() -> None:
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    Session.objects.filter(pk=session.pk).update(tool_call_count=7)
    ToolStateCount.objects.filter(state="completed").update(calls=5)
    kept = _rollups()
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(SystemExit) as exit_:
        call_command("recount", "--check", stdout=out, stderr=err)

    assert exit_.value.code == 1
    text = err.getvalue()
    assert "session counters: drifted" in text and str(session.pk) in text
    assert "stored (4, 7, 1), counted (4, 2, 1)" in text
    assert "tool calls by state: drifted" in text and "stored 5, counted 1" in text
    assert "daily activity: exact" in out.getvalue()
    assert "error groups by day: exact" in out.getvalue()
    assert _rollups() == kept
    assert Session.objects.get(pk=session.pk).tool_call_count == 7


def test_check_passes_quietly_when_every_number_is_exact() -> None:
    conversation(SessionFactory(), turns=2, failing=1)
    out, err = io.StringIO(), io.StringIO()
    call_command("recount", "--check", verbosity=0, stdout=out, stderr=err)
    assert out.getvalue() == err.getvalue() == ""
