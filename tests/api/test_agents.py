"""Agents: upsert by name, get by id or name, list, change, delete with all data, stats."""

from __future__ import annotations

import pytest

from agents.models import Agent
from sessions_app.models import Message, Session, ToolCall
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


def test_it_upserts_an_agent_by_name(api: ApiClient):
    created = api.post("/agents", {"name": "support-bot", "model": "gpt-5-mini"})
    assert created.status_code == 201
    again = api.post("/agents", {"name": "support-bot", "config": {"temperature": 0.1}})
    assert again.status_code == 200
    body = again.json()
    assert body["id"] == created.json()["id"]
    assert (body["model"], body["config"]) == ("gpt-5-mini", {"temperature": 0.1})
    assert Agent.objects.count() == 1


def test_it_gets_an_agent_by_id_or_name(api: ApiClient):
    agent = AgentFactory(name="support-bot")
    assert api.get(f"/agents/{agent.pk}").json()["name"] == "support-bot"
    assert api.get("/agents/support-bot").json()["id"] == agent.pk
    assert_error(api.get("/agents/nobody"), 404)


def test_it_lists_agents_active_only_in_pages(api: ApiClient, django_assert_num_queries):
    for i in range(5):
        AgentFactory(name=f"agent-{i}", active=i % 2 == 0)
    with django_assert_num_queries(2):  # 1: the key, 2: one page of agents (LIMIT n + 1)
        first = api.get("/agents", {"limit": 2, "active_only": "true"}).json()
    assert [a["name"] for a in first["items"]] == ["agent-0", "agent-2"]
    rest = api.get("/agents", {"limit": 2, "active_only": "true", "cursor": first["next_cursor"]})
    assert [a["name"] for a in rest.json()["items"]] == ["agent-4"]
    assert rest.json()["next_cursor"] is None


def test_it_renames_an_agent_and_refuses_a_taken_name(api: ApiClient):
    AgentFactory(name="taken")
    agent = AgentFactory(name="old")
    response = api.patch(f"/agents/{agent.pk}", {"name": "new", "active": False})
    assert response.json()["name"] == "new" and response.json()["active"] is False
    assert_error(api.patch("/agents/new", {"name": "taken"}), 409, "name")
    assert_error(api.patch("/agents/new", {"name": None}), 422, "name")
    assert_error(api.patch("/agents/nobody", {"version": "2"}), 404)


def test_it_deletes_an_agent_with_all_its_data_and_says_how_much(api: ApiClient):
    agent = AgentFactory()
    conversation(SessionFactory(agent=agent), turns=2, failing=1)
    MemoryFactory(agent=agent)
    other = SessionFactory()
    conversation(other, turns=1)
    response = api.delete(f"/agents/{agent.pk}")
    assert response.status_code == 200
    deleted = response.json()["deleted"]
    assert deleted["agent"] == 1 and deleted["session"] == 1
    assert deleted["message"] == 4 and deleted["toolcall"] == 2 and deleted["memory"] == 1
    assert list(Session.objects.all()) == [other]
    assert Message.objects.filter(session=other).count() == 2
    assert ToolCall.objects.count() == 1
    assert_error(api.delete(f"/agents/{agent.pk}"), 404)


def test_it_validates_agent_fields_with_paths(api: ApiClient):
    error = assert_error(
        api.post("/agents", {"name": "", "type": "t" * 101, "config": [1]}),
        422,
        "name",
        "type",
        "config",
    )
    assert error["code"] == "invalid"


def test_it_gives_an_agents_stats(api: ApiClient, django_assert_max_num_queries):
    agent = AgentFactory(name="support-bot")
    conversation(SessionFactory(agent=agent), turns=3, failing=1)
    conversation(SessionFactory(), turns=5)
    # 1: key, 2: agent, 3: totals, 4: by state, 5-6: per-day messages and errors.
    with django_assert_max_num_queries(6):
        stats = api.get("/agents/support-bot/stats", {"days": 7}).json()
    assert (stats["sessions"], stats["messages"], stats["tool_calls"]) == (1, 6, 3)
    assert stats["tool_calls_by_state"]["failed"] == 1
    assert stats["tool_calls_by_state"]["completed"] == 2
    assert stats["success_rate"] == pytest.approx(2 / 3)
    assert len(stats["per_day"]) == 7 and stats["per_day"][-1]["messages"] == 6
    assert_error(api.get("/agents/nobody/stats"), 404)
    assert_error(api.get("/agents/support-bot/stats", {"days": 0}), 422, "days")
