"""`manage.py loaddata`: Django's own, with one readable line instead of a traceback when a
backup does not fit the database (another installation's data in the way, a file cut short, a
backup of another version)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import loaddata
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError


class Command(loaddata.Command):
    def handle(self, *fixture_labels: str, **options: Any) -> None:
        try:
            super().handle(*fixture_labels, **options)
        except (DatabaseError, DeserializationError) as exc:
            cause = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise CommandError(
                f"The backup could not be restored, and nothing of it was kept ({cause}). "
                "Restore into a freshly migrated, empty database (a new database, then "
                "`python manage.py migrate`), from a whole backup made by `dumpdata` of this "
                "version of Logdeck."
            ) from None
