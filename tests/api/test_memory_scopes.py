"""Memory scopes: global, agent, user, agent + user and session, each its own namespace for
names; a session's own memories go with it, memories that only came from it stay."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from memories.models import Memory
from sessions_app.models import Session
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_sessions(db: None) -> tuple[Session, Session]:
    agent, user = AgentFactory(name="support-bot"), UserFactory(email="ada@example.com")
    return SessionFactory(agent=agent, user=user), SessionFactory(agent=agent, user=user)


def test_it_keeps_a_memory_per_session_under_the_same_name(
    api: ApiClient, two_sessions: tuple[Session, Session]
):
    first, second = two_sessions
    one = api.post("/memories", {"name": "plan", "session": str(first.pk), "content": "S1"})
    two = api.post("/memories", {"name": "plan", "session": str(second.pk), "content": "S2"})
    assert (one.status_code, two.status_code) == (201, 201), two.content
    assert one.json()["id"] != two.json()["id"]
    assert one.json()["scope"] == two.json()["scope"] == "session"
    again = api.post("/memories", {"name": "plan", "session": str(first.pk), "content": "S1b"})
    assert again.status_code == 200 and again.json()["id"] == one.json()["id"]
    for session, content in ((first, "S1b"), (second, "S2")):
        found = api.get("/memories/by-name", {"name": "plan", "session": str(session.pk)})
        assert found.status_code == 200
        assert (found.json()["session"], found.json()["content"]) == (str(session.pk), content)
    assert Memory.objects.filter(name="plan").count() == 2


def test_it_keeps_each_scope_its_own_namespace(api: ApiClient, two_sessions):
    session = two_sessions[0]
    scopes = {
        "global": {},
        "agent": {"agent": "support-bot"},
        "user": {"user": "ada@example.com"},
        "agent_user": {"agent": "support-bot", "user": "ada@example.com"},
        "session": {"session": str(session.pk)},
    }
    ids = set()
    for scope, parts in scopes.items():
        response = api.post("/memories", {"name": "notes", "content": scope, **parts})
        assert response.status_code == 201, (scope, response.content)
        assert response.json()["scope"] == scope
        ids.add(response.json()["id"])
    assert len(ids) == 5
    for scope, parts in scopes.items():
        found = api.get("/memories/by-name", {"name": "notes", **parts})
        assert found.json()["content"] == scope


def test_it_refuses_a_session_memory_with_an_agent_or_user(api: ApiClient, two_sessions):
    session = two_sessions[0]
    body = {"name": "x", "session": str(session.pk), "user": "ada@example.com"}
    assert_error(api.post("/memories", body), 422, "user")
    body = {"name": "x", "session": str(session.pk), "source_session": str(session.pk)}
    assert_error(api.post("/memories", body), 422, "source_session")
    lookup = {"name": "x", "session": str(session.pk), "agent": "support-bot"}
    assert_error(api.get("/memories/by-name", lookup), 422, "agent")
    assert not Memory.objects.exists()


def test_it_deletes_a_sessions_own_memories_and_keeps_those_that_came_from_it(
    api: ApiClient, two_sessions: tuple[Session, Session]
):
    session, other = two_sessions
    own = {"name": "scratch", "session": str(session.pk)}
    user_scoped = {"name": "likes", "user": "ada@example.com", "source_session": str(session.pk)}
    agent_scoped = {"name": "tone", "agent": "support-bot", "source_session": str(session.pk)}
    elsewhere = {"name": "scratch", "session": str(other.pk)}
    ids = {}
    for key, body in (("own", own), ("user", user_scoped), ("agent", agent_scoped)):
        ids[key] = api.post("/memories", {**body, "content": key}).json()["id"]
    api.post("/memories", elsewhere)

    response = api.delete(f"/sessions/{session.pk}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deleted"]["memory"] == 1 and body["deleted"]["session"] == 1
    assert body["unlinked"] == {"memory": 2}
    assert not Memory.objects.filter(pk=ids["own"]).exists()
    for key in ("user", "agent"):
        kept = api.get(f"/memories/{ids[key]}").json()
        assert (kept["content"], kept["source_session"]) == (key, None)
    assert Memory.objects.filter(session=other).count() == 1


def test_it_lists_a_sessions_own_memories_and_those_from_it(api: ApiClient, two_sessions):
    session, other = two_sessions
    api.post("/memories", {"name": "scratch", "session": str(session.pk)})
    api.post(
        "/memories", {"name": "likes", "user": "ada@example.com", "source_session": str(session.pk)}
    )
    api.post("/memories", {"name": "scratch", "session": str(other.pk)})
    listed = api.get("/memories", {"session": str(session.pk)}).json()["items"]
    assert sorted((m["name"], m["scope"]) for m in listed) == [
        ("likes", "user"),
        ("scratch", "session"),
    ]


def test_it_adds_session_memories_in_the_admin_by_scope(superuser_client: Client, two_sessions):
    first, second = two_sessions
    form = {
        "name": "plan",
        "agent": "",
        "user": "",
        "source_session": "",
        "read_mode": "tool",
        "access": "read_write",
        "description": "",
        "content": "x",
        "metadata": "{}",
    }
    for session in (first, second):
        response = superuser_client.post(
            "/admin/memories/memory/add/", {**form, "session": session.pk}
        )
        assert response.status_code == 302, response.content
    again = superuser_client.post("/admin/memories/memory/add/", {**form, "session": first.pk})
    assert b"A memory of this name already exists in this scope." in again.content
    mixed = superuser_client.post(
        "/admin/memories/memory/add/", {**form, "session": first.pk, "agent": first.agent_id}
    )
    assert b"belongs to the session alone" in mixed.content
    assert Memory.objects.filter(name="plan").count() == 2
    listed = superuser_client.get("/admin/memories/memory/", {"scope": "session"})
    assert listed.status_code == 200 and listed.content.count(b"plan") >= 2


@pytest.mark.django_db(transaction=True)
def test_it_keeps_existing_memories_through_the_scope_migration():
    # Before 0002 a memory's session only said where it came from; after it, that link is the
    # source and the memory keeps its (agent, user) scope, its name and its content.
    executor = MigrationExecutor(connection)
    executor.migrate([("memories", "0001_initial")])
    old = executor.loader.project_state([("memories", "0001_initial")]).apps
    agent = old.get_model("agents", "Agent").objects.create(name="legacy")
    session = old.get_model("sessions_app", "Session").objects.create(agent=agent)
    OldMemory = old.get_model("memories", "Memory")
    with_session = OldMemory.objects.create(name="m", agent=agent, session=session, content="a")
    without = OldMemory.objects.create(name="n", content="b")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = Memory.objects.get(pk=with_session.pk)
    assert (moved.name, moved.content, moved.agent_id) == ("m", "a", agent.pk)
    assert (moved.session_id, moved.source_session_id) == (None, session.pk)
    assert moved.scope == "agent"
    kept = Memory.objects.get(pk=without.pk)
    assert (kept.name, kept.content, kept.scope) == ("n", "b", "global")


def test_it_shows_a_sessions_own_memory_as_such_in_the_console(
    viewer_client: Client, two_sessions: tuple[Session, Session]
):
    session = two_sessions[0]
    Memory.objects.create(name="scratch", session=session, content="only here")
    Memory.objects.create(name="likes", user=session.user, source_session=session)
    listed = viewer_client.get("/memories/", {"session": str(session.pk)})
    assert listed.status_code == 200
    html = listed.content.decode()
    assert "scratch" in html and "likes" in html
    assert '<span class="tag">session</span>' in html
    own = Memory.objects.get(name="scratch")
    detail = viewer_client.get(f"/memories/{own.pk}/").content.decode()
    assert "<dt>Scope</dt><dd>Session</dd>" in detail and "(its own)" in detail
    sourced = Memory.objects.get(name="likes")
    detail = viewer_client.get(f"/memories/{sourced.pk}/").content.decode()
    assert "<dt>Scope</dt><dd>User</dd>" in detail and "From session" in detail
