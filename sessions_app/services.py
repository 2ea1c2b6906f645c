"""Writes for sessions, messages, tool calls and checkpoints.

Every write that adds messages or tool calls updates the session's counters in the same
transaction, under a lock on the session row, so the counters stay exact and `seq` stays gapless
however many writers append to one session at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Model, QuerySet, Sum
from django.utils import timezone

from agents.models import Agent, User
from config.errors import Conflict, InvalidInput, NotFound
from config.metrics import ingestion_recorded
from sessions_app import rollups
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import (
    Checkpoint,
    CheckpointWrite,
    ContentType,
    Message,
    Role,
    Session,
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


# What the writers read of the session they lock; the other fields are loaded if asked for.
LOCKED_SESSION_FIELDS = (
    "id",
    "agent_id",
    "message_count",
    "created_at",
    "last_activity_at",
    "finished_at",
)


def _lock_session(session_id: uuid.UUID | str) -> Session:
    # Written out: the ORM took longer to build this one-row query than the database to run it.
    table = connection.ops.quote_name(Session._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {', '.join(LOCKED_SESSION_FIELDS)} FROM {table} WHERE id = %s{lock}"
    pk = Session._meta.pk.get_db_prep_value(session_id, connection)
    session = next(iter(Session.objects.raw(sql, [pk])), None)
    if session is None:
        raise NotFound(f"No session {session_id}.")
    return session


# The rows of a batch are built positionally, in the models' field order: Django's fast path,
# half the time of keywords (0.5 ms for 100 messages and their calls). These pin the order.
MESSAGE_FIELDS = (
    "id",
    "session_id",
    "agent_id",
    "seq",
    "role",
    "content_type",
    "text_content",
    "media_url",
    "model",
    "input_tokens",
    "output_tokens",
    "raw",
    "created_at",
)
TOOL_CALL_FIELDS = (
    "id",
    "session_id",
    "agent_id",
    "message_id",
    "call_id",
    "tool_name",
    "input",
    "output",
    "state",
    "is_error",
    "error_message",
    "error_fingerprint",
    "approval",
    "duration_ms",
    "created_at",
    "finished_at",
)
assert tuple(f.attname for f in Message._meta.concrete_fields) == MESSAGE_FIELDS
assert tuple(f.attname for f in ToolCall._meta.concrete_fields) == TOOL_CALL_FIELDS


def _tool_call_is_error(call: ToolCallIn) -> bool:
    return call.is_error or call.state in FAILED_STATES


def _tool_call_row(
    session: Session, call: ToolCallIn, *, message_id: int | None, at: dt.datetime
) -> ToolCall:
    """The row for `call`: a failure is in the failed state with its fingerprint, and a call
    that has ended without a finish time of its own is taken to have ended at `at`."""
    is_error = _tool_call_is_error(call)
    ended = is_error or call.state in FINAL_STATES
    return ToolCall(  # positionally, in TOOL_CALL_FIELDS order
        None,  # the id, given on insert
        session.pk,
        session.agent_id,
        message_id,
        call.call_id,
        call.tool_name,
        call.input,
        call.output,
        ToolCallState.FAILED if is_error and call.state in FINAL_STATES else call.state,
        is_error,
        call.error_message,
        error_fingerprint(call.error_message) if is_error else "",
        call.approval,
        call.duration_ms,
        call.created_at or at,
        call.finished_at or (at if ended else None),
    )


@transaction.atomic
def session_start(
    *,
    agent: Agent,
    user: User | None = None,
    name: str = "",
    platform: str = "",
    metadata: dict[str, Any] | None = None,
    id: uuid.UUID | None = None,
    created_at: dt.datetime | None = None,
    external_key: str = "",
) -> Session:
    """Start a session of `agent`, optionally with the runtime's own id, its own external key
    and original start time."""
    if id is not None and Session.objects.filter(pk=id).exists():
        raise Conflict(f"A session with id {id} already exists.", field="id")
    if external_key and Session.objects.filter(agent=agent, external_key=external_key).exists():
        raise Conflict(
            f"The agent has a session with external key {external_key!r}.", field="external_key"
        )
    now = timezone.now()
    started = created_at or now
    session = Session.objects.create(
        id=id or uuid.uuid4(),
        agent=agent,
        user=user,
        name=name,
        platform=platform,
        external_key=external_key,
        metadata=metadata or {},
        created_at=started,
        last_activity_at=started,
    )
    rollups.rows_added(sessions=[session])
    return session


def session_get_or_start(*, agent: Agent, external_key: str, **fields: Any) -> tuple[Session, bool]:
    """The session of `agent` with `external_key`, started with `fields` if there is none yet;
    and whether it was started. Two callers racing for a new key get the same session."""
    if not external_key:
        raise InvalidInput("external_key is required.", field="external_key")
    for _ in range(2):
        found = Session.objects.filter(agent=agent, external_key=external_key).first()
        if found is not None:
            if fields.get("id") is not None and fields["id"] != found.pk:
                raise Conflict(
                    f"External key {external_key!r} belongs to session {found.pk}.", field="id"
                )
            return found, False
        try:
            with transaction.atomic():
                return session_start(agent=agent, external_key=external_key, **fields), True
        except IntegrityError:
            # Another writer started it between the look-up and the insert: read theirs.
            continue
        except Conflict as exc:
            if exc.field != "external_key":
                raise
    raise Conflict("The session was started and removed concurrently; retry the request.")


@transaction.atomic
def session_update(
    *,
    session: Session,
    name: str | None = None,
    platform: str | None = None,
    metadata: dict[str, Any] | None = None,
    user: User | type[Ellipsis] | None = ...,
) -> Session:
    """Rename a session, change its platform, metadata or user."""
    changed = []
    for attr, value in (("name", name), ("platform", platform), ("metadata", metadata)):
        if value is not None and getattr(session, attr) != value:
            setattr(session, attr, value)
            changed.append(attr)
    if user is not ... and session.user_id != (user.pk if user else None):
        session.user = user
        changed.append("user")
    if changed:
        session.save(update_fields=[*changed, "updated_at"])
    return session


@transaction.atomic
def session_finish(*, session_id: uuid.UUID | str, at: dt.datetime | None = None) -> Session:
    """Mark a session finished; finishing it again keeps the first time."""
    session = _lock_session(session_id)
    if session.finished_at is None:
        with rollups.sessions_finished([session]):
            session.finished_at = at or timezone.now()
            session.save(update_fields=["finished_at", "updated_at"])
    return session


@transaction.atomic
def sessions_finish(*, sessions: Any) -> int:
    """Finish every active session in a queryset (the admin action); returns how many."""
    # Lock them first, in a fixed order, so the count taken off the daily activity is the count
    # this update finishes, not one a concurrent finish also took.
    ids = list(
        sessions.filter(finished_at__isnull=True)
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    active = Session.objects.filter(pk__in=ids)
    with rollups.sessions_finished(active):
        return active.update(finished_at=timezone.now(), updated_at=timezone.now())


@transaction.atomic
def session_delete(*, session_id: uuid.UUID | str) -> dict[str, dict[str, int]]:
    """Delete a session with its messages, tool calls, checkpoints and its own memories; the
    memories of other scopes that came from it stay, without the link. Returns the rows
    `deleted` and `unlinked` per kind of record."""
    session = _lock_session(session_id)
    per_model = sessions_delete(session_ids=[session.pk])
    unlinked = per_model.pop(UNLINKED_MEMORIES, 0)
    return {
        "deleted": {label.split(".")[-1].lower(): n for label, n in per_model.items()},
        "unlinked": {"memory": unlinked},
    }


def _same_message(stored: Message, incoming: MessageIn, stored_calls: list[ToolCall]) -> bool:
    return (
        stored.role == incoming.role
        and stored.content_type == incoming.content_type
        and stored.text_content == incoming.text_content
        and stored.media_url == incoming.media_url
        and [(c.call_id, c.tool_name) for c in stored_calls]
        == [(c.call_id, c.tool_name) for c in incoming.tool_calls]
    )


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


CALL_ID_TAKEN = "A tool call_id is used twice in this session."
CALL_ID_UNIQUE = "toolcall_session_call_id_uniq"  # ToolCall's unique (session, call_id)


def _call_ids_check(calls: Sequence[ToolCall]) -> None:
    """A call_id twice in the batch is a `Conflict`; one stored before is found by the insert."""
    ids = [c.call_id for c in calls if c.call_id]
    if len(ids) != len(set(ids)):
        raise Conflict(CALL_ID_TAKEN, field="tool_calls")


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


def _messages_insert(rows: list[Message], calls: list[list[ToolCall]]) -> None:
    """Insert new messages, then the tool calls of each (`calls[i]` belong to `rows[i]`); every
    row gets its id, as bulk_create gives it. A call_id stored before in the session is a
    `Conflict`."""
    if connection.vendor == "postgresql":
        _messages_copy(rows, calls)
    else:
        _messages_bulk_create(rows, calls)


def _messages_bulk_create(rows: list[Message], calls: list[list[ToolCall]]) -> None:
    # SQLite's unique violation names no constraint, so the call_ids are looked up first.
    ids = [call.call_id for row_calls in calls for call in row_calls if call.call_id]
    if ids and ToolCall.objects.filter(session_id=rows[0].session_id, call_id__in=ids).exists():
        raise Conflict(CALL_ID_TAKEN, field="tool_calls")
    Message.objects.bulk_create(rows)
    if rows and rows[0].pk is None:  # SQLite before RETURNING support; not expected on 3.35+
        stored = Message.objects.filter(session_id=rows[0].session_id, seq__gte=rows[0].seq)
        by_seq = dict(stored.values_list("seq", "pk"))
        for row in rows:
            row.pk = by_seq[row.seq]
    for row, row_calls in zip(rows, calls, strict=True):
        for call in row_calls:
            call.message_id = row.pk
    ToolCall.objects.bulk_create([call for row_calls in calls for call in row_calls])


def _messages_copy(rows: list[Message], calls: list[list[ToolCall]]) -> None:
    """PostgreSQL: the same rows through COPY, in half the time of bulk_create's INSERTs (4.7
    against 8.6 ms for 100 messages with 34 tool calls, mostly Python building the statements).
    COPY returns no ids, so they are drawn from the tables' sequences first, both in one query,
    in batch order; the session lock held by message_append keeps `seq` gapless as before.
    A call_id stored before is found by the unique constraint (the lock keeps others out), not
    looked up beforehand."""
    if not rows:
        return
    new_calls = [call for row_calls in calls for call in row_calls]
    # Each sequence looked up once (a scalar subquery), not once per id drawn: a third of the time.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array(SELECT nextval((SELECT pg_get_serial_sequence(%s, 'id')))"
            " FROM generate_series(1, %s) ORDER BY 1),"
            " array(SELECT nextval((SELECT pg_get_serial_sequence(%s, 'id')))"
            " FROM generate_series(1, %s) ORDER BY 1)",
            [Message._meta.db_table, len(rows), ToolCall._meta.db_table, len(new_calls)],
        )
        message_ids, call_ids = cursor.fetchone()
    for row, pk, row_calls in zip(rows, message_ids, calls, strict=True):
        row.pk = pk
        for call in row_calls:
            call.message_id = pk
    for call, pk in zip(new_calls, call_ids, strict=True):
        call.pk = pk
    _copy(Message, rows)
    try:
        _copy(ToolCall, new_calls)
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)  # psycopg's, under Django's error
        if diag is None or diag.constraint_name != CALL_ID_UNIQUE:
            raise
        raise Conflict(CALL_ID_TAKEN, field="tool_calls") from None


# Fields whose values Django passes to psycopg unchanged on PostgreSQL (for an aware datetime;
# a naive one, which Django warns about, would be read as UTC); the others (JSON) are converted
# by the field itself. Converting every value through its field took longer than the COPY.
_COPIED_AS_IS = {
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateTimeField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "TextField",
    "UUIDField",
}


def _copy(model: type[Model], objects: Sequence[Model]) -> None:
    """COPY `objects`, ids already set, into the model's table, each value as bulk_create would
    send it, so the stored rows are the same."""
    if not objects:
        return
    db = transaction.get_connection()  # not the `connection` proxy: it is read per value
    fields = model._meta.concrete_fields
    quote = db.ops.quote_name
    sql = (
        f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        " FROM STDIN"
    )
    values = attrgetter(*(f.attname for f in fields))  # a row's values, in one call
    prepared = [(i, f) for i, f in enumerate(fields) if f.get_internal_type() not in _COPIED_AS_IS]
    # Django's cursor logs COPY like any query (query counts in tests and in the benchmark).
    with db.cursor() as cursor, db.wrap_database_errors, cursor.copy(sql) as copy:
        for obj in objects:
            row = list(values(obj))
            for i, f in prepared:
                row[i] = f.get_db_prep_save(f.pre_save(obj, True), db)
            copy.write_row(row)
    for obj in objects:
        obj._state.adding = False
        obj._state.db = db.alias


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


@transaction.atomic
def checkpoint_save(
    *,
    session_id: uuid.UUID | str,
    type: str = "",
    data: Any = None,
    created_at: dt.datetime | None = None,
) -> Checkpoint:
    """Save a checkpoint of a session's state."""
    if not Session.objects.filter(pk=session_id).exists():
        raise NotFound(f"No session {session_id}.")
    return Checkpoint.objects.create(
        session_id=session_id,
        type=type,
        data={} if data is None else data,
        created_at=created_at or timezone.now(),
    )


