"""API for memories: upsert by name in a scope (global, agent, user, agent + user, or one
session), get, get by name in its scope, list, change."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from agents.api_auth import WRITE_AUTH
from agents.models import Agent, User
from agents.selectors import agent_get, end_user_get
from config.api_schemas import (
    NO_NUL,
    WRITE,
    InputSchema,
    JsonObject,
    Name,
    PageQuery,
    paged,
    responses,
    text,
)
from config.errors import NotFound
from memories.models import Access, Memory, ReadMode, Scope
from memories.selectors import memory_get, memory_get_by_name, memory_list
from memories.services import memory_delete, memory_update, memory_upsert
from sessions_app.models import Session
from sessions_app.selectors import session_get

router = Router()

ReadModeName = Literal["system_prompt", "tool"]
AccessName = Literal["read_write", "read_only"]
ScopeName = Literal["global", "agent", "user", "agent_user", "session"]
assert set(ReadModeName.__args__) == set(ReadMode.values)
assert set(AccessName.__args__) == set(Access.values)
assert set(ScopeName.__args__) == set(Scope.values)

AgentRef = Field(default=None, max_length=200, pattern=NO_NUL, description="An agent's id or name.")
UserRef = Field(default=None, max_length=254, pattern=NO_NUL, description="A user's id or email.")


class MemoryOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    content: str
    agent: int | None
    agent_name: str | None
    user: int | None
    user_email: str | None
    session: uuid.UUID | None
    source_session: uuid.UUID | None
    scope: ScopeName
    read_mode: ReadModeName
    access: AccessName
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_agent(obj: Memory) -> int | None:
        return obj.agent_id

    @staticmethod
    def resolve_agent_name(obj: Memory) -> str | None:
        return obj.agent.name if obj.agent_id else None

    @staticmethod
    def resolve_user(obj: Memory) -> int | None:
        return obj.user_id

    @staticmethod
    def resolve_user_email(obj: Memory) -> str | None:
        return obj.user.email if obj.user_id else None

    @staticmethod
    def resolve_session(obj: Memory) -> uuid.UUID | None:
        return obj.session_id

    @staticmethod
    def resolve_source_session(obj: Memory) -> uuid.UUID | None:
        return obj.source_session_id

    @staticmethod
    def resolve_scope(obj: Memory) -> str:
        return obj.scope.value


class MemoryPage(Schema):
    items: list[MemoryOut]
    next_cursor: str | None


class MemoryFieldsIn(InputSchema):
    description: text() = None
    content: text() = None
    source_session: uuid.UUID | None = Field(
        default=None,
        description="The session a memory of another scope came from; deleting that session "
        "only clears this link.",
    )
    read_mode: ReadModeName = None
    access: AccessName = None
    metadata: JsonObject = None


class MemoryUpsertIn(MemoryFieldsIn):
    name: Name
    agent: text(200, min_length=1) | None = Field(
        default=None, description="The agent's id or name; none for every agent."
    )
    user: text(254, min_length=1) | None = Field(
        default=None, description="The end user's id or email; none for every user."
    )
    session: uuid.UUID | None = Field(
        default=None,
        description="The session whose own memory this is (its scope; no agent or user then). "
        "It is deleted with the session.",
    )


class MemoryQuery(PageQuery):
    agent: str | None = AgentRef
    user: str | None = UserRef
    session: uuid.UUID | None = Field(
        default=None, description="The session's own memories and those that came from it."
    )
    read_mode: ReadModeName | None = None


class MemoryByNameQuery(Schema):
    name: Name
    agent: str | None = AgentRef
    user: str | None = UserRef
    session: uuid.UUID | None = Field(
        default=None, description="A session, for its own memories (then no agent or user)."
    )


def _agent(ref: str | None) -> Agent | None:
    return None if ref is None else agent_get(ref=ref)


def _user(ref: str | None) -> User | None:
    return None if ref is None else end_user_get(ref=ref)


def _fields(payload: Schema, *exclude: str) -> dict[str, Any]:
    fields = payload.model_dump(exclude_unset=True, exclude=set(exclude))
    for key in ("session", "source_session"):
        if key in fields:
            sid = fields[key]
            fields[key] = session_get(session_id=sid) if sid is not None else None
    return fields


def _memory(memory_id: uuid.UUID) -> Memory:
    memory = memory_get(memory_id=memory_id)
    if memory is None:
        raise NotFound(f"No memory {memory_id}.")
    return memory


@router.post(
    "",
    response=responses({200: MemoryOut, 201: MemoryOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Create the memory with this name in its scope, or update it",
)
def memory_upsert_op(request: HttpRequest, payload: MemoryUpsertIn) -> Status[Memory]:
    memory, created = memory_upsert(
        name=payload.name,
        agent=_agent(payload.agent),
        user=_user(payload.user),
        **_fields(payload, "name", "agent", "user"),
    )
    return Status(201 if created else 200, memory)


@router.get(
    "",
    response=responses({200: MemoryPage}, 404),
    summary="List memories, most recently changed first",
)
def memory_list_op(request: HttpRequest, query: Query[MemoryQuery]) -> dict[str, Any]:
    session: Session | None = None
    if query.session is not None:
        session = session_get(session_id=query.session)
    memories = memory_list(
        agent=_agent(query.agent),
        user=_user(query.user),
        session=session,
        read_mode=query.read_mode,
    )
    return paged(memories, ordering=("-updated_at", "-id"), query=query)


@router.get(
    "/by-name",
    response=responses({200: MemoryOut}, 404),
    summary="The memory called `name` in exactly this scope",
)
def memory_by_name_op(request: HttpRequest, query: Query[MemoryByNameQuery]) -> Memory:
    session = session_get(session_id=query.session) if query.session is not None else None
    return memory_get_by_name(
        name=query.name, agent=_agent(query.agent), user=_user(query.user), session=session
    )


@router.get("/{memory_id}", response=responses({200: MemoryOut}, 404), summary="Get a memory")
def memory_get_op(request: HttpRequest, memory_id: uuid.UUID) -> Memory:
    return _memory(memory_id)


@router.patch(
    "/{memory_id}",
    response=responses({200: MemoryOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Change a memory's content or settings (its name and scope stay)",
)
def memory_update_op(request: HttpRequest, memory_id: uuid.UUID, payload: MemoryFieldsIn) -> Memory:
    return memory_update(memory=_memory(memory_id), **_fields(payload))


@router.delete(
    "/{memory_id}",
    response=responses({204: None}, 404, 409),
    auth=WRITE_AUTH,
    summary="Forget a memory",
)
def memory_delete_op(request: HttpRequest, memory_id: uuid.UUID) -> Status[None]:
    memory_delete(memory=_memory(memory_id))
    return Status(204, None)
