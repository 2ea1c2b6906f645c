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
from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from tqdm import tqdm

from agents.models import Agent
from memories.models import Memory
from sessions_app.models import Checkpoint, Session
from sessions_app.services import UNLINKED_MEMORIES, sessions_delete

AGE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Labels of Django's per-model delete counts, in the order they are reported.
REPORTED = (
    ("sessions_app.Session", "sessions"),
    ("sessions_app.Message", "messages"),
    ("sessions_app.ToolCall", "tool calls"),
    ("sessions_app.Checkpoint", "checkpoints"),
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
        sessions = Session.objects.filter(finished_at__lt=cutoff)
        scope = f"finished before {cutoff:%Y-%m-%d %H:%M} UTC"
        if options["agent"] is not None:
            agent = Agent.objects.filter(name=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent named {options['agent']!r}.")
            sessions = sessions.filter(agent=agent)
            scope += f" of agent {agent.name!r}"

        if options["dry_run"]:
            counts = self._would_delete(sessions)
            self.stdout.write(f"Dry run: would delete {self._summary(counts)} ({scope}).")
            return

        total = sessions.count()
        deleted: Counter[str] = Counter()
        progress = tqdm(
            total=total,
            unit="session",
            desc="Pruning",
            file=sys.stderr,
            disable=True if options["verbosity"] == 0 else None,
        )
        with progress:
            while True:
                # Oldest first along session_finished_idx; each batch is its own transaction.
                with transaction.atomic():
                    ids = list(
                        sessions.order_by("finished_at").values_list("pk", flat=True)[:batch_size]
                    )
                    if not ids:
                        break
                    per_model = sessions_delete(session_ids=ids)
                deleted.update(per_model)
                progress.update(len(ids))
        self.stdout.write(f"Deleted {self._summary(deleted)} ({scope}).")

    @staticmethod
    def _would_delete(sessions: QuerySet[Session]) -> Counter[str]:
        # The exact counters on each session give messages and tool calls without a scan.
        totals = sessions.aggregate(
            n=Count("pk"), messages=Sum("message_count"), tool_calls=Sum("tool_call_count")
        )
        ids = sessions.values("pk")
        return Counter(
            {
                "sessions_app.Session": totals["n"],
                "sessions_app.Message": totals["messages"] or 0,
                "sessions_app.ToolCall": totals["tool_calls"] or 0,
                "sessions_app.Checkpoint": Checkpoint.objects.filter(session__in=ids).count(),
                "memories.Memory": Memory.objects.filter(session__in=ids).count(),
                UNLINKED_MEMORIES: Memory.objects.filter(source_session__in=ids).count(),
            }
        )

    @staticmethod
    def _summary(counts: Counter[str]) -> str:
        return ", ".join(f"{counts.get(label, 0):,} {name}" for label, name in REPORTED)
