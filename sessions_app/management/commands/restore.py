"""`manage.py restore`: a backup made with `dumpdata --format jsonl --natural-foreign` into an
empty database, fast. The engine is `config.restore`, beside the backup format it reads; this adds
the apps' natural keys and the rollups a file too old to hold them leaves to recount.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, models, transaction
from tqdm import tqdm

from agents.models import Agent, User
from config.restore import Restorer, open_backup
from sessions_app import rollups

NATURAL_KEY_LOOKUPS: dict[type[models.Model], tuple[str, ...]] = {
    User: ("email",),
    Agent: ("name",),
}
# The rollups with tables of their own, by table. A backup made before a rollup, or one of its
# columns, existed restores without it, and the rollup is recounted.
ROLLUPS: dict[type[models.Model], rollups.Rollup] = {r.model: r for r in rollups.TABLES}
RECOUNT_DATABASE = DEFAULT_DB_ALIAS  # the services recount through Django's default connection


class Command(BaseCommand):
    help = (
        "Restore a backup made with `dumpdata --format jsonl --natural-foreign ...` into a "
        "freshly migrated, empty database: every row and field, primary keys kept, fast."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The .jsonl (or .jsonl.gz) file dumpdata wrote.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--chunk-size", type=int, default=5000, help="Rows written per COPY / INSERT."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        restorer = Restorer(
            using=options["database"],
            chunk_size=options["chunk_size"],
            natural_key_lookups=NATURAL_KEY_LOOKUPS,
            rollups=ROLLUPS,
        )
        restorer.refuse_non_empty()
        stream, size = open_backup(options["path"])
        show = options["verbosity"] > 0 and not options["no_progress"]
        progress = (
            tqdm(total=size, unit="B", unit_scale=True, desc="restore", file=self.stderr._out)
            if show
            else None
        )
        started = time.perf_counter()
        try:
            with transaction.atomic(using=restorer.using):
                restorer.begin()
                for chunk in restorer.chunks(stream, progress):
                    restorer.restore_chunk(chunk)
                restorer.finish()
                if stale := restorer.stale_rollups():
                    labels = ", ".join(m._meta.label for m in stale)
                    if restorer.using != RECOUNT_DATABASE:
                        raise CommandError(
                            f"The file predates {labels}, which the stats are read from and "
                            "which are recounted in the default database only: restore it there. "
                            "Nothing was restored."
                        )
                    rollups.recount(only=[ROLLUPS[model].name for model in stale])
                    if options["verbosity"] > 0:
                        self.stdout.write(f"Recounted what the file predates: {labels}.")
        except (OSError, EOFError) as exc:
            raise CommandError(f"Cannot read {options['path']}: {exc}.") from None
        finally:
            stream.close()
            if progress is not None:
                progress.close()
        restorer.analyze()
        elapsed = time.perf_counter() - started
        total = sum(restorer.counts.values())
        if options["verbosity"] > 0:
            for label, count in restorer.counts.items():
                self.stdout.write(f"  {label}: {count}")
            self.stdout.write(
                f"Restored {total} rows in {elapsed:.1f} s ({total / max(elapsed, 1e-9):,.0f} "
                "rows/s)."
            )
