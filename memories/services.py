"""Writes for memories."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.models import Agent, User
from config.errors import InvalidInput
from memories.models import Access, Memory, ReadMode
from sessions_app.models import Session

MEMORY_FIELDS = ("description", "content", "session", "read_mode", "access", "metadata")


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


@transaction.atomic
def memory_upsert(
    *, name: str, agent: Agent | None = None, user: User | None = None, **fields: Any
) -> tuple[Memory, bool]:
    """Create the memory `name` in the (agent, user) scope, or update the one already there."""
    name = name.strip()
    if not name:
        raise InvalidInput("name is required.", field="name")
    _check(fields)
    session: Session | None = fields.get("session")
    if session is not None and agent is not None and session.agent_id != agent.pk:
        raise InvalidInput("The session belongs to another agent.", field="session")
    memory = (
        Memory.objects.select_for_update()
        .in_scope(agent=agent, user=user)
        .filter(name=name)
        .first()
    )
    if memory is None:
        memory = Memory.objects.create(name=name, agent=agent, user=user, **fields)
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
    changed = [k for k, v in fields.items() if getattr(memory, k) != v]
    for key in changed:
        setattr(memory, key, fields[key])
    if changed:
        memory.save(update_fields=[*changed, "updated_at"])
    return memory


def memory_delete(*, memory: Memory) -> None:
    """Forget a memory."""
    memory.delete()
