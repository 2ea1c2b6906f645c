"""Cursor pagination stays correct while rows are inserted between pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sessions_app.models import Session
from tests.api.conftest import ApiClient
from tests.factories import AgentFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


def test_it_skips_and_repeats_no_session_while_new_ones_arrive(api: ApiClient):
    agent = AgentFactory()
    base = timezone.now() - dt.timedelta(hours=1)
    before = []
    for i in range(9):
        session = SessionFactory(agent=agent)
        # Some share a created_at to the microsecond: the id breaks the tie.
        Session.objects.filter(pk=session.pk).update(created_at=base + dt.timedelta(seconds=i // 2))
        before.append(str(session.pk))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/sessions", params).json()
        seen += [s["id"] for s in page["items"]]
        SessionFactory(agent=agent)  # a new session lands while the client is paging
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)


def test_it_skips_and_repeats_no_message_while_a_session_grows(api: ApiClient):
    session = SessionFactory()
    conversation(session, turns=3)
    seqs: list[int] = []
    cursor = None
    for _ in range(20):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/sessions/{session.pk}/messages", params).json()
        seqs += [m["seq"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        if len(seqs) < 10:  # the agent keeps talking while the transcript is read
            api.post(f"/sessions/{session.pk}/messages", {"messages": [{"role": "user"}]})
    session.refresh_from_db()
    assert session.message_count > 6  # messages did arrive mid-read
    assert seqs == list(range(session.message_count))


def test_it_skips_and_repeats_no_tool_call_while_calls_are_recorded(api: ApiClient):
    session = SessionFactory()
    conversation(session, turns=5)
    before = set(api.get("/tool-calls", {"limit": 500}).json()["items"][i]["id"] for i in range(5))
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/tool-calls", params).json()
        seen += [c["id"] for c in page["items"]]
        conversation(SessionFactory(), turns=1)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and before <= set(seen)
