"""API for framework threads (LangGraph's checkpointer): a thread is an agent's session found
by its external key; its checkpoints carry the serializer's bytes as `{type, data}` with the
data in base64, given back byte for byte."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AfterValidator

from agents.api_auth import WRITE_AUTH
from agents.selectors import agent_get
from config.api_schemas import (
    WRITE,
    InputSchema,
    JsonObject,
    OutputSchema,
    PageQuery,
    page_size,
    responses,
    text,
)
from config.errors import InvalidInput
from config.keyset import keyset_page
from sessions_app.models import Checkpoint, CheckpointWrite
from sessions_app.thread_selectors import (
    checkpoint_writes,
    thread_checkpoint_get,
    thread_checkpoints,
    thread_ordering,
    with_metadata,
)
from sessions_app.thread_services import (
    PRUNE_STRATEGIES,
    WriteIn,
    checkpoint_put,
    checkpoint_writes_put,
    checkpoints_delete_for_runs,
    thread_copy,
    thread_delete,
    thread_get_or_start,
    threads_prune,
)

threads_router = Router()

AgentRef = text(200, min_length=1)
ThreadId = text(255, min_length=1)
Namespace = text(255)
CheckpointId = text(255, min_length=1)


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
        if len(value) % 4:  # b64decode lets stray padding through ("QUJD=")
            raise ValueError
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64 (RFC 4648, with padding)") from None
    return value


# OpenAPI's "byte" format is base64 (RFC 4648): the schema says what the validator checks.
Base64 = Annotated[str, Field(json_schema_extra={"format": "byte"}), AfterValidator(_base64)]


class TypedBytes(Schema):
    type: text(100) = Field(description="The serializer's format, e.g. msgpack or json.")
    data: Base64 = Field(description="The serialized bytes, in base64.")


def _decoded(value: TypedBytes, what: str) -> bytes:
    raw = base64.b64decode(value.data, validate=True)
    if len(raw) > settings.CHECKPOINT_MAX_BYTES:
        raise HttpError(
            413,
            f"The {what} is {len(raw)} bytes; a thread stores at most "
            f"{settings.CHECKPOINT_MAX_BYTES} bytes (CHECKPOINT_MAX_BYTES) per value.",
        )
    return raw


def _encoded(raw: Any) -> str | None:
    return None if raw is None else base64.b64encode(bytes(raw)).decode("ascii")


class CheckpointPutIn(InputSchema):
    agent: AgentRef = Field(description="The agent's id or name.")
    thread_id: ThreadId = Field(description="The thread: its session's external key.")
    checkpoint_ns: Namespace = ""
    checkpoint_id: CheckpointId
    parent_checkpoint_id: text(255) | None = None
    checkpoint: TypedBytes
    metadata: JsonObject = Field(default_factory=dict)


class CheckpointPutOut(Schema):
    session: uuid.UUID
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    outcome: Literal["created", "replaced", "unchanged"] = Field(
        description="unchanged: the same checkpoint was stored before (a retried put)."
    )


class WriteBody(Schema):
    idx: int = Field(ge=-(2**31), le=2**31 - 1)
    channel: text(255, min_length=1)
    value: TypedBytes


class WritesPutIn(InputSchema):
    agent: AgentRef
    thread_id: ThreadId
    checkpoint_ns: Namespace = ""
    checkpoint_id: CheckpointId
    task_id: text(255, min_length=1)
    task_path: text(1000) = ""
    writes: list[WriteBody] = Field(max_length=10_000)


class WritesPutOut(Schema):
    writes: int


class PendingWriteOut(Schema):
    task_id: str
    task_path: str
    idx: int
    channel: str
    value: TypedBytes


class ThreadCheckpointOut(OutputSchema):
    session: uuid.UUID
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    metadata: dict[str, Any]
    checkpoint: TypedBytes
    pending_writes: list[PendingWriteOut]
    created_at: dt.datetime


class ThreadCheckpointPage(OutputSchema):
    items: list[ThreadCheckpointOut]
    next_cursor: str | None


class CheckpointGetQuery(Schema):
    agent: AgentRef
    thread_id: ThreadId
    checkpoint_ns: Namespace = ""
    checkpoint_id: text(255) | None = Field(default=None, description="Omit for the newest.")


class CheckpointListQuery(PageQuery):
    agent: AgentRef
    thread_id: text(255, min_length=1) | None = Field(
        default=None, description="Omit for every thread of the agent."
    )
    checkpoint_ns: text(255) | None = Field(default=None, description="Omit for every namespace.")
    before: text(255) | None = Field(
        default=None, description="Only checkpoints whose id sorts before this one."
    )
    metadata: text(10_000) | None = Field(
        default=None,
        description="A JSON object: only checkpoints whose metadata has each key with its "
        'value, e.g. {"source": "loop", "step": 2}.',
    )


class ThreadIn(InputSchema):
    agent: AgentRef
    thread_id: ThreadId


class RunsIn(InputSchema):
    agent: AgentRef
    run_ids: list[text(255)] = Field(max_length=10_000)


class CopyIn(InputSchema):
    agent: AgentRef
    source_thread_id: ThreadId
    target_thread_id: ThreadId


class ThreadsPruneIn(InputSchema):
    agent: AgentRef
    thread_ids: list[ThreadId] = Field(max_length=10_000)
    strategy: Literal["keep_latest", "delete"] = "keep_latest"


assert set(ThreadsPruneIn.model_fields["strategy"].annotation.__args__) == set(PRUNE_STRATEGIES)


class ThreadChangeOut(Schema):
    checkpoints: int
    writes: int


def _checkpoint_out(checkpoint: Checkpoint, writes: list[CheckpointWrite]) -> dict[str, Any]:
    return {
        "session": checkpoint.session_id,
        "thread_id": checkpoint.session.external_key,
        "checkpoint_ns": checkpoint.checkpoint_ns,
        "checkpoint_id": checkpoint.checkpoint_id,
        "parent_checkpoint_id": checkpoint.parent_checkpoint_id or None,
        "metadata": checkpoint.metadata,
        "checkpoint": {"type": checkpoint.state_type, "data": _encoded(checkpoint.state) or ""},
        "pending_writes": [
            {
                "task_id": w.task_id,
                "task_path": w.task_path,
                "idx": w.idx,
                "channel": w.channel,
                "value": {"type": w.value_type, "data": _encoded(w.value) or ""},
            }
            for w in writes
        ],
        "created_at": checkpoint.created_at,
    }


def _metadata_filter(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # nested past what a filter can hold
        raise InvalidInput("metadata must be a JSON object.", field="metadata") from None
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object.", field="metadata")
    return value


@threads_router.post(
    "/checkpoints",
    response=responses({200: CheckpointPutOut, 201: CheckpointPutOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Store a thread's checkpoint (put): 201 new, 200 replaced or already stored",
)
def checkpoint_put_op(request: HttpRequest, payload: CheckpointPutIn) -> Status[Any]:
    state = _decoded(payload.checkpoint, "checkpoint")
    checkpoint, outcome = checkpoint_put(
        session=thread_get_or_start(agent=payload.agent, thread_id=payload.thread_id),
        checkpoint_ns=payload.checkpoint_ns,
        checkpoint_id=payload.checkpoint_id,
        parent_checkpoint_id=payload.parent_checkpoint_id or "",
        state_type=payload.checkpoint.type,
        state=state,
        metadata=payload.metadata,
    )
    body = {
        "session": checkpoint.session_id,
        "thread_id": payload.thread_id,
        "checkpoint_ns": checkpoint.checkpoint_ns,
        "checkpoint_id": checkpoint.checkpoint_id,
        "outcome": outcome,
    }
    return Status(201 if outcome == "created" else 200, body)


@threads_router.post(
    "/writes",
    response=responses({200: WritesPutOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Store a task's pending writes for a checkpoint (put_writes): all or none",
)
def writes_put_op(request: HttpRequest, payload: WritesPutIn) -> dict[str, Any]:
    writes = [
        WriteIn(
            idx=w.idx,
            channel=w.channel,
            value_type=w.value.type,
            value=_decoded(w.value, f"write {i}"),
        )
        for i, w in enumerate(payload.writes)
    ]
    count = checkpoint_writes_put(
        session=thread_get_or_start(agent=payload.agent, thread_id=payload.thread_id),
        checkpoint_ns=payload.checkpoint_ns,
        checkpoint_id=payload.checkpoint_id,
        task_id=payload.task_id,
        task_path=payload.task_path,
        writes=writes,
    )
    return {"writes": count}


@threads_router.get(
    "/checkpoint",
    response=responses({200: ThreadCheckpointOut}, 404),
    summary="One checkpoint of a thread, by id or the newest, with its pending writes",
)
def checkpoint_get_op(request: HttpRequest, query: Query[CheckpointGetQuery]) -> dict[str, Any]:
    checkpoint = thread_checkpoint_get(
        agent=query.agent,
        thread_id=query.thread_id,
        checkpoint_ns=query.checkpoint_ns,
        checkpoint_id=query.checkpoint_id,
    )
    return _checkpoint_out(checkpoint, checkpoint_writes([checkpoint])[checkpoint.pk])


@threads_router.get(
    "/checkpoints",
    response=responses({200: ThreadCheckpointPage}, 404),
    summary="A thread's checkpoints newest first (list): by namespace, before, metadata",
)
def checkpoint_list_op(request: HttpRequest, query: Query[CheckpointListQuery]) -> dict[str, Any]:
    checkpoints = thread_checkpoints(
        agent=query.agent,
        thread_id=query.thread_id,
        checkpoint_ns=query.checkpoint_ns,
        before=query.before,
    )
    # After the agent is found: an unknown agent is a 404 whatever else the query holds.
    checkpoints = with_metadata(checkpoints, _metadata_filter(query.metadata))
    page = keyset_page(
        checkpoints,
        ordering=thread_ordering(query.thread_id, query.checkpoint_ns),
        cursor=query.cursor,
        size=page_size(query.limit),
    )
    writes = checkpoint_writes(page.items)
    items = [_checkpoint_out(c, writes[c.pk]) for c in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@threads_router.post(
    "/delete",
    response=responses({200: ThreadChangeOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Delete a thread's checkpoints and writes (delete_thread); the session stays",
)
def thread_delete_op(request: HttpRequest, payload: ThreadIn) -> dict[str, int]:
    return thread_delete(agent=agent_get(ref=payload.agent), thread_id=payload.thread_id)


@threads_router.post(
    "/delete-for-runs",
    response=responses({200: ThreadChangeOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Delete the checkpoints whose metadata names one of these runs, with their writes",
)
def delete_for_runs_op(request: HttpRequest, payload: RunsIn) -> dict[str, int]:
    return checkpoints_delete_for_runs(agent=agent_get(ref=payload.agent), run_ids=payload.run_ids)


@threads_router.post(
    "/copy",
    response=responses({200: ThreadChangeOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Copy a thread's checkpoints and writes to another thread (copy_thread)",
)
def thread_copy_op(request: HttpRequest, payload: CopyIn) -> dict[str, int]:
    return thread_copy(
        agent=agent_get(ref=payload.agent),
        source_thread_id=payload.source_thread_id,
        target_thread_id=payload.target_thread_id,
    )


@threads_router.post(
    "/prune",
    response=responses({200: ThreadChangeOut}, WRITE, 404),
    auth=WRITE_AUTH,
    summary="Prune threads: keep the newest checkpoint per namespace, or delete them all",
)
def threads_prune_op(request: HttpRequest, payload: ThreadsPruneIn) -> dict[str, int]:
    return threads_prune(
        agent=agent_get(ref=payload.agent),
        thread_ids=payload.thread_ids,
        strategy=payload.strategy,
    )
