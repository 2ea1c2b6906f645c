"""`manage.py prune --older-than 90d`: retention for finished sessions.

Deletes finished sessions whose `finished_at` is older than the cutoff, with their messages,
tool calls, checkpoints and the sessions' own memories (memories of other scopes that came from
them stay, with the link cleared), in small batches — one short transaction each,
so agents keep writing while it runs. Active sessions are never touched.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from agents.models import Agent
from sessions_app.services import (
    UNLINKED_MEMORIES,
    sessions_prune,
    sessions_prune_counts,
    sessions_to_prune,
)

AGE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Labels of Django's per-model delete counts, in the order they are reported.
REPORTED = (
    ("sessions_app.Session", "sessions"),
    ("sessions_app.Message", "messages"),
    ("sessions_app.ToolCall", "tool calls"),
    ("sessions_app.Checkpoint", "checkpoints"),
    ("sessions_app.CheckpointWrite", "pending writes"),
    ("memories.Memory", "session memories"),
    (UNLINKED_MEMORIES, "memories of other scopes kept without their source session"),
)


def parse_age(raw: str) -> dt.timedelta:
    """`90d`, `12h`, `2w` as a timedelta; anything else is a CommandError that says why."""
    match = AGE.match(raw or "")
    if not match:
        raise CommandError(
            f"--older-than {raw!r} is not an age: use a number and a unit, "
            "h (hours), d (days) or w (weeks), e.g. 90d."
        )
    amount, unit = int(match[1]), match[2].lower()
    if amount < 1:
        raise CommandError("--older-than must be at least 1 (e.g. 1d).")
    return dt.timedelta(**{UNITS[unit]: amount})


class Command(BaseCommand):
    help = (
        "Delete finished sessions older than an age (by when they finished), with everything "
        "under them, in batches. --dry-run only says what would be deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", required=True, help="e.g. 90d, 12h, 2w (by finished_at)"
        )
        parser.add_argument("--agent", help="Only this agent's sessions (its name).")
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=200, help="Sessions per transaction (default 200)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        age = parse_age(options["older_than"])
        batch_size: int = options["batch_size"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        try:
            cutoff = timezone.now() - age
        except OverflowError:
            raise CommandError(f"--older-than {options['older_than']!r} is too long ago.") from None
        agent = None
        scope = f"finished before {cutoff:%Y-%m-%d %H:%M} UTC"
        if options["agent"] is not None:
            agent = Agent.objects.filter(name=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent named {options['agent']!r}.")
            scope += f" of agent {agent.name!r}"
        sessions = sessions_to_prune(cutoff=cutoff, agent=agent)

        if options["dry_run"]:
            counts = sessions_prune_counts(sessions)
            self.stdout.write(f"Dry run: would delete {self._summary(counts)} ({scope}).")
            return

        progress = tqdm(
            total=sessions.count(),
            unit="session",
            desc="Pruning",
            file=sys.stderr,
            disable=True if options["verbosity"] == 0 else None,
        )
        with progress:
            deleted = sessions_prune(
                sessions=sessions, batch_size=batch_size, on_batch=progress.update
            )
        self.stdout.write(f"Deleted {self._summary(deleted)} ({scope}).")

    @staticmethod
    def _summary(counts: Counter[str]) -> str:
        return ", ".join(f"{counts.get(label, 0):,} {name}" for label, name in REPORTED)
