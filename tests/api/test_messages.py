"""Batch append (all or nothing, idempotent on seq), the transcript, the global message query."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from sessions_app.models import Message, Session, ToolCall
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(db: None) -> Session:
    return SessionFactory(agent=AgentFactory(name="support-bot"))


def exchange(start: int = 0) -> list[dict]:
    return [
        {"role": "user", "text_content": "Where is order 1234?", "seq": start},
        {
            "role": "assistant",
            "content_type": "tool_use",
            "text_content": "Looking it up",
            "seq": start + 1,
            "model": "gpt-5-mini",
            "input_tokens": 12,
            "output_tokens": 7,
            "raw": {"provider": "payload"},
            "tool_calls": [
                {
                    "tool_name": "lookup_order",
                    "call_id": f"call_{start}",
                    "input": {"order": 1234},
                    "state": "failed",
                    "error_message": "Order 1234 not found",
                    "duration_ms": 31,
                }
            ],
        },
    ]


def test_it_appends_a_batch_with_tool_calls(api: ApiClient, session: Session):
    response = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 2
    assert [m["seq"] for m in body["items"]] == [0, 1]
    call = body["items"][1]["tool_calls"][0]
    assert call["is_error"] and call["state"] == "failed" and call["id"]
    assert call["error_fingerprint"] == "Order <n> not found"
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count, session.error_count) == (2, 1, 1)


def test_it_answers_a_batch_as_the_transcript_then_shows_it(api: ApiClient, session: Session):
    # The append builds its answer by hand; the transcript goes through MessageWithCallsOut.
    batch = [
        *exchange(),
        {
            "role": "assistant",
            "content_type": "tool_use",
            "created_at": "2024-03-01T10:00:05.123456+02:00",
            "media_url": "https://example.com/chart.png",
            "tool_calls": [
                {
                    "tool_name": "send_email",
                    "input": ["a", 1],
                    "state": "pending",
                    "approval": {"by": "ops@example.com"},
                    "created_at": "2024-03-01T08:00:06Z",
                },
                {"tool_name": "search", "call_id": "s1", "output": "plain", "is_error": True},
            ],
        },
    ]
    appended = api.post(f"/sessions/{session.pk}/messages", {"messages": batch})
    assert appended.status_code == 201
    transcript = api.get(f"/sessions/{session.pk}/messages").json()["items"]
    assert appended.json() == {"created": 3, "items": transcript}
    assert appended["Content-Type"] == "application/json; charset=utf-8"
    replayed = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    assert replayed.json() == {"created": 0, "items": transcript[:2]}


def test_it_replays_a_batch_without_creating_anything(api: ApiClient, session: Session):
    first = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    again = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    assert again.status_code == 200
    assert again.json()["created"] == 0
    assert again.json()["items"] == first.json()["items"]
    assert Message.objects.count() == 2 and ToolCall.objects.count() == 1


def test_it_answers_409_for_a_different_message_at_a_taken_seq(api: ApiClient, session: Session):
    api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    batch = [
        {"role": "user", "text_content": "next", "seq": 2},
        {"role": "user", "text_content": "not what was said", "seq": 1},
    ]
    error = assert_error(
        api.post(f"/sessions/{session.pk}/messages", {"messages": batch}), 409, "messages.1.seq"
    )
    assert "seq 1" in error["message"]
    # All or nothing: the valid first message was not kept.
    assert Message.objects.count() == 2


def test_it_refuses_a_gap_in_seq(api: ApiClient, session: Session):
    batch = [{"role": "user", "seq": 5}]
    error = assert_error(
        api.post(f"/sessions/{session.pk}/messages", {"messages": batch}), 409, "messages.0.seq"
    )
    assert "next seq in this session is 0" in error["message"]


def test_it_keeps_a_batch_all_or_nothing_on_a_duplicate_call_id(api: ApiClient, session: Session):
    batch = exchange()
    batch.append({**batch[1], "seq": 2})
    assert_error(api.post(f"/sessions/{session.pk}/messages", {"messages": batch}), 409)
    assert not Message.objects.exists() and not ToolCall.objects.exists()


def test_it_answers_409_for_a_call_id_stored_before_and_appends_after(
    api: ApiClient, session: Session
):
    # On PostgreSQL the unique constraint finds it in the middle of the insert: the same answer
    # as the lookup's, nothing kept, and the next append goes in.
    api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()})
    batch = [{"role": "user", "text_content": "again"}, {**exchange(2)[1], "seq": None}]
    batch[1]["tool_calls"] = [{**batch[1]["tool_calls"][0], "call_id": "call_0"}]
    response = api.post(f"/sessions/{session.pk}/messages", {"messages": batch})
    error = assert_error(response, 409, "tool_calls")
    assert error["message"] == "A tool call_id is used twice in this session."
    assert Message.objects.count() == 2 and ToolCall.objects.count() == 1
    response = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange(2)})
    assert response.status_code == 201
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count, session.error_count) == (4, 2, 2)


def test_it_imports_past_messages_with_their_time(api: ApiClient, session: Session):
    batch = [
        {"role": "user", "text_content": "old", "created_at": "2024-03-01T10:00:00Z"},
        {"role": "assistant", "text_content": "reply", "created_at": "2024-03-01T10:00:05Z"},
    ]
    body = api.post(f"/sessions/{session.pk}/messages", {"messages": batch}).json()
    assert [m["created_at"] for m in body["items"]] == [
        "2024-03-01T10:00:00.000000Z",
        "2024-03-01T10:00:05.000000Z",
    ]


def test_it_answers_404_for_an_unknown_session(api: ApiClient):
    response = api.post(f"/sessions/{uuid.uuid4()}/messages", {"messages": exchange()})
    assert_error(response, 404)
    assert_error(api.get(f"/sessions/{uuid.uuid4()}/messages"), 404)
    assert_error(api.get("/messages/987654"), 404)


@pytest.mark.parametrize("size", [1, 200])
def test_it_appends_in_a_fixed_number_of_queries(
    api: ApiClient, session: Session, size: int, django_assert_num_queries
):
    batch = [
        {
            "role": "assistant",
            "text_content": f"step {i}",
            "tool_calls": [{"tool_name": "search", "call_id": f"c{i}", "input": {"i": i}}],
        }
        for i in range(size)
    ]
    # The key; the savepoint pair; lock the session; insert messages; insert tool calls; the
    # daily activity, the tool calls by state and the counters (PostgreSQL: all three in one
    # string). PostgreSQL draws the new ids first, and its unique constraint finds a call_id
    # stored before; SQLite looks the call_ids up. The answer is built from the rows in hand,
    # without reading them back.
    with django_assert_num_queries(8 if connection.vendor == "postgresql" else 10):
        response = api.post(f"/sessions/{session.pk}/messages", {"messages": batch})
    assert response.json()["created"] == size
    assert Message.objects.filter(session=session).count() == size


@pytest.mark.parametrize("rows", [1, 40])
def test_it_reads_a_transcript_in_order_in_fixed_queries(
    api: ApiClient, session: Session, rows: int, django_assert_num_queries
):
    conversation(session, turns=rows, failing=1)
    # 1: the key, 2: the session, 3: a page of messages, 4: their tool calls.
    with django_assert_num_queries(4):
        page = api.get(f"/sessions/{session.pk}/messages", {"limit": 500}).json()
    assert [m["seq"] for m in page["items"]] == list(range(2 * rows))
    assert page["items"][1]["tool_calls"][0]["input"] == {"order": 0}
    assert "raw" not in page["items"][0]


def test_it_pages_a_transcript_by_seq(api: ApiClient, session: Session):
    conversation(session, turns=3)
    first = api.get(f"/sessions/{session.pk}/messages", {"limit": 4}).json()
    rest = api.get(f"/sessions/{session.pk}/messages", {"cursor": first["next_cursor"]}).json()
    assert [m["seq"] for m in first["items"] + rest["items"]] == list(range(6))
    assert rest["next_cursor"] is None


def test_it_queries_messages_across_sessions(api: ApiClient, session: Session):
    conversation(session, turns=2)
    other = SessionFactory()
    conversation(other, turns=1)

    def seqs(**params):
        response = api.get("/messages", params)
        assert response.status_code == 200, response.content
        return sorted((m["session"], m["seq"]) for m in response.json()["items"])

    assert len(seqs()) == 6
    assert len(seqs(agent="support-bot")) == 4
    assert seqs(session=str(other.pk)) == [(str(other.pk), 0), (str(other.pk), 1)]
    assert len(seqs(role="user")) == 3
    assert len(seqs(content_type="tool_use", agent=str(session.agent_id))) == 2
    assert seqs(created_after="2999-01-01T00:00:00Z") == []
    assert len(seqs(created_before="2999-01-01T00:00:00Z")) == 6
    assert_error(api.get("/messages", {"content_type": "image"}), 422, "content_type")
    assert_error(api.get("/messages", {"session": "nope"}), 422, "session")


@pytest.mark.parametrize("rows", [1, 30])
def test_it_queries_messages_in_two_queries(
    api: ApiClient, session: Session, rows: int, django_assert_num_queries
):
    conversation(session, turns=rows)
    with django_assert_num_queries(2):  # 1: the key, 2: a page of messages (raw deferred)
        page = api.get("/messages", {"agent": str(session.agent_id), "limit": 500}).json()
    assert len(page["items"]) == 2 * rows


def test_it_gets_one_message_with_its_payload_and_tool_calls(api: ApiClient, session: Session):
    body = api.post(f"/sessions/{session.pk}/messages", {"messages": exchange()}).json()
    message_id = body["items"][1]["id"]
    out = api.get(f"/messages/{message_id}").json()
    assert out["raw"] == {"provider": "payload"}
    assert out["tool_calls"][0]["call_id"] == "call_0"


def test_it_takes_only_web_addresses_as_media(api: ApiClient, session: Session):
    for url in ("javascript:alert(1)", "data:text/html,<script>", "ftp://x", "https://a b"):
        body = {"messages": [{"role": "user", "media_url": url}]}
        response = api.post(f"/sessions/{session.pk}/messages", body)
        assert_error(response, 422, "messages.0.media_url")
    body = {"messages": [{"role": "user", "media_url": "https://cdn.example.com/a.png"}]}
    assert api.post(f"/sessions/{session.pk}/messages", body).status_code == 201


def test_it_returns_hostile_text_as_data_not_markup(api: ApiClient, session: Session):
    hostile = '<script>alert("x")</script>'
    body = {"messages": [{"role": "assistant", "text_content": hostile}]}
    api.post(f"/sessions/{session.pk}/messages", body)
    response = api.get(f"/sessions/{session.pk}/messages")
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["items"][0]["text_content"] == hostile
