"""`manage.py recount`: every derived number counted again from the rows it counts.

The services keep the session counters, the daily activity, the error groups by day and the tool
calls by state exact as they write. Rows that reached the database another way (an import with
`COPY`, SQL by hand) are not in them; this counts them all again, in one transaction. With
`--check` it writes nothing, names what drifted and exits 1, for cron.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sessions_app import rollups


class Command(BaseCommand):
    help = (
        "Count the session counters, the daily activity, the error groups by day and the tool "
        "calls by state again from the sessions, messages and tool calls, after rows were "
        "loaded around Logdeck; --check only compares, and exits 1 on drift."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing: name every number that differs from a recount, exit 1 if any.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        speak = options["verbosity"] > 0
        if options["check"]:
            self.check_drift(speak=speak)
            return

        def progress(name: str, rows: int) -> None:
            if speak:
                self.stdout.write(f"  {name}: {rows:,} rows")

        if speak:
            self.stdout.write("Counting every rollup again from the sessions, messages and calls:")
        rollups.recount(progress=progress)
        if speak:
            self.stdout.write(f"Recounted in {time.perf_counter() - started:.1f} s.")

    def check_drift(self, *, speak: bool) -> None:
        drifted = {name: lines for name, lines in rollups.drift().items() if lines}
        for name in rollups.BY_NAME:
            if name in drifted:
                self.stderr.write(f"{name}: drifted")
                for line in drifted[name]:
                    self.stderr.write(f"  {line}")
            elif speak:
                self.stdout.write(f"{name}: exact")
        if drifted:
            self.stderr.write(
                f"Drift in {', '.join(drifted)}: run `manage.py recount` to count again."
            )
            sys.exit(1)
