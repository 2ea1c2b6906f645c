"""Run inside a `manage.py`-configured process (see test_backup.py) against one database:

    python -m tests.config.backup_rows edge-cases        add the hand-made awkward rows
    python -m tests.config.backup_rows snapshot OUT      write every field of every row to OUT

A snapshot holds Python values as the ORM reads them (datetimes, UUIDs, dicts), pickled, so the
test compares field values, never serialised text.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import sys
import uuid
from typing import Any

Snapshot = dict[str, dict[Any, dict[str, Any]]]

# Rebuilt by `migrate` on each side and left out of the backup on purpose.
NOT_BACKED_UP = {"contenttypes.contenttype", "auth.permission", "sessions.session"}
# `migrate` makes the viewer and editor groups itself, so their pks may differ after a restore;
# nothing refers to a group by pk in a backup (only by name), so they are compared by name.
KEYED_BY_NAME = {"auth.group"}


def _at(day: int, micro: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, 13, 37, 42, micro, tzinfo=dt.UTC)


def _move_content_type_ids() -> None:
    """The memory model's content type and permissions made again, as a database that has lived
    through migrations has them: with ids a freshly migrated database gives to other rows, so a
    backup that refers to them by id (a plain `dumpdata`) only restores if it is mapped."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.management import create_contenttypes
    from django.contrib.contenttypes.models import ContentType

    kept = {
        group: list(group.permissions.filter(content_type__model="memory").values_list("codename"))
        for group in Group.objects.all()
    }
    ContentType.objects.filter(app_label="memories", model="memory").delete()
    ContentType.objects.clear_cache()
    config = apps.get_app_config("memories")
    create_contenttypes(config, verbosity=0)
    create_permissions(config, verbosity=0)
    for group, codenames in kept.items():
        group.permissions.add(*Permission.objects.filter(codename__in=[c for (c,) in codenames]))


