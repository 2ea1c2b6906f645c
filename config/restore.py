"""The engine of `manage.py restore`: a backup made with the README's `dumpdata --format jsonl
--natural-foreign`, restored fast.

`loaddata` saves one object at a time and looks every natural key up with its own query (about
600 rows/s). This command streams the same file in chunks, resolves the natural keys of a chunk
with one query per related model, and writes the chunk with `COPY` on PostgreSQL (one
`executemany` INSERT on SQLite). Memory holds one chunk and a bounded key cache, whatever the
file's size. Everything runs in one transaction: a bad file restores nothing.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session as LoginSession
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import DatabaseError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from tqdm import tqdm

# Rows a freshly migrated database already holds: the target may have these, nothing else.
MIGRATION_MODELS: tuple[type[models.Model], ...] = (ContentType, Permission, Group, LoginSession)
# Natural keys resolved in bulk, one query per chunk: the lookups that match `natural_key()`.
# The apps add their own models' (the restore command passes them).
NATURAL_KEY_LOOKUPS: dict[type[models.Model], tuple[str, ...]] = {
    Group: ("name",),
    ContentType: ("app_label", "model"),
    Permission: ("codename", "content_type__app_label", "content_type__model"),
}
# Fields whose JSON string PostgreSQL's COPY parses exactly as the field's to_python would.
TEXT_PARSED_FIELDS = (
    models.CharField,
    models.TextField,
    models.DateTimeField,
    models.DateField,
    models.UUIDField,
    models.DecimalField,
)
KEY_CACHE_LIMIT = 200_000  # natural key -> pk entries kept; cleared when full, so memory is bounded

Converter = Callable[[Any], Any]


class BackupError(CommandError):
    """The file cannot be restored; the message says where and why."""


@dataclass
class M2MTarget:
    name: str
    table: str
    own_column: str
    other_column: str
    related: type[models.Model]


@dataclass
class ModelTarget:
    """How the rows of one model go from the file's JSON into its table."""

    model: type[models.Model]
    columns: list[str]
    sources: list[str]  # the key in "fields" for each column ("pk" for the primary key)
    fields: list[models.Field]
    converters: list[Converter]
    m2m: list[M2MTarget] = field(default_factory=list)

    @property
    def plan(self) -> list[tuple[str, models.Field, Converter, type[models.Model] | None]]:
        """Per column: where its value is, its field, its converter, the model a key names."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = [
                (source, f, convert, f.remote_field.model if f.is_relation else None)
                for source, f, convert in zip(
                    self.sources, self.fields, self.converters, strict=True
                )
            ]
            self.__dict__["_plan"] = plan
        return plan


@dataclass
class Chunk:
    target: ModelTarget
    first_line: int
    records: list[dict[str, Any]] = field(default_factory=list)
    last_line: int = 0


class Restorer:
    """Streams a JSONL backup into an empty, freshly migrated database."""

    def __init__(
        self,
        *,
        using: str,
        chunk_size: int,
        natural_key_lookups: dict[type[models.Model], tuple[str, ...]],
        rollups: dict[type[models.Model], Any],
    ) -> None:
        """`rollups`: the tables of derived numbers, each with `counted_from(using)`, the rows it
        counts; a file that lacks one, in part or whole, leaves it stale (`stale_rollups`)."""
        self.using = using
        self.natural_key_lookups = {**NATURAL_KEY_LOOKUPS, **natural_key_lookups}
        self.rollups = rollups
        self.connection: BaseDatabaseWrapper = connections[using]
        self.postgres = self.connection.vendor == "postgresql"
        self.chunk_size = chunk_size
        self.targets: dict[str, ModelTarget] = {}
        self.keys: dict[type[models.Model], dict[tuple[Any, ...], Any]] = {}
        self.counts: dict[str, int] = {}
        self.touched: list[type[models.Model]] = []
        self.groups_replaced = False
        self.unchecked = False  # True when foreign keys are checked by `check_foreign_keys`
        self.indexes: list[str] = []  # dropped for the load, rebuilt by `finish`
        self.partial: set[type[models.Model]] = set()  # rollups with a column the file lacks

    # --- checks ---------------------------------------------------------------------------
    def refuse_non_empty(self) -> None:
        """Refuse a target that holds anything a fresh `migrate` would not have put there."""
        filled = []
        for model in apps.get_models(include_auto_created=True):
            if model in MIGRATION_MODELS or model._meta.auto_created in MIGRATION_MODELS:
                continue
            if not model._meta.managed or model._meta.proxy:
                continue
            if model._base_manager.using(self.using).exists():
                filled.append(model._meta.label)
        if filled:
            raise CommandError(
                f"The database '{self.using}' is not empty ({', '.join(filled)} already have "
                "rows). restore fills a freshly migrated, empty database: create a new database, "
                "run `manage.py migrate` on it, and restore into that."
            )

    # --- the file's models ------------------------------------------------------------------
    def target_for(self, label: str, line: int) -> ModelTarget:
        target = self.targets.get(label)
        if target is not None:
            return target
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise BackupError(f"line {line}: unknown model {label!r}.") from None
        columns, sources, fields, converters = [], [], [], []
        for f in model._meta.concrete_fields:
            columns.append(f.column)
            sources.append("pk" if f.primary_key else f.name)
            fields.append(f)
            converters.append(self.converter(f))
        m2m = [
            M2MTarget(
                name=f.name,
                table=f.remote_field.through._meta.db_table,
                own_column=f.m2m_column_name(),
                other_column=f.m2m_reverse_name(),
                related=f.remote_field.model,
            )
            for f in model._meta.many_to_many
            if f.remote_field.through._meta.auto_created
        ]
        target = ModelTarget(model, columns, sources, fields, converters, m2m)
        self.targets[label] = target
        self.touched.append(model)
        self.touched += [f.remote_field.through for f in model._meta.many_to_many]
        return target

    def converter(self, f: models.Field) -> Converter:
        """JSON value -> database value. PostgreSQL's COPY parses text itself, so the common
        types pass through unchanged; everything else goes through the field, as loaddata does."""
        connection = self.connection
        if f.is_relation:
            f = f.target_field  # the related row's key, once a natural key is resolved to it

        def generic(value: Any) -> Any:
            return f.get_db_prep_save(f.to_python(value), connection)

        if not self.postgres:
            return generic
        if isinstance(f, models.JSONField):
            return lambda value: None if value is None else json.dumps(value)
        passthrough: tuple[type, ...]
        if isinstance(f, models.BooleanField):
            passthrough = (bool,)
        elif isinstance(f, models.IntegerField):  # AutoFields too
            passthrough = (int,)
        elif isinstance(f, TEXT_PARSED_FIELDS):
            passthrough = (str,)
        else:
            return generic

        def fast(value: Any) -> Any:
            if value is None or type(value) in passthrough:
                return value
            return generic(value)

        return fast

    # --- reading -----------------------------------------------------------------------------
    def chunks(self, stream: IO[bytes], progress: tqdm | None) -> Iterator[Chunk]:
        chunk: Chunk | None = None
        for number, line in enumerate(stream, start=1):
            if progress is not None:
                progress.update(len(line))
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BackupError(f"line {number}: not valid JSON ({exc}).") from None
            if not isinstance(record, dict) or not isinstance(record.get("model"), str):
                raise BackupError(f"line {number}: expected an object with a 'model' key.")
            if "pk" not in record:
                raise BackupError(
                    f"line {number}: no 'pk'. Make backups with the README's command "
                    "(--natural-foreign, not --natural-primary)."
                )
            if not isinstance(record.get("fields", {}), dict):
                raise BackupError(f"line {number}: 'fields' must be an object.")
            record["_line"] = number
            target = self.target_for(record["model"].lower(), number)
            if chunk is None or chunk.target is not target or len(chunk.records) >= self.chunk_size:
                if chunk is not None:
                    yield chunk
                chunk = Chunk(target=target, first_line=number)
            chunk.records.append(record)
            chunk.last_line = number
        if chunk is not None:
            yield chunk

    # --- natural keys ------------------------------------------------------------------------
    def resolve(self, related: type[models.Model], wanted: set[tuple[Any, ...]]) -> None:
        """Fill the key cache for `wanted` natural keys of `related`: one query, if any is new."""
        cache = self.keys.setdefault(related, {})
        missing = [key for key in wanted if key not in cache]
        if not missing:
            return
        if len(cache) + len(missing) > KEY_CACHE_LIMIT:
            cache.clear()
        manager = related._default_manager.db_manager(self.using)
        lookups = self.natural_key_lookups.get(related)
        if lookups is not None:
            found = 0
            for start in range(0, len(missing), 1000):
                batch = missing[start : start + 1000]
                if len(lookups) == 1:
                    rows = manager.filter(**{f"{lookups[0]}__in": [k[0] for k in batch]})
                else:
                    condition = models.Q()
                    for key in batch:
                        condition |= models.Q(**dict(zip(lookups, key, strict=True)))
                    rows = manager.filter(condition)
                for row in rows.values_list(*lookups, "pk"):
                    cache[tuple(row[:-1])] = row[-1]
                    found += 1
            missing = [key for key in missing if key not in cache]
        for key in missing:  # other models, or a key stored in another spelling: ask the model
            try:
                cache[key] = manager.get_by_natural_key(*key).pk
            except related.DoesNotExist:
                continue

    def key_to_pk(self, related: type[models.Model], value: Any, line: int, name: str) -> Any:
        if not isinstance(value, list):
            return value  # a plain primary key (a model without a natural key)
        pk = self.keys.get(related, {}).get(tuple(value))
        if pk is None:
            raise BackupError(
                f"line {line}: {name} refers to {related._meta.label} {value!r}, which is "
                "neither in the target database nor earlier in the file."
            )
        return pk

    def prepare(self, chunk: Chunk) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple]]]:
        """The chunk's rows for its table and for each many-to-many table."""
        target = chunk.target
        relations = [(i, f) for i, f in enumerate(target.fields) if f.is_relation]
        wanted: dict[type[models.Model], set[tuple[Any, ...]]] = {}
        for record in chunk.records:
            values = record.get("fields", {})
            for _i, f in relations:
                value = values.get(f.name)
                if isinstance(value, list):
                    wanted.setdefault(f.remote_field.model, set()).add(tuple(value))
            for m2m in target.m2m:
                for value in values.get(m2m.name) or ():
                    if isinstance(value, list):
                        wanted.setdefault(m2m.related, set()).add(tuple(value))
        for related, keys in wanted.items():
            self.resolve(related, keys)

        known = set(target.sources) | {m.name for m in target.m2m}
        now = timezone.now()
        rows: list[tuple[Any, ...]] = []
        links: dict[str, list[tuple]] = {m.table: [] for m in target.m2m}
        rollup = target.model in self.rollups
        for record in chunk.records:
            line = record["_line"]
            values = record.get("fields", {})
            unknown = set(values) - known
            if unknown:
                raise BackupError(
                    f"line {line}: {target.model._meta.label} has no field "
                    f"{', '.join(sorted(unknown))}."
                )
            if rollup and len(values) < len(known) - 1:  # every field but the primary key
                self.partial.add(target.model)
            row = []
            f = None
            try:
                for source, f, convert, related in target.plan:
                    if source == "pk":
                        value = record["pk"]
                    elif source in values:
                        value = values[source]
                    elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                        value = now  # a hand-written line may leave out what save() would stamp
                    else:
                        value = f.get_default()
                    if related is not None and type(value) is list:
                        value = self.key_to_pk(related, value, line, f.name)
                    row.append(convert(value))
            except ValidationError as exc:
                raise BackupError(f"line {line}: {f.name}: {' '.join(exc.messages)}") from None
            rows.append(tuple(row))
            own_pk = target.fields[target.sources.index("pk")]
            for m2m in target.m2m:
                for value in values.get(m2m.name) or ():
                    other = self.key_to_pk(m2m.related, value, line, m2m.name)
                    links[m2m.table].append(
                        (
                            own_pk.get_db_prep_save(
                                own_pk.to_python(record["pk"]), self.connection
                            ),
                            m2m.related._meta.pk.get_db_prep_save(
                                m2m.related._meta.pk.to_python(other), self.connection
                            ),
                        )
                    )
        return rows, links

    # --- writing -----------------------------------------------------------------------------
    def write(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        qn = self.connection.ops.quote_name
        names = ", ".join(qn(c) for c in columns)
        with self.connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {qn(table)} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})", rows)

    def restore_chunk(self, chunk: Chunk) -> None:
        target = chunk.target
        if target.model is Group and not self.groups_replaced:
            # Migrations create the operator groups; the backup's groups (same names) replace them.
            Group.objects.using(self.using).all().delete()
            self.groups_replaced = True
        rows, links = self.prepare(chunk)
        try:
            self.write(target.model._meta.db_table, target.columns, rows)
            for m2m in target.m2m:
                self.write(m2m.table, [m2m.own_column, m2m.other_column], links[m2m.table])
        except DatabaseError as exc:
            raise BackupError(
                f"lines {chunk.first_line}-{chunk.last_line} ({target.model._meta.label}): "
                f"the database refused them: {exc}".strip()
            ) from None
        label = target.model._meta.label
        self.counts[label] = self.counts.get(label, 0) + len(rows)

    def begin(self) -> None:
        """On PostgreSQL, load the way pg_restore does: build the secondary indexes once after
        the data, and check foreign keys once per key, set-wise, instead of a trigger per row
        (which needs the right to set `session_replication_role`; else the triggers run)."""
        if not self.postgres:
            return
        tables = [
            m._meta.db_table
            for m in apps.get_models(include_auto_created=True)
            if m._meta.managed
            and not m._meta.proxy
            and m not in MIGRATION_MODELS
            and m._meta.auto_created not in MIGRATION_MODELS
        ]
        with self.connection.cursor() as cursor:
            try:
                with transaction.atomic(using=self.using):
                    cursor.execute("SET LOCAL session_replication_role = replica")
                self.unchecked = True
            except DatabaseError:
                self.unchecked = False
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace "
                "AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                [tables],
            )
            indexes = cursor.fetchall()
            try:
                with transaction.atomic(using=self.using):
                    for name, _definition in indexes:
                        cursor.execute(f"DROP INDEX {name}")
                self.indexes = [definition for _name, definition in indexes]
            except DatabaseError:
                self.indexes = []  # not the tables' owner: load with the indexes in place

    def check_foreign_keys(self) -> None:
        """Every foreign key of the restored tables points at a row: one anti-join per key."""
        qn = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            for model in self.touched:
                for f in model._meta.concrete_fields:
                    if not f.is_relation or not getattr(f, "db_constraint", False):
                        continue
                    parent = f.remote_field.model._meta
                    cursor.execute(
                        f"SELECT c.{qn(model._meta.pk.column)}, c.{qn(f.column)} "
                        f"FROM {qn(model._meta.db_table)} c WHERE c.{qn(f.column)} IS NOT NULL "
                        f"AND NOT EXISTS (SELECT 1 FROM {qn(parent.db_table)} p "
                        f"WHERE p.{qn(f.target_field.column)} = c.{qn(f.column)}) LIMIT 1"
                    )
                    missing = cursor.fetchone()
                    if missing:
                        raise BackupError(
                            f"the file's rows do not fit together: {model._meta.label} "
                            f"{missing[0]} has {f.name} = {missing[1]}, which is neither in the "
                            f"file nor in the database ({parent.label})."
                        )

    def finish(self) -> None:
        """Check every foreign key once, rebuild the indexes, reset the sequences past the
        restored ids."""
        tables = [m._meta.db_table for m in self.touched]
        if self.unchecked:
            self.check_foreign_keys()
        else:
            try:
                self.connection.check_constraints(table_names=tables)
            except DatabaseError as exc:
                raise BackupError(f"the file's rows do not fit together: {exc}") from None
        with self.connection.cursor() as cursor:
            if self.indexes:
                # CREATE INDEX refuses to run while deferred checks from earlier writes in this
                # transaction (deleting the migration's groups) are queued: run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for definition in self.indexes:
                cursor.execute(definition)
        statements = self.connection.ops.sequence_reset_sql(no_style(), self.touched)
        with self.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    def stale_rollups(self) -> list[type[models.Model]]:
        """The rollups the file lacks in part, or in whole while the rows they count are there."""
        return [
            model
            for model, rollup in self.rollups.items()
            if model in self.partial
            or (model._meta.label not in self.counts and rollup.counted_from(self.using).exists())
        ]

    def analyze(self) -> None:
        # Fresh tables have no planner statistics; without them the first pages plan badly.
        if not self.postgres or not self.touched:
            return
        qn = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(qn(m._meta.db_table) for m in self.touched))


def open_backup(path: str) -> tuple[IO[bytes], int | None]:
    """The file as bytes, and its size for the progress bar (unknown when compressed)."""
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb"), None
        return open(path, "rb"), os.path.getsize(path)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
