"""Every API operation with a request that succeeds on the `world` fixture's data.

test_auth walks this table for the rules every operation obeys (401, 403, revoked, expired);
test_schema checks that the table names every operation the schema has, so none is missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.models import Agent, User
from memories.models import Memory
from sessions_app.models import Session, ToolCall
from sessions_app.services import checkpoint_save
from sessions_app.thread_services import checkpoint_put, thread_get_or_start
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, UserFactory, conversation


@dataclass(frozen=True)
class World:
    agent: Agent
    user: User
    session: Session
    tool_call: ToolCall
    memory: Memory


def make_world() -> World:
    agent = AgentFactory(name="support-bot")
    user = UserFactory(email="customer@example.com")
    session = SessionFactory(agent=agent, user=user)
    conversation(session, turns=2, failing=1)
    checkpoint_save(session_id=session.pk, type="state", data={"step": 2})
    memory = MemoryFactory(name="preferences", agent=agent, user=user)
    checkpoint_put(
        session=thread_get_or_start(agent=agent.name, thread_id="thread-1"),
        checkpoint_ns="",
        checkpoint_id="0001",
        parent_checkpoint_id="",
        state_type="json",
        state=b'{"step": 1}',
        metadata={"source": "loop", "step": 1, "run_id": "run-1"},
    )
    return World(agent, user, session, ToolCall.objects.get(session=session, is_error=True), memory)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the schema's path
    path: str  # with the world's ids filled in
    body: Any
    ok: int

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


THREAD = {"agent": "support-bot", "thread_id": "thread-1"}


def operations(w: World) -> list[Operation]:
    s, a, u = w.session.pk, w.agent.pk, w.user.pk
    message = w.tool_call.message_id
    return [
        Operation("POST", "/users", "/users", {"email": "new@example.com"}, 201),
        Operation("GET", "/users", "/users", None, 200),
        Operation("GET", "/users/{ref}", f"/users/{u}", None, 200),
        Operation("PATCH", "/users/{ref}", f"/users/{u}", {"name": "Ada"}, 200),
        Operation("DELETE", "/users/{ref}", f"/users/{u}", None, 204),
        Operation("POST", "/agents", "/agents", {"name": "triage-bot"}, 201),
        Operation("GET", "/agents", "/agents", None, 200),
        Operation("GET", "/agents/{ref}", f"/agents/{a}", None, 200),
        Operation("PATCH", "/agents/{ref}", f"/agents/{a}", {"version": "2"}, 200),
        Operation("DELETE", "/agents/{ref}", f"/agents/{a}", None, 200),
        Operation("GET", "/agents/{ref}/stats", f"/agents/{a}/stats", None, 200),
        Operation("POST", "/sessions", "/sessions", {"agent": "support-bot"}, 201),
        Operation("GET", "/sessions", "/sessions", None, 200),
        Operation("GET", "/sessions/{session_id}", f"/sessions/{s}", None, 200),
        Operation("PATCH", "/sessions/{session_id}", f"/sessions/{s}", {"name": "renamed"}, 200),
        Operation("DELETE", "/sessions/{session_id}", f"/sessions/{s}", None, 200),
        Operation("POST", "/sessions/{session_id}/finish", f"/sessions/{s}/finish", None, 200),
        Operation("POST", "/sessions/prune", "/sessions/prune", {"older_than_days": 3650}, 200),
        Operation(
            "POST",
            "/sessions/{session_id}/messages",
            f"/sessions/{s}/messages",
            {"messages": [{"role": "user", "text_content": "hi"}]},
            201,
        ),
        Operation("GET", "/sessions/{session_id}/messages", f"/sessions/{s}/messages", None, 200),
        Operation(
            "DELETE",
            "/sessions/{session_id}/messages/last",
            f"/sessions/{s}/messages/last",
            None,
            200,
        ),
        Operation(
            "DELETE", "/sessions/{session_id}/messages", f"/sessions/{s}/messages", None, 200
        ),
        Operation(
            "GET", "/sessions/{session_id}/payloads", f"/sessions/{s}/payloads?last=2", None, 200
        ),
        Operation(
            "POST",
            "/sessions/{session_id}/checkpoints",
            f"/sessions/{s}/checkpoints",
            {"type": "state", "data": {"step": 3}},
            201,
        ),
        Operation(
            "GET", "/sessions/{session_id}/checkpoints", f"/sessions/{s}/checkpoints", None, 200
        ),
        Operation(
            "GET",
            "/sessions/{session_id}/checkpoints/latest",
            f"/sessions/{s}/checkpoints/latest",
            None,
            200,
        ),
        Operation("GET", "/messages", "/messages", None, 200),
        Operation("GET", "/messages/{message_id}", f"/messages/{message}", None, 200),
        Operation("GET", "/tool-calls", "/tool-calls", None, 200),
        Operation("GET", "/tool-calls/errors", "/tool-calls/errors", None, 200),
        Operation("GET", "/tool-calls/{tool_call_id}", f"/tool-calls/{w.tool_call.pk}", None, 200),
        Operation(
            "PATCH",
            "/tool-calls/{tool_call_id}",
            f"/tool-calls/{w.tool_call.pk}",
            {"state": "completed", "output": {"ok": True}},
            200,
        ),
        Operation("POST", "/memories", "/memories", {"name": "tone", "agent": "support-bot"}, 201),
        Operation("GET", "/memories", "/memories", None, 200),
        Operation(
            "GET",
            "/memories/by-name",
            f"/memories/by-name?name=preferences&agent={a}&user={u}",
            None,
            200,
        ),
        Operation("GET", "/memories/{memory_id}", f"/memories/{w.memory.pk}", None, 200),
        Operation(
            "PATCH", "/memories/{memory_id}", f"/memories/{w.memory.pk}", {"content": "x"}, 200
        ),
        Operation("DELETE", "/memories/{memory_id}", f"/memories/{w.memory.pk}", None, 204),
        Operation("GET", "/stats", "/stats", None, 200),
        Operation(
            "POST",
            "/threads/checkpoints",
            "/threads/checkpoints",
            {**THREAD, "checkpoint_id": "0002", "checkpoint": {"type": "json", "data": "e30="}},
            201,
        ),
        Operation(
            "POST",
            "/threads/writes",
            "/threads/writes",
            {**THREAD, "checkpoint_id": "0001", "task_id": "t", "writes": []},
            200,
        ),
        Operation(
            "GET",
            "/threads/checkpoint",
            "/threads/checkpoint?agent=support-bot&thread_id=thread-1",
            None,
            200,
        ),
        Operation(
            "GET", "/threads/checkpoints", "/threads/checkpoints?agent=support-bot", None, 200
        ),
        Operation("POST", "/threads/delete", "/threads/delete", THREAD, 200),
        Operation(
            "POST",
            "/threads/delete-for-runs",
            "/threads/delete-for-runs",
            {"agent": "support-bot", "run_ids": ["run-1"]},
            200,
        ),
        Operation(
            "POST",
            "/threads/copy",
            "/threads/copy",
            {"agent": "support-bot", "source_thread_id": "thread-1", "target_thread_id": "t2"},
            200,
        ),
        Operation(
            "POST",
            "/threads/prune",
            "/threads/prune",
            {"agent": "support-bot", "thread_ids": ["thread-1"]},
            200,
        ),
    ]


# The table needs a database to fill in ids; for parametrising, its labels are enough.
LABELS = [
    "POST /users", "GET /users", "GET /users/{ref}", "PATCH /users/{ref}",
    "DELETE /users/{ref}", "POST /agents", "GET /agents", "GET /agents/{ref}",
    "PATCH /agents/{ref}", "DELETE /agents/{ref}", "GET /agents/{ref}/stats", "POST /sessions",
    "GET /sessions", "GET /sessions/{session_id}", "PATCH /sessions/{session_id}",
    "DELETE /sessions/{session_id}", "POST /sessions/{session_id}/finish", "POST /sessions/prune",
    "POST /sessions/{session_id}/messages", "GET /sessions/{session_id}/messages",
    "POST /sessions/{session_id}/checkpoints", "GET /sessions/{session_id}/checkpoints",
    "GET /sessions/{session_id}/checkpoints/latest", "GET /messages",
    "GET /messages/{message_id}", "GET /tool-calls", "GET /tool-calls/errors",
    "GET /tool-calls/{tool_call_id}", "PATCH /tool-calls/{tool_call_id}", "POST /memories",
    "GET /memories", "GET /memories/by-name", "GET /memories/{memory_id}",
    "PATCH /memories/{memory_id}", "DELETE /memories/{memory_id}", "GET /stats",
    "POST /threads/checkpoints", "POST /threads/writes", "GET /threads/checkpoint",
    "GET /threads/checkpoints", "POST /threads/delete", "POST /threads/delete-for-runs",
    "POST /threads/copy", "POST /threads/prune", "DELETE /sessions/{session_id}/messages/last",
    "DELETE /sessions/{session_id}/messages", "GET /sessions/{session_id}/payloads",
]  # fmt: skip


def operation(w: World, label: str) -> Operation:
    return next(op for op in operations(w) if str(op) == label)


def call(client: Any, op: Operation) -> Any:
    return client.request(op.method, op.path, op.body)


__all__ = ["LABELS", "Operation", "World", "call", "make_world", "operation", "operations"]
