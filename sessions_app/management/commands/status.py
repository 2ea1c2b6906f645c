"""`manage.py status`: which database, is it reachable, what is pending, how much is in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError

from config.replicas import replica_states

# Up to this many rows a table is counted exactly (a bounded scan); above it, estimated.
EXACT_COUNT_LIMIT = 100_000
PROBE_TIMEOUT_SECONDS = 5


def _describe(connection: BaseDatabaseWrapper) -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"SQLite at {settings['NAME']}"
    where = f"{settings.get('HOST') or 'localhost'}:{settings.get('PORT') or 5432}"
    # Never the password: this output ends up in tickets and chat.
    return f"PostgreSQL database {settings['NAME']!r} on {where} as {settings.get('USER')!r}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class Command(BaseCommand):
    help = (
        "Show the database in use, its version, whether it is reachable, pending migrations, "
        "rows per model (estimated for big tables) and the size on disk. Exits 1 when the "
        "database cannot be reached."
    )

    # The system checks open a connection (SQLite's JSON support); status must reach its own
    # verdict about the database first.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        self.stdout.write(f"Database:   {_describe(connection)}")
        self._probe(connection)
        try:
            connection.ensure_connection()
            version = self._version(connection)
        except DatabaseError as exc:
            raise CommandError(f"Database unreachable: {_first_line(exc)}") from None
        self.stdout.write(f"Version:    {version}")
        self.stdout.write("Reachable:  yes")

        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            self.stdout.write(
                self.style.WARNING(f"Migrations: {len(plan)} pending — run manage.py migrate")
            )
            for migration, _backwards in plan[:20]:
                self.stdout.write(f"  {migration.app_label}.{migration.name}")
        else:
            self.stdout.write("Migrations: all applied")

        self.stdout.write(f"Size:       {_human(self._database_size(connection))}")
        for state in replica_states():
            where = _describe(connections[state.alias])
            if state.lag is None:
                verdict = self.style.WARNING(f"skipped ({state.error})")
            elif state.usable:
                verdict = f"lag {state.lag:.2f} s, serving reads"
            else:
                verdict = self.style.WARNING(f"lag {state.lag:.2f} s, skipped (too far behind)")
            self.stdout.write(f"Replica:    {state.alias}: {where}: {verdict}")
        tables = set(connection.introspection.table_names())
        self.stdout.write("\nRows per model (~ estimated):")
        for model in apps.get_models():
            table = model._meta.db_table
            if table not in tables:
                count = "table missing"
            else:
                rows, exact = self._rows(connection, table)
                count = f"{rows:,}" if exact else f"~{rows:,}"
            self.stdout.write(f"  {model._meta.label:<32} {count:>14}")

    @staticmethod
    def _probe(connection: BaseDatabaseWrapper) -> None:
        """Fail fast and plainly when the database is not there, before a pool retries it."""
        settings = connection.settings_dict
        if connection.vendor == "sqlite":
            name = str(settings["NAME"])
            if name != ":memory:" and not name.startswith("file:") and not Path(name).exists():
                # Opening it would create an empty file; say what is wrong instead.
                raise CommandError(
                    f"Database unreachable: {name} does not exist (run manage.py migrate)."
                )
            return
        try:
            probe = psycopg.connect(
                dbname=settings["NAME"],
                user=settings.get("USER") or None,
                password=settings.get("PASSWORD") or None,
                host=settings.get("HOST") or None,
                port=settings.get("PORT") or None,
                connect_timeout=PROBE_TIMEOUT_SECONDS,
            )
        except psycopg.Error as exc:
            raise CommandError(f"Database unreachable: {_first_line(exc)}") from None
        probe.close()

    @staticmethod
    def _version(connection: BaseDatabaseWrapper) -> str:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SHOW server_version")
                return f"PostgreSQL {cursor.fetchone()[0]}"
            cursor.execute("SELECT sqlite_version()")
            version = cursor.fetchone()[0]
            cursor.execute("PRAGMA journal_mode")
            return f"SQLite {version} (journal mode {cursor.fetchone()[0]})"

    @staticmethod
    def _database_size(connection: BaseDatabaseWrapper) -> int:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_database_size(current_database())")
                return int(cursor.fetchone()[0])
        name = str(connection.settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            return 0
        # The WAL holds committed pages not yet copied back into the main file.
        return sum(
            Path(name + suffix).stat().st_size
            for suffix in ("", "-wal", "-shm")
            if Path(name + suffix).exists()
        )

    @staticmethod
    def _rows(connection: BaseDatabaseWrapper, table: str) -> tuple[int, bool]:
        """Exact for small tables; for big ones the planner's estimate (PostgreSQL) or the
        highest rowid (SQLite), so status never scans a huge table."""
        quoted = connection.ops.quote_name(table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {quoted} LIMIT %s) AS bounded",
                [EXACT_COUNT_LIMIT],
            )
            rows = cursor.fetchone()[0]
            if rows < EXACT_COUNT_LIMIT:
                return rows, True
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table]
                )
                estimate = cursor.fetchone()[0]
            else:
                cursor.execute(f"SELECT MAX(rowid) FROM {quoted}")
                estimate = cursor.fetchone()[0]
            return max(int(estimate or 0), rows), False
