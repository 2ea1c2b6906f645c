"""Reads for memories."""

from __future__ import annotations

from django.db.models import QuerySet

from agents.models import Agent, User
from config.errors import NotFound
from memories.models import Memory


def memory_list(
    *,
    agent: Agent | int | None = None,
    user: User | int | None = None,
    session: object | None = None,
    read_mode: str | None = None,
) -> QuerySet[Memory]:
    """Memories, most recently changed first, filtered by any part of their scope."""
    memories = Memory.objects.select_related("agent", "user")
    if agent is not None:
        memories = memories.filter(agent=agent)
    if user is not None:
        memories = memories.filter(user=user)
    if session is not None:
        memories = memories.filter(session=session)
    if read_mode:
        memories = memories.filter(read_mode=read_mode)
    return memories


def memory_get_by_name(*, name: str, agent: Agent | None, user: User | None) -> Memory:
    """The memory called `name` in exactly this (agent, user) scope."""
    memory = Memory.objects.in_scope(agent=agent, user=user).filter(name=name).first()
    if memory is None:
        raise NotFound(f"No memory {name!r} in this scope.")
    return memory


def memory_get(*, memory_id: object) -> Memory | None:
    """One memory with its agent, user and session, or None."""
    return Memory.objects.select_related("agent", "user", "session").filter(pk=memory_id).first()
