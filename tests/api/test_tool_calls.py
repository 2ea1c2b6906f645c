"""Tool calls: query, get, finish a running call, and error groups."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sessions_app.models import Session, ToolCall
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(db: None) -> Session:
    session = SessionFactory(agent=AgentFactory(name="support-bot"))
    conversation(session, turns=3, failing=2)
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                content_type="tool_use",
                tool_calls=[
                    ToolCallIn(
                        tool_name="refund",
                        call_id="r1",
                        state="running",
                        approval={"by": "ops@example.com", "decision": "approved"},
                    )
                ],
            )
        ],
    )
    return session


def ids(api: ApiClient, **params) -> set[str]:
    response = api.get("/tool-calls", params)
    assert response.status_code == 200, response.content
    return {c["call_id"] for c in response.json()["items"]}


def test_it_queries_tool_calls_by_every_filter(api: ApiClient, session: Session):
    conversation(SessionFactory(), turns=1)  # another agent's call_0
    assert ids(api, agent="support-bot") == {"call_0", "call_1", "call_2", "r1"}
    assert ids(api, session=str(session.pk), tool_name="refund") == {"r1"}
    assert ids(api, agent="support-bot", is_error="true") == {"call_0", "call_1"}
    assert ids(api, agent="support-bot", is_error="false") == {"call_2", "r1"}
    assert ids(api, has_approval="true") == {"r1"}
    assert ids(api, state="running") == {"r1"}
    assert ids(api, agent="support-bot", fingerprint="Order <n> not found") == {"call_0", "call_1"}
    assert ids(api, created_after="2999-01-01T00:00:00Z") == set()
    call = api.get("/tool-calls", {"state": "running"}).json()["items"][0]
    assert call["approval"]["decision"] == "approved"
    assert_error(api.get("/tool-calls", {"state": "sleeping"}), 422, "state")
    assert_error(api.get("/tool-calls", {"is_error": "maybe"}), 422, "is_error")


@pytest.mark.parametrize("rows", [1, 30])
def test_it_queries_tool_calls_in_two_queries(api: ApiClient, rows: int, django_assert_num_queries):
    session = SessionFactory()
    conversation(session, turns=rows)
    with django_assert_num_queries(2):  # 1: the key, 2: a page of tool calls
        page = api.get("/tool-calls", {"limit": 500}).json()
    assert len(page["items"]) == rows


def test_it_finishes_a_running_call_with_output_or_error(api: ApiClient, session: Session):
    running = ToolCall.objects.get(call_id="r1")
    done = api.patch(f"/tool-calls/{running.pk}", {"output": {"refunded": 20}, "duration_ms": 90})
    assert done.status_code == 200
    assert done.json()["output"] == {"refunded": 20} and done.json()["state"] == "running"
    failed = api.patch(f"/tool-calls/{running.pk}", {"error_message": "Payment 77 declined"})
    out = failed.json()
    assert out["is_error"] and out["state"] == "failed" and out["finished_at"]
    session.refresh_from_db()
    assert session.error_count == 3
    fixed = api.patch(f"/tool-calls/{running.pk}", {"state": "completed"}).json()
    assert not fixed["is_error"] and fixed["error_message"] == ""
    session.refresh_from_db()
    assert session.error_count == 2
    assert_error(api.patch("/tool-calls/999999", {"state": "completed"}), 404)
    assert_error(api.patch(f"/tool-calls/{running.pk}", {"state": "done"}), 422, "state")
    assert_error(api.get("/tool-calls/999999"), 404)
    assert api.get(f"/tool-calls/{running.pk}").json()["call_id"] == "r1"


def test_it_groups_errors_by_tool_and_fingerprint(api: ApiClient, session: Session):
    other = SessionFactory()
    conversation(other, turns=1, failing=1)
    groups = api.get("/tool-calls/errors").json()["items"]
    assert len(groups) == 1
    group = groups[0]
    assert (group["tool_name"], group["fingerprint"]) == ("lookup_order", "Order <n> not found")
    assert (group["count"], group["sessions"]) == (3, 2)
    assert group["first_seen"] <= group["last_seen"]
    scoped = api.get("/tool-calls/errors", {"agent": "support-bot"}).json()["items"]
    assert scoped[0]["count"] == 2
    assert api.get("/tool-calls/errors", {"tool_name": "refund"}).json()["items"] == []


def test_it_groups_errors_in_any_window(api: ApiClient, django_assert_num_queries):
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today = now - midnight  # the failures fall inside today at whatever hour the test runs
    session = SessionFactory(created_at=midnight - dt.timedelta(days=2))
    two_days_ago = midnight - dt.timedelta(days=2) + today / 2
    for at in (two_days_ago, midnight + today / 4, midnight + today * 3 / 4):
        message_append(
            session_id=session.pk,
            messages=[
                MessageIn(
                    role="assistant",
                    created_at=at,
                    tool_calls=[
                        ToolCallIn(tool_name="search", state="failed", error_message="Down")
                    ],
                )
            ],
        )
    between = (midnight + today / 2).isoformat()  # between today's two failures
    cases = {
        # From a midnight on: summed from the day rows.
        midnight.isoformat(): (2, 1),
        (midnight - dt.timedelta(days=2)).isoformat(): (3, 1),
        # Any other moment cuts a day: the failing calls themselves are grouped.
        between: (1, 1),
    }
    for since, (count, sessions) in cases.items():
        with django_assert_num_queries(2):  # 1: the key, 2: one page of groups
            [group] = api.get("/tool-calls/errors", {"since": since}).json()["items"]
        assert (group["count"], group["sessions"]) == (count, sessions), since
    [group] = api.get("/tool-calls/errors", {"until": between}).json()["items"]
    assert group["count"] == 2


def test_it_pages_error_groups(api: ApiClient, django_assert_num_queries):
    session = SessionFactory()
    calls = [
        ToolCallIn(tool_name=f"tool_{i % 3}", state="failed", error_message=f"Error kind {kind}")
        for i, kind in enumerate("aabbbccdde")
    ]
    message_append(session_id=session.pk, messages=[MessageIn(role="assistant", tool_calls=calls)])
    seen = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        with django_assert_num_queries(2):  # 1: the key, 2: one page of groups
            page = api.get("/tool-calls/errors", params).json()
        seen += [(g["tool_name"], g["fingerprint"], g["count"]) for g in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    expected = ToolCall.objects.values_list("tool_name", "error_message").distinct().count()
    assert len(seen) == len(set(seen)) == expected
    assert [c for _t, _f, c in seen] == sorted((c for _t, _f, c in seen), reverse=True)
