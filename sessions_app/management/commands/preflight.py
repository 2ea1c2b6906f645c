"""`manage.py preflight`: may this database be served? `make serve` runs it before the server.

The server must not start on a database it cannot reach or whose schema is behind the code: a
missing column is a 500 on every page that reads it. This says which migrations are unapplied
and exits 1, instead of letting the first operator find out.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError


class Command(BaseCommand):
    help = (
        "Check that the database is reachable and fully migrated; exit 1 naming each "
        "unapplied migration otherwise (make serve runs it before the server)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        try:
            connection.ensure_connection()
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(
                f"Logdeck will not start: the database is unreachable: {first}"
            ) from None
        if plan:
            names = "\n".join(f"  {m.app_label}.{m.name}" for m, _backwards in plan)
            raise CommandError(
                f"Logdeck will not start: {len(plan)} migration(s) not applied:\n{names}\n"
                "Apply them first: .venv/bin/python manage.py migrate"
            )
        self.stdout.write("Database reachable, all migrations applied.")
