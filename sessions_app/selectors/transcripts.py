"""Reads of one session: its transcript in pages, its checkpoints, one tool call, an export."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import (
    Prefetch,
    QuerySet,
)
from django.db.models.functions import Length

from config.errors import NotFound
from sessions_app.models import (
    CONTENT_TYPE_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    Checkpoint,
    Message,
    Session,
    ToolCall,
)

# What a transcript shows of a message and of each of its tool calls: never a payload.
TRANSCRIPT_MESSAGE_FIELDS = (
    "id",
    "seq",
    "role",
    "content_type",
    "model",
    "input_tokens",
    "output_tokens",
    "text_content",
    "media_url",
    "created_at",
)


TRANSCRIPT_CALL_FIELDS = (
    "id",
    "message_id",
    "tool_name",
    "state",
    "is_error",
    "duration_ms",
    "call_id",
    "error_message",
)


def session_transcript(
    *, session: Session, after_seq: int = -1, limit: int = 100
) -> list[dict[str, Any]]:
    """Up to `limit` messages after `after_seq`, in order, as dicts of what a transcript shows
    (`TRANSCRIPT_MESSAGE_FIELDS`, `role_label`, `content_type_label`), each with its tool calls
    as the list `calls` (`TRANSCRIPT_CALL_FIELDS`, `state_label`): two queries whatever the page
    size, and no model instance built for rows a template only reads."""
    messages = list(
        Message.objects.filter(session=session, seq__gt=after_seq)
        .order_by("seq")
        .values(*TRANSCRIPT_MESSAGE_FIELDS)[:limit]
    )
    by_id: dict[int, dict[str, Any]] = {}
    for message in messages:
        message["role_label"] = ROLE_LABELS.get(message["role"], message["role"])
        message["content_type_label"] = CONTENT_TYPE_LABELS.get(
            message["content_type"], message["content_type"]
        )
        message["calls"] = []
        by_id[message["id"]] = message
    if by_id:
        calls = ToolCall.objects.filter(message_id__in=by_id).order_by("id")
        for call in calls.values(*TRANSCRIPT_CALL_FIELDS):
            call["state_label"] = STATE_LABELS.get(call["state"], call["state"])
            by_id[call["message_id"]]["calls"].append(call)
    return messages


def checkpoint_latest(*, session_id: uuid.UUID | str) -> Checkpoint:
    """The newest checkpoint of a session: one probe of `checkpoint_latest_idx`."""
    checkpoint = Checkpoint.objects.latest_for(session_id)
    if checkpoint is None:
        raise NotFound(f"Session {session_id} has no checkpoint.")
    return checkpoint


# A checkpoint's state is shown as JSON up to this size; a larger one by its size alone.
STATE_SHOWN_BYTES = 200_000


def session_checkpoints(*, session: Session, limit: int = 10) -> list[Checkpoint]:
    """The newest checkpoints of a session (data included), by `checkpoint_latest_idx`. A
    framework checkpoint's state is read only when small (`state_size` says its size)."""
    checkpoints = list(
        Checkpoint.objects.filter(session=session)
        .order_by("-created_at", "-id")
        .defer("state")
        .annotate(state_bytes=Length("state"))[:limit]
    )
    small = [c.pk for c in checkpoints if c.state_bytes and c.state_bytes <= STATE_SHOWN_BYTES]
    states = (
        dict(Checkpoint.objects.filter(pk__in=small).values_list("pk", "state")) if small else {}
    )
    for checkpoint in checkpoints:
        checkpoint.state = states.get(checkpoint.pk)
    return checkpoints


def tool_call_get(*, call_id: int, with_context: bool = True) -> ToolCall:
    """One tool call with its payloads and, `with_context`, its session and the message that
    asked for it (the console's page; the API shows the call alone)."""
    calls = ToolCall.objects.all()
    if with_context:
        calls = calls.select_related("session", "agent", "message").defer("message__raw")
    call = calls.filter(pk=call_id).first()
    if call is None:
        raise NotFound(f"No tool call {call_id}.")
    return call


def session_export_chunks(*, session: Session, chunk: int = 500) -> Any:
    """The whole transcript with payloads, in chunks of `chunk` messages: two queries per chunk,
    so an export of any length streams in bounded memory."""
    after_seq = -1
    while True:
        messages = list(
            Message.objects.filter(session=session, seq__gt=after_seq)
            .order_by("seq")
            .prefetch_related(Prefetch("tool_calls", queryset=ToolCall.objects.order_by("id")))[
                :chunk
            ]
        )
        if not messages:
            return
        yield messages
        if len(messages) < chunk:
            return
        after_seq = messages[-1].seq


def session_messages(*, session: Session) -> QuerySet[Message]:
    """A session's messages, to page in `seq` order (the (session, seq) unique index)."""
    return Message.objects.filter(session=session)


def message_tool_calls(*, message_ids: list[int]) -> QuerySet[ToolCall]:
    """The tool calls of these messages in one query, in the order they were stored."""
    return ToolCall.objects.filter(message_id__in=message_ids).order_by("id")


def message_get(*, message_id: int) -> Message:
    """One message with its provider payload and its tool calls, or `NotFound`."""
    message = Message.objects.prefetch_related("tool_calls").filter(pk=message_id).first()
    if message is None:
        raise NotFound(f"No message {message_id}.")
    return message
