"""Writes for memories."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.models import Agent, User
from config.errors import InvalidInput
from memories.models import Access, Memory, ReadMode
from sessions_app.models import Session

MEMORY_FIELDS = ("description", "content", "source_session", "read_mode", "access", "metadata")


def _check(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(MEMORY_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=min(unknown))
    if "read_mode" in fields and fields["read_mode"] not in ReadMode.values:
        raise InvalidInput(
            f"read_mode must be one of {', '.join(ReadMode.values)}.", field="read_mode"
        )
    if "access" in fields and fields["access"] not in Access.values:
        raise InvalidInput(f"access must be one of {', '.join(Access.values)}.", field="access")


def _check_scope(
    *, agent: Agent | None, user: User | None, session: Session | None, fields: dict[str, Any]
) -> None:
    source: Session | None = fields.get("source_session")
    if session is not None:
        if agent is not None or user is not None:
            raise InvalidInput(
                "A session's memory belongs to the session alone: leave agent and user out, "
                "or leave session out and name it as source_session.",
                field="agent" if agent is not None else "user",
            )
        if source is not None:
            raise InvalidInput(
                "A session's memory comes from its own session: source_session is for "
                "memories of other scopes.",
                field="source_session",
            )
    if source is not None and agent is not None and source.agent_id != agent.pk:
        raise InvalidInput("The session belongs to another agent.", field="source_session")


@transaction.atomic
def memory_upsert(
    *,
    name: str,
    agent: Agent | None = None,
    user: User | None = None,
    session: Session | None = None,
    **fields: Any,
) -> tuple[Memory, bool]:
    """Create the memory `name` in its scope (a session's own, or an (agent, user) pair's), or
    update the one already there."""
    name = name.strip()
    if not name:
        raise InvalidInput("name is required.", field="name")
    _check(fields)
    _check_scope(agent=agent, user=user, session=session, fields=fields)
    memory = (
        Memory.objects.select_for_update()
        .in_scope(agent=agent, user=user, session=session)
        .filter(name=name)
        .first()
    )
    if memory is None:
        memory = Memory.objects.create(name=name, agent=agent, user=user, session=session, **fields)
        return memory, True
    changed = [k for k, v in fields.items() if getattr(memory, k) != v]
    for key in changed:
        setattr(memory, key, fields[key])
    if changed:
        memory.save(update_fields=[*changed, "updated_at"])
    return memory, False


@transaction.atomic
def memory_update(*, memory: Memory, **fields: Any) -> Memory:
    """Change a memory's content or settings; its name and scope stay."""
    _check(fields)
    _check_scope(agent=memory.agent, user=memory.user, session=memory.session, fields=fields)
    changed = [k for k, v in fields.items() if getattr(memory, k) != v]
    for key in changed:
        setattr(memory, key, fields[key])
    if changed:
        memory.save(update_fields=[*changed, "updated_at"])
    return memory


def memory_delete(*, memory: Memory) -> None:
    """Forget a memory."""
    memory.delete()
