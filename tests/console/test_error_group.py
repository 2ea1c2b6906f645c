"""One error group: its numbers, a chart, and its calls linking into transcripts."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from config.keyset import encode_cursor
from sessions_app.fingerprints import error_fingerprint
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.console.conftest import HOSTILE, assert_inert, bulk_group, htmx
from tests.factories import SessionFactory, conversation

BASE = reverse("console:error-group")


def url(tool: str, fingerprint: str, **more: str) -> str:
    return f"{BASE}?{urlencode({'tool': tool, 'fingerprint': fingerprint, **more})}"


def test_it_shows_the_group_and_links_each_call_to_its_message(viewer_client: Client) -> None:
    session = SessionFactory(name="Lost parcel")
    conversation(session, turns=4, failing=2)  # failures asked for by messages #1 and #3
    response = viewer_client.get(url("lookup_order", "Order <n> not found"))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert response.context["summary"]["count"] == 2
    assert html.count("</title></rect>") == 30
    detail = reverse("console:session-detail", args=[session.pk])
    assert f"{detail}?after_seq=0#m-3" in html
    assert f"{detail}?after_seq=-1#m-1" in html


def test_it_loads_more_calls_by_keyset(viewer_client: Client) -> None:
    tool, fingerprint = bulk_group(70)
    first = viewer_client.get(url(tool, fingerprint))
    assert len(first.context["calls"]) == 50
    more = viewer_client.get(BASE + first.context["more_url"], headers=htmx("load-more"))
    assert "<html" not in more.content.decode()
    assert len(more.context["calls"]) == 20
    assert more.context["more_url"] is None
    ids = [c["id"] for c in first.context["calls"]] + [c["id"] for c in more.context["calls"]]
    assert len(set(ids)) == 70


def test_it_answers_htmx_navigation_with_the_page_content(viewer_client: Client) -> None:
    tool, fingerprint = bulk_group(3)
    html = viewer_client.get(url(tool, fingerprint), headers=htmx("main")).content.decode()
    assert "<html" not in html and "<title>" in html


def test_it_returns_404_for_an_unknown_group_or_missing_tool(viewer_client: Client) -> None:
    assert viewer_client.get(url("nothing", "none")).status_code == 404
    assert viewer_client.get(BASE).status_code == 404
    assert viewer_client.get(url("x", "y", cursor="forged")).status_code == 404


def test_it_returns_404_for_a_cursor_holding_what_no_call_holds(viewer_client: Client) -> None:
    tool, fingerprint = bulk_group(3)
    for moment in (None, "9999-12-31T23:59:59-14:00"):
        cursor = encode_cursor(("-created_at", "-id"), {"created_at": moment, "id": 1})
        assert viewer_client.get(url(tool, fingerprint, cursor=cursor)).status_code == 404


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client) -> None:
    assert client.get(url("a", "b")).status_code == 302


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(url("a", "b")).status_code == 403


def test_it_escapes_hostile_content(viewer_client: Client) -> None:
    session = SessionFactory(name=HOSTILE)
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                tool_calls=[ToolCallIn(tool_name=HOSTILE, state="failed", error_message=HOSTILE)],
            )
        ],
    )
    html = viewer_client.get(url(HOSTILE, error_fingerprint(HOSTILE))).content.decode()
    assert_inert(html)


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    tool, fingerprint = bulk_group(rows)
    # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 a page of calls with session,
    # agent and message position, 6 the group's numbers and its failures per day (the rollup).
    with django_assert_num_queries(6):
        response = viewer_client.get(url(tool, fingerprint))
    assert response.context["summary"]["count"] == rows
