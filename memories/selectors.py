"""Reads for memories."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from agents.models import Agent, User
from config.errors import InvalidInput, NotFound
from memories.models import Memory


def memory_list(
    *,
    agent: Agent | int | None = None,
    user: User | int | None = None,
    session: object | None = None,
    read_mode: str | None = None,
) -> QuerySet[Memory]:
    """Memories, most recently changed first, filtered by any part of their scope; `session`
    gives the session's own memories and those that came from it."""
    memories = Memory.objects.select_related("agent", "user")
    if agent is not None:
        memories = memories.filter(agent=agent)
    if user is not None:
        memories = memories.filter(user=user)
    if session is not None:
        memories = memories.filter(Q(session=session) | Q(source_session=session))
    if read_mode:
        memories = memories.filter(read_mode=read_mode)
    return memories


def memory_get_by_name(
    *, name: str, agent: Agent | None, user: User | None, session: object | None = None
) -> Memory:
    """The memory called `name` in exactly this scope: the session's own, or (without a
    session) this (agent, user) pair's."""
    if session is not None and (agent is not None or user is not None):
        raise InvalidInput(
            "A session's memories belong to the session alone: leave agent and user out.",
            field="agent" if agent is not None else "user",
        )
    memories = Memory.objects.in_scope(agent=agent, user=user, session=session)
    memory = memories.filter(name=name).first()
    if memory is None:
        raise NotFound(f"No memory {name!r} in this scope.")
    return memory


def memory_get(*, memory_id: object) -> Memory | None:
    """One memory with its agent, user and session, or None."""
    memories = Memory.objects.select_related("agent", "user", "session", "source_session")
    return memories.filter(pk=memory_id).first()
