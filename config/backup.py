"""The JSON Lines format of Logdeck backups (`dumpdata --format jsonl`, `loaddata x.jsonl`).

Installed over Django's own "jsonl" format by `SERIALIZATION_MODULES`, so the backup commands
stay the stock ones (`config/backup_json.py` and `config/backup_xml.py` do the same for "json",
the format of a plain `dumpdata`, and "xml"). It differs in these ways:

- timestamps keep their microseconds (Django's encoder cuts them to milliseconds, so a restore
  would not be equal to what was dumped, and keyset cursors over `created_at` would shift);
- natural keys of foreign keys (agents, users) are looked up once per distinct object instead
  of once per row, both when dumping and when loading, so a million messages are not a million
  extra queries;
- restoring into an empty table inserts each row at once, where Django first tries an UPDATE;
- restoring over existing rows (the content types, permissions and groups `migrate` creates)
  matches them by natural key, so a group recreated in the source, with a new pk, does not break
  the restore, and a backup that refers to them by pk (a plain `dumpdata`) refers to the right
  ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers import base, jsonl
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Field, Model

# Natural keys remembered per run: agents and users are few next to messages; the bound keeps
# memory flat if a backup holds millions of distinct users.
NATURAL_KEY_MEMO_SIZE = 100_000


class BackupJSONEncoder(DjangoJSONEncoder):
    """Django's encoder, but datetimes and times keep every digit of their microseconds."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime):
            text = o.isoformat()
            return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
        if isinstance(o, dt.time) and o.utcoffset() is None:
            return o.isoformat()
        return super().default(o)


class Serializer(jsonl.Serializer):
    """JSON Lines with exact timestamps and one natural-key lookup per related object."""

    def _init_options(self) -> None:
        self.options.setdefault("cls", BackupJSONEncoder)
        super()._init_options()
        self._natural_keys: dict[tuple[Any, ...], Any] = {}

    def _resolve_fk_natural_key(self, obj: Any, field: Field) -> Any:
        value = getattr(obj, field.attname)
        if value is None or not self._model_supports_natural_key(field.remote_field.model):
            return super()._resolve_fk_natural_key(obj, field)
        memo_key = (field.remote_field.model, field.remote_field.field_name, value)
        if memo_key not in self._natural_keys:
            if len(self._natural_keys) >= NATURAL_KEY_MEMO_SIZE:
                self._natural_keys.clear()
            self._natural_keys[memo_key] = super()._resolve_fk_natural_key(obj, field)
        return self._natural_keys[memo_key]


class InsertedObject(base.DeserializedObject):
    """A row restored into a table that was empty when the restore began: it can only be new,
    so it is inserted straight away instead of Django's UPDATE-then-INSERT (half the queries)."""

    def save(self, save_m2m: bool = True, using: str | None = None, **kwargs: Any) -> None:
        super().save(save_m2m=save_m2m, using=using, force_insert=True, **kwargs)


class RestoreMixin:
    """What Logdeck's readers of every format do to each object Django's reader has built:

    - a row for a table that was empty when the restore began is inserted without a prior
      UPDATE;
    - a row whose natural key is already there under another pk (the content types,
      permissions and groups `migrate` makes, with ids of their own) takes that pk, and every
      later reference to its old pk (a foreign key or a many-to-many, as a plain `dumpdata`
      without `--natural-foreign` writes them) is read as the new one. `dumpdata` writes the
      rows a natural key depends on first, so the old pk is known before it is referred to."""

    using: str

    def _restore_init(self) -> None:
        self._empty_at_start: dict[type[Model], bool] = {}
        self._new_pks: dict[type[Model], dict[Any, Any]] = {}

    def _restored(self, restored: base.DeserializedObject) -> base.DeserializedObject:
        obj = restored.object
        model = type(obj)
        self._follow_moved_pks(obj, restored.m2m_data)
        if model not in self._empty_at_start:
            # Asked before this backup's first row of the model is saved; a table that
            # already holds rows (a restore over data) gets the usual update-or-insert.
            manager = model._base_manager.db_manager(self.using)
            self._empty_at_start[model] = not manager.exists()
        if self._empty_at_start[model]:
            return InsertedObject(obj, restored.m2m_data, restored.deferred_fields)
        self._adopt_existing_pk(obj)
        return restored

    def _map_content_types(self, objects: list[dict[str, Any]]) -> None:
        """Content types read ahead of the rows: a plain `dumpdata` writes the admin's log and
        the permissions, which refer to content types by id, before the content types."""
        for row in objects:
            if row.get("model") != "contenttypes.contenttype" or "pk" not in row:
                continue
            fields = row.get("fields", {})
            content_type, _ = ContentType.objects.db_manager(self.using).get_or_create(
                app_label=fields.get("app_label"), model=fields.get("model")
            )
            if content_type.pk != row["pk"]:
                self._new_pks.setdefault(ContentType, {})[row["pk"]] = content_type.pk

    def _follow_moved_pks(self, obj: Model, m2m_data: dict[str, list[Any]]) -> None:
        if not self._new_pks:
            return
        for field in obj._meta.concrete_fields:
            moved = field.is_relation and self._new_pks.get(field.related_model)
            if moved:
                value = getattr(obj, field.attname)
                if value in moved:
                    setattr(obj, field.attname, moved[value])
        for name, values in m2m_data.items():
            moved = self._new_pks.get(obj._meta.get_field(name).related_model)
            if moved:
                m2m_data[name] = [moved.get(value, value) for value in values]

    def _adopt_existing_pk(self, obj: Model) -> None:
        """A row whose natural key is already there under another pk takes that pk, instead of
        failing on the unique key; the old pk is remembered for the rows that refer to it."""
        model = type(obj)
        manager = model._default_manager.db_manager(self.using)
        if not hasattr(manager, "get_by_natural_key") or not hasattr(obj, "natural_key"):
            return
        try:
            existing = manager.get_by_natural_key(*obj.natural_key())
        except ObjectDoesNotExist:
            return
        if obj.pk is not None and obj.pk != existing.pk:
            self._new_pks.setdefault(model, {})[obj.pk] = existing.pk
        obj.pk = existing.pk


class Deserializer(RestoreMixin, jsonl.Deserializer):
    """Django's JSON Lines reader; a natural key is resolved once, then remembered; rows for
    tables that were empty are inserted without a prior UPDATE; rows `migrate` made already
    are matched by natural key (see `RestoreMixin`)."""

    def __init__(self, stream_or_string: Any, **options: Any) -> None:
        super().__init__(stream_or_string, **options)
        self._natural_keys: dict[tuple[Any, ...], Any] = {}
        self._restore_init()

    def _handle_object(self, obj: dict[str, Any]) -> Iterator[base.DeserializedObject]:
        for restored in super()._handle_object(obj):
            yield self._restored(restored)

    def _handle_fk_field_node(self, field: Field, field_value: Any) -> Any:
        if not isinstance(field_value, list):
            return super()._handle_fk_field_node(field, field_value)
        memo_key = (field.remote_field.model, field.remote_field.field_name, *field_value)
        if memo_key in self._natural_keys:
            return self._natural_keys[memo_key]
        value = super()._handle_fk_field_node(field, field_value)
        if value != base.DEFER_FIELD:
            if len(self._natural_keys) >= NATURAL_KEY_MEMO_SIZE:
                self._natural_keys.clear()
            self._natural_keys[memo_key] = value
        return value
