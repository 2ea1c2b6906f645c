"""The `jsonl` serializer for backups: Django's own, with each natural key fetched once per dump.

Django's serializer resolves a natural foreign key by loading the related object for every row
(`message.agent` → one query per message), so `dumpdata --natural-foreign` of a million messages
runs a million queries. Here the key is remembered per related row, in a bounded cache; the
output is byte for byte what Django's serializer writes, and `loaddata` reads it unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.serializers import jsonl
from django.db import models

NATURAL_KEY_CACHE_LIMIT = 100_000  # entries; cleared when full, so memory stays bounded


class Serializer(jsonl.Serializer):
    def _resolve_fk_natural_key(self, obj: models.Model, field: models.ForeignKey) -> Any:
        model = field.remote_field.model
        if not self._model_supports_natural_key(model):
            return None
        value = getattr(obj, field.attname)  # the stored key: no query
        if value is None:
            return None
        cache: dict[tuple[Any, ...], Any] = self.__dict__.setdefault("_natural_keys", {})
        key = (model, field.target_field.attname, value)
        if key not in cache:
            if len(cache) >= NATURAL_KEY_CACHE_LIMIT:
                cache.clear()
            cache[key] = super()._resolve_fk_natural_key(obj, field)
        return cache[key]


Deserializer = jsonl.Deserializer
