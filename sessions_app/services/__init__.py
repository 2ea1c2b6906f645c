"""Writes for sessions, messages, tool calls and checkpoints, one module per concept; the
public names are importable from here.

Every write is keyword-only and atomic, and hands what it changed to `sessions_app.rollups`
in its own transaction, so the derived numbers stay exact.
"""

from sessions_app.services.batch_insert import (
    CALL_ID_TAKEN,
    CALL_ID_UNIQUE,
    MESSAGE_FIELDS,
    TOOL_CALL_FIELDS,
)
from sessions_app.services.checkpoints import (
    checkpoint_save,
)
from sessions_app.services.inputs import (
    CONTENT_TYPES,
    FAILED_STATES,
    FINAL_STATES,
    ROLES,
    STATES,
    AppendResult,
    MessageIn,
    ToolCallIn,
)
from sessions_app.services.messages import (
    message_append,
    message_pop,
    messages_delete,
    session_messages_clear,
)
from sessions_app.services.retention import (
    sessions_prune,
    sessions_prune_counts,
    sessions_to_prune,
)
from sessions_app.services.sessions import (
    LOCKED_SESSION_FIELDS,
    UNLINKED_MEMORIES,
    session_delete,
    session_finish,
    session_get_or_start,
    session_start,
    session_update,
    sessions_delete,
    sessions_finish,
)
from sessions_app.services.tool_calls import (
    TOOL_CALL_EDITABLE,
    tool_call_add,
    tool_call_finish,
    tool_call_update,
    tool_calls_delete,
)

__all__ = [
    "CALL_ID_TAKEN",
    "CALL_ID_UNIQUE",
    "CONTENT_TYPES",
    "FAILED_STATES",
    "FINAL_STATES",
    "LOCKED_SESSION_FIELDS",
    "MESSAGE_FIELDS",
    "ROLES",
    "STATES",
    "TOOL_CALL_EDITABLE",
    "TOOL_CALL_FIELDS",
    "UNLINKED_MEMORIES",
    "AppendResult",
    "MessageIn",
    "ToolCallIn",
    "checkpoint_save",
    "message_append",
    "message_pop",
    "messages_delete",
    "session_delete",
    "session_finish",
    "session_get_or_start",
    "session_messages_clear",
    "session_start",
    "session_update",
    "sessions_delete",
    "sessions_finish",
    "sessions_prune",
    "sessions_prune_counts",
    "sessions_to_prune",
    "tool_call_add",
    "tool_call_finish",
    "tool_call_update",
    "tool_calls_delete",
]
