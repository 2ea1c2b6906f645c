"""Exporting a session as JSON and as Markdown."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from tests.console.conftest import long_session
from tests.factories import SessionFactory, conversation


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_it_exports_the_whole_session_as_json(viewer_client: Client) -> None:
    session = SessionFactory(name="Export me")
    conversation(session, turns=2, failing=1)
    response = viewer_client.get(reverse("console:session-export-json", args=[session.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(body(response))
    assert data["name"] == "Export me"
    assert [m["seq"] for m in data["messages"]] == [0, 1, 2, 3]
    call = data["messages"][1]["tool_calls"][0]
    assert call["is_error"] and call["input"] == {"order": 0}


def test_it_exports_markdown_with_fences_that_hold(viewer_client: Client) -> None:
    session = SessionFactory(name="Markdown")
    conversation(session, turns=1, failing=1)
    response = viewer_client.get(reverse("console:session-export-md", args=[session.pk]))
    text = body(response)
    assert response["Content-Type"].startswith("text/markdown")
    assert text.startswith("# Markdown")
    assert "### Tool call `lookup_order` (FAILED)" in text
    assert "Error: Order 1000 not found" in text


def test_it_streams_long_sessions_in_chunks(viewer_client: Client, django_assert_num_queries):
    session = long_session(1200)
    response = viewer_client.get(reverse("console:session-export-json", args=[session.pk]))
    # 1-4 auth and permissions, 5 the session; then 2 queries per 500 messages (3 chunks).
    with django_assert_num_queries(6):
        data = json.loads(body(response))
    assert len(data["messages"]) == 1200


@pytest.mark.parametrize("name", ["console:session-export-json", "console:session-export-md"])
def test_it_refuses_anonymous_and_unpermitted_users(
    client: Client, outsider_client: Client, name: str
) -> None:
    target = reverse(name, args=[SessionFactory().pk])
    assert client.get(target).status_code == 302
    assert outsider_client.get(target).status_code == 403
