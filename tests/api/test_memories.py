"""Memories: upsert by (name, agent, user), get, get by name in its scope, list, change, delete."""

from __future__ import annotations

import uuid

import pytest

from memories.models import Memory
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db: None):
    return AgentFactory(name="support-bot")


@pytest.fixture
def user(db: None):
    return UserFactory(email="ada@example.com")


def test_it_upserts_a_memory_in_its_scope(api: ApiClient, agent, user):
    body = {"name": "tone", "agent": "support-bot", "user": "ada@example.com", "content": "calm"}
    created = api.post("/memories", body)
    assert created.status_code == 201
    again = api.post("/memories", {**body, "content": "brief", "read_mode": "system_prompt"})
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    assert (again.json()["content"], again.json()["read_mode"]) == ("brief", "system_prompt")
    # The same name in another scope is another memory, including the scope with no user.
    agent_wide = api.post("/memories", {"name": "tone", "agent": "support-bot"})
    assert agent_wide.status_code == 201
    assert api.post("/memories", {"name": "tone", "agent": str(agent.pk)}).status_code == 200
    assert Memory.objects.count() == 2


def test_it_validates_a_memory(api: ApiClient, agent):
    assert_error(api.post("/memories", {"name": ""}), 422, "name")
    assert_error(api.post("/memories", {"name": "x", "read_mode": "aloud"}), 422, "read_mode")
    assert_error(api.post("/memories", {"name": "x", "agent": "nobody"}), 404)
    other = SessionFactory()
    body = {"name": "x", "agent": "support-bot", "source_session": str(other.pk)}
    assert_error(api.post("/memories", body), 422, "source_session")
    body = {"name": "x", "agent": "support-bot", "session": str(other.pk)}
    assert_error(api.post("/memories", body), 422, "agent")


def test_it_gets_a_memory_by_id_and_by_name_in_its_scope(api: ApiClient, agent, user):
    memory = MemoryFactory(name="preferences", agent=agent, user=user)
    MemoryFactory(name="preferences", agent=agent, user=None, content="agent-wide")
    assert api.get(f"/memories/{memory.pk}").json()["name"] == "preferences"
    exact = api.get(
        "/memories/by-name", {"name": "preferences", "agent": "support-bot", "user": user.email}
    ).json()
    assert exact["id"] == str(memory.pk)
    wide = api.get("/memories/by-name", {"name": "preferences", "agent": "support-bot"}).json()
    assert wide["content"] == "agent-wide"
    assert_error(api.get("/memories/by-name", {"name": "preferences"}), 404)
    assert_error(api.get("/memories/by-name", {}), 422, "name")
    assert_error(api.get(f"/memories/{uuid.uuid4()}"), 404)


@pytest.mark.parametrize("rows", [1, 25])
def test_it_lists_memories_by_scope_in_fixed_queries(
    api: ApiClient, agent, user, rows: int, django_assert_num_queries
):
    session = SessionFactory(agent=agent, user=user)
    for i in range(rows):
        MemoryFactory(agent=agent, user=user if i % 2 else None, source_session=session)
    MemoryFactory(agent=AgentFactory())
    # 1: the key, 2: the agent by id, 3: a page of memories with agent and user joined.
    with django_assert_num_queries(3):
        page = api.get("/memories", {"agent": str(agent.pk), "limit": 500}).json()
    assert len(page["items"]) == rows
    by_user = api.get("/memories", {"user": user.email}).json()["items"]
    assert len(by_user) == rows // 2
    assert len(api.get("/memories", {"session": str(session.pk)}).json()["items"]) == rows
    assert api.get("/memories", {"read_mode": "system_prompt"}).json()["items"] == []


def test_it_changes_and_deletes_a_memory(api: ApiClient, agent):
    memory = MemoryFactory(agent=agent)
    out = api.patch(f"/memories/{memory.pk}", {"content": "new", "access": "read_only"}).json()
    assert (out["content"], out["access"]) == ("new", "read_only")
    assert_error(api.patch(f"/memories/{memory.pk}", {"name": "renamed"}), 422, "name")
    assert api.delete(f"/memories/{memory.pk}").status_code == 204
    assert_error(api.delete(f"/memories/{memory.pk}"), 404)
    assert_error(api.patch(f"/memories/{memory.pk}", {"content": "x"}), 404)