# --- Single-record edits (the admin's "fix a record"); each keeps the session counters exact. ---

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


# The count of memories of other scopes whose source link a delete cleared (they stay).
UNLINKED_MEMORIES = "memories.Memory (unlinked)"


@transaction.atomic
def sessions_delete(*, session_ids: Sequence[uuid.UUID | str]) -> dict[str, int]:
    """Delete sessions with everything under them, taking them off the daily activity and the
    error groups; returns rows deleted per model label (`sessions_app.Message`: n, …), and
    under UNLINKED_MEMORIES the memories that only named one of them as their source, which
    stay with the link cleared."""
    # Lock the sessions first, in a fixed order, so no append lands between counting and deleting.
    ids = list(
        Session.objects.select_for_update()
        .filter(pk__in=list(session_ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Cleared here rather than by the foreign key's SET_NULL, so the count is known.
    sourced = Session.sourced_memories.rel.related_model.objects.filter(source_session__in=ids)
    with rollups.rows_removed(
        sessions=Session.objects.filter(pk__in=ids),
        messages=Message.objects.filter(session_id__in=ids),
        tool_calls=ToolCall.objects.filter(session_id__in=ids),
    ):
        unlinked = sourced.update(source_session=None)
        _total, per_model = Session.objects.filter(pk__in=ids).delete()
    return {**per_model, UNLINKED_MEMORIES: unlinked}


def sessions_to_prune(*, cutoff: dt.datetime, agent: Any = None) -> QuerySet[Session]:
    """Finished sessions whose `finished_at` is before `cutoff` (optionally one agent's);
    active sessions never, however old."""
    sessions = Session.objects.filter(finished_at__lt=cutoff)
    return sessions if agent is None else sessions.filter(agent=agent)


def sessions_prune_counts(sessions: QuerySet[Session]) -> Counter[str]:
    """What pruning `sessions` would delete (and unlink), from the sessions' exact counters."""
    totals = sessions.aggregate(
        n=Count("pk"), messages=Sum("message_count"), tool_calls=Sum("tool_call_count")
    )
    ids = sessions.values("pk")
    memories = Session.memories.rel.related_model.objects
    return Counter(
        {
            "sessions_app.Session": totals["n"],
            "sessions_app.Message": totals["messages"] or 0,
            "sessions_app.ToolCall": totals["tool_calls"] or 0,
            "sessions_app.Checkpoint": Checkpoint.objects.filter(session__in=ids).count(),
            "sessions_app.CheckpointWrite": CheckpointWrite.objects.filter(session__in=ids).count(),
            "memories.Memory": memories.filter(session__in=ids).count(),
            UNLINKED_MEMORIES: memories.filter(source_session__in=ids).count(),
        }
    )


def sessions_prune(
    *, sessions: QuerySet[Session], batch_size: int = 200, on_batch: Any = None
) -> Counter[str]:
    """Delete `sessions` oldest first, `batch_size` per transaction (not one atomic whole, so
    no lock is held for long and agents keep writing), each batch through `sessions_delete`,
    which keeps the counters and rollups exact. Returns rows per model label."""
    deleted: Counter[str] = Counter()
    while True:
        # Oldest first along session_finished_idx; each batch is its own transaction.
        with transaction.atomic():
            ids = list(sessions.order_by("finished_at").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted.update(sessions_delete(session_ids=ids))
        if on_batch is not None:
            on_batch(len(ids))
