"""The operator groups: "viewer" may look at every record, "editor" may also change them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("agents", "sessions_app", "memories")
GROUPS = {"viewer": ("view",), "editor": ("view", "add", "change", "delete")}


def create_groups(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = [
            perm
            for perm in Permission.objects.filter(content_type__app_label__in=APPS)
            if perm.codename.split("_", 1)[0] in actions
        ]
        group.permissions.set(codenames)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sessions_app", "0002_message_fulltext_index"),
        ("memories", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
