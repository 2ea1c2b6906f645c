"""Every operation answers 422 with a field path for invalid input, and 404 for a missing record."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import ApiClient, assert_error
from tests.api.operations import LABELS, World, make_world

pytestmark = pytest.mark.django_db

MISSING = str(uuid.uuid4())
THREAD = {"agent": "support-bot", "thread_id": "thread-1"}
NOBODY = {"agent": "nobody", "thread_id": "thread-1"}

# label -> (method, path, body, field path named in the 422)
INVALID = {
    "POST /users": ("POST", "/users", {"email": "not-an-email"}, "email"),
    "GET /users": ("GET", "/users?limit=0", None, "limit"),
    "GET /users/{ref}": ("GET", "/users/" + "u" * 300, None, "ref"),
    "PATCH /users/{ref}": ("PATCH", "/users/{u}", {"is_staff": True}, "is_staff"),
    "DELETE /users/{ref}": ("DELETE", "/users/" + "u" * 300, None, "ref"),
    "POST /agents": ("POST", "/agents", {"name": ""}, "name"),
    "GET /agents": ("GET", "/agents?active_only=maybe", None, "active_only"),
    "GET /agents/{ref}": ("GET", "/agents/" + "a" * 201, None, "ref"),
    "PATCH /agents/{ref}": ("PATCH", "/agents/{a}", {"active": "yes"}, "active"),
    "DELETE /agents/{ref}": ("DELETE", "/agents/" + "a" * 201, None, "ref"),
    "GET /agents/{ref}/stats": ("GET", "/agents/{a}/stats?days=400", None, "days"),
    "POST /sessions": ("POST", "/sessions", {"agent": "support-bot", "id": "x"}, "id"),
    "GET /sessions": ("GET", "/sessions?has_errors=perhaps", None, "has_errors"),
    "GET /sessions/{session_id}": ("GET", "/sessions/nope", None, "session_id"),
    "PATCH /sessions/{session_id}": ("PATCH", "/sessions/{s}", {"metadata": []}, "metadata"),
    "DELETE /sessions/{session_id}": ("DELETE", "/sessions/nope", None, "session_id"),
    "POST /sessions/{session_id}/finish": (
        "POST",
        "/sessions/{s}/finish",
        {"finished_at": "yesterday"},
        "finished_at",
    ),
    "POST /sessions/prune": (
        "POST",
        "/sessions/prune",
        {"older_than_days": "90"},
        "older_than_days",
    ),
    "POST /sessions/{session_id}/messages": (
        "POST",
        "/sessions/{s}/messages",
        {"messages": [{"role": "narrator"}]},
        "messages.0.role",
    ),
    "GET /sessions/{session_id}/messages": (
        "GET",
        "/sessions/{s}/messages?cursor=forged",
        None,
        "cursor",
    ),
    "POST /sessions/{session_id}/checkpoints": (
        "POST",
        "/sessions/{s}/checkpoints",
        {"created_at": 5},
        "created_at",
    ),
    "GET /sessions/{session_id}/checkpoints": (
        "GET",
        "/sessions/{s}/checkpoints?limit=-1",
        None,
        "limit",
    ),
    "GET /sessions/{session_id}/checkpoints/latest": (
        "GET",
        "/sessions/nope/checkpoints/latest",
        None,
        "session_id",
    ),
    "GET /messages": ("GET", "/messages?role=narrator", None, "role"),
    "GET /messages/{message_id}": ("GET", "/messages/abc", None, "message_id"),
    "GET /tool-calls": ("GET", "/tool-calls?created_before=soon", None, "created_before"),
    "GET /tool-calls/errors": ("GET", "/tool-calls/errors?since=0", None, "since"),
    "GET /tool-calls/{tool_call_id}": ("GET", "/tool-calls/0", None, "tool_call_id"),
    "PATCH /tool-calls/{tool_call_id}": (
        "PATCH",
        "/tool-calls/{t}",
        {"duration_ms": -1},
        "duration_ms",
    ),
    "POST /memories": ("POST", "/memories", {"name": "x", "access": "all"}, "access"),
    "GET /memories": ("GET", "/memories?read_mode=aloud", None, "read_mode"),
    "GET /memories/by-name": ("GET", "/memories/by-name?agent=x", None, "name"),
    "GET /memories/{memory_id}": ("GET", "/memories/nope", None, "memory_id"),
    "PATCH /memories/{memory_id}": ("PATCH", "/memories/{m}", {"name": "new"}, "name"),
    "DELETE /memories/{memory_id}": ("DELETE", "/memories/nope", None, "memory_id"),
    "GET /stats": ("GET", "/stats?days=abc", None, "days"),
    "POST /threads/checkpoints": (
        "POST",
        "/threads/checkpoints",
        {**THREAD, "checkpoint_id": "1", "checkpoint": {"type": "json", "data": "e30"}},
        "checkpoint.data",
    ),
    "DELETE /sessions/{session_id}/messages/last": (
        "DELETE",
        "/sessions/nope/messages/last",
        None,
        "session_id",
    ),
    "DELETE /sessions/{session_id}/messages": (
        "DELETE",
        "/sessions/nope/messages",
        None,
        "session_id",
    ),
    "GET /sessions/{session_id}/payloads": (
        "GET",
        "/sessions/{s}/payloads?last=-1",
        None,
        "last",
    ),
    "POST /threads/writes": (
        "POST",
        "/threads/writes",
        {**THREAD, "checkpoint_id": "0001", "task_id": "t", "writes": [{"idx": "x"}]},
        "writes.0.idx",
    ),
    "GET /threads/checkpoint": ("GET", "/threads/checkpoint?agent=support-bot", None, "thread_id"),
    "GET /threads/checkpoints": (
        "GET",
        "/threads/checkpoints?agent=support-bot&metadata=[]",
        None,
        "metadata",
    ),
    "POST /threads/delete": ("POST", "/threads/delete", {"agent": "support-bot"}, "thread_id"),
    "POST /threads/delete-for-runs": (
        "POST",
        "/threads/delete-for-runs",
        {"agent": "support-bot", "run_ids": "run-1"},
        "run_ids",
    ),
    "POST /threads/copy": ("POST", "/threads/copy", {**THREAD}, "source_thread_id"),
    "POST /threads/prune": (
        "POST",
        "/threads/prune",
        {"agent": "support-bot", "thread_ids": [], "strategy": "half"},
        "strategy",
    ),
}

# label -> (method, path, body) naming a record that does not exist
MISSING_RECORD = {
    "POST /sessions/prune": ("POST", "/sessions/prune", {"older_than_days": 1, "agent": "nobody"}),
    "GET /users/{ref}": ("GET", "/users/nobody@example.com", None),
    "PATCH /users/{ref}": ("PATCH", "/users/999999", {"name": "x"}),
    "DELETE /users/{ref}": ("DELETE", "/users/999999", None),
    "GET /agents/{ref}": ("GET", "/agents/nobody", None),
    "PATCH /agents/{ref}": ("PATCH", "/agents/nobody", {"version": "2"}),
    "DELETE /agents/{ref}": ("DELETE", "/agents/nobody", None),
    "GET /agents/{ref}/stats": ("GET", "/agents/nobody/stats", None),
    "POST /sessions": ("POST", "/sessions", {"agent": "nobody"}),
    "GET /sessions": ("GET", "/sessions?agent=nobody", None),
    "GET /sessions/{session_id}": ("GET", f"/sessions/{MISSING}", None),
    "PATCH /sessions/{session_id}": ("PATCH", f"/sessions/{MISSING}", {"name": "x"}),
    "DELETE /sessions/{session_id}": ("DELETE", f"/sessions/{MISSING}", None),
    "POST /sessions/{session_id}/finish": ("POST", f"/sessions/{MISSING}/finish", None),
    "POST /sessions/{session_id}/messages": (
        "POST",
        f"/sessions/{MISSING}/messages",
        {"messages": [{"role": "user"}]},
    ),
    "GET /sessions/{session_id}/messages": ("GET", f"/sessions/{MISSING}/messages", None),
    "POST /sessions/{session_id}/checkpoints": ("POST", f"/sessions/{MISSING}/checkpoints", {}),
    "GET /sessions/{session_id}/checkpoints": ("GET", f"/sessions/{MISSING}/checkpoints", None),
    "GET /sessions/{session_id}/checkpoints/latest": (
        "GET",
        f"/sessions/{MISSING}/checkpoints/latest",
        None,
    ),
    "GET /messages": ("GET", "/messages?agent=nobody", None),
    "GET /messages/{message_id}": ("GET", "/messages/999999", None),
    "GET /tool-calls": ("GET", "/tool-calls?agent=nobody", None),
    "GET /tool-calls/errors": ("GET", "/tool-calls/errors?agent=nobody", None),
    "GET /tool-calls/{tool_call_id}": ("GET", "/tool-calls/999999", None),
    "PATCH /tool-calls/{tool_call_id}": ("PATCH", "/tool-calls/999999", {"state": "completed"}),
    "POST /memories": ("POST", "/memories", {"name": "x", "user": "nobody@example.com"}),
    "GET /memories": ("GET", "/memories?user=nobody@example.com", None),
    "GET /memories/by-name": ("GET", "/memories/by-name?name=nothing", None),
    "GET /memories/{memory_id}": ("GET", f"/memories/{MISSING}", None),
    "PATCH /memories/{memory_id}": ("PATCH", f"/memories/{MISSING}", {"content": "x"}),
    "DELETE /memories/{memory_id}": ("DELETE", f"/memories/{MISSING}", None),
    "GET /stats": ("GET", "/stats?agent=nobody", None),
    "DELETE /sessions/{session_id}/messages/last": (
        "DELETE",
        f"/sessions/{MISSING}/messages/last",
        None,
    ),
    "DELETE /sessions/{session_id}/messages": ("DELETE", f"/sessions/{MISSING}/messages", None),
    "GET /sessions/{session_id}/payloads": ("GET", f"/sessions/{MISSING}/payloads", None),
    "POST /threads/checkpoints": (
        "POST",
        "/threads/checkpoints",
        {**NOBODY, "checkpoint_id": "1", "checkpoint": {"type": "json", "data": "e30="}},
    ),
    "POST /threads/writes": (
        "POST",
        "/threads/writes",
        {**NOBODY, "checkpoint_id": "1", "task_id": "t", "writes": []},
    ),
    "GET /threads/checkpoint": ("GET", "/threads/checkpoint?agent=nobody&thread_id=t", None),
    "GET /threads/checkpoints": ("GET", "/threads/checkpoints?agent=nobody", None),
    "POST /threads/delete": ("POST", "/threads/delete", NOBODY),
    "POST /threads/delete-for-runs": (
        "POST",
        "/threads/delete-for-runs",
        {"agent": "nobody", "run_ids": []},
    ),
    "POST /threads/copy": (
        "POST",
        "/threads/copy",
        {"agent": "support-bot", "source_thread_id": "none", "target_thread_id": "t2"},
    ),
    "POST /threads/prune": ("POST", "/threads/prune", {"agent": "nobody", "thread_ids": []}),
}
# Upserts and unfiltered lists name no record, so they cannot miss one.
CANNOT_MISS = {"POST /users", "GET /users", "POST /agents", "GET /agents"}


@pytest.fixture
def world(db: None) -> World:
    return make_world()


def _fill(path: str, w: World) -> str:
    return path.format(u=w.user.pk, a=w.agent.pk, s=w.session.pk, t=w.tool_call.pk, m=w.memory.pk)


def test_it_has_a_case_for_every_operation():
    assert set(INVALID) == set(LABELS)
    assert set(MISSING_RECORD) | CANNOT_MISS == set(LABELS)


@pytest.mark.parametrize("label", LABELS)
def test_it_answers_422_with_the_field_path(world: World, api: ApiClient, label: str):
    method, path, body, field = INVALID[label]
    error = assert_error(api.request(method, _fill(path, world), body), 422, field)
    assert error["code"] == "invalid"


@pytest.mark.parametrize("label", sorted(MISSING_RECORD))
def test_it_answers_404_for_a_missing_record(world: World, api: ApiClient, label: str):
    method, path, body = MISSING_RECORD[label]
    error = assert_error(api.request(method, path, body), 404)
    assert error["code"] == "not_found"
