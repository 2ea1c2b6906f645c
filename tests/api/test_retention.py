"""Retention over the API: `POST /sessions/prune` does what `manage.py prune` does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from memories.models import Memory
from sessions_app.models import (
    CheckpointWrite,
    DailyActivity,
    ErrorGroupDay,
    Message,
    Session,
    ToolCall,
    ToolStateCount,
)
from sessions_app.rollups import recount
from sessions_app.services import session_finish
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


def _session(agent, *, days_ago: float | None) -> Session:
    session = SessionFactory(agent=agent)
    conversation(session, turns=2, failing=1)
    MemoryFactory(agent=None, session=session, name="scratch")
    MemoryFactory(agent=None, user=session.user, source_session=session, name="likes")
    if days_ago is not None:
        session_finish(session_id=session.pk, at=timezone.now() - dt.timedelta(days=days_ago))
    return session


@pytest.fixture
def sessions(db: None) -> dict[str, Session]:
    support, coder = AgentFactory(name="support"), AgentFactory(name="coder")
    return {
        "old": _session(support, days_ago=120),
        "old_coder": _session(coder, days_ago=100),
        "recent": _session(support, days_ago=10),
        "active": _session(support, days_ago=None),
    }


def test_it_counts_without_deleting_on_a_dry_run(api: ApiClient, sessions):
    response = api.post("/sessions/prune", {"older_than_days": 90, "dry_run": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True
    assert body["deleted"] == {
        "session": 2,
        "message": 8,
        "toolcall": 4,
        "checkpoint": 0,
        "checkpointwrite": 0,
        "memory": 2,
    }
    assert body["unlinked"] == {"memory": 2}
    assert Session.objects.count() == 4


def test_it_counts_a_framework_threads_pending_writes(api: ApiClient, sessions):
    for idx in range(3):
        CheckpointWrite.objects.create(
            session=sessions["old"], checkpoint_id="c1", task_id="t", idx=idx, channel="x"
        )
    dry = api.post("/sessions/prune", {"older_than_days": 90, "dry_run": True}).json()
    assert dry["deleted"]["checkpointwrite"] == 3
    done = api.post("/sessions/prune", {"older_than_days": 90}).json()
    assert done["deleted"]["checkpointwrite"] == 3
    assert not CheckpointWrite.objects.exists()


def test_it_deletes_old_finished_sessions_in_batches_and_keeps_the_rollups_exact(
    api: ApiClient, sessions
):
    def rollups() -> tuple[set, ...]:
        # Every column but the id; a row the services zeroed counts as no row.
        return tuple(
            {
                row[1:]
                for row in model.objects.values_list()
                if any(isinstance(v, int) and v for v in row[3:])
            }
            for model in (DailyActivity, ErrorGroupDay, ToolStateCount)
        )

    before_rollup = rollups()
    response = api.post("/sessions/prune", {"older_than_days": 90, "batch_size": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is False
    assert body["deleted"]["session"] == 2 and body["deleted"]["message"] == 8
    assert body["deleted"]["memory"] == 2 and body["unlinked"] == {"memory": 2}
    kept = {sessions["recent"].pk, sessions["active"].pk}
    assert set(Session.objects.values_list("pk", flat=True)) == kept
    assert set(Message.objects.values_list("session_id", flat=True)) == kept
    assert set(ToolCall.objects.values_list("session_id", flat=True)) == kept
    assert Memory.objects.filter(name="likes", source_session__isnull=True).count() == 2
    # The rollups the services kept are what a recount from the remaining rows gives.
    kept_rollup = rollups()
    assert kept_rollup != before_rollup
    recount()
    assert rollups() == kept_rollup
    for field in ("message_count", "tool_call_count", "error_count"):
        assert all(getattr(s, field) for s in Session.objects.all())


def test_it_prunes_one_agent_only(api: ApiClient, sessions):
    response = api.post("/sessions/prune", {"older_than_days": 90, "agent": "coder"})
    assert response.json()["deleted"]["session"] == 1
    assert not Session.objects.filter(pk=sessions["old_coder"].pk).exists()
    assert Session.objects.filter(pk=sessions["old"].pk).exists()


def test_it_refuses_bad_input_and_read_keys(api: ApiClient, read_api: ApiClient, sessions):
    assert_error(api.post("/sessions/prune", {"older_than_days": 0}), 422, "older_than_days")
    assert_error(api.post("/sessions/prune", {}), 422, "older_than_days")
    assert_error(api.post("/sessions/prune", {"older_than_days": 9, "agent": "nope"}), 404)
    assert_error(read_api.post("/sessions/prune", {"older_than_days": 90}), 403)
    assert Session.objects.count() == 4
