"""`manage.py preflight`, which `make serve` runs first: no server on an unmigrated database."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db


def test_it_passes_a_migrated_database(capsys):
    call_command("preflight")
    assert "all migrations applied" in capsys.readouterr().out


def test_it_refuses_naming_each_unapplied_migration():
    # As if the code were deployed before `migrate`: the newest migration is not recorded.
    recorded = MigrationRecorder.Migration.objects.filter(app="sessions_app").order_by("-name")
    newest = recorded.first()
    newest.delete()

    with pytest.raises(CommandError) as refused:
        call_command("preflight")

    message = str(refused.value)
    assert "will not start" in message
    assert f"sessions_app.{newest.name}" in message
    assert "manage.py migrate" in message
