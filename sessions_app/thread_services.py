"""Writes for framework threads: a session addressed by its external key (LangGraph's
`thread_id`) with its checkpoints and their pending writes.

Every write is one transaction: a checkpoint is stored whole, a batch of writes all or none,
and a copy or a prune leaves no thread half done. A thread's session is started through
`session_start`, so the daily activity counts it as any other session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from agents.models import Agent
from agents.selectors import agent_get
from config.errors import Conflict, InvalidInput, NotFound
from sessions_app.models import Checkpoint, CheckpointWrite, Session
from sessions_app.services import session_get_or_start
from sessions_app.thread_selectors import thread_session_find

PRUNE_STRATEGIES = ("keep_latest", "delete")
LANGGRAPH_CHECKPOINT = "langgraph"  # Checkpoint.type of a framework's checkpoint


@dataclass(frozen=True)
class WriteIn:
    idx: int
    channel: str
    value_type: str
    value: bytes


def thread_get_or_start(*, agent: int | str, thread_id: str) -> Session:
    """The session of agent `agent` (id or name) whose external key is `thread_id`, started if
    new: one query when the thread exists. `NotFound` when there is no such agent."""
    session = thread_session_find(agent=agent, thread_id=thread_id)
    if session is None:
        # A new thread, or a name of digits that agent_get finds when no agent has that id.
        session, _started = session_get_or_start(agent=agent_get(ref=agent), external_key=thread_id)
    return session


def thread_session(*, agent: Agent, thread_id: str) -> Session:
    """The agent's session whose external key is `thread_id`, or `NotFound`."""
    session = Session.objects.filter(agent=agent, external_key=thread_id).first()
    if session is None:
        raise NotFound(f"Agent {agent.name!r} has no thread {thread_id!r}.", field="thread_id")
    return session


def checkpoint_put(
    *,
    session: Session,
    checkpoint_ns: str,
    checkpoint_id: str,
    parent_checkpoint_id: str,
    state_type: str,
    state: bytes,
    metadata: dict[str, Any],
) -> tuple[Checkpoint, str]:
    """Store a checkpoint of a thread (`thread_get_or_start`). A checkpoint id stored before is
    replaced by this one (as LangGraph's own savers do), so a retried put changes nothing.
    Returns the checkpoint and what happened: "created", "replaced" or "unchanged"."""
    if not checkpoint_id:
        raise InvalidInput("checkpoint_id is required.", field="checkpoint_id")
    values = {
        "parent_checkpoint_id": parent_checkpoint_id,
        "state_type": state_type,
        "state": state,
        "metadata": metadata,
    }
    checkpoint = Checkpoint(
        session=session,
        type=LANGGRAPH_CHECKPOINT,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        **values,
    )
    # A new checkpoint, as nearly every put is, is one INSERT: its own transaction.
    if _inserted(checkpoint):
        return checkpoint, "created"
    with transaction.atomic():
        stored = (
            Checkpoint.objects.select_for_update()
            .filter(session=session, checkpoint_ns=checkpoint_ns, checkpoint_id=checkpoint_id)
            .first()
        )
        if stored is None:  # the insert failed on the thread itself, removed meanwhile
            raise Conflict("The thread was deleted while the checkpoint was stored; retry.")
        changed = [name for name, value in values.items() if _stored_value(stored, name) != value]
        for name in changed:
            setattr(stored, name, values[name])
        if changed:
            stored.save(update_fields=changed)
    return stored, "replaced" if changed else "unchanged"


def _inserted(checkpoint: Checkpoint) -> bool:
    """Insert `checkpoint`; False if its id is taken in its thread. Outside a transaction the
    failed INSERT leaves nothing behind; inside one, a savepoint keeps the transaction usable."""
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():
                checkpoint.save(force_insert=True)
        else:
            checkpoint.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _stored_value(checkpoint: Checkpoint, name: str) -> Any:
    value = getattr(checkpoint, name)
    return bytes(value) if isinstance(value, memoryview) else value  # PostgreSQL's bytea


def checkpoint_writes_put(
    *,
    session: Session,
    checkpoint_ns: str,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    writes: Sequence[WriteIn],
) -> int:
    """Store a task's pending writes for a checkpoint of a thread (`thread_get_or_start`), all
    or none. A write stored before at its (task, idx) stays as it is (a retry stores nothing
    twice); a special write (negative idx: error, interrupt, resume, scheduled) replaces its
    predecessor. Returns how many writes the batch holds."""
    # The checkpoint may still be on its way (LangGraph stores a step's checkpoint in the
    # background while its tasks already write): the writes do not wait for it.
    positions = [w.idx for w in writes]
    if len(positions) != len(set(positions)):
        raise InvalidInput("Two writes of the batch have the same idx.", field="writes")
    rows = [
        CheckpointWrite(
            session=session,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            task_id=task_id,
            task_path=task_path,
            idx=w.idx,
            channel=w.channel,
            value_type=w.value_type,
            value=w.value,
        )
        for w in writes
    ]
    # As LangGraph's own savers: a regular write stored before stays; a special one is replaced.
    special = [row for row in rows if row.idx < 0]
    regular = [row for row in rows if row.idx >= 0]
    with transaction.atomic():  # a batch of both kinds is two statements
        if special:
            CheckpointWrite.objects.bulk_create(
                special,
                update_conflicts=True,
                unique_fields=["session", "checkpoint_ns", "checkpoint_id", "task_id", "idx"],
                update_fields=["task_path", "channel", "value_type", "value"],
            )
        if regular:
            CheckpointWrite.objects.bulk_create(regular, ignore_conflicts=True)
    return len(rows)


