"""Writes for a session as a whole: start, rename, finish, delete. A writer locks the session
row first, so counters stay exact and `seq` gapless however many write at once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.models import Agent, User
from config.errors import Conflict, InvalidInput, NotFound
from sessions_app import rollups
from sessions_app.models import (
    Message,
    Session,
    ToolCall,
)

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
    # Written out: building this one-row query through the ORM cost more than running it.
    table = connection.ops.quote_name(Session._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {', '.join(LOCKED_SESSION_FIELDS)} FROM {table} WHERE id = %s{lock}"
    pk = Session._meta.pk.get_db_prep_value(session_id, connection)
    session = next(iter(Session.objects.raw(sql, [pk])), None)
    if session is None:
        raise NotFound(f"No session {session_id}.")
    return session


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
