"""logdeck-client: the Python client of Logdeck's JSON API (sync and async), with a LangGraph
checkpointer (`logdeck_client.langgraph`) and an OpenAI Agents SDK session
(`logdeck_client.openai_agents`)."""

from logdeck_client._transport import RetryPolicy
from logdeck_client.client import AsyncLogdeck, Logdeck
from logdeck_client.errors import LogdeckError
from logdeck_client.types import (
    Agent,
    AppendResult,
    Checkpoint,
    ErrorGroup,
    Memory,
    Message,
    Page,
    PendingWrite,
    Session,
    Stats,
    ThreadCheckpoint,
    ToolCall,
    TypedValue,
    User,
)

__all__ = [
    "Agent",
    "AppendResult",
    "AsyncLogdeck",
    "Checkpoint",
    "ErrorGroup",
    "Logdeck",
    "LogdeckError",
    "Memory",
    "Message",
    "Page",
    "PendingWrite",
    "RetryPolicy",
    "Session",
    "Stats",
    "ThreadCheckpoint",
    "ToolCall",
    "TypedValue",
    "User",
]
