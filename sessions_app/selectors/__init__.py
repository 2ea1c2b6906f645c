"""Reads for sessions, messages, tool calls and checkpoints, one module per concept (search,
transcripts, error groups, stats); the public names are importable from here.

The console, the API and the admin call these, so a filter means the same everywhere and each
query is tuned once.
"""

from sessions_app.selectors.error_groups import (
    ERROR_GROUP_ORDERING,
    daily_counts,
    error_group_days,
    error_groups_after,
    tool_error_group_calls,
    tool_error_group_page,
    tool_error_group_summary,
    tool_error_groups,
    tool_failure_leaders,
)
from sessions_app.selectors.search import (
    EXTERNAL_KEY_MAX,
    METADATA_KEY,
    SESSION_SORTS,
    MessageTextMatch,
    SessionFilters,
    count_capped,
    message_list,
    message_text_matches,
    session_get,
    session_list,
    sessions_with_text,
    text_is_common,
    tool_call_list,
)
from sessions_app.selectors.stats import (
    activity_stats,
    agent_activity,
)
from sessions_app.selectors.transcripts import (
    STATE_SHOWN_BYTES,
    TRANSCRIPT_CALL_FIELDS,
    TRANSCRIPT_MESSAGE_FIELDS,
    checkpoint_latest,
    message_get,
    message_tool_calls,
    session_checkpoints,
    session_export_chunks,
    session_messages,
    session_transcript,
    tool_call_get,
)

__all__ = [
    "ERROR_GROUP_ORDERING",
    "EXTERNAL_KEY_MAX",
    "METADATA_KEY",
    "SESSION_SORTS",
    "STATE_SHOWN_BYTES",
    "TRANSCRIPT_CALL_FIELDS",
    "TRANSCRIPT_MESSAGE_FIELDS",
    "MessageTextMatch",
    "SessionFilters",
    "activity_stats",
    "agent_activity",
    "checkpoint_latest",
    "count_capped",
    "daily_counts",
    "error_group_days",
    "error_groups_after",
    "message_get",
    "message_list",
    "message_text_matches",
    "message_tool_calls",
    "session_checkpoints",
    "session_export_chunks",
    "session_get",
    "session_list",
    "session_messages",
    "session_transcript",
    "sessions_with_text",
    "text_is_common",
    "tool_call_get",
    "tool_call_list",
    "tool_error_group_calls",
    "tool_error_group_page",
    "tool_error_group_summary",
    "tool_error_groups",
    "tool_failure_leaders",
]
