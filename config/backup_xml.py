"""The XML format of backups (`dumpdata --format xml`). Django's XML keeps microseconds as it
is; installed over it by `SERIALIZATION_MODULES` so that a carriage return survives (an XML
parser turns a raw CR LF into LF, so it is written as `&#13;`) and for Logdeck's restore rules
(rows that `migrate` made are matched by natural key; see `config/backup.py`). Text with other
control characters cannot be XML 1.0 at all: `dumpdata` says so and stops."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers import base, xml_serializer
from django.utils.xmlutils import SimplerXMLGenerator

from config.backup import RestoreMixin


class _CarriageReturnKeeper(SimplerXMLGenerator):
    """Text as Django writes it, each CR as a character reference, which parsers keep."""

    def characters(self, content: str) -> None:
        for i, part in enumerate(content.split("\r") if content else [content]):
            if i:
                self._finish_pending_start_element()
                self._write("&#13;")
            super().characters(part)


class Serializer(xml_serializer.Serializer):
    """Django's XML, with carriage returns kept."""

    def start_serialization(self) -> None:
        self.indent_level = 0
        self.xml = _CarriageReturnKeeper(
            self.stream, self.options.get("encoding", settings.DEFAULT_CHARSET)
        )
        self.xml.startDocument()
        self.xml.startElement("django-objects", {"version": "1.0"})


class Deserializer(RestoreMixin, xml_serializer.Deserializer):
    """Django's XML reader, with Logdeck's restore rules."""

    def __init__(self, stream_or_string: Any, **options: Any) -> None:
        super().__init__(stream_or_string, **options)
        self.using = self.db
        self._restore_init()

    def __next__(self) -> base.DeserializedObject:
        return self._restored(super().__next__())
