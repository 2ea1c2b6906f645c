"""`manage.py restore`: the README's backup file back into an empty database, exactly."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session as LoginSession
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from agents.models import Agent, ApiKey, User
from agents.services import api_key_create
from memories.models import Memory
from sessions_app.management.commands import restore as restore_command
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    checkpoint_save,
    message_append,
    session_finish,
)
from tests.factories import (
    AgentFactory,
    MemoryFactory,
    OperatorFactory,
    SessionFactory,
    conversation,
)

HOSTILE = 'Tab\there, newline\nand \\backslash\\N, "quotes", <script>alert(1)</script> ünïcødé 🙂'


def backup(path: Path) -> None:
    """The contract's backup command, exactly."""
    call_command(
        "dumpdata",
        format="jsonl",
        use_natural_foreign_keys=True,
        exclude=["contenttypes", "auth.permission", "sessions"],
        output=str(path),
        verbosity=0,
    )


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every field of every row of every table a backup holds (many-to-many links by value)."""
    state = {}
    for model in apps.get_models(include_auto_created=True):
        if model in (ContentType, Permission, LoginSession):
            continue
        rows = list(model._base_manager.order_by("pk").values())
        if model._meta.auto_created:  # the link tables' own ids are not part of a backup
            rows = sorted(
                ({k: v for k, v in row.items() if k != "id"} for row in rows),
                key=lambda row: sorted(row.items()),
            )
        state[model._meta.label] = rows
    return state


def wipe() -> None:
    """Back to what a fresh `migrate` leaves (content types, permissions, the operator groups)."""
    LogEntry.objects.all().delete()
    Memory.objects.all().delete()
    Agent.objects.all().delete()  # cascades sessions, messages, tool calls, checkpoints
    User.objects.all().delete()
    Group.objects.exclude(name__in=["viewer", "editor"]).delete()


def restore(path: Path, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("restore", str(path), stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def dataset(db: None) -> None:
    """A small dataset that touches every model, field type and natural key a backup carries."""
    operator = OperatorFactory(email="ops@logdeck.test", groups=["editor", "viewer"])
    operator.user_permissions.add(Permission.objects.get(codename="view_message"))
    Group.objects.create(name="auditors").permissions.add(
        Permission.objects.get(codename="view_toolcall")
    )
    api_key_create(user=operator, scope="write", name="runtime")
    ApiKey.objects.update(last_used_at=timezone.now(), expires_at=timezone.now())
    agent = AgentFactory(name="support-bot", config={"tools": ["a", "b"], "nested": {"x": None}})
    other = AgentFactory(name="ünïcødé agent")
    session = SessionFactory(agent=agent, metadata={"channel": "chat", "tags": ["vip"]})
    conversation(session, turns=3, failing=2)
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                content_type="tool_use",
                text_content=HOSTILE,
                media_url="https://example.com/a.png",
                model="gpt-5",
                input_tokens=12,
                output_tokens=345,
                raw={"id": "resp_1", "content": [HOSTILE], "usage": None, "n": 1.5},
                tool_calls=[
                    ToolCallIn(
                        tool_name="run_sql",
                        call_id="call_x",
                        input={"sql": "select '\t'"},
                        output="a JSON string, not an object",
                        state="approved",
                        approval={"by": "ops@logdeck.test", "decision": "approve"},
                        duration_ms=17,
                    )
                ],
            ),
            MessageIn(role="user", text_content="", raw="just a string"),
        ],
    )
    checkpoint_save(session_id=session.pk, type="state", data={"step": 3, "list": [1, "2"]})
    session_finish(session_id=session.pk)
    anonymous = SessionFactory(agent=other, user=None, name="")
    conversation(anonymous, turns=1)
    MemoryFactory(agent=agent, name="tone", content=HOSTILE)
    MemoryFactory(agent=None, user=session.user, source_session=session, name="likes")
    MemoryFactory(agent=None, session=session, name="scratchpad")
    MemoryFactory(agent=None, user=None, name="global")
    LogEntry.objects.log_actions(
        user_id=operator.pk, queryset=[agent], action_flag=ADDITION, change_message="Added."
    )


def test_it_restores_every_field_of_every_row(dataset: None, tmp_path: Path) -> None:
    before = snapshot()
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()

    out, _err = restore(path, no_progress=True)

    restored = snapshot()
    assert restored == before  # to the microsecond
    assert len(restored["sessions_app.Message"]) == 10
    assert "Restored 38 rows" in out and "sessions_app.Message: 10" in out
    assert "sessions_app.ToolStateCount: 4" in out  # the rollups travel with the rows
    assert "Recounted" not in out


def test_it_recounts_the_rollups_an_older_backup_predates(dataset: None, tmp_path: Path) -> None:
    """A backup made before the tool calls by state, and the daily activity's session counts,
    were kept: restored, they are counted from the rows as the services would have kept them."""
    before = snapshot()
    path, older = tmp_path / "backup.jsonl", tmp_path / "older.jsonl"
    backup(path)
    with path.open() as new, older.open("w") as old:
        for line in new:
            record = json.loads(line)
            if record["model"] == "sessions_app.toolstatecount":
                continue
            if record["model"] == "sessions_app.dailyactivity":
                del record["fields"]["sessions"], record["fields"]["active_sessions"]
            old.write(json.dumps(record) + "\n")
    wipe()

    out, _err = restore(older, no_progress=True)

    assert (
        "Recounted what the file predates: sessions_app.DailyActivity, "
        "sessions_app.ToolStateCount." in out
    )
    restored = snapshot()
    recounted = ("sessions_app.DailyActivity", "sessions_app.ToolStateCount")
    assert {k: v for k, v in restored.items() if k not in recounted} == {
        k: v for k, v in before.items() if k not in recounted
    }
    for label in recounted:  # new rows, so new ids: the same numbers
        assert _without_ids(restored[label]) == _without_ids(before[label])
    assert {(row["sessions"], row["active_sessions"]) for row in before[recounted[0]]} == {
        (1, 0),
        (1, 1),
    }


def test_it_recounts_nothing_a_current_backup_has_no_rows_of(db: None, tmp_path: Path) -> None:
    """No failure, no error-group rows: a file without them lacks nothing."""
    conversation(SessionFactory(), turns=2)
    before = snapshot()
    assert not before["sessions_app.ErrorGroupDay"] and before["sessions_app.ToolStateCount"]
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()

    out, err = restore(path, no_progress=True)

    assert "Recounted" not in out and not err
    assert snapshot() == before


def test_it_refuses_an_older_backup_where_it_cannot_recount(
    dataset: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recounts write through the default database: into any other, an older file would
    leave the stats short, so it restores nothing and says where to restore it."""
    path, older = tmp_path / "backup.jsonl", tmp_path / "older.jsonl"
    backup(path)
    with path.open() as new, older.open("w") as old:
        old.writelines(line for line in new if '"sessions_app.toolstatecount"' not in line)
    wipe()
    empty = snapshot()
    monkeypatch.setattr(restore_command, "RECOUNT_DATABASE", "the-recounts-database")

    with pytest.raises(CommandError, match=r"predates sessions_app\.ToolStateCount.*Nothing was"):
        restore(older, no_progress=True)

    assert snapshot() == empty


