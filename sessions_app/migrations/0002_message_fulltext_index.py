"""Full-text search over message text on PostgreSQL; SQLite searches with LIKE instead."""

from django.db import migrations

INDEX = "message_text_fts_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The expression must match `sessions_app.selectors.search._FTS_MATCH` exactly.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON sessions_app_message "
            "USING gin (to_tsvector('english'::regconfig, text_content))"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
