"""Writes for single tool calls: an outcome recorded, an admin's fix, an addition, a delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, InvalidInput, NotFound
from config.metrics import ingestion_recorded
from sessions_app import rollups
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import (
    Message,
    Session,
    ToolCall,
    ToolCallState,
)
from sessions_app.services.batch_insert import (
    _tool_call_row,
)
from sessions_app.services.inputs import (
    FAILED_STATES,
    FINAL_STATES,
    ToolCallIn,
    _validate_tool_call,
)
from sessions_app.services.sessions import _lock_session


@transaction.atomic
def tool_call_finish(
    *,
    tool_call_id: int,
    output: Any = None,
    error_message: str | None = None,
    state: str | None = None,
    duration_ms: int | None = None,
    approval: dict[str, Any] | None = None,
    finished_at: dt.datetime | None = None,
) -> ToolCall:
    """Record a tool call's outcome: its output, or its error. Keeps the session's error count."""
    call = ToolCall.objects.filter(pk=tool_call_id).first()
    if call is None:
        raise NotFound(f"No tool call {tool_call_id}.")
    _lock_session(call.session_id)
    call = ToolCall.objects.select_for_update().get(pk=tool_call_id)
    if state is not None and state not in ToolCallState.values:
        raise InvalidInput(
            f"state must be one of {', '.join(ToolCallState.values)}.", field="state"
        )
    changes: dict[str, Any] = {}
    if error_message:
        changes.update(is_error=True, error_message=error_message, state=ToolCallState.FAILED)
    if state is not None and not error_message:
        changes.update(state=state, is_error=state in FAILED_STATES)
        if not changes["is_error"]:
            changes["error_message"] = ""
    for name, value in (("output", output), ("approval", approval), ("duration_ms", duration_ms)):
        if value is not None:
            changes[name] = value
    final = changes.get("state", call.state) in FINAL_STATES
    if final and call.finished_at is None:
        changes["finished_at"] = finished_at or timezone.now()
    return _tool_call_change(call, changes)


def _tool_call_change(call: ToolCall, changes: dict[str, Any]) -> ToolCall:
    """Set fields of a locked call and save it; a failed state is an error, and the fingerprint
    exists only on errors (a database constraint). The rollups follow."""
    with rollups.tool_call_changed(call):
        for name, value in changes.items():
            setattr(call, name, value)
        call.is_error = call.is_error or call.state in FAILED_STATES
        call.error_fingerprint = error_fingerprint(call.error_message) if call.is_error else ""
        call.save()
    return call


TOOL_CALL_EDITABLE = (
    "call_id",
    "tool_name",
    "input",
    "output",
    "state",
    "is_error",
    "error_message",
    "approval",
    "duration_ms",
    "finished_at",
)


@transaction.atomic
def tool_call_add(
    *, session_id: uuid.UUID | str, call: ToolCallIn, message_id: int | None = None
) -> ToolCall:
    """Add one tool call to a session (optionally under one of its messages), counters included."""
    session = _lock_session(session_id)
    _validate_tool_call(call)
    if (
        message_id is not None
        and not Message.objects.filter(pk=message_id, session=session).exists()
    ):
        raise InvalidInput("The message belongs to another session.", field="message")
    if call.call_id and ToolCall.objects.filter(session=session, call_id=call.call_id).exists():
        raise Conflict("A tool call_id is used twice in this session.", field="call_id")
    now = timezone.now()
    tool_call = _tool_call_row(session, call, message_id=message_id, at=now)
    tool_call.save()
    rollups.rows_added(tool_calls=[tool_call])
    transaction.on_commit(lambda: ingestion_recorded(tool_calls=1))
    return tool_call


@transaction.atomic
def tool_call_update(*, tool_call_id: int, **fields: Any) -> ToolCall:
    """Change a tool call's fields; the error flag, fingerprint and session error count follow."""
    unknown = set(fields) - set(TOOL_CALL_EDITABLE)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=min(unknown))
    call = ToolCall.objects.filter(pk=tool_call_id).first()
    if call is None:
        raise NotFound(f"No tool call {tool_call_id}.")
    session = _lock_session(call.session_id)
    call = ToolCall.objects.select_for_update().get(pk=tool_call_id)
    if "state" in fields and fields["state"] not in ToolCallState.values:
        raise InvalidInput(
            f"state must be one of {', '.join(ToolCallState.values)}.", field="state"
        )
    new_call_id = fields.get("call_id", call.call_id)
    if (
        new_call_id
        and new_call_id != call.call_id
        and ToolCall.objects.filter(session=session, call_id=new_call_id).exists()
    ):
        raise Conflict("A tool call_id is used twice in this session.", field="call_id")
    return _tool_call_change(call, fields)


@transaction.atomic
def tool_calls_delete(*, tool_calls: Any) -> int:
    """Delete tool calls and take them off their sessions' counters; returns how many."""
    ids = list(tool_calls.values_list("pk", flat=True))
    # Lock the sessions first, in a fixed order, like every other writer does.
    session_ids = sorted(
        set(ToolCall.objects.filter(pk__in=ids).values_list("session_id", flat=True)), key=str
    )
    list(Session.objects.select_for_update().filter(pk__in=session_ids).order_by("pk"))
    calls = ToolCall.objects.filter(pk__in=ids)
    with rollups.rows_removed(tool_calls=calls, session_ids=session_ids):
        deleted, _ = calls.delete()
    return deleted