def _without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in row.items() if k != "id"} for row in rows), key=repr)


def test_it_restores_what_loaddata_restores(dataset: None, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()
    call_command("loaddata", str(path), verbosity=0)
    by_loaddata = snapshot()
    wipe()

    restore(path, no_progress=True)

    assert snapshot() == by_loaddata


def test_it_moves_the_id_sequences_past_the_restored_rows(dataset: None, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    highest = Message.objects.order_by("-pk").first().pk
    backup(path)
    wipe()
    restore(path, no_progress=True)

    session = Session.objects.filter(message_count__gt=0).first()
    message_append(session_id=session.pk, messages=[MessageIn(role="user", text_content="new")])

    assert Message.objects.order_by("-pk").first().pk > highest
    assert Checkpoint.objects.create(session=session).pk > 0
    assert ToolCall.objects.filter(is_error=True).count() == 2


def test_it_refuses_a_database_that_is_not_empty(dataset: None, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    backup(path)
    before = snapshot()

    with pytest.raises(CommandError, match=r"not empty \(.*agents\.Agent"):
        restore(path, no_progress=True)

    assert snapshot() == before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"model": "agents.agent", "pk": 9, "fields": {"name": ', r"line 2: not valid JSON"),
        ('{"model": "nowhere.thing", "pk": 1, "fields": {}}', r"line 2: unknown model"),
        ('{"model": "agents.agent", "fields": {"name": "x"}}', r"line 2: no 'pk'"),
        ('{"model": "agents.agent", "pk": 9, "fields": {"colour": 1}}', r"line 2: .* colour"),
        ('["not", "an", "object"]', r"line 2: expected an object"),
        (
            '{"model": "sessions_app.session", "pk": "6f0c2a7e-1111-4c8e-9c55-000000000001", '
            '"fields": {"agent": ["no-such-agent"]}}',
            r"line 2: agent refers to agents.Agent \['no-such-agent'\]",
        ),
        (
            '{"model": "agents.agent", "pk": "nine", "fields": {"name": "x"}}',
            r"line 2: id: .*must be an integer",
        ),
    ],
)
def test_it_names_the_line_of_a_malformed_file(
    db: None, tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "backup.jsonl"
    path.write_text('{"model": "agents.agent", "pk": 1, "fields": {"name": "first"}}\n' + line)

    with pytest.raises(CommandError, match=message):
        restore(path, no_progress=True)

    assert not Agent.objects.exists()  # all or nothing: the good first line is not kept


def test_it_restores_nothing_when_the_rows_do_not_fit_together(db: None, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    # A message of a session that is not in the file: only the final foreign-key check sees it.
    path.write_text(
        '{"model": "agents.agent", "pk": 1, "fields": {"name": "a"}}\n'
        '{"model": "sessions_app.message", "pk": 1, "fields": {"session": '
        '"6f0c2a7e-1111-4c8e-9c55-000000000001", "agent": ["a"], "seq": 0, "role": "user"}}\n'
    )

    with pytest.raises(CommandError, match="do not fit together"):
        restore(path, no_progress=True)

    assert not Agent.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.postgres
def test_it_builds_every_index_again(dataset: None, tmp_path: Path) -> None:
    from django.db import connection

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
            return {name for (name,) in cursor.fetchall()}

    before = indexes()
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()

    restore(path, no_progress=True)

    assert indexes() == before
    assert {"message_text_fts_idx", "session_created_idx", "toolcall_error_group_idx"} <= before


def test_it_says_when_the_file_is_missing(db: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        restore(tmp_path / "nope.jsonl")


def test_it_shows_a_progress_bar(dataset: None, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()

    _out, err = restore(path)

    assert "restore" in err and "100%" in err


def test_it_restores_in_small_chunks_too(dataset: None, tmp_path: Path) -> None:
    before = snapshot()
    path = tmp_path / "backup.jsonl"
    backup(path)
    wipe()

    restore(path, no_progress=True, chunk_size=2)

    assert snapshot() == before
