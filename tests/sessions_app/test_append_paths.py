"""The batch append inserts through COPY on PostgreSQL and through bulk_create elsewhere: both
store the same rows, return them, and keep every promise (replays, conflicts, counters)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone

from config.errors import Conflict
from sessions_app.models import DailyActivity, Message, Session, ToolCall
from sessions_app.services import AppendResult, MessageIn, ToolCallIn, batch_insert, message_append
from sessions_app.services import messages as appends
from tests.factories import AgentFactory, SessionFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 14, 23, 30, 15, 123456, tzinfo=dt.UTC)
NEW_YORK_WINTER = dt.timezone(dt.timedelta(hours=-5))
# Text that COPY's format must escape: tabs, newlines, backslashes, its own end and NULL markers.
AWKWARD = 'tab\there\nnew line \\N back\\slash \\. "quoted" \u00e9t\u00e9 \U0001f600'


def batch(start: int = 0) -> list[MessageIn]:
    """Every kind of value the append stores, with and without the optional ones."""
    return [
        MessageIn(role="system", text_content=AWKWARD, seq=start),
        MessageIn(
            role="user",
            text_content="Where is order 1234?",
            media_url="https://example.com/a.png",
            created_at=dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=NEW_YORK_WINTER),
        ),
        MessageIn(
            role="assistant",
            content_type="tool_use",
            text_content="",
            model="gpt-5-mini",
            input_tokens=12,
            output_tokens=0,
            raw={"provider": {"id": "r-1", "text": AWKWARD, "n": [1, 2.5, None, True]}},
            tool_calls=[
                ToolCallIn(
                    tool_name="lookup_order",
                    call_id=f"call_{start}_a",
                    input={"order": 1234, "note": AWKWARD},
                    state="completed",
                    is_error=True,  # an error reported on a completed call: stored as failed
                    error_message="Order 1234 not found at /var/db/orders/1234",
                    duration_ms=31,
                ),
                ToolCallIn(
                    tool_name="lookup_order",
                    call_id="",  # many calls may go without an id
                    input="just a JSON string",
                    state="failed",
                    error_message="",
                ),
                ToolCallIn(
                    tool_name="send_email",
                    call_id="",
                    input=[1, "two"],
                    state="pending",
                    approval={"by": "ops@example.com", "decision": "pending"},
                    created_at=dt.datetime(2024, 3, 1, 0, 0, 1, tzinfo=dt.UTC),
                ),
                ToolCallIn(
                    tool_name="search",
                    call_id=f"call_{start}_b",
                    output={"hits": []},
                    finished_at=dt.datetime(2026, 3, 15, 1, 0, tzinfo=dt.UTC),
                ),
            ],
        ),
        MessageIn(role="tool", content_type="tool_result", text_content="{}", raw="text raw"),
    ]


@pytest.fixture(params=["copy", "bulk_create"])
def insert_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through each way of inserting rows (COPY exists on PostgreSQL only)."""
    if request.param == "copy" and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    if request.param == "bulk_create":
        monkeypatch.setattr(appends, "_messages_insert", batch_insert._messages_bulk_create)
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return request.param


