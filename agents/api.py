"""API for end users and agents: upserts by natural key, lists, changes, deletes, agent stats."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status

from agents.api_auth import WRITE_AUTH
from agents.models import Agent, User
from agents.selectors import agent_get, agent_list, end_user_get, end_user_list
from agents.services import (
    agent_delete,
    agent_update,
    agent_upsert,
    user_delete,
    user_update,
    user_upsert,
)
from config.api_schemas import (
    NO_NUL,
    WRITE,
    DeletedOut,
    Email,
    Flag,
    InputSchema,
    JsonObject,
    Moment,
    Name,
    PageQuery,
    paged,
    responses,
    text,
)
from sessions_app.schemas import StatsOut, StatsQuery
from sessions_app.selectors import activity_stats

users_router = Router()
agents_router = Router()

# A user is named by id or email, an agent by id or name, in the path.
UserRef = Path(..., max_length=254, pattern=NO_NUL, description="The user's id or email.")
AgentRef = Path(..., max_length=200, pattern=NO_NUL, description="The agent's id or name.")


# --- users -----------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    email: str
    name: str
    phone_number: str
    user_data: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class UserUpsertIn(InputSchema):
    email: Email
    name: text(200) = None
    phone_number: text(32) = None
    user_data: JsonObject = None


class UserPatchIn(InputSchema):
    email: Email = None
    name: text(200) = None
    phone_number: text(32) = None
    user_data: JsonObject = None


class UserQuery(PageQuery):
    email: Email | None = None
    created_after: Moment | None = None
    created_before: Moment | None = None


class UserPage(Schema):
    items: list[UserOut]
    next_cursor: str | None


def _set_fields(payload: Schema) -> dict[str, Any]:
    return payload.model_dump(exclude_unset=True)


@users_router.post(
    "",
    response=responses({200: UserOut, 201: UserOut}, WRITE),
    auth=WRITE_AUTH,
    summary="Create an end user, or update the one with this email",
)
def user_upsert_op(request: HttpRequest, payload: UserUpsertIn) -> Status[User]:
    fields = _set_fields(payload)
    user, created = user_upsert(email=fields.pop("email"), **fields)
    return Status(201 if created else 200, user)


@users_router.get("", response=responses({200: UserPage}), summary="List end users, newest first")
def user_list_op(request: HttpRequest, query: Query[UserQuery]) -> dict[str, Any]:
    users = end_user_list(
        email=query.email or "",
        created_after=query.created_after,
        created_before=query.created_before,
    )
    return paged(users, ordering=("-created_at", "-id"), query=query)


@users_router.get("/{ref}", response=responses({200: UserOut}, 404), summary="Get an end user")
def user_get_op(request: HttpRequest, ref: str = UserRef) -> User:
    return end_user_get(ref=ref)


@users_router.patch(
    "/{ref}",
    response=responses({200: UserOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Change an end user",
)
def user_update_op(request: HttpRequest, payload: UserPatchIn, ref: str = UserRef) -> User:
    return user_update(user=end_user_get(ref=ref), **_set_fields(payload))


@users_router.delete(
    "/{ref}",
    response=responses({204: None}, 404, 409),
    auth=WRITE_AUTH,
    summary="Delete an end user (their sessions stay, without a user)",
)
def user_delete_op(request: HttpRequest, ref: str = UserRef) -> Status[None]:
    user_delete(user=end_user_get(ref=ref))
    return Status(204, None)


# --- agents ----------------------------------------------------------------------------------


class AgentOut(Schema):
    id: int
    name: str
    type: str
    model: str
    description: str
    config: dict[str, Any]
    system_prompt: str
    version: str
    active: bool
    run_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


class AgentFieldsIn(InputSchema):
    type: text(100) = None
    model: text(200) = None
    description: text() = None
    config: JsonObject = None
    system_prompt: text() = None
    version: text(100) = None
    active: Flag = None
    run_id: text(200) = None


class AgentUpsertIn(AgentFieldsIn):
    name: Name


class AgentPatchIn(AgentFieldsIn):
    name: Name = None


class AgentQuery(PageQuery):
    active_only: bool = False


class AgentPage(Schema):
    items: list[AgentOut]
    next_cursor: str | None


@agents_router.post(
    "",
    response=responses({200: AgentOut, 201: AgentOut}, WRITE),
    auth=WRITE_AUTH,
    summary="Create the agent with this name, or update it",
)
def agent_upsert_op(request: HttpRequest, payload: AgentUpsertIn) -> Status[Agent]:
    fields = _set_fields(payload)
    agent, created = agent_upsert(name=fields.pop("name"), **fields)
    return Status(201 if created else 200, agent)


@agents_router.get("", response=responses({200: AgentPage}), summary="List agents by name")
def agent_list_op(request: HttpRequest, query: Query[AgentQuery]) -> dict[str, Any]:
    return paged(agent_list(active_only=query.active_only), ordering=("name",), query=query)


@agents_router.get(
    "/{ref}", response=responses({200: AgentOut}, 404), summary="Get an agent by id or name"
)
def agent_get_op(request: HttpRequest, ref: str = AgentRef) -> Agent:
    return agent_get(ref=ref)


@agents_router.patch(
    "/{ref}",
    response=responses({200: AgentOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Change an agent (a rename keeps its data)",
)
def agent_update_op(request: HttpRequest, payload: AgentPatchIn, ref: str = AgentRef) -> Agent:
    return agent_update(agent=agent_get(ref=ref), **_set_fields(payload))


@agents_router.delete(
    "/{ref}",
    response=responses({200: DeletedOut}, 404, 409),
    auth=WRITE_AUTH,
    summary="Delete an agent with all its sessions, messages, tool calls and memories",
)
def agent_delete_op(request: HttpRequest, ref: str = AgentRef) -> dict[str, Any]:
    return {"deleted": agent_delete(agent=agent_get(ref=ref))}


@agents_router.get(
    "/{ref}/stats",
    response=responses({200: StatsOut}, 404),
    summary="An agent's totals, tool calls by state, success rate and per-day series",
)
def agent_stats_op(
    request: HttpRequest, query: Query[StatsQuery], ref: str = AgentRef
) -> dict[str, Any]:
    agent = agent_get(ref=ref)
    return {"agent": agent.pk, **activity_stats(agent=agent.pk, days=query.days)}
