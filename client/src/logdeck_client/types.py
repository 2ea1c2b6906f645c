"""Typed results: one frozen dataclass per kind of record the API answers. Fields a newer server
adds are kept in `extra` rather than refused, so an old client keeps working."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, get_origin, get_type_hints

T = TypeVar("T", bound="Record")


def _datetime(value: str) -> dt.datetime:
    # Python 3.10's fromisoformat does not read a trailing Z.
    return dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


@dataclass(frozen=True)
class Record:
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)
    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        hints = Record._hints.get(cls)
        if hints is None:
            module = sys.modules[cls.__module__].__dict__
            hints = Record._hints[cls] = get_type_hints(cls, module)
        known = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name in known:
            if name not in data:
                continue
            values[name] = _convert(hints[name], data[name])
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    text = str(hint)
    if "datetime" in text and isinstance(value, str):
        return _datetime(value)
    if "UUID" in text and isinstance(value, str):
        return uuid.UUID(value)
    plain_class = get_origin(hint) is None and isinstance(hint, type)
    if plain_class and issubclass(hint, Record) and isinstance(value, dict):
        return hint.from_json(value)
    args = getattr(hint, "__args__", ())
    item = args[0] if args else None
    plain_item = get_origin(item) is None and isinstance(item, type)
    if isinstance(value, list) and plain_item and issubclass(item, Record):
        return [item.from_json(entry) for entry in value]
    return value


@dataclass(frozen=True)
class User(Record):
    id: int
    email: str
    name: str = ""
    phone_number: str = ""
    user_data: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Agent(Record):
    id: int
    name: str
    type: str = ""
    model: str = ""
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    system_prompt: str = ""
    version: str = ""
    active: bool = True
    run_id: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Session(Record):
    id: uuid.UUID
    agent: int
    agent_name: str = ""
    user: int | None = None
    user_email: str | None = None
    name: str = ""
    platform: str = ""
    external_key: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    is_active: bool = True
    message_count: int = 0
    tool_call_count: int = 0
    error_count: int = 0


@dataclass(frozen=True)
class ToolCall(Record):
    id: int
    session: uuid.UUID
    tool_name: str
    message: int | None = None
    call_id: str = ""
    input: Any = None
    output: Any = None
    state: str = "completed"
    is_error: bool = False
    error_message: str = ""
    error_fingerprint: str = ""
    approval: dict[str, Any] | None = None
    duration_ms: int | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class Message(Record):
    id: int
    session: uuid.UUID
    seq: int
    role: str
    agent: int | None = None
    content_type: str = "text"
    text_content: str = ""
    media_url: str = ""
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    created_at: dt.datetime | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: Any = None


@dataclass(frozen=True)
class AppendResult(Record):
    created: int
    items: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorGroup(Record):
    tool_name: str
    fingerprint: str
    count: int
    sessions: int
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    sample_message: str = ""


@dataclass(frozen=True)
class Memory(Record):
    id: uuid.UUID
    name: str
    description: str = ""
    content: str = ""
    agent: int | None = None
    agent_name: str | None = None
    user: int | None = None
    user_email: str | None = None
    session: uuid.UUID | None = None
    read_mode: str = ""
    access: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Checkpoint(Record):
    id: int
    session: uuid.UUID
    type: str = ""
    data: Any = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class TypedValue(Record):
    """A value as a serializer made it: its format and its bytes."""

    type: str
    data: str = ""  # base64, as the API carries it

    @property
    def bytes(self) -> bytes:
        return base64.b64decode(self.data)

    @classmethod
    def of(cls, type: str, data: bytes) -> TypedValue:
        return cls(type=type, data=base64.b64encode(data).decode("ascii"))

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "data": self.data}


@dataclass(frozen=True)
class PendingWrite(Record):
    task_id: str
    channel: str
    idx: int
    value: TypedValue
    task_path: str = ""


@dataclass(frozen=True)
class ThreadCheckpoint(Record):
    """A framework checkpoint of a thread, with its pending writes."""

    session: uuid.UUID
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    checkpoint: TypedValue
    parent_checkpoint_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pending_writes: list[PendingWrite] = field(default_factory=list)
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class CheckpointStored(Record):
    session: uuid.UUID
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    outcome: str  # "created", "replaced" or "unchanged" (a retried put)


@dataclass(frozen=True)
class ThreadChange(Record):
    checkpoints: int
    writes: int


@dataclass(frozen=True)
class Stats(Record):
    agent: int | None
    sessions: int = 0
    active_sessions: int = 0
    messages: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tool_calls_by_state: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None
    per_day: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None on the last)."""

    items: list[T]
    next_cursor: str | None