def _stored(session: Session) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each stored message and its tool calls, without ids, in order."""
    for message in Message.objects.filter(session=session).order_by("seq"):
        calls = ToolCall.objects.filter(message=message).order_by("id")
        yield _fields(message), [_fields(call) for call in calls]


def _fields(row: Message | ToolCall) -> dict[str, Any]:
    values = model_to_dict(row, exclude=["id", "session", "message"])
    return {**values, "agent": row.agent_id}


def _returned(result: AppendResult) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return [
        (_fields(message), [_fields(call) for call in calls])
        for message, calls in zip(result.messages, result.tool_calls, strict=True)
    ]


@pytest.mark.postgres
def test_it_stores_the_same_rows_through_copy_and_through_bulk_create(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    agent = AgentFactory()
    copied, created = SessionFactory(agent=agent), SessionFactory(agent=agent)
    by_copy = message_append(session_id=copied.pk, messages=batch())
    monkeypatch.setattr(appends, "_messages_insert", batch_insert._messages_bulk_create)
    by_bulk_create = message_append(session_id=created.pk, messages=batch())

    stored = list(_stored(copied))
    assert stored == list(_stored(created))
    assert _returned(by_copy) == _returned(by_bulk_create) == stored
    assert stored[0][0]["text_content"] == AWKWARD
    assert stored[2][0]["raw"]["provider"]["text"] == AWKWARD
    failed, unnamed, pending, _ = stored[2][1]
    assert (failed["state"], failed["is_error"]) == ("failed", True)
    assert failed["error_fingerprint"] == "Order <n> not found at <path>"
    assert (unnamed["is_error"], unnamed["error_fingerprint"]) == (True, "<empty>")
    assert (pending["finished_at"], pending["approval"]["by"]) == (None, "ops@example.com")
    for result, session in ((by_copy, copied), (by_bulk_create, created)):
        ids = Message.objects.filter(session=session).order_by("seq").values_list("pk", flat=True)
        assert [m.pk for m in result.messages] == list(ids)
        assert all(not m._state.adding for m in result.messages)
        calls = ToolCall.objects.filter(session=session).order_by("id")
        assert [(c.pk, c.message_id) for c in calls] == [
            (c.pk, c.message_id) for calls in result.tool_calls for c in calls
        ]


def test_it_keeps_counters_and_daily_activity_exact(insert_path: str):
    session = SessionFactory(created_at=NOW, last_activity_at=NOW - dt.timedelta(days=1))
    message_append(session_id=session.pk, messages=batch())
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count, session.error_count) == (4, 4, 2)
    assert session.last_activity_at == NOW
    imported = batch()[1].created_at
    call_created = batch()[2].tool_calls[2].created_at
    expected: dict[dt.date, list[int]] = {}
    for at, counts in ((NOW, (3, 3, 2)), (imported, (1, 0, 0)), (call_created, (0, 1, 0))):
        day = expected.setdefault(timezone.localdate(at), [0, 0, 0])
        for i, n in enumerate(counts):
            day[i] += n
    stored = DailyActivity.objects.filter(agent=session.agent)
    assert {a.day: [a.messages, a.tool_calls, a.tool_errors] for a in stored} == expected


def test_it_replays_a_batch_returning_the_stored_rows(insert_path: str):
    session = SessionFactory()
    first = message_append(session_id=session.pk, messages=batch())
    resent = [dataclasses.replace(m, seq=i) for i, m in enumerate(batch())]
    again = message_append(session_id=session.pk, messages=[resent[0], resent[2]])
    assert again.created == 0
    assert _returned(again) == [_returned(first)[0], _returned(first)[2]]
    assert [c.pk for c in again.tool_calls[1]] == [c.pk for c in first.tool_calls[2]]
    assert Message.objects.filter(session=session).count() == 4


def test_it_refuses_conflicts_and_gaps_storing_nothing(insert_path: str):
    session = SessionFactory()
    message_append(session_id=session.pk, messages=batch())
    refused = {
        "a different message at a taken seq": [MessageIn(role="user", text_content="x", seq=0)],
        "a call_id stored before": batch(start=0)[2:3],
        "a call_id twice in the batch": [
            MessageIn(role="assistant", tool_calls=[ToolCallIn(tool_name="t", call_id="dup")]),
            MessageIn(role="assistant", tool_calls=[ToolCallIn(tool_name="t", call_id="dup")]),
        ],
        "a gap": [MessageIn(role="user", seq=9)],
    }
    for case, messages in refused.items():
        with pytest.raises(Conflict, match=None if "gap" not in case else "would leave a gap"):
            message_append(session_id=session.pk, messages=[*batch(start=4)[3:], *messages])
    assert Message.objects.filter(session=session).count() == 4
    assert ToolCall.objects.filter(session=session).count() == 4
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count, session.error_count) == (4, 4, 2)


def test_it_refuses_a_finished_session(insert_path: str):
    session = SessionFactory(finished_at=NOW)
    with pytest.raises(Conflict):
        message_append(session_id=session.pk, messages=batch())
    assert not Message.objects.filter(session=session).exists()
