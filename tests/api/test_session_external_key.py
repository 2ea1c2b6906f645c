"""Sessions addressed by a framework's own id: create-or-fetch by external key, found by it."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from sessions_app.models import DailyActivity, Session
from tests.api.conftest import ApiClient, assert_error
from tests.console.conftest import HOSTILE, assert_inert
from tests.factories import AgentFactory, SessionFactory

pytestmark = pytest.mark.django_db


def test_it_creates_then_fetches_a_session_by_its_external_key(api: ApiClient) -> None:
    AgentFactory(name="graph")
    AgentFactory(name="other")
    body = {"agent": "graph", "external_key": "thread/42 ü", "platform": "langgraph"}
    created = api.post("/sessions", body)
    assert created.status_code == 201, created.content
    again = api.post("/sessions", {**body, "platform": "ignored on fetch"})
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    assert again.json()["external_key"] == "thread/42 ü"
    assert again.json()["platform"] == "langgraph"
    # The same key under another agent is another session.
    other = api.post("/sessions", {"agent": "other", "external_key": "thread/42 ü"})
    assert other.status_code == 201 and other.json()["id"] != created.json()["id"]
    assert Session.objects.filter(external_key="thread/42 ü").count() == 2
    # Counted once in the daily activity, however often it was fetched.
    assert sum(DailyActivity.objects.values_list("sessions", flat=True)) == 2


def test_it_refuses_an_id_that_contradicts_the_key(api: ApiClient) -> None:
    AgentFactory(name="graph")
    first = api.post("/sessions", {"agent": "graph", "external_key": "t1"}).json()
    assert_error(
        api.post("/sessions", {"agent": "graph", "external_key": "t1", "id": str(uuid.uuid4())}),
        409,
        "id",
    )
    same = api.post("/sessions", {"agent": "graph", "external_key": "t1", "id": first["id"]})
    assert same.status_code == 200
    assert_error(api.post("/sessions", {"agent": "graph", "external_key": "x" * 256}), 422)
    assert_error(api.post("/sessions", {"agent": "graph", "external_key": "a\x00b"}), 422)


def test_it_filters_sessions_by_external_key(api: ApiClient) -> None:
    agent = AgentFactory(name="graph")
    keyed = SessionFactory(agent=agent, external_key="thread-1")
    SessionFactory(agent=agent)
    items = api.get("/sessions", {"external_key": "thread-1"}).json()["items"]
    assert [item["id"] for item in items] == [str(keyed.pk)]
    assert api.get("/sessions", {"external_key": "nope"}).json()["items"] == []


def test_it_finds_a_session_by_key_in_the_console_search_box(viewer_client: Client) -> None:
    keyed = SessionFactory(name="keyed", external_key=f"thread-{HOSTILE}")
    SessionFactory(name="plain")
    response = viewer_client.get(reverse("console:session-list"), {"q": f"thread-{HOSTILE}"})
    assert response.status_code == 200
    assert [s["name"] for s in response.context["sessions"]] == ["keyed"]
    detail = viewer_client.get(reverse("console:session-detail", args=[keyed.pk]))
    assert_inert(detail.content.decode())


def test_it_finds_a_session_by_key_in_the_admin(superuser_client: Client) -> None:
    keyed = SessionFactory(name="keyed", external_key="sdk-session-7")
    SessionFactory(name="plain")
    url = reverse("admin:sessions_app_session_changelist")
    response = superuser_client.get(url, {"q": "sdk-session-7"})
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert [s.pk for s in shown] == [keyed.pk]
