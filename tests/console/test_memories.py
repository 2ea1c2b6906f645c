"""Memories: browse by agent, user and session; read one."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.console.conftest import HOSTILE, assert_inert, bulk_memories, htmx
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, UserFactory

LIST = reverse("console:memory-list")


def detail(memory) -> str:
    return reverse("console:memory-detail", args=[memory.pk])


def test_it_lists_and_filters_memories_by_scope(viewer_client: Client) -> None:
    agent, user = AgentFactory(), UserFactory()
    session = SessionFactory(agent=agent, user=user)
    MemoryFactory(name="agent-wide", agent=agent)
    MemoryFactory(name="personal", agent=agent, user=user, source_session=session)
    MemoryFactory(name="elsewhere")
    response = viewer_client.get(LIST)
    assert response.status_code == 200 and "<html" in response.content.decode()
    assert len(response.context["memories"]) == 3
    cases = {
        f"agent={agent.pk}": {"agent-wide", "personal"},
        f"user={user.pk}": {"personal"},
        f"session={session.pk}": {"personal"},
    }
    for query, expected in cases.items():
        names = {m.name for m in viewer_client.get(f"{LIST}?{query}").context["memories"]}
        assert names == expected, query


def test_it_pages_by_keyset_and_answers_htmx_with_fragments(viewer_client: Client) -> None:
    bulk_memories(60)
    first = viewer_client.get(LIST)
    assert len(first.context["memories"]) == 50
    more = viewer_client.get(LIST + first.context["more_url"], headers=htmx("load-more"))
    assert "<html" not in more.content.decode() and len(more.context["memories"]) == 10
    results = viewer_client.get(LIST + "?agent=", headers=htmx("results")).content.decode()
    assert "<html" not in results and "<form" not in results


def test_it_explains_bad_filters(viewer_client: Client) -> None:
    for query in ("session=not-a-uuid", "user=abc", "agent=99999999999999999999"):
        response = viewer_client.get(f"{LIST}?{query}")
        assert response.status_code == 400
        assert "That filter could not be applied." in response.content.decode()


def test_it_shows_one_memory(viewer_client: Client) -> None:
    memory = MemoryFactory(name="prefs", content="Prefers email.", metadata={"source": "chat"})
    response = viewer_client.get(detail(memory))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Prefers email." in html and "&quot;source&quot;: &quot;chat&quot;" in html
    fragment = viewer_client.get(detail(memory), headers=htmx("main")).content.decode()
    assert "<html" not in fragment and "Prefers email." in fragment


def test_it_returns_404_for_unknown_memories(viewer_client: Client) -> None:
    missing = reverse("console:memory-detail", args=["00000000-0000-0000-0000-000000000000"])
    assert viewer_client.get(missing).status_code == 404


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client, db: None) -> None:
    assert client.get(LIST).status_code == 302
    assert client.get(detail(MemoryFactory())).status_code == 302


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(LIST).status_code == 403
    assert outsider_client.get(detail(MemoryFactory())).status_code == 403


def test_it_escapes_hostile_memories(viewer_client: Client) -> None:
    memory = MemoryFactory(
        name=HOSTILE, description=HOSTILE, content=HOSTILE, metadata={"h": HOSTILE}
    )
    assert_inert(viewer_client.get(LIST).content.decode())
    assert_inert(viewer_client.get(detail(memory)).content.decode())


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    bulk_memories(rows)
    # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 a page of memories with agent and
    # user (content deferred), 6 the agents for the filter.
    with django_assert_num_queries(6):
        response = viewer_client.get(LIST)
    # 1-4 as above, 5 the memory with its agent, user and session.
    with django_assert_num_queries(5):
        viewer_client.get(detail(response.context["memories"][0]))
