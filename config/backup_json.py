"""The JSON format of Logdeck backups, what a plain `manage.py dumpdata` writes and
`loaddata backup.json` reads. Installed over Django's own "json" by `SERIALIZATION_MODULES`:
times keep their microseconds, and a restore into a freshly migrated database matches the rows
`migrate` made (content types, permissions, groups) by natural key (see `config/backup.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.serializers import base, json

from config.backup import BackupJSONEncoder, RestoreMixin


class Serializer(json.Serializer):
    """Django's JSON with exact timestamps."""

    def _init_options(self) -> None:
        self.options.setdefault("cls", BackupJSONEncoder)
        super()._init_options()


class Deserializer(RestoreMixin, json.Deserializer):
    """Django's JSON reader, with Logdeck's restore rules."""

    def __init__(self, stream_or_string: Any, **options: Any) -> None:
        super().__init__(stream_or_string, **options)
        self._restore_init()
        if isinstance(self.stream, list):
            self._map_content_types(self.stream)

    def _handle_object(self, obj: dict[str, Any]) -> Iterator[base.DeserializedObject]:
        for restored in super()._handle_object(obj):
            yield self._restored(restored)
