"""Sessions: start, get with counters, query, update, finish, delete; checkpoints."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from sessions_app.models import Checkpoint, Message, Session
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, SessionFactory, UserFactory, conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db: None):
    return AgentFactory(name="support-bot")


def test_it_starts_a_session_by_agent_name_with_the_runtimes_id(api: ApiClient, agent):
    user = UserFactory(email="ada@example.com")
    sid = uuid.uuid4()
    body = {
        "agent": "support-bot",
        "user": "ada@example.com",
        "id": str(sid),
        "platform": "slack",
        "metadata": {"channel": "#help"},
        "created_at": "2025-01-02T03:04:05+01:00",
    }
    response = api.post("/sessions", body)
    assert response.status_code == 201
    out = response.json()
    assert out["id"] == str(sid) and out["agent"] == agent.pk and out["user"] == user.pk
    assert out["agent_name"] == "support-bot" and out["user_email"] == "ada@example.com"
    assert out["created_at"] == "2025-01-02T02:04:05.000000Z" and out["is_active"]
    assert_error(api.post("/sessions", body), 409, "id")
    assert_error(api.post("/sessions", {"agent": "nobody"}), 404)
    assert_error(api.post("/sessions", {"agent": "support-bot", "user": "x@nowhere.test"}), 404)
    assert_error(api.post("/sessions", {"platform": "web"}), 422, "agent")


def test_it_gets_a_session_with_counters(api: ApiClient, django_assert_num_queries):
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    with django_assert_num_queries(2):  # 1: the key, 2: the session with agent and user
        out = api.get(f"/sessions/{session.pk}").json()
    assert (out["message_count"], out["tool_call_count"], out["error_count"]) == (4, 2, 1)
    assert_error(api.get(f"/sessions/{uuid.uuid4()}"), 404)


def test_it_queries_sessions_by_every_filter(api: ApiClient, agent):
    old = SessionFactory(agent=agent, platform="slack")
    Session.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    failing = SessionFactory(agent=agent, platform="web")
    conversation(failing, turns=1, failing=1)
    finished = SessionFactory(platform="web", finished_at=timezone.now())
    other_user = finished.user

    def ids(**params):
        response = api.get("/sessions", params)
        assert response.status_code == 200, response.content
        return {s["id"] for s in response.json()["items"]}

    everyone = {str(s.pk) for s in (old, failing, finished)}
    assert ids() == everyone
    assert ids(agent="support-bot") == ids(agent=str(agent.pk)) == {str(old.pk), str(failing.pk)}
    assert ids(user=str(other_user.pk)) == ids(user=other_user.email) == {str(finished.pk)}
    assert ids(platform="slack") == {str(old.pk)}
    assert ids(status="finished") == {str(finished.pk)}
    assert ids(status="active") == {str(old.pk), str(failing.pk)}
    assert ids(has_errors="true") == {str(failing.pk)}
    assert ids(has_errors="false") == {str(old.pk), str(finished.pk)}
    day_ago = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert ids(created_after=day_ago) == {str(failing.pk), str(finished.pk)}
    assert ids(created_before=day_ago) == {str(old.pk)}
    assert_error(api.get("/sessions", {"status": "sleeping"}), 422, "status")
    assert_error(api.get("/sessions", {"agent": "nobody"}), 404)


@pytest.mark.parametrize("rows", [1, 30])
def test_it_pages_sessions_in_two_queries_whatever_the_page_size(
    api: ApiClient, rows: int, django_assert_num_queries
):
    agent = AgentFactory()
    for _ in range(rows):
        SessionFactory(agent=agent)
    with django_assert_num_queries(2):  # 1: the key, 2: sessions joined to agent and user
        page = api.get("/sessions", {"limit": 500}).json()
    assert len(page["items"]) == rows


def test_it_caps_the_page_size(api: ApiClient, settings):
    settings.API_MAX_PAGE_SIZE = 3
    for _ in range(5):
        SessionFactory()
    page = api.get("/sessions", {"limit": 1000}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert len(api.get("/sessions").json()["items"]) == 3
    assert_error(api.get("/sessions", {"limit": 0}), 422, "limit")


def test_it_updates_a_session(api: ApiClient):
    session = SessionFactory()
    user = UserFactory(email="new@example.com")
    out = api.patch(
        f"/sessions/{session.pk}", {"name": "Refund", "metadata": {"k": "v"}, "user": user.email}
    ).json()
    assert (out["name"], out["metadata"], out["user"]) == ("Refund", {"k": "v"}, user.pk)
    assert api.patch(f"/sessions/{session.pk}", {"user": None}).json()["user"] is None
    assert_error(api.patch(f"/sessions/{session.pk}", {"name": "x" * 301}), 422, "name")
    assert_error(api.patch(f"/sessions/{uuid.uuid4()}", {"name": "x"}), 404)


def test_it_finishes_a_session_once(api: ApiClient):
    session = SessionFactory()
    first = api.post(f"/sessions/{session.pk}/finish").json()
    assert first["is_active"] is False and first["finished_at"]
    again = api.post(f"/sessions/{session.pk}/finish", {"finished_at": "2020-01-01T00:00:00Z"})
    assert again.json()["finished_at"] == first["finished_at"]
    imported = SessionFactory()
    out = api.post(f"/sessions/{imported.pk}/finish", {"finished_at": "2024-05-06T07:08:09Z"})
    assert out.json()["finished_at"] == "2024-05-06T07:08:09.000000Z"
    assert_error(api.post(f"/sessions/{uuid.uuid4()}/finish"), 404)
    appended = api.post(f"/sessions/{session.pk}/messages", {"messages": [{"role": "user"}]})
    assert_error(appended, 409)


def test_it_deletes_a_session_with_everything_under_it(api: ApiClient):
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    keep = SessionFactory()
    deleted = api.delete(f"/sessions/{session.pk}").json()["deleted"]
    assert deleted == {"session": 1, "message": 4, "toolcall": 2}
    assert list(Session.objects.all()) == [keep]
    assert not Message.objects.exists()
    assert_error(api.delete(f"/sessions/{session.pk}"), 404)


def test_it_saves_lists_and_loads_the_latest_checkpoint(api: ApiClient, django_assert_num_queries):
    session = SessionFactory()
    assert_error(api.get(f"/sessions/{session.pk}/checkpoints/latest"), 404)
    for step in range(3):
        response = api.post(
            f"/sessions/{session.pk}/checkpoints", {"type": "state", "data": {"step": step}}
        )
        assert response.status_code == 201
    with django_assert_num_queries(2):  # 1: the key, 2: one index probe for the newest
        latest = api.get(f"/sessions/{session.pk}/checkpoints/latest").json()
    assert latest["data"] == {"step": 2}
    with django_assert_num_queries(3):  # 1: the key, 2: the session, 3: a page of checkpoints
        page = api.get(f"/sessions/{session.pk}/checkpoints", {"limit": 2}).json()
    assert [c["data"]["step"] for c in page["items"]] == [2, 1]
    rest = api.get(f"/sessions/{session.pk}/checkpoints", {"cursor": page["next_cursor"]})
    assert [c["data"]["step"] for c in rest.json()["items"]] == [0]
    assert_error(api.post(f"/sessions/{uuid.uuid4()}/checkpoints", {"type": "x"}), 404)
    assert_error(api.post(f"/sessions/{session.pk}/checkpoints", {"type": "t" * 101}), 422, "type")
    assert Checkpoint.objects.count() == 3
