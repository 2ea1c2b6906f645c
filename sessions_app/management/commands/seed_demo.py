"""`manage.py seed_demo`: realistic demo data for the console, the API and the benchmark.

The catalogue (agents, tools, people, words) and the generator live in `sessions_app.demo`;
this parses the arguments and reports what was written.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import Agent
from sessions_app.demo import DemoData, DemoSeedTaken
from sessions_app.models import Session


class Command(BaseCommand):
    help = (
        "Create realistic demo data: agents, end users, multi-turn sessions over the last "
        "30 days with tool calls (about 5% failing), memories and checkpoints."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sessions", type=int, default=300, help="How many sessions (default 300)."
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed: the same seed, the same data."
        )
        parser.add_argument(
            "--now",
            default=None,
            help="The moment the 30 days end (ISO 8601); default: now. With --seed, "
            "a fixed --now makes the data identical, timestamps included.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already holds agents or sessions.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["sessions"]
        if count < 1:
            raise CommandError("--sessions must be a positive number.")
        now = self._parse_now(options["now"])
        if options["if_empty"] and (Agent.objects.exists() or Session.objects.exists()):
            self.stdout.write("The database already holds data; no demo data added (--if-empty).")
            return
        started = time.perf_counter()
        try:
            seed, totals = DemoData().build(
                count=count,
                seed=options["seed"],
                now=now,
                show_progress=options["verbosity"] > 0,
            )
        except DemoSeedTaken as taken:
            raise CommandError(str(taken)) from None

        elapsed = time.perf_counter() - started
        rate = totals.messages / elapsed if elapsed else 0
        self.stdout.write(
            f"Demo data (seed {seed}): {totals.agents} agents, {totals.users} new end users, "
            f"{totals.sessions:,} sessions ({totals.active:,} active), "
            f"{totals.messages:,} messages, {totals.tool_calls:,} tool calls "
            f"({totals.errors:,} failed), {totals.checkpoints:,} checkpoints, "
            f"{totals.memories:,} memories in {elapsed:.1f}s ({rate:,.0f} messages/s)."
        )

    @staticmethod
    def _parse_now(raw: str | None) -> dt.datetime:
        if raw is None:
            return timezone.now().replace(microsecond=0)
        try:
            value = parse_datetime(raw)
        except ValueError:
            value = None
        if value is None:
            raise CommandError(f"--now {raw!r} is not an ISO 8601 date and time.")
        return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
