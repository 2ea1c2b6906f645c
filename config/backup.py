"""The JSON Lines format of Logdeck backups (`dumpdata --format jsonl`, `loaddata x.jsonl`).

Installed over Django's own "jsonl" format by `SERIALIZATION_MODULES`, so the backup commands
stay the stock ones. It differs in two ways:

- timestamps keep their microseconds (Django's encoder cuts them to milliseconds, so a restore
  would not be equal to what was dumped, and keyset cursors over `created_at` would shift);
- natural keys of foreign keys (agents, users) are looked up once per distinct object instead
  of once per row, both when dumping and when loading, so a million messages are not a million
  extra queries;
- restoring into an empty table inserts each row at once, where Django first tries an UPDATE;
- restoring over existing rows (the groups `migrate` creates) matches them by natural key, so
  a group recreated in the source, with a new pk, does not break the restore.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

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


class Deserializer(jsonl.Deserializer):
    """Django's JSON Lines reader; a natural key is resolved once, then remembered; rows for
    tables that were empty are inserted without a prior UPDATE."""

    def __init__(self, stream_or_string: Any, **options: Any) -> None:
        super().__init__(stream_or_string, **options)
        self._natural_keys: dict[tuple[Any, ...], Any] = {}
        self._empty_at_start: dict[type[Model], bool] = {}

    def _handle_object(self, obj: dict[str, Any]) -> Iterator[base.DeserializedObject]:
        for restored in super()._handle_object(obj):
            model = type(restored.object)
            if model not in self._empty_at_start:
                # Asked before this backup's first row of the model is saved; a table that
                # already holds rows (a restore over data) gets the usual update-or-insert.
                manager = model._base_manager.db_manager(self.using)
                self._empty_at_start[model] = not manager.exists()
            if self._empty_at_start[model]:
                restored = InsertedObject(
                    restored.object, restored.m2m_data, restored.deferred_fields
                )
            else:
                self._adopt_existing_pk(restored.object)
            yield restored

    def _adopt_existing_pk(self, obj: Model) -> None:
        """A row whose natural key is already there under another pk (the groups `migrate`
        makes, recreated in the source) takes that pk, instead of failing on the unique name.
        With --natural-foreign the backup refers to such rows by natural key, never by pk."""
        manager = type(obj)._default_manager.db_manager(self.using)
        if not hasattr(manager, "get_by_natural_key") or not hasattr(obj, "natural_key"):
            return
        try:
            existing = manager.get_by_natural_key(*obj.natural_key())
        except ObjectDoesNotExist:
            return
        obj.pk = existing.pk

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
