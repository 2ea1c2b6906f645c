"""The raw SQL of a batch append: rows built positionally, inserted with COPY on PostgreSQL
and bulk_create elsewhere, every row given its id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from operator import attrgetter

from django.db import IntegrityError, connection, transaction
from django.db.models import Model

from config.errors import Conflict
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import (
    Message,
    Session,
    ToolCall,
    ToolCallState,
)
from sessions_app.services.inputs import (
    FINAL_STATES,
    ToolCallIn,
    _tool_call_is_error,
)

# The rows of a batch are built positionally, in the models' field order: Django's fast path,
# cheaper than keywords per row. These pin the order.
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


CALL_ID_TAKEN = "A tool call_id is used twice in this session."


CALL_ID_UNIQUE = "toolcall_session_call_id_uniq"  # ToolCall's unique (session, call_id)


def _call_ids_check(calls: Sequence[ToolCall]) -> None:
    """A call_id twice in the batch is a `Conflict`; one stored before is found by the insert."""
    ids = [c.call_id for c in calls if c.call_id]
    if len(ids) != len(set(ids)):
        raise Conflict(CALL_ID_TAKEN, field="tool_calls")


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
    """PostgreSQL: the same rows through COPY, which skips the Python that builds bulk_create's
    INSERTs. COPY returns no ids, so they are drawn from the tables' sequences first, both in
    one query, in batch order; the session lock held by message_append keeps `seq` gapless.
    A call_id stored before is found by the unique constraint (the lock keeps others out), not
    looked up beforehand."""
    if not rows:
        return
    new_calls = [call for row_calls in calls for call in row_calls]
    # Each sequence looked up once (a scalar subquery), not once per id drawn.
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
# by the field itself: converting every value through its field would cost more than the COPY.
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