def add_edge_cases() -> None:
    """Rows that break naive round trips: unicode, nested JSON with nulls, microseconds, NULL
    foreign keys, memories with empty scope parts, API keys, groups, an admin log entry."""
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from agents.models import Agent, User
    from agents.services import api_key_create, api_key_revoke
    from memories.models import Memory
    from sessions_app.models import Checkpoint, CheckpointWrite, Message, Session, ToolCall

    _move_content_type_ids()
    nested = {
        "a": {"b": [1, None, {"c": None, "d": []}], "e": {}},
        "unicode": "Zoë 李雷 Ђорђе 🚀 \u2028 \u0085 tab\tnewline\n",
        "html": "<script>alert('x')</script> & \"quotes\"",
        "float": 1e-7,
        "big": 2**53,
        "neg": -0.5,
        "bool": False,
    }
    person = User.objects.create_user(
        "zoë.ünïcode@exämple.com", name="Zoë Ünïcode 李雷", user_data=nested
    )
    person.created_at = _at(1, 1)
    person.save(update_fields=["created_at"])
    # Stored as typed, past the manager's case-folding (an old import, a raw insert): its
    # natural key must still resolve on restore.
    unfolded = User.objects.create(email="Mixed.Case@Example.COM", password="!")
    operator = User.objects.create_user(
        "edge-operator@logdeck.test", password="correct horse battery staple", is_staff=True
    )
    # Recreated, so its pk differs from the one `migrate` gives it in the restored database.
    editor = Group.objects.get(name="editor")
    permissions = list(editor.permissions.all())
    editor.delete()
    Group.objects.create(name="editor").permissions.set(permissions)
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.set(Permission.objects.filter(codename__in=["view_agent", "view_memory"]))
    operator.groups.set([auditors, Group.objects.get(name="editor")])
    operator.user_permissions.set(Permission.objects.filter(codename="change_memory"))
    api_key_create(user=operator, scope="write", name="runtime 🚀", expires_at=_at(30, 999_999))
    api_key_revoke(api_key=api_key_create(user=operator, scope="read").api_key)

    agent = Agent.objects.create(
        name="édge agent/with spaces",
        config={"tools": None, "nested": nested},
        system_prompt="Line one\r\nLine two\ttab",
        created_at=_at(2, 999_999),
    )
    anonymous = Session.objects.create(
        id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        agent=agent,
        user=None,  # a NULL foreign key
        name="",
        external_key="thread/ü 1",  # a framework's id
        metadata={"none": None, "list": [None]},
        created_at=_at(3, 1),
        last_activity_at=_at(3, 500_000),
        finished_at=_at(3, 999_999),
        message_count=2,
        tool_call_count=2,
        error_count=1,
    )
    Session.objects.create(agent=agent, user=unfolded, created_at=_at(5, 5))
    asked = Message.objects.create(
        session=anonymous,
        agent=agent,
        seq=0,
        role="assistant",
        content_type="tool_use",
        text_content="x" * 100_000 + " ünïcode 🚀",
        raw=nested,
        input_tokens=0,
        created_at=_at(3, 123_456),
    )
    Message.objects.create(
        session=anonymous, agent=agent, seq=1, role="tool", content_type="tool_result", raw=None
    )
    ToolCall.objects.create(
        session=anonymous,
        agent=agent,
        message=asked,
        call_id="call_ü",
        tool_name="lookup",
        input=nested,
        output=None,
        state="failed",
        is_error=True,
        error_message="Order 42 not found in /var/data/x.json",
        error_fingerprint="Order <n> not found in <path>",
        approval={"by": None, "decision": "approved"},
        created_at=_at(3, 654_321),
        finished_at=_at(3, 654_322),
    )
    ToolCall.objects.create(
        session=anonymous, agent=agent, message=None, tool_name="orphan", input=[1, "two", None]
    )
    Checkpoint.objects.create(
        session=anonymous, type="", data=[{"step": None}], created_at=_at(4, 7)
    )
    # A framework's checkpoint: bytes that are not text, and a pending write.
    Checkpoint.objects.create(
        session=anonymous,
        type="langgraph",
        checkpoint_ns="child:1",
        checkpoint_id="1f0c-0001",
        parent_checkpoint_id="1f0c-0000",
        metadata={"source": "loop", "step": 2, "parents": {}},
        state_type="msgpack",
        state=bytes(range(256)),
        created_at=_at(4, 8),
    )
    CheckpointWrite.objects.create(
        session=anonymous,
        checkpoint_ns="child:1",
        checkpoint_id="1f0c-0001",
        task_id="task",
        idx=-3,
        channel="__interrupt__",
        value_type="msgpack",
        value=b"\x00\xff",
        created_at=_at(4, 9),
    )
    for agent_part, user_part in ((None, None), (agent, None), (None, person), (agent, person)):
        Memory.objects.create(
            name="same name in every scope",
            agent=agent_part,
            user=user_part,
            source_session=anonymous if agent_part else None,
            content="🚀 ünïcode",
            metadata=nested,
        )
    Memory.objects.create(name="same name in every scope", session=anonymous, content="🚀")
    LogEntry.objects.log_actions(
        user_id=operator.pk,
        queryset=[agent],
        action_flag=ADDITION,
        change_message=[{"added": {}}],
    )
    assert ContentType.objects.get_for_model(Agent)


def snapshot() -> Snapshot:
    """Every concrete field and many-to-many of every backed-up row, keyed by model and pk."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    rows: Snapshot = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in NOT_BACKED_UP:
            continue
        table: dict[Any, dict[str, Any]] = {}
        for obj in model._default_manager.order_by("pk"):
            values: dict[str, Any] = {}
            for field in model._meta.concrete_fields:
                value = getattr(obj, field.attname)
                if field.is_relation and field.related_model is ContentType and value:
                    # Content type ids are local to each database; their natural key is not.
                    value = ContentType.objects.get_for_id(value).natural_key()
                values[field.attname] = value
            for field in model._meta.many_to_many:
                related = getattr(obj, field.name).all()
                values[field.name] = sorted(
                    r.natural_key() if hasattr(r, "natural_key") else r.pk for r in related
                )
            if label in KEYED_BY_NAME:
                del values["id"]
            table[obj.name if label in KEYED_BY_NAME else obj.pk] = values
        rows[label] = table
    return rows


if __name__ == "__main__":
    import django

    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    if sys.argv[1] == "edge-cases":
        add_edge_cases()
    elif sys.argv[1] == "snapshot":
        with open(sys.argv[2], "wb") as out:
            pickle.dump(snapshot(), out)
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
