"""`manage.py recount`: the rollups counted again from the rows, after a load."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Model

from sessions_app.models import DailyActivity, ErrorGroupDay, Message, ToolStateCount
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
