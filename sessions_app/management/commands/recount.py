"""`manage.py recount`: the stats' rollups counted again from the rows they count.

The services keep the daily activity, the error groups by day and the tool calls by state exact
as they write. Rows that reached the database another way (an import with `COPY`, SQL by hand)
are not in them; this counts all three again, in one transaction.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from sessions_app.services import rollups_recount


class Command(BaseCommand):
    help = (
        "Count the daily activity, the error groups by day and the tool calls by state again "
        "from the sessions, messages and tool calls, after rows were loaded around Logdeck."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        speak = options["verbosity"] > 0

        def progress(name: str, rows: int) -> None:
            if speak:
                self.stdout.write(f"  {name}: {rows:,} rows")

        if speak:
            self.stdout.write(
                "Counting the rollups again from the sessions, messages and tool calls:"
            )
        rollups_recount(progress=progress)
        if speak:
            self.stdout.write(f"Recounted in {time.perf_counter() - started:.1f} s.")
