"""Writes for a session's checkpoints of its own state."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.errors import NotFound
from sessions_app.models import (
    Checkpoint,
    Session,
)


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
