"""Fixtures for the console's view tests: htmx headers and bulk data for the query-count bounds."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from agents.models import Agent
from memories.models import Memory
from sessions_app import rollups
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import Message, Session, ToolCall
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.factories import AgentFactory, SessionFactory, UserFactory

HTMX = {"HX-Request": "true"}
HOSTILE = (
    '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(2)">go</a>'
)
# What must never appear in a page built from HOSTILE: live markup an agent wrote.
LIVE_MARKUP = ("<script>alert", "<img src=x", 'href="javascript:', '<a href="javascript')


def htmx(target: str | None = None) -> dict[str, str]:
    """Headers htmx sends; `target` is the id of the element it will swap."""
    return {**HTMX, "HX-Target": target} if target else dict(HTMX)


def assert_inert(html: str) -> None:
    for markup in LIVE_MARKUP:
        assert markup not in html, f"live markup {markup!r} in the page"
    assert "&lt;script&gt;" in html


def bulk_activity(n: int, *, agent: Agent | None = None, groups: int = 151) -> list[Session]:
    """`n` sessions, each with one message and one tool call (every other one failing, across
    up to `groups` error groups), written in bulk with counters that agree."""
    agent = agent or AgentFactory()
    user = UserFactory()
    now = timezone.now()
    sessions = [
        Session(
            agent=agent,
            user=user,
            name=f"Session {i}",
            platform="web",
            metadata={"channel": "chat"},
            created_at=now - dt.timedelta(minutes=i),
        )
        for i in range(n)
    ]
    Session.objects.bulk_create(sessions)
    messages = Message.objects.bulk_create(
        Message(
            session=s,
            agent=agent,
            seq=0,
            role="assistant",
            content_type="tool_use",
            text_content=f"Calling a tool for {s.name}",
            created_at=s.created_at,
        )
        for s in sessions
    )
    calls = []
    for i, (s, m) in enumerate(zip(sessions, messages, strict=True)):
        failed = i % 2 == 1
        error = f"Tool {i % groups} broke on item {i}" if failed else ""
        calls.append(
            ToolCall(
                session=s,
                agent=agent,
                message=m,
                tool_name=f"tool_{i % groups if failed else 'ok'}",
                input={"i": i},
                output=None if failed else {"ok": True},
                state="failed" if failed else "completed",
                is_error=failed,
                error_message=error,
                error_fingerprint=error_fingerprint(error) if failed else "",
                created_at=s.created_at,
            )
        )
    ToolCall.objects.bulk_create(calls)
    rollups.rows_added(sessions=sessions, messages=messages, tool_calls=calls)
    return sessions


def bulk_group(n: int, *, tool: str = "lookup_order") -> tuple[str, str]:
    """`n` failures of one tool with one fingerprint, each in its own session and message."""
    agent = AgentFactory()
    now = timezone.now()
    sessions = Session.objects.bulk_create(
        Session(
            agent=agent,
            name=f"S{i}",
            created_at=now - dt.timedelta(minutes=i),
        )
        for i in range(n)
    )
    messages = Message.objects.bulk_create(
        Message(session=s, agent=agent, seq=0, role="assistant", created_at=s.created_at)
        for s in sessions
    )
    error = "Order 1234 not found"
    fingerprint = error_fingerprint(error)
    calls = ToolCall.objects.bulk_create(
        ToolCall(
            session=s,
            agent=agent,
            message=m,
            tool_name=tool,
            state="failed",
            is_error=True,
            error_message=error,
            error_fingerprint=fingerprint,
            created_at=s.created_at,
        )
        for s, m in zip(sessions, messages, strict=True)
    )
    rollups.rows_added(sessions=sessions, messages=messages, tool_calls=calls)
    return tool, fingerprint


def long_session(n: int) -> Session:
    """A session of `n` messages through the service, every other one asking for a tool."""
    session = SessionFactory()
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant" if i % 2 else "user",
                text_content=f"Message {i}",
                tool_calls=[
                    ToolCallIn(
                        tool_name="search",
                        call_id=f"c{i}",
                        input={"q": i},
                        state="failed" if i % 4 == 1 else "completed",
                        error_message="Search index 7 offline" if i % 4 == 1 else "",
                    )
                ]
                if i % 2
                else [],
            )
            for i in range(n)
        ],
    )
    session.refresh_from_db()
    return session


def bulk_memories(n: int) -> None:
    agent = AgentFactory()
    user = UserFactory()
    Memory.objects.bulk_create(
        Memory(agent=agent, user=user, name=f"memory-{i}", content=f"Fact {i}") for i in range(n)
    )
