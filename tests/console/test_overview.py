"""The overview: totals, 30 days of charts, failing tools, latest sessions."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.rollups.daily_activity import ActivityChange, daily_activity_add
from tests.console.conftest import HOSTILE, assert_inert, bulk_activity, htmx
from tests.factories import AgentFactory, SessionFactory, conversation

URL = reverse("console:overview")


def test_it_shows_totals_charts_failing_tools_and_latest_sessions(viewer_client: Client) -> None:
    session = SessionFactory(name="Refund for order 1001")
    conversation(session, turns=3, failing=2)
    response = viewer_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "Refund for order 1001" in html
    assert (
        html.count("</title></rect>") == 60
    )  # two charts of 30 daily bars, rendered by the server
    assert "lookup_order" in html  # the failing tool
    assert "33.3%" in html  # 1 of 3 calls completed
    assert response.context["stats"]["tool_errors"] == 2


def test_it_answers_htmx_with_the_page_content_only(viewer_client: Client) -> None:
    response = viewer_client.get(URL, headers=htmx("main"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "<title>Overview · Logdeck</title>" in html
    assert 'id="nav" class="nav" aria-label="Console" hx-swap-oob="true"' in html


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    response = outsider_client.get(URL)
    assert response.status_code == 403
    assert "You may not view this page" in response.content.decode()


def test_it_escapes_hostile_agent_output(viewer_client: Client) -> None:
    SessionFactory(name=HOSTILE, agent=AgentFactory(name=HOSTILE))
    assert_inert(viewer_client.get(URL).content.decode())


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    bulk_activity(rows)
    # 1 auth session, 2 user, 3-4 the viewer's user and group permissions,
    # 5 totals from session counters, 6 tool calls by state, 7 messages and failures per day
    # from the daily activity, 8 the tools failing most, 9 the latest sessions.
    with django_assert_num_queries(9):
        response = viewer_client.get(URL)
    assert response.status_code == 200
    # Within the minute the numbers are cached: 1-4 auth, 5 the latest sessions (always live).
    with django_assert_num_queries(5):
        viewer_client.get(URL)


def test_it_caches_the_numbers_for_a_minute_and_says_as_of_when(viewer_client: Client) -> None:
    first = viewer_client.get(URL)
    SessionFactory(name="Brand new")
    again = viewer_client.get(URL)
    assert again.context["stats"]["sessions"] == first.context["stats"]["sessions"] == 0
    assert "Brand new" in again.content.decode()  # the latest sessions are live
    assert "as of <time" in again.content.decode()


def test_it_groups_the_digits_of_big_totals(viewer_client: Client) -> None:
    # The totals are the daily activity's sums: a big day stands for a big history.
    daily_activity_add(
        {
            (AgentFactory().pk, timezone.localdate()): ActivityChange(
                messages=1_234_567, tool_calls=20_480, tool_errors=1_024, sessions=1
            )
        }
    )
    html = viewer_client.get(URL).content.decode()
    assert "<strong>1,234,567</strong>" in html
    assert "<strong>20,480</strong><small>1,024 failed</small>" in html
