"""Full-text search picks its plan by how common the words are, and both plans find the same
rows: the GIN lookup collected first for a rare word, a walk in list order for a common one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.models import Message
from sessions_app.selectors import (
    SESSION_SORTS,
    SessionFilters,
    message_text_matches,
    session_list,
    text_is_common,
)
from tests.console.conftest import bulk_activity
from tests.factories import SessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def analyse() -> None:
    """Planner statistics for the messages, as autovacuum would gather them in production."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sessions_app_message")


@pytest.fixture
def common_and_rare() -> None:
    """2,000 sessions whose one message says "Calling a tool …"; every 100th also says "refund"."""
    sessions = bulk_activity(2000)
    rare = Message.objects.filter(session__in=sessions[::100])
    assert rare.update(text_content="Calling a tool for a refund") == 20


def test_it_calls_a_word_common_by_the_planner_statistics(common_and_rare: None) -> None:
    analyse()
    assert text_is_common("calling") is True  # in every message
    assert text_is_common("refund") is False  # in 1% of them
    assert text_is_common("absent") is False
    assert text_is_common("") is False


@pytest.mark.parametrize("q", ["calling", "refund", "calling refund", '"a tool"', "-refund"])
def test_both_plans_list_the_same_sessions(common_and_rare: None, q: str) -> None:
    analyse()
    for sort in SESSION_SORTS.values():
        with CaptureQueriesContext(connection) as walk_sql:
            walked = list(
                session_list(SessionFilters(q=q, q_common=True))
                .order_by(*sort)
                .values_list("pk", flat=True)[:60]
            )
        fenced = list(
            session_list(SessionFilters(q=q, q_common=False))
            .order_by(*sort)
            .values_list("pk", flat=True)[:60]
        )
        assert walked == fenced
        assert "EXISTS" in walk_sql.captured_queries[-1]["sql"]
        assert "MATERIALIZED" not in walk_sql.captured_queries[-1]["sql"]
    assert walked  # every query above matches something but the negation of a rare word


def test_a_common_word_walks_the_messages_in_order(common_and_rare: None) -> None:
    analyse()
    newest = Message.objects.order_by("-created_at", "-id")
    with CaptureQueriesContext(connection) as sql:
        common = list(newest.filter(message_text_matches("calling"))[:5])
        rare = list(newest.filter(message_text_matches("refund"))[:5])
    searches = [q["sql"] for q in sql.captured_queries if q["sql"].startswith("SELECT")]
    searches = [q for q in searches if "to_tsvector" in q]
    assert "MATERIALIZED" not in searches[0] and "MATERIALIZED" in searches[1]
    assert common == list(newest[:5])
    assert [m.text_content for m in rare] == ["Calling a tool for a refund"] * 5


def test_a_common_word_walks_the_sessions_in_order_with_the_keys_searched_too(
    common_and_rare: None,
) -> None:
    """The search box finds a framework's thread by its key as well: the walk stays a walk (no
    hash of every matching message first), and both plans find a keyed session with no
    messages at all."""
    keyed = SessionFactory(external_key="calling")
    analyse()
    walk = session_list(SessionFilters(q="calling", q_common=True)).order_by("-created_at", "-id")
    sql, params = walk[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "hashed SubPlan" not in plan and "Hash" not in plan.split("SubPlan")[0]
    for common in (True, False):
        found = session_list(SessionFilters(q="calling", q_common=common))
        assert found.filter(pk=keyed.pk).exists()
        assert found.count() == 2001
