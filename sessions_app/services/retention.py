"""Retention: finished sessions older than a cutoff, counted and pruned in batches."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet, Sum

from sessions_app.models import (
    Checkpoint,
    CheckpointWrite,
    Session,
)
from sessions_app.services.sessions import UNLINKED_MEMORIES, sessions_delete


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
