"""The JSON Lines format of Logdeck backups (`dumpdata --format jsonl`, `loaddata x.jsonl`).

Installed over Django's own "jsonl" format by `SERIALIZATION_MODULES`, so the backup commands
stay the stock ones. It differs in two ways:

- timestamps keep their microseconds (Django's encoder cuts them to milliseconds, so a restore
  would not be equal to what was dumped, and keyset cursors over `created_at` would shift);
- natural keys of foreign keys (agents, users) are looked up once per distinct object instead
  of once per row, both when dumping and when loading, so a million messages are not a million
  extra queries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.serializers import base, jsonl
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Field

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


class Deserializer(jsonl.Deserializer):
    """Django's JSON Lines reader; a natural key is resolved once, then remembered."""

    def __init__(self, stream_or_string: Any, **options: Any) -> None:
        super().__init__(stream_or_string, **options)
        self._natural_keys: dict[tuple[Any, ...], Any] = {}

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
