"""API for sessions, their messages and tool calls, checkpoints, and activity stats."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from agents.api_auth import WRITE_AUTH
from agents.models import User
from agents.selectors import agent_get, end_user_get
from config.api import api
from config.api_schemas import (
    INT32_MAX,
    NO_NUL,
    WRITE,
    DeletedOut,
    Flag,
    InputSchema,
    JsonObject,
    JsonValue,
    Moment,
    OutputSchema,
    PageQuery,
    PositiveInt32,
    RowId,
    bounded_int,
    page_size,
    paged,
    responses,
    text,
    web_url,
)
from sessions_app.models import ContentType, Message, Role, Session, ToolCall, ToolCallState
from sessions_app.schemas import StatsOut, StatsQuery
from sessions_app.selectors import (
    SessionFilters,
    activity_stats,
    checkpoint_latest,
    message_get,
    message_list,
    message_tool_calls,
    session_get,
    session_list,
    session_messages,
    tool_call_get,
    tool_call_list,
    tool_error_group_page,
    tool_error_groups,
)
from sessions_app.services import (
    UNLINKED_MEMORIES,
    MessageIn,
    ToolCallIn,
    checkpoint_save,
    message_append,
    message_pop,
    session_delete,
    session_finish,
    session_get_or_start,
    session_messages_clear,
    session_start,
    session_update,
    sessions_prune,
    sessions_prune_counts,
    sessions_to_prune,
    tool_call_finish,
)

sessions_router = Router()
messages_router = Router()
tool_calls_router = Router()
stats_router = Router()

RoleName = Literal["system", "user", "assistant", "tool"]
ContentTypeName = Literal["text", "tool_use", "tool_result"]
StateName = Literal["pending", "approved", "denied", "running", "completed", "failed"]
AgentFilter = Field(
    default=None, max_length=200, pattern=NO_NUL, description="An agent's id or name."
)
UserFilter = Field(
    default=None, max_length=254, pattern=NO_NUL, description="A user's id or email."
)

assert set(RoleName.__args__) == set(Role.values)
assert set(ContentTypeName.__args__) == set(ContentType.values)
assert set(StateName.__args__) == set(ToolCallState.values)


# The console links media: only web addresses, never `javascript:` or `data:` from agent output.
MediaUrl = web_url(2000, "An http(s) URL of the message's media, or empty.")


def _agent_id(ref: str | None) -> int | None:
    """An agent filter: an id is used as is, a name is looked up (404 if there is none)."""
    if ref is None:
        return None
    is_id = ref.isascii() and ref.isdigit() and len(ref) < 19
    return int(ref) if is_id else agent_get(ref=ref).pk


def _user(ref: str | None) -> User | None:
    return None if ref is None else end_user_get(ref=ref)


# --- schemas ---------------------------------------------------------------------------------


class SessionOut(OutputSchema):
    id: uuid.UUID
    agent: int
    agent_name: str
    user: int | None
    user_email: str | None
    name: str
    platform: str
    external_key: str
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    last_activity_at: dt.datetime
    finished_at: dt.datetime | None
    is_active: bool
    message_count: int
    tool_call_count: int
    error_count: int

    @staticmethod
    def resolve_agent(obj: Session) -> int:
        return obj.agent_id

    @staticmethod
    def resolve_agent_name(obj: Session) -> str:
        return obj.agent.name

    @staticmethod
    def resolve_user(obj: Session) -> int | None:
        return obj.user_id

    @staticmethod
    def resolve_user_email(obj: Session) -> str | None:
        return obj.user.email if obj.user_id else None


# A list reads its rows as these columns (`paged(columns=...)`): dicts already shaped like the
# schema, so neither model instances nor the resolvers above are needed for a page.
SESSION_COLUMNS = {
    "id": "id",
    "agent": "agent_id",
    "agent_name": "agent__name",
    "user": "user_id",
    "user_email": "user__email",
    "name": "name",
    "platform": "platform",
    "external_key": "external_key",
    "metadata": "metadata",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "last_activity_at": "last_activity_at",
    "finished_at": "finished_at",
    "is_active": Q(finished_at__isnull=True),
    "message_count": "message_count",
    "tool_call_count": "tool_call_count",
    "error_count": "error_count",
}
assert list(SESSION_COLUMNS) == list(SessionOut.model_fields)


class SessionPage(OutputSchema):
    items: list[SessionOut]
    next_cursor: str | None


class SessionStartIn(InputSchema):
    agent: text(200, min_length=1) = Field(description="The agent's id or name.")
    user: text(254, min_length=1) | None = Field(
        default=None, description="An end user's id or email."
    )
    id: uuid.UUID | None = Field(default=None, description="The runtime's own session id.")
    name: text(300) = ""
    platform: text(100) = ""
    external_key: text(255) = Field(
        default="",
        description="The framework's own id for the conversation (a LangGraph thread_id, an "
        "Agents SDK session_id), unique per agent. With it the call is create-or-fetch: the "
        "agent's session with this key is answered (200) if there is one, else started (201).",
    )
    metadata: JsonObject = Field(default_factory=dict)
    created_at: Moment | None = Field(default=None, description="When it started (imports).")


class SessionPatchIn(InputSchema):
    name: text(300) = None
    platform: text(100) = None
    metadata: JsonObject = None
    user: text(254, min_length=1) | None = Field(
        default=None, description="An end user's id or email; null to clear."
    )


class SessionFinishIn(InputSchema):
    finished_at: Moment | None = None


class PruneIn(InputSchema):
    older_than_days: bounded_int(1, 100_000) = Field(
        description="Delete finished sessions whose finished_at is more than this many days ago."
    )
    agent: text(200, min_length=1) | None = Field(
        default=None, description="Only this agent's sessions (its id or name)."
    )
    dry_run: Flag = Field(default=False, description="Count what would go; delete nothing.")
    batch_size: bounded_int(1, 10_000) = Field(default=200, description="Sessions per transaction.")


PRUNED = (
    "sessions_app.Session",
    "sessions_app.Message",
    "sessions_app.ToolCall",
    "sessions_app.Checkpoint",
    "sessions_app.CheckpointWrite",
    "memories.Memory",
)


class PruneOut(Schema):
    dry_run: bool
    cutoff: dt.datetime
    deleted: dict[str, int]
    unlinked: dict[str, int]


class SessionQuery(PageQuery):
    agent: str | None = AgentFilter
    user: str | None = UserFilter
    platform: text(100) | None = None
    external_key: text(255) | None = Field(
        default=None, description="The framework's own id of the conversation."
    )
    status: Literal["active", "finished"] | None = None
    created_after: Moment | None = None
    created_before: Moment | None = None
    has_errors: bool | None = None


class ToolCallOut(OutputSchema):
    id: int
    session: uuid.UUID
    message: int | None
    call_id: str
    tool_name: str
    input: Any
    output: Any
    state: StateName
    is_error: bool
    error_message: str
    error_fingerprint: str
    approval: dict[str, Any] | None
    duration_ms: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @staticmethod
    def resolve_session(obj: ToolCall) -> uuid.UUID:
        return obj.session_id

    @staticmethod
    def resolve_message(obj: ToolCall) -> int | None:
        return obj.message_id


TOOL_CALL_COLUMNS = {
    "id": "id",
    "session": "session_id",
    "message": "message_id",
    "call_id": "call_id",
    "tool_name": "tool_name",
    "input": "input",
    "output": "output",
    "state": "state",
    "is_error": "is_error",
    "error_message": "error_message",
    "error_fingerprint": "error_fingerprint",
    "approval": "approval",
    "duration_ms": "duration_ms",
    "created_at": "created_at",
    "finished_at": "finished_at",
}
assert list(TOOL_CALL_COLUMNS) == list(ToolCallOut.model_fields)


class MessageOut(OutputSchema):
    id: int
    session: uuid.UUID
    agent: int
    seq: int
    role: RoleName
    content_type: ContentTypeName
    text_content: str
    media_url: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    created_at: dt.datetime

    @staticmethod
    def resolve_session(obj: Message) -> uuid.UUID:
        return obj.session_id

    @staticmethod
    def resolve_agent(obj: Message) -> int:
        return obj.agent_id


MESSAGE_COLUMNS = {
    "id": "id",
    "session": "session_id",
    "agent": "agent_id",
    "seq": "seq",
    "role": "role",
    "content_type": "content_type",
    "text_content": "text_content",
    "media_url": "media_url",
    "model": "model",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "created_at": "created_at",
}
assert list(MESSAGE_COLUMNS) == list(MessageOut.model_fields)


class MessageWithCallsOut(MessageOut):
    tool_calls: list[ToolCallOut]

    @staticmethod
    def resolve_tool_calls(obj: Message) -> list[ToolCall]:
        return list(obj.tool_calls.all())


class MessageDetailOut(MessageWithCallsOut):
    raw: Any


class MessagePage(OutputSchema):
    items: list[MessageOut]
    next_cursor: str | None


class TranscriptPage(OutputSchema):
    items: list[MessageWithCallsOut]
    next_cursor: str | None


class ToolCallBody(InputSchema):
    tool_name: text(200, min_length=1)
    call_id: text(200) = Field(default="", description="The provider's id, unique in a session.")
    input: JsonValue = None
    output: JsonValue = None
    state: StateName = "completed"
    is_error: Flag = False
    error_message: text() = ""
    approval: JsonObject | None = None
    duration_ms: PositiveInt32 | None = None
    created_at: Moment | None = None
    finished_at: Moment | None = None


class MessageBody(InputSchema):
    role: RoleName
    content_type: ContentTypeName = "text"
    text_content: text() = ""
    media_url: MediaUrl = ""
    model: text(200) = ""
    input_tokens: PositiveInt32 | None = None
    output_tokens: PositiveInt32 | None = None
    raw: JsonValue = None
    created_at: Moment | None = Field(default=None, description="The original time (imports).")
    seq: PositiveInt32 | None = Field(
        default=None,
        description="Position in the session. Resending a stored message at its seq is a "
        "no-op; a different message at a taken seq is 409. Omit it to append at the end.",
    )
    tool_calls: list[ToolCallBody] = []


class AppendIn(InputSchema):
    messages: list[MessageBody] = Field(
        description="All stored or none; at most API_MAX_BATCH (1000) messages per request."
    )


class AppendOut(Schema):
    created: int = Field(description="How many messages were new (0 for a replayed batch).")
    items: list[MessageWithCallsOut]


class ToolCallQuery(PageQuery):
    agent: str | None = AgentFilter
    session: uuid.UUID | None = None
    tool_name: text(200) | None = None
    is_error: bool | None = None
    has_approval: bool | None = None
    state: StateName | None = None
    fingerprint: text(300) | None = Field(default=None, description="An error group's key.")
    call_id: text(200) | None = Field(default=None, description="The provider's id.")
    created_after: Moment | None = None
    created_before: Moment | None = None


class ToolCallPage(OutputSchema):
    items: list[ToolCallOut]
    next_cursor: str | None


class ToolCallPatchIn(InputSchema):
    output: JsonValue = None
    error_message: text(min_length=1) | None = Field(
        default=None, description="Marks the call failed."
    )
    state: StateName | None = None
    duration_ms: PositiveInt32 | None = None
    approval: JsonObject | None = None
    finished_at: Moment | None = None


class ErrorGroupQuery(PageQuery):
    agent: str | None = AgentFilter
    tool_name: text(200) | None = None
    since: Moment | None = None
    until: Moment | None = None


class ErrorGroupOut(OutputSchema):
    tool_name: str
    fingerprint: str
    count: int
    sessions: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    sample_message: str


class ErrorGroupPage(OutputSchema):
    items: list[ErrorGroupOut]
    next_cursor: str | None


class CheckpointIn(InputSchema):
    type: text(100) = ""
    data: JsonValue = None
    created_at: Moment | None = None


class CheckpointOut(Schema):
    id: int
    session: uuid.UUID
    type: str
    data: Any
    created_at: dt.datetime
    checkpoint_ns: str = Field(description="A framework checkpoint's namespace (see /threads).")
    checkpoint_id: str = Field(description="A framework checkpoint's id; empty for plain ones.")
    parent_checkpoint_id: str
    metadata: dict[str, Any]

    @staticmethod
    def resolve_session(obj: Any) -> uuid.UUID:
        return obj.session_id


class CheckpointPage(Schema):
    items: list[CheckpointOut]
    next_cursor: str | None


class OverallStatsQuery(StatsQuery):
    agent: str | None = AgentFilter


# --- sessions --------------------------------------------------------------------------------


@sessions_router.post(
    "",
    response=responses({200: SessionOut, 201: SessionOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Start a session of an agent, or with an external key fetch the one it has",
)
def session_start_op(request: HttpRequest, payload: SessionStartIn) -> Status[Session]:
    fields = {
        "user": _user(payload.user),
        "name": payload.name,
        "platform": payload.platform,
        "metadata": payload.metadata,
        "id": payload.id,
        "created_at": payload.created_at,
    }
    agent = agent_get(ref=payload.agent)
    if payload.external_key:
        session, started = session_get_or_start(
            agent=agent, external_key=payload.external_key, **fields
        )
        return Status(201 if started else 200, session)
    return Status(201, session_start(agent=agent, **fields))


@sessions_router.get(
    "",
    response=responses({200: SessionPage}, 404),
    summary="Query sessions, newest first, with their counters",
)
def session_list_op(request: HttpRequest, query: Query[SessionQuery]) -> dict[str, Any]:
    user = _user(query.user)
    filters = SessionFilters(
        agent=_agent_id(query.agent),
        user=user.pk if user else None,
        platform=query.platform or "",
        external_key=query.external_key or "",
        status=query.status or "",
        created_after=query.created_after,
        created_before=query.created_before,
        has_errors=query.has_errors,
    )
    return paged(
        session_list(filters), ordering=("-created_at", "-id"), query=query, columns=SESSION_COLUMNS
    )


@sessions_router.post(
    "/prune",
    response=responses({200: PruneOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Retention: delete finished sessions older than N days, in batches, as `prune` does",
)
def sessions_prune_op(request: HttpRequest, payload: PruneIn) -> dict[str, Any]:
    cutoff = timezone.now() - dt.timedelta(days=payload.older_than_days)
    agent = agent_get(ref=payload.agent) if payload.agent is not None else None
    sessions = sessions_to_prune(cutoff=cutoff, agent=agent)
    if payload.dry_run:
        counts = sessions_prune_counts(sessions)
    else:
        counts = sessions_prune(sessions=sessions, batch_size=payload.batch_size)
    unlinked = counts.pop(UNLINKED_MEMORIES, 0)
    deleted = {label.split(".")[-1].lower(): counts.get(label, 0) for label in PRUNED}
    return {
        "dry_run": payload.dry_run,
        "cutoff": cutoff,
        "deleted": deleted,
        "unlinked": {"memory": unlinked},
    }


@sessions_router.get(
    "/{session_id}",
    response=responses({200: SessionOut}, 404),
    summary="Get a session with its counters",
)
def session_get_op(request: HttpRequest, session_id: uuid.UUID) -> Session:
    return session_get(session_id=session_id)


@sessions_router.patch(
    "/{session_id}",
    response=responses({200: SessionOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Rename a session, change its platform, metadata or user",
)
def session_update_op(
    request: HttpRequest, session_id: uuid.UUID, payload: SessionPatchIn
) -> Session:
    fields = payload.model_dump(exclude_unset=True)
    session = session_get(session_id=session_id)
    user: Any = ...
    if "user" in fields:
        user = _user(fields.pop("user"))
    return session_update(session=session, user=user, **fields)


@sessions_router.post(
    "/{session_id}/finish",
    response=responses({200: SessionOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Finish a session (finishing again keeps the first time)",
)
def session_finish_op(
    request: HttpRequest, session_id: uuid.UUID, payload: SessionFinishIn | None = None
) -> Session:
    at = payload.finished_at if payload else None
    session_finish(session_id=session_id, at=at)
    return session_get(session_id=session_id)


class SessionDeletedOut(DeletedOut):
    """What a session's delete removed, and the memories of other scopes that came from it,
    which stay with their link to it cleared."""

    unlinked: dict[str, int]


@sessions_router.delete(
    "/{session_id}",
    response=responses({200: SessionDeletedOut}, 404, 409),
    auth=WRITE_AUTH,
    summary="Delete a session with its messages, tool calls, checkpoints and its own memories",
)
def session_delete_op(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    return session_delete(session_id=session_id)


# --- messages --------------------------------------------------------------------------------


# The batch append answers with the rows it has just stored, read by the lists' columns rather
# than validated by Ninja against MessageWithCallsOut: validating what was just stored, again,
# would cost more than storing it. A test holds the two renderings equal.
def _tool_call_out(call: ToolCall) -> dict[str, Any]:
    return {name: getattr(call, attname) for name, attname in TOOL_CALL_COLUMNS.items()}


def _message_out(message: Message, calls: list[ToolCall]) -> dict[str, Any]:
    out = {name: getattr(message, attname) for name, attname in MESSAGE_COLUMNS.items()}
    out["tool_calls"] = [_tool_call_out(call) for call in calls]
    return out


def _message_in(message: MessageBody) -> MessageIn:
    # The validated fields as they are (vars(), not model_dump(), which copies every value); the
    # tool calls are converted in turn.
    calls = [ToolCallIn(**vars(call)) for call in message.tool_calls]
    return MessageIn(**{**vars(message), "tool_calls": calls})


@sessions_router.post(
    "/{session_id}/messages",
    response=responses({200: AppendOut, 201: AppendOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Append a batch of messages with their tool calls: all or nothing, idempotent on seq",
)
def message_append_op(
    request: HttpRequest, session_id: uuid.UUID, payload: AppendIn
) -> HttpResponse:
    if len(payload.messages) > settings.API_MAX_BATCH:
        raise HttpError(
            413,
            f"A batch holds at most {settings.API_MAX_BATCH} messages; this one has "
            f"{len(payload.messages)}. Send it in smaller batches.",
        )
    result = message_append(
        session_id=session_id, messages=[_message_in(m) for m in payload.messages]
    )
    items = map(_message_out, result.messages, result.tool_calls)
    body = {"created": result.created, "items": list(items)}
    return api.create_response(request, body, status=201 if result.created else 200)


@sessions_router.get(
    "/{session_id}/messages",
    response=responses({200: TranscriptPage}, 404),
    summary="A session's messages in order, each with its tool calls (inputs and outputs)",
)
def session_messages_op(
    request: HttpRequest, session_id: uuid.UUID, query: Query[PageQuery]
) -> dict[str, Any]:
    session = session_get(session_id=session_id)
    messages = session_messages(session=session)
    page = paged(messages, ordering=("seq",), query=query, columns=MESSAGE_COLUMNS)
    # The page's tool calls in one query, as a prefetch would, but as rows shaped like the schema.
    calls: dict[int, list[dict[str, Any]]] = {message["id"]: [] for message in page["items"]}
    rows = message_tool_calls(message_ids=list(calls))
    for row in rows.values_list(*TOOL_CALL_COLUMNS.values()):
        call = dict(zip(TOOL_CALL_COLUMNS, row, strict=True))
        calls[call["message"]].append(call)
    for message in page["items"]:
        message["tool_calls"] = calls[message["id"]]
    return page


class PoppedOut(Schema):
    message: MessageDetailOut | None = Field(description="The removed message; null if none.")


class ClearedOut(Schema):
    deleted: int = Field(description="How many messages were removed.")


@sessions_router.delete(
    "/{session_id}/messages/last",
    response=responses({200: PoppedOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Remove a session's last message with its tool calls (counters and rollups follow)",
)
def message_pop_op(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    popped = message_pop(session_id=session_id)
    if popped is None:
        return {"message": None}
    message, calls = popped
    return {"message": {**_message_out(message, calls), "raw": message.raw}}


@sessions_router.delete(
    "/{session_id}/messages",
    response=responses({200: ClearedOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Remove every message of a session (seq starts again at 0; counters follow)",
)
def messages_clear_op(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    return {"deleted": session_messages_clear(session_id=session_id)}


class PayloadQuery(PageQuery):
    last: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="Only the last N messages (at most the page size), oldest first.",
    )


class PayloadOut(Schema):
    seq: int
    raw: Any


class PayloadPage(OutputSchema):
    items: list[PayloadOut]
    next_cursor: str | None


@sessions_router.get(
    "/{session_id}/payloads",
    response=responses({200: PayloadPage}, 404),
    summary="A session's provider payloads (raw) in order, or only the last N",
)
def session_payloads_op(
    request: HttpRequest, session_id: uuid.UUID, query: Query[PayloadQuery]
) -> dict[str, Any]:
    session = session_get(session_id=session_id)
    messages = session_messages(session=session)
    columns = {"seq": "seq", "raw": "raw"}
    if query.last is not None:
        size = min(query.last, page_size(query.limit))
        # Served by the (session, seq) unique index, backwards from the end.
        rows = list(messages.order_by("-seq").values("seq", "raw")[:size]) if size else []
        return {"items": rows[::-1], "next_cursor": None}
    return paged(messages, ordering=("seq",), query=query, columns=columns)


class MessageQuery(PageQuery):
    agent: str | None = AgentFilter
    session: uuid.UUID | None = None
    role: RoleName | None = None
    content_type: ContentTypeName | None = None
    created_after: Moment | None = None
    created_before: Moment | None = None


@messages_router.get(
    "",
    response=responses({200: MessagePage}, 404),
    summary="Query messages across sessions, newest first (without provider payloads)",
)
def message_list_op(request: HttpRequest, query: Query[MessageQuery]) -> dict[str, Any]:
    messages = message_list(
        agent=_agent_id(query.agent),
        session=query.session,
        role=query.role or "",
        content_type=query.content_type or "",
        created_after=query.created_after,
        created_before=query.created_before,
    )
    return paged(messages, ordering=("-created_at", "-id"), query=query, columns=MESSAGE_COLUMNS)


@messages_router.get(
    "/{message_id}",
    response=responses({200: MessageDetailOut}, 404),
    summary="One message with its provider payload and tool calls",
)
def message_get_op(request: HttpRequest, message_id: RowId) -> Message:
    return message_get(message_id=message_id)


# --- tool calls ------------------------------------------------------------------------------


@tool_calls_router.get(
    "",
    response=responses({200: ToolCallPage}, 404),
    summary="Query tool calls, newest first, with input, output, error and approval",
)
def tool_call_list_op(request: HttpRequest, query: Query[ToolCallQuery]) -> dict[str, Any]:
    calls = tool_call_list(
        agent=_agent_id(query.agent),
        session=query.session,
        tool_name=query.tool_name or "",
        is_error=query.is_error,
        has_approval=query.has_approval,
        state=query.state or "",
        fingerprint=query.fingerprint,
        created_after=query.created_after,
        created_before=query.created_before,
        call_id=query.call_id or "",
    )
    return paged(calls, ordering=("-created_at", "-id"), query=query, columns=TOOL_CALL_COLUMNS)


@tool_calls_router.get(
    "/errors",
    response=responses({200: ErrorGroupPage}, 404),
    summary="Failing tool calls grouped by (tool, fingerprint): count, sessions, first/last seen",
)
def error_group_list_op(request: HttpRequest, query: Query[ErrorGroupQuery]) -> dict[str, Any]:
    groups = tool_error_groups(
        agent=_agent_id(query.agent),
        tool_name=query.tool_name or "",
        since=query.since,
        until=query.until,
    )
    page = tool_error_group_page(groups, cursor=query.cursor, size=page_size(query.limit))
    items = [{**row, "fingerprint": row["error_fingerprint"]} for row in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@tool_calls_router.get(
    "/{tool_call_id}",
    response=responses({200: ToolCallOut}, 404),
    summary="One tool call with its input and output",
)
def tool_call_get_op(request: HttpRequest, tool_call_id: RowId) -> ToolCall:
    return tool_call_get(call_id=tool_call_id, with_context=False)


@tool_calls_router.patch(
    "/{tool_call_id}",
    response=responses({200: ToolCallOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Record a tool call's outcome: finish a running call with its output or its error",
)
def tool_call_update_op(
    request: HttpRequest, tool_call_id: RowId, payload: ToolCallPatchIn
) -> ToolCall:
    return tool_call_finish(tool_call_id=tool_call_id, **payload.model_dump(exclude_unset=True))


# --- checkpoints -----------------------------------------------------------------------------


@sessions_router.post(
    "/{session_id}/checkpoints",
    response=responses({201: CheckpointOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Save a checkpoint of a session's state",
)
def checkpoint_save_op(
    request: HttpRequest, session_id: uuid.UUID, payload: CheckpointIn
) -> Status[Any]:
    checkpoint = checkpoint_save(
        session_id=session_id,
        type=payload.type,
        data=payload.data,
        created_at=payload.created_at,
    )
    return Status(201, checkpoint)


@sessions_router.get(
    "/{session_id}/checkpoints",
    response=responses({200: CheckpointPage}, 404),
    summary="A session's checkpoints, newest first",
)
def checkpoint_list_op(
    request: HttpRequest, session_id: uuid.UUID, query: Query[PageQuery]
) -> dict[str, Any]:
    session = session_get(session_id=session_id)
    checkpoints = session.checkpoints.defer("state")  # a framework's state: from /threads
    return paged(checkpoints, ordering=("-created_at", "-id"), query=query)


@sessions_router.get(
    "/{session_id}/checkpoints/latest",
    response=responses({200: CheckpointOut}, 404),
    summary="The latest checkpoint of a session",
)
def checkpoint_latest_op(request: HttpRequest, session_id: uuid.UUID) -> Any:
    return checkpoint_latest(session_id=session_id)


# --- stats -----------------------------------------------------------------------------------


@stats_router.get(
    "",
    response=responses({200: StatsOut}, 404),
    summary="Totals, tool calls by state, success rate and a per-day series, for one agent or all",
)
def stats_op(request: HttpRequest, query: Query[OverallStatsQuery]) -> dict[str, Any]:
    agent = agent_get(ref=query.agent).pk if query.agent is not None else None
    return {"agent": agent, **activity_stats(agent=agent, days=query.days)}
