"""Writes for messages: the batch append (all or nothing, idempotent on `seq`) and deletes
that keep `seq` gapless."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from config.metrics import ingestion_recorded
from sessions_app import rollups
from sessions_app.models import (
    Message,
    Session,
    ToolCall,
)
from sessions_app.services.batch_insert import (
    _call_ids_check,
    _messages_insert,
    _tool_call_row,
)
from sessions_app.services.inputs import (
    AppendResult,
    MessageIn,
    _validate,
)
from sessions_app.services.sessions import _lock_session


def _same_message(stored: Message, incoming: MessageIn, stored_calls: list[ToolCall]) -> bool:
    return (
        stored.role == incoming.role
        and stored.content_type == incoming.content_type
        and stored.text_content == incoming.text_content
        and stored.media_url == incoming.media_url
        and [(c.call_id, c.tool_name) for c in stored_calls]
        == [(c.call_id, c.tool_name) for c in incoming.tool_calls]
    )


def _replays(
    session: Session, messages: Sequence[MessageIn], next_seq: int
) -> dict[int, tuple[Message, list[ToolCall]]]:
    """The messages of the batch that are already stored at their `seq`, by index in the batch,
    with their stored tool calls; a different message at a taken `seq` is a `Conflict`."""
    taken = [m.seq for m in messages if m.seq is not None and m.seq < next_seq]
    if not taken:
        return {}
    stored = {m.seq: m for m in Message.objects.filter(session=session, seq__in=taken)}
    calls: dict[int, list[ToolCall]] = {}
    for call in ToolCall.objects.filter(message__in=stored.values()).order_by("id"):
        calls.setdefault(call.message_id, []).append(call)
    replayed = {}
    for i, message in enumerate(messages):
        if message.seq is None or message.seq >= next_seq:
            continue
        existing = stored[message.seq]
        existing_calls = calls.get(existing.pk, [])
        if not _same_message(existing, message, existing_calls):
            raise Conflict(
                f"seq {message.seq} is already taken by a different message in this session.",
                field=f"messages.{i}.seq",
            )
        replayed[i] = (existing, existing_calls)
    return replayed


@transaction.atomic
def message_append(*, session_id: uuid.UUID | str, messages: Sequence[MessageIn]) -> AppendResult:
    """Append messages (with their tool calls) to a session: all or nothing, idempotent on `seq`.

    A message without `seq` goes at the end. A message whose `seq` is taken by the same message
    is a replay and returns the stored one; by a different message, a `Conflict`. A `seq` past
    the end would leave a gap and is refused.
    """
    for i, message in enumerate(messages):
        _validate(message, f"messages.{i}")
    session = _lock_session(session_id)
    next_seq = session.message_count
    replayed = _replays(session, messages, next_seq)
    new = [(i, m) for i, m in enumerate(messages) if i not in replayed]
    if new and session.finished_at is not None:
        raise Conflict("The session is finished; no messages can be appended.")

    now = timezone.now()
    rows: list[Message] = []
    calls: list[list[ToolCall]] = []  # the tool calls of each row
    for i, message in new:
        if message.seq is not None and message.seq != next_seq:
            # A conflict with the session's state, as a taken seq is: the client's count is off.
            raise Conflict(
                f"seq {message.seq} would leave a gap: the next seq in this session is {next_seq}.",
                field=f"messages.{i}.seq",
            )
        row = Message(  # positionally, in MESSAGE_FIELDS order
            None,  # the id, given on insert
            session.pk,
            session.agent_id,
            next_seq,
            message.role,
            message.content_type,
            message.text_content,
            message.media_url,
            message.model,
            message.input_tokens,
            message.output_tokens,
            message.raw,
            message.created_at or now,
        )
        rows.append(row)
        calls.append(
            [
                _tool_call_row(session, call, message_id=None, at=row.created_at)
                for call in message.tool_calls
            ]
        )
        next_seq += 1
    calls_out = [call for row_calls in calls for call in row_calls]  # all of them, in order
    _call_ids_check(calls_out)
    _messages_insert(rows, calls)

    # Counted in the transaction that adds the rows, every rollup in one round trip.
    rollups.rows_added(messages=rows, tool_calls=calls_out)
    if rows:
        stored = {"messages": len(rows), "tool_calls": len(calls_out)}
        transaction.on_commit(lambda: ingestion_recorded(**stored))

    created = iter(zip(rows, calls, strict=True))
    result = [replayed[i] if i in replayed else next(created) for i in range(len(messages))]
    return AppendResult(
        messages=[message for message, _ in result],
        tool_calls=[message_calls for _, message_calls in result],
        created=len(rows),
    )


@transaction.atomic
def messages_delete(*, messages: Any) -> int:
    """Delete messages with their tool calls; the later messages of each session move up so `seq`
    stays gapless, and the session counters are recounted. Returns how many messages went."""
    ids = list(messages.values_list("pk", flat=True))
    session_ids = sorted(
        set(Message.objects.filter(pk__in=ids).values_list("session_id", flat=True)), key=str
    )
    sessions = list(Session.objects.select_for_update().filter(pk__in=session_ids).order_by("pk"))
    with rollups.rows_removed(
        messages=Message.objects.filter(pk__in=ids),
        tool_calls=ToolCall.objects.filter(message_id__in=ids),
        session_ids=session_ids,
    ):
        deleted = Message.objects.filter(pk__in=ids).delete()[1].get(Message._meta.label, 0)
    for session in sessions:
        remaining = list(Message.objects.filter(session=session).order_by("seq").only("pk", "seq"))
        position = {m.pk: i for i, m in enumerate(remaining)}
        moved = [m for m in remaining if m.seq != position[m.pk]]
        if moved:
            # Two steps: out of the way first, so (session, seq) stays unique after every row.
            shift = len(remaining) + max(m.seq for m in moved) + 1
            for m in moved:
                m.seq += shift
            Message.objects.bulk_update(moved, ["seq"])
            for m in moved:
                m.seq = position[m.pk]
            Message.objects.bulk_update(moved, ["seq"])
    return deleted


@transaction.atomic
def message_pop(*, session_id: uuid.UUID | str) -> tuple[Message, list[ToolCall]] | None:
    """Remove a session's last message with its tool calls, as `messages_delete` does (counters
    and rollups follow); returns what was removed, or None when the session has no message."""
    session = _lock_session(session_id)
    if session.message_count == 0:
        return None
    last = Message.objects.filter(session=session, seq=session.message_count - 1).first()
    if last is None:  # counters out of step (rows written by hand): take the highest seq
        last = Message.objects.filter(session=session).order_by("-seq").first()
        if last is None:
            return None
    calls = list(ToolCall.objects.filter(message=last).order_by("id"))
    messages_delete(messages=Message.objects.filter(pk=last.pk))
    return last, calls


@transaction.atomic
def session_messages_clear(*, session_id: uuid.UUID | str) -> int:
    """Remove every message of a session with its tool calls (counters and rollups follow);
    returns how many messages went."""
    session = _lock_session(session_id)
    return messages_delete(messages=Message.objects.filter(session=session))
