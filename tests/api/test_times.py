"""Every time the API answers is ISO 8601 in UTC to the microsecond, in one form, and the time
filters take that form back: a time read from a response finds exactly its row again."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client

from sessions_app.models import Message, Session
from tests.api.conftest import ApiClient
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db

ONE_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
TIME_KEYS = {"created_at", "updated_at", "finished_at", "last_activity_at", "last_used_at"}
STORED = "2026-03-01T09:30:30.123457Z"


def times_in(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, value) under a key that holds a time, anywhere in a response."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIME_KEYS and isinstance(item, str):
                found.append((f"{path}.{key}", item))
            else:
                found.extend(times_in(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(times_in(item, f"{path}.{i}"))
    return found


@pytest.fixture
def session(db: None) -> Session:
    session = SessionFactory(agent=AgentFactory(name="support-bot"))
    conversation(session, turns=2, failing=1)
    return session


def test_it_answers_a_stored_time_with_its_microseconds(api: ApiClient, session: Session):
    body = {"messages": [{"role": "user", "text_content": "late", "created_at": STORED}]}
    response = api.post(f"/sessions/{session.pk}/messages", body)
    assert response.status_code == 201, response.content
    (appended,) = response.json()["items"]
    assert appended["created_at"] == STORED
    listed = api.get("/messages", {"session": str(session.pk)}).json()["items"]
    assert {row["id"]: row["created_at"] for row in listed}[appended["id"]] == STORED
    transcript = api.get(f"/sessions/{session.pk}/messages").json()["items"]
    assert transcript[-1]["created_at"] == STORED
    assert api.get(f"/messages/{appended['id']}").json()["created_at"] == STORED
    stored = Message.objects.get(pk=appended["id"]).created_at
    assert stored == dt.datetime(2026, 3, 1, 9, 30, 30, 123457, tzinfo=dt.UTC)


def test_it_writes_every_time_of_every_resource_in_one_form(api: ApiClient, session: Session):
    # A time with no microseconds keeps its six zeros: one form, whatever the value.
    session.created_at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    session.save(update_fields=["created_at"])
    MemoryFactory(agent=session.agent, name="prefs")
    api.post(f"/sessions/{session.pk}/checkpoints", {"type": "state", "data": {"step": 1}})
    api.post(f"/sessions/{session.pk}/finish")
    paths = [
        "/users",
        "/agents",
        "/agents/support-bot",
        "/sessions",
        f"/sessions/{session.pk}",
        f"/sessions/{session.pk}/messages",
        f"/sessions/{session.pk}/checkpoints",
        f"/sessions/{session.pk}/checkpoints/latest",
        "/messages",
        "/tool-calls",
        "/tool-calls/errors",
        "/memories",
    ]
    seen: list[tuple[str, str]] = []
    for path in paths:
        response = api.get(path)
        assert response.status_code == 200, (path, response.content)
        seen.extend((path + where, value) for where, value in times_in(response.json()))
    assert len(seen) > 30
    wrong = [(where, value) for where, value in seen if not ONE_FORM.match(value)]
    assert not wrong, wrong
    assert (f"/sessions/{session.pk}.created_at", "2026-03-01T09:00:00.000000Z") in seen


def test_it_filters_by_a_time_read_from_a_response(api: ApiClient, session: Session):
    # created_after is inclusive and created_before exclusive: the time of the newest message
    # finds it, one microsecond later does not, so an importer resumes exactly where it was.
    newest = api.get("/messages", {"session": str(session.pk), "limit": 1}).json()["items"][0]
    at = dt.datetime.fromisoformat(newest["created_at"])
    later = (at + dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    for path in ("/messages", "/tool-calls", "/sessions"):
        key, ref = ("agent", "support-bot") if path == "/sessions" else ("session", session.pk)
        everything = api.get(path, {key: ref}).json()["items"]
        newest_here = max(everything, key=lambda row: row["created_at"])
        since = newest_here["created_at"]
        step = dt.datetime.fromisoformat(since) + dt.timedelta(microseconds=1)
        after = step.isoformat().replace("+00:00", "Z")
        at_it = api.get(path, {key: ref, "created_after": since}).json()["items"]
        assert newest_here["id"] in [row["id"] for row in at_it], path
        past_it = api.get(path, {key: ref, "created_after": after}).json()["items"]
        assert newest_here["id"] not in [row["id"] for row in past_it], path
        before = api.get(path, {key: ref, "created_before": since}).json()["items"]
        assert newest_here["id"] not in [row["id"] for row in before], path
    past_newest = api.get("/messages", {"session": str(session.pk), "created_after": later})
    assert newest["id"] not in [row["id"] for row in past_newest.json()["items"]]


def test_it_exports_a_transcript_with_exact_times(viewer_client: Client, session: Session):
    Message.objects.filter(session=session, seq=0).update(
        created_at=dt.datetime(2026, 3, 1, 9, 30, 30, 123457, tzinfo=dt.UTC)
    )
    response = viewer_client.get(f"/sessions/{session.pk}/export.json")
    assert response.status_code == 200
    exported = json.loads(b"".join(response.streaming_content))
    assert exported["messages"][0]["created_at"] == STORED
    wrong = [(where, value) for where, value in times_in(exported) if not ONE_FORM.match(value)]
    assert not wrong, wrong
