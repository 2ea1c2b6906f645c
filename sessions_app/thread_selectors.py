"""Reads for framework threads: a thread's checkpoints newest first, one checkpoint with its
pending writes, and the state of a checkpoint as JSON where it decodes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ormsgpack
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from agents.selectors import agent_get, agent_lookup
from config.errors import InvalidInput, NotFound
from sessions_app.models import Checkpoint, CheckpointWrite, Session

# Newest first by the framework's own ids (LangGraph's are time-ordered), then by row: ids are
# unique within a thread's namespace only.
THREAD_ORDERING = ("-checkpoint_id", "-id")
# Within one namespace of one thread the id alone orders: the unique index on (thread,
# namespace, id) read backwards, with no sort of the thread's rows whatever the statistics say.
NAMESPACE_ORDERING = ("-checkpoint_id",)
WRITE_ORDERING = ("task_path", "task_id", "idx")
MAX_FILTER_KEYS = 20


def thread_ordering(thread_id: str | None, checkpoint_ns: str | None) -> tuple[str, ...]:
    """The order of a thread's checkpoints newest first, as its indexes read it."""
    return (
        NAMESPACE_ORDERING
        if thread_id is not None and checkpoint_ns is not None
        else THREAD_ORDERING
    )


def thread_session_find(*, agent: int | str, thread_id: str) -> Session | None:
    """The session of agent `agent` (its id or name) whose external key is `thread_id`, with its
    agent, in one query; None if there is none (a new thread, or no such agent)."""
    lookup = {f"agent__{name}": value for name, value in agent_lookup(agent).items()}
    return Session.objects.select_related("agent").filter(external_key=thread_id, **lookup).first()


def thread_session_get(*, agent: int | str, thread_id: str) -> Session | None:
    """As `thread_session_find`, but `NotFound` if there is no such agent."""
    session = thread_session_find(agent=agent, thread_id=thread_id)
    if session is None:
        # A new thread, an unknown agent (404), or a name of digits (agent_get's rule).
        session = Session.objects.filter(agent=agent_get(ref=agent), external_key=thread_id).first()
    return session


def thread_checkpoints(
    *,
    agent: int | str,
    thread_id: str | None,
    checkpoint_ns: str | None = None,
    before: str | None = None,
) -> QuerySet[Checkpoint]:
    """The framework checkpoints of agent `agent` (its id or name; `NotFound` if there is none)
    of one thread (or of all its threads), in one namespace or all, older than `before`; order
    with `thread_ordering`, filter with `with_metadata`."""
    checkpoints = Checkpoint.objects.exclude(checkpoint_id="")
    if thread_id is not None:
        session = thread_session_get(agent=agent, thread_id=thread_id)
        if session is None:
            return Checkpoint.objects.none()
        checkpoints = checkpoints.filter(session=session)
    else:
        checkpoints = checkpoints.filter(session__agent=agent_get(ref=agent))
    if checkpoint_ns is not None:
        checkpoints = checkpoints.filter(checkpoint_ns=checkpoint_ns)
    if before:
        checkpoints = checkpoints.filter(checkpoint_id__lt=before)
    return checkpoints.select_related("session").defer("session__metadata", "session__name", "data")


def with_metadata(
    checkpoints: QuerySet[Checkpoint], metadata: dict[str, Any] | None
) -> QuerySet[Checkpoint]:
    """The `checkpoints` whose metadata holds every key of `metadata` with its value."""
    for i, (key, value) in enumerate((metadata or {}).items()):
        if i >= MAX_FILTER_KEYS:
            raise InvalidInput(
                f"A metadata filter has at most {MAX_FILTER_KEYS} keys.", field="metadata"
            )
        # An alias per key: a key may hold "__", which a lookup string would split on.
        alias = f"_metadata_{i}"
        checkpoints = checkpoints.alias(**{alias: KeyTransform(key, "metadata")})
        checkpoints = checkpoints.filter(**{alias: value})
    return checkpoints


def thread_checkpoint_get(
    *, agent: int | str, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
) -> Checkpoint:
    """One checkpoint of a thread's namespace, by id or the newest; `NotFound` if none, or if
    there is no such agent."""
    session = thread_session_get(agent=agent, thread_id=thread_id)
    found = None
    if session is not None:
        checkpoints = Checkpoint.objects.filter(session=session, checkpoint_ns=checkpoint_ns)
        if checkpoint_id:
            checkpoints = checkpoints.filter(checkpoint_id=checkpoint_id)
        found = (
            checkpoints.exclude(checkpoint_id="")
            .defer("data")
            .order_by(*thread_ordering(thread_id, checkpoint_ns))
            .first()
        )
    if found is None:
        where = f"checkpoint {checkpoint_id!r}" if checkpoint_id else "checkpoint"
        name = session.agent.name if session is not None else agent_get(ref=agent).name
        raise NotFound(
            f"Thread {thread_id!r} of agent {name!r} has no {where} in namespace {checkpoint_ns!r}."
        )
    found.session = session
    return found


def checkpoint_writes(checkpoints: Sequence[Checkpoint]) -> dict[int, list[CheckpointWrite]]:
    """The pending writes of each checkpoint, by checkpoint row id, in one query."""
    writes: dict[int, list[CheckpointWrite]] = {c.pk: [] for c in checkpoints}
    if not writes:
        return writes
    by_key = {(c.session_id, c.checkpoint_ns, c.checkpoint_id): c.pk for c in checkpoints}
    of_checkpoints = Q(pk__in=[])
    for (session_id, namespace), ids in _ids_by_namespace(checkpoints).items():
        of_checkpoints |= Q(session_id=session_id, checkpoint_ns=namespace, checkpoint_id__in=ids)
    rows = CheckpointWrite.objects.filter(of_checkpoints).order_by(*WRITE_ORDERING)
    for write in rows:
        writes[by_key[(write.session_id, write.checkpoint_ns, write.checkpoint_id)]].append(write)
    return writes


def _ids_by_namespace(checkpoints: Sequence[Checkpoint]) -> dict[tuple[Any, str], list[str]]:
    grouped: dict[tuple[Any, str], list[str]] = {}
    for c in checkpoints:
        grouped.setdefault((c.session_id, c.checkpoint_ns), []).append(c.checkpoint_id)
    return grouped


def checkpoint_state_json(checkpoint: Checkpoint) -> Any | None:
    """The checkpoint's state as JSON-ready data where its format decodes here (JSON, or
    msgpack without extension types), else None: the console then shows its size."""
    if checkpoint.state is None:
        return None
    raw = bytes(checkpoint.state)
    if checkpoint.state_type == "json":
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # an agent's bytes: anything, nested any depth
            return None
    if checkpoint.state_type == "msgpack":
        return _msgpack_json(raw)
    return None


def _msgpack_json(raw: bytes) -> Any | None:
    # Extension types (a framework's own objects) do not decode without the framework.
    try:
        value = ormsgpack.unpackb(raw)
        json.dumps(value)
    except (ormsgpack.MsgpackDecodeError, TypeError, ValueError, RecursionError):
        return None
    return value