def _deleted(checkpoints: Any) -> dict[str, int]:
    """Delete `checkpoints` (a queryset) with their pending writes; how many of each went.
    Both deletes select by subquery, so no list of ids grows with the thread."""
    of_checkpoint = checkpoints.filter(
        session_id=OuterRef("session_id"),
        checkpoint_ns=OuterRef("checkpoint_ns"),
        checkpoint_id=OuterRef("checkpoint_id"),
    )
    writes, _ = (
        CheckpointWrite.objects.filter(session__in=checkpoints.values("session_id"))
        .filter(Exists(of_checkpoint))
        .delete()
    )
    deleted, _ = Checkpoint.objects.filter(pk__in=checkpoints.values("pk")).delete()
    return {"checkpoints": deleted, "writes": writes}


@transaction.atomic
def thread_delete(*, agent: Agent, thread_id: str) -> dict[str, int]:
    """Delete a thread's checkpoints and their writes. The session with its messages stays:
    it is the conversation's record, which the thread only annotated."""
    session = Session.objects.filter(agent=agent, external_key=thread_id).first()
    if session is None:
        return {"checkpoints": 0, "writes": 0}
    deleted = _deleted(Checkpoint.objects.of_thread(session))
    # Writes whose checkpoint never arrived go with the thread too.
    orphans, _ = CheckpointWrite.objects.filter(session=session).delete()
    return {**deleted, "writes": deleted["writes"] + orphans}


@transaction.atomic
def checkpoints_delete_for_runs(*, agent: Agent, run_ids: Sequence[str]) -> dict[str, int]:
    """Delete the agent's checkpoints whose metadata names one of `run_ids`, with their writes."""
    if not run_ids:
        return {"checkpoints": 0, "writes": 0}
    checkpoints = (
        Checkpoint.objects.filter(session__agent=agent)
        .exclude(checkpoint_id="")
        # Cast: KT's own lookups would parse the values as JSON on SQLite ("malformed JSON").
        .alias(run_id=Cast(KT("metadata__run_id"), output_field=TextField()))
        .filter(run_id__in=[str(run_id) for run_id in run_ids])
    )
    return _deleted(checkpoints)


def _copied_to[R: (Checkpoint, CheckpointWrite)](row: R, session: Session) -> R:
    """`row` as a new row of `session`: every stored field but its id and its session."""
    fields = {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if not field.primary_key and field.name != "session"
    }
    return type(row)(session=session, **fields)


@transaction.atomic
def thread_copy(*, agent: Agent, source_thread_id: str, target_thread_id: str) -> dict[str, int]:
    """Copy every checkpoint of a thread, with its writes, to another thread of the agent
    (started if new). Checkpoints the target already has under the same id are kept as they
    are, so copying a thread onto itself copies nothing. Returns how many checkpoints and
    writes were copied."""
    source = thread_session(agent=agent, thread_id=source_thread_id)
    target, _started = session_get_or_start(agent=agent, external_key=target_thread_id)
    originals = list(Checkpoint.objects.of_thread(source).order_by("checkpoint_id", "id"))
    taken = set(Checkpoint.objects.of_thread(target).values_list("checkpoint_ns", "checkpoint_id"))
    copies = [
        _copied_to(original, target)
        for original in originals
        if (original.checkpoint_ns, original.checkpoint_id) not in taken
    ]
    Checkpoint.objects.bulk_create(copies)
    copied = {(c.checkpoint_ns, c.checkpoint_id) for c in copies}
    writes = [
        _copied_to(write, target)
        for write in CheckpointWrite.objects.filter(session=source).order_by("pk")
        if (write.checkpoint_ns, write.checkpoint_id) in copied
    ]
    CheckpointWrite.objects.bulk_create(writes)
    return {"checkpoints": len(copies), "writes": len(writes)}


@transaction.atomic
def threads_prune(
    *, agent: Agent, thread_ids: Sequence[str], strategy: str = "keep_latest"
) -> dict[str, int]:
    """Prune threads: `keep_latest` keeps the newest checkpoint of each namespace (with its
    writes), `delete` removes every checkpoint. Unknown threads are skipped."""
    if strategy not in PRUNE_STRATEGIES:
        raise InvalidInput(
            f"strategy must be one of {', '.join(PRUNE_STRATEGIES)}.", field="strategy"
        )
    sessions = Session.objects.filter(agent=agent, external_key__in=list(thread_ids))
    checkpoints = Checkpoint.objects.filter(session__in=sessions.values("pk")).exclude(
        checkpoint_id=""
    )
    if strategy == "keep_latest":
        # Each namespace's newest checkpoint stays (ids sort by time, as LangGraph makes them).
        newest = (
            Checkpoint.objects.filter(
                session=OuterRef("session"), checkpoint_ns=OuterRef("checkpoint_ns")
            )
            .exclude(checkpoint_id="")
            .order_by("-checkpoint_id")
            .values("checkpoint_id")[:1]
        )
        checkpoints = checkpoints.exclude(checkpoint_id=Subquery(newest))
    return _deleted(checkpoints)
