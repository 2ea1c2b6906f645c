"""What writers take in: messages and tool calls as a runtime sends them, checked before any
row is written."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from config.errors import InvalidInput
from sessions_app.models import (
    ContentType,
    Message,
    Role,
    ToolCall,
    ToolCallState,
)

FAILED_STATES = {ToolCallState.FAILED}


FINAL_STATES = {ToolCallState.COMPLETED, ToolCallState.FAILED, ToolCallState.DENIED}


# Read once: an enum's `.values` builds a new list on every access, per message of a batch.
ROLES = frozenset(Role.values)


CONTENT_TYPES = frozenset(ContentType.values)


STATES = frozenset(ToolCallState.values)


@dataclass
class ToolCallIn:
    tool_name: str
    call_id: str = ""
    input: Any = None
    output: Any = None
    state: str = ToolCallState.COMPLETED
    is_error: bool = False
    error_message: str = ""
    approval: dict[str, Any] | None = None
    duration_ms: int | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass
class MessageIn:
    role: str
    content_type: str = ContentType.TEXT
    text_content: str = ""
    media_url: str = ""
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    raw: Any = None
    created_at: dt.datetime | None = None
    seq: int | None = None
    tool_calls: list[ToolCallIn] = field(default_factory=list)


@dataclass(frozen=True)
class AppendResult:
    messages: list[Message]
    tool_calls: list[list[ToolCall]]  # those of each message, in order
    created: int  # how many were new; a replayed batch creates none


def _tool_call_is_error(call: ToolCallIn) -> bool:
    return call.is_error or call.state in FAILED_STATES


def _validate(message: MessageIn, path: str) -> None:
    if message.role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}.", field=f"{path}.role")
    if message.content_type not in CONTENT_TYPES:
        raise InvalidInput(
            f"content_type must be one of {', '.join(ContentType.values)}.",
            field=f"{path}.content_type",
        )
    for j, call in enumerate(message.tool_calls):
        _validate_tool_call(call, f"{path}.tool_calls.{j}.")


def _validate_tool_call(call: ToolCallIn, prefix: str = "") -> None:
    if not call.tool_name:
        raise InvalidInput("tool_name is required.", field=f"{prefix}tool_name")
    if call.state not in STATES:
        raise InvalidInput(
            f"state must be one of {', '.join(ToolCallState.values)}.", field=f"{prefix}state"
        )
