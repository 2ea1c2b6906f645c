"""Agents: the list with recent activity, and one agent with its charts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.rollups.daily_activity import ActivityChange, daily_activity_add
from tests.console.conftest import HOSTILE, assert_inert, bulk_activity, htmx
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, conversation

LIST = reverse("console:agent-list")


def detail(agent) -> str:
    return reverse("console:agent-detail", args=[agent.pk])


def test_it_lists_agents_with_sessions_messages_and_error_rate(viewer_client: Client) -> None:
    busy = AgentFactory(name="busy")
    AgentFactory(name="idle")
    conversation(SessionFactory(agent=busy), turns=4, failing=1)
    response = viewer_client.get(LIST)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    rows = {r["agent"].name: r for r in response.context["rows"]}
    assert (rows["busy"]["sessions"], rows["busy"]["messages"]) == (1, 8)
    assert rows["busy"]["error_rate"] == 25.0
    assert rows["idle"]["sessions"] == 0 and rows["idle"]["error_rate"] is None


def test_it_pages_agents_by_keyset(viewer_client: Client) -> None:
    for i in range(55):
        AgentFactory(name=f"agent-{i:02d}")
    first = viewer_client.get(LIST)
    assert len(first.context["rows"]) == 50
    more = viewer_client.get(LIST + first.context["more_url"], headers=htmx("load-more"))
    assert "<html" not in more.content.decode()
    assert [r["agent"].name for r in more.context["rows"]][-1] == "agent-54"


def test_it_shows_one_agent_with_charts_and_latest_sessions(viewer_client: Client) -> None:
    agent = AgentFactory(name="support", config={"temperature": 0.1})
    conversation(SessionFactory(agent=agent, name="First chat"), turns=2, failing=1)
    MemoryFactory(agent=agent, name="house-style")
    response = viewer_client.get(detail(agent))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("</title></rect>") == 60
    assert "First chat" in html and "house-style" in html and "lookup_order" in html
    assert "&quot;temperature&quot;: 0.1" in html
    assert "50.0%" in html


def test_it_answers_htmx_navigation_with_the_page_content(viewer_client: Client) -> None:
    agent = AgentFactory()
    for target in (LIST, detail(agent)):
        html = viewer_client.get(target, headers=htmx("main")).content.decode()
        assert "<html" not in html and "<title>" in html


def test_it_returns_404_for_unknown_agents(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("console:agent-detail", args=[999999])).status_code == 404


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client, db: None) -> None:
    assert client.get(LIST).status_code == 302
    assert client.get(detail(AgentFactory())).status_code == 302


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(LIST).status_code == 403
    assert outsider_client.get(detail(AgentFactory())).status_code == 403


def test_it_escapes_hostile_agent_fields(viewer_client: Client) -> None:
    agent = AgentFactory(
        name=HOSTILE, description=HOSTILE, system_prompt=HOSTILE, config={"x": HOSTILE}
    )
    assert_inert(viewer_client.get(LIST).content.decode())
    assert_inert(viewer_client.get(detail(agent)).content.decode())


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    agent = AgentFactory()
    bulk_activity(rows, agent=agent)
    # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 a page of agents,
    # 6 their activity summed from session counters.
    with django_assert_num_queries(6):
        viewer_client.get(LIST)
    # Cached for a minute: 1-4 auth, 5 the page of agents.
    with django_assert_num_queries(5):
        viewer_client.get(LIST)
    # 1-4 as above, 5 the agent, 6 totals from counters, 7 calls by state, 8 messages and
    # failures per day from the daily activity, 9 the tools failing most, 10 latest sessions,
    # 11 memories.
    with django_assert_num_queries(11):
        viewer_client.get(detail(agent))
    # Cached for a minute: 1-4 auth, 5 the agent, 6 latest sessions, 7 memories.
    with django_assert_num_queries(7):
        viewer_client.get(detail(agent))


def test_it_groups_the_digits_of_an_agents_big_totals(viewer_client: Client) -> None:
    agent = AgentFactory()
    day = timezone.localdate()
    daily_activity_add({(agent.pk, day): ActivityChange(messages=1_234_567, sessions=1)})
    assert "<strong>1,234,567</strong>" in viewer_client.get(detail(agent)).content.decode()
