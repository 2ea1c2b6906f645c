"""Tool-call error groups: failures by tool and fingerprint, with sparklines."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ToolCall
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.console.conftest import HOSTILE, assert_inert, bulk_activity, htmx
from tests.factories import AgentFactory, SessionFactory, conversation

URL = reverse("console:error-groups")


def fail(session, tool: str, error: str, *, when: dt.datetime | None = None) -> None:
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                created_at=when,
                tool_calls=[ToolCallIn(tool_name=tool, state="failed", error_message=error)],
            )
        ],
    )


def test_it_groups_failures_by_tool_and_fingerprint(viewer_client: Client) -> None:
    a, b = SessionFactory(), SessionFactory()
    conversation(a, turns=3, failing=3)  # "Order 1000/1001/1002 not found": one group
    fail(b, "lookup_order", "Order 5 not found")
    fail(b, "send_email", "SMTP timeout after 30s")
    response = viewer_client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    groups = response.context["groups"]
    assert [(g["tool_name"], g["count"], g["sessions"]) for g in groups] == [
        ("lookup_order", 4, 2),
        ("send_email", 1, 1),
    ]
    assert html.count('class="spark"') == 2
    assert "tool=lookup_order&amp;fingerprint=Order+%3Cn%3E+not+found" in html


def test_it_filters_by_agent_tool_and_time(viewer_client: Client) -> None:
    old = timezone.now() - dt.timedelta(days=40)
    mine = SessionFactory(agent=AgentFactory(name="mine"))
    fail(mine, "search", "Index 3 offline")
    fail(SessionFactory(), "search", "Index 4 offline")
    fail(SessionFactory(created_at=old), "fetch", "Timeout", when=old)
    cases = {
        f"agent={mine.agent_id}": [("search", 1)],
        "tool=search": [("search", 2)],
        "since=7d": [("search", 2)],
        "since=all": [("search", 2), ("fetch", 1)],
    }
    for query, expected in cases.items():
        response = viewer_client.get(f"{URL}?{query}")
        assert [(g["tool_name"], g["count"]) for g in response.context["groups"]] == expected


def test_it_answers_htmx_filters_with_the_results_fragment(viewer_client: Client) -> None:
    fail(SessionFactory(), "search", "Index 3 offline")
    html = viewer_client.get(f"{URL}?since=7d", headers=htmx("results")).content.decode()
    assert "<html" not in html and "<form" not in html and "search" in html


def test_it_explains_bad_filters(viewer_client: Client) -> None:
    for query in ("since=forever", "agent=x", "agent=99999999999999999999"):
        response = viewer_client.get(f"{URL}?{query}")
        assert response.status_code == 400
        assert "That filter could not be applied." in response.content.decode()


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client) -> None:
    assert client.get(URL).status_code == 302


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(URL).status_code == 403


def test_it_escapes_hostile_tool_names_and_errors(viewer_client: Client) -> None:
    fail(SessionFactory(), HOSTILE, HOSTILE)
    assert_inert(viewer_client.get(URL).content.decode())


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    bulk_activity(rows)  # half fail, across up to 151 groups
    # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 a page of groups with their
    # failures per day for the sparklines, from the rollup, 6 the agents for the filter.
    with django_assert_num_queries(6):
        response = viewer_client.get(URL)
    assert len(response.context["groups"]) == min(rows // 2, 50)
    assert bool(response.context["more_url"]) == (rows == 1000)
    assert ToolCall.objects.filter(is_error=True).count() == rows // 2


def test_it_loads_more_groups_by_keyset(viewer_client: Client, django_assert_num_queries) -> None:
    bulk_activity(260, groups=121)  # 130 failures in 121 groups, of one or two failures
    failures = Counter(ToolCall.objects.filter(is_error=True).values_list("tool_name", flat=True))
    first = viewer_client.get(URL)
    assert len(first.context["groups"]) == 50 and first.context["more_url"]
    seen = [(g["tool_name"], g["count"]) for g in first.context["groups"]]
    more_url = first.context["more_url"]
    while more_url:
        # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 the next page of groups.
        with django_assert_num_queries(5):
            more = viewer_client.get(URL + more_url, headers=htmx("load-more"))
        html = more.content.decode()
        assert "<html" not in html and "<form" not in html and 'class="spark"' in html
        seen += [(g["tool_name"], g["count"]) for g in more.context["groups"]]
        more_url = more.context["more_url"]
    assert seen == sorted(failures.items(), key=lambda group: (-group[1], group[0]))
    assert len(seen) == 121


def test_it_refuses_a_forged_cursor(viewer_client: Client) -> None:
    fail(SessionFactory(), "search", "Index 3 offline")
    response = viewer_client.get(f"{URL}?cursor=forged")
    assert response.status_code == 400 and response.context["groups"] == []
