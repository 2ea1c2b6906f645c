"""The transcript: messages in order, tool calls inline, paging, live follow, side panels."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from sessions_app.models import Message, ToolCall
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    checkpoint_save,
    message_append,
    session_finish,
)
from tests.console.conftest import HOSTILE, assert_inert, htmx, long_session
from tests.factories import MemoryFactory, SessionFactory, conversation


def url(session, **query) -> str:
    base = reverse("console:session-detail", args=[session.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_it_shows_messages_in_order_with_tool_calls_and_side_panels(viewer_client: Client) -> None:
    session = SessionFactory(name="Where is my order")
    conversation(session, turns=2, failing=1)
    checkpoint_save(session_id=session.pk, type="plan", data={"step": 3})
    MemoryFactory(agent=session.agent, source_session=session, name="likes-email")
    response = viewer_client.get(url(session))
    html = response.content.decode()
    assert response.status_code == 200
    assert [m["seq"] for m in response.context["messages"]] == [0, 1, 2, 3]
    assert html.index('id="m-0"') < html.index('id="m-3"')
    assert html.count('class="call call-failed"') == 1  # the failure is marked
    assert "Order 1000 not found" in html  # and its message shows without expanding
    assert "&quot;step&quot;: 3" in html  # the checkpoint, pretty-printed
    assert "likes-email" in html
    assert "End of session" not in html and "tail-live" in html  # active: followed live
    # Payloads are not in the page; each call loads them when expanded.
    assert '"order"' not in html
    call = ToolCall.objects.filter(session=session).first()
    assert reverse("console:tool-call-detail", args=[call.pk]) in html


@override_settings(USE_THOUSAND_SEPARATOR=True, NUMBER_GROUPING=3)
def test_it_writes_seqs_in_anchors_and_links_as_plain_digits(viewer_client: Client) -> None:
    session = SessionFactory()
    Message.objects.bulk_create(
        Message(session=session, agent=session.agent, seq=seq, role="user", text_content="Hi")
        for seq in range(1000, 1101)
    )
    html = viewer_client.get(url(session, after_seq=999)).content.decode()
    assert 'id="m-1000"' in html and 'href="#m-1000"' in html and ">#1000</a>" in html
    assert "?after_seq=1099" in html  # the next page
    assert "m-1," not in html and "after_seq=1," not in html


def test_it_pages_long_transcripts(viewer_client: Client) -> None:
    session = long_session(250)
    first = viewer_client.get(url(session))
    assert len(first.context["messages"]) == 100
    assert first.context["has_more"]
    second = viewer_client.get(url(session, after_seq=99), headers=htmx("transcript-tail"))
    html = second.content.decode()
    assert "<html" not in html
    assert [m["seq"] for m in second.context["messages"]][:1] == [100]
    third = viewer_client.get(url(session, after_seq=199), headers=htmx("transcript-tail"))
    assert [m["seq"] for m in third.context["messages"]][-1] == 249
    assert not third.context["has_more"]


def test_it_follows_an_active_session_and_stops_when_it_finishes(viewer_client: Client) -> None:
    session = SessionFactory()
    conversation(session, turns=1)
    poll = url(session, after_seq=1, follow=1)
    nothing_new = viewer_client.get(poll, headers=htmx("transcript-tail"))
    assert nothing_new.status_code == 204  # htmx keeps the poller and tries again
    message_append(session_id=session.pk, messages=[MessageIn(role="user", text_content="Hi?")])
    new = viewer_client.get(poll, headers=htmx("transcript-tail"))
    html = new.content.decode()
    assert 'id="m-2"' in html and "Hi?" in html
    assert 'hx-trigger="every 2s"' in html and "after_seq=2&amp;follow=1" in html
    session_finish(session_id=session.pk)
    done = viewer_client.get(url(session, after_seq=2, follow=1), headers=htmx("transcript-tail"))
    html = done.content.decode()
    assert done.status_code == 200
    assert "every 2s" not in html  # the poller is gone: polling stops
    assert "End of session" in html
    assert 'id="session-status" hx-swap-oob="true"' in html and "finished" in html


def test_it_answers_htmx_navigation_with_the_page_content(viewer_client: Client) -> None:
    session = SessionFactory()
    html = viewer_client.get(url(session), headers=htmx("main")).content.decode()
    assert "<html" not in html and "<title>" in html and "transcript-tail" in html


def test_it_returns_404_for_unknown_sessions_and_bad_positions(viewer_client: Client) -> None:
    missing = reverse("console:session-detail", args=["00000000-0000-0000-0000-000000000000"])
    response = viewer_client.get(missing)
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
    assert viewer_client.get(url(SessionFactory(), after_seq="x")).status_code == 404


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client, db: None) -> None:
    response = client.get(url(SessionFactory()))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(url(SessionFactory())).status_code == 403


def test_it_escapes_hostile_content_everywhere(viewer_client: Client) -> None:
    session = SessionFactory(name=HOSTILE, platform=HOSTILE, metadata={HOSTILE: HOSTILE})
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(role="user", text_content=HOSTILE, media_url="javascript:alert(1)"),
            MessageIn(
                role="assistant",
                text_content=HOSTILE,
                tool_calls=[
                    ToolCallIn(
                        tool_name=HOSTILE,
                        input={"html": HOSTILE},
                        output=HOSTILE,
                        state="failed",
                        error_message=HOSTILE,
                    )
                ],
            ),
        ],
    )
    checkpoint_save(session_id=session.pk, type=HOSTILE, data={"x": HOSTILE})
    MemoryFactory(session=session, name=HOSTILE, content=HOSTILE)
    html = viewer_client.get(url(session)).content.decode()
    assert_inert(html)
    assert 'href="javascript:alert(1)"' not in html
    assert "javascript:alert(1)" in html  # shown, as text
    call = ToolCall.objects.get(session=session)
    detail = viewer_client.get(reverse("console:tool-call-detail", args=[call.pk]))
    assert_inert(detail.content.decode())


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    session = long_session(rows)
    checkpoint_save(session_id=session.pk, data={"a": 1})
    # 1 auth session, 2 user, 3-4 the viewer's user and group permissions, 5 the session with
    # agent and user, 6 a page of messages, 7 their tool calls (payloads deferred),
    # 8 the latest checkpoints, 9 the session's memories.
    with django_assert_num_queries(9):
        response = viewer_client.get(url(session))
    assert len(response.context["messages"]) == min(rows, 100)
    # A live poll: 1-4 auth, 5 the session, 6 new messages, 7 their tool calls.
    with django_assert_num_queries(7):
        viewer_client.get(
            url(session, after_seq=rows - 3, follow=1), headers=htmx("transcript-tail")
        )
