"""One tool call's payloads: loaded when a call is expanded in the transcript."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from sessions_app.models import ToolCall
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.console.conftest import HOSTILE, assert_inert, htmx
from tests.factories import SessionFactory


def failed_call(*, input=None, output=None, error: str = "Order 77 not found") -> ToolCall:
    session = SessionFactory()
    message_append(
        session_id=session.pk,
        messages=[
            MessageIn(
                role="assistant",
                tool_calls=[
                    ToolCallIn(
                        tool_name="lookup_order",
                        input=input,
                        output=output,
                        state="failed",
                        error_message=error,
                        approval={"by": "ops", "decision": "approved"},
                    )
                ],
            )
        ],
    )
    return ToolCall.objects.get(session=session)


def url(call: ToolCall) -> str:
    return reverse("console:tool-call-detail", args=[call.pk])


def test_it_shows_pretty_input_output_and_the_failure(viewer_client: Client) -> None:
    call = failed_call(input={"order": 77, "nested": {"a": [1, 2]}})
    response = viewer_client.get(url(call))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "{\n  &quot;order&quot;: 77,\n  &quot;nested&quot;: {" in html
    assert "Order 77 not found" in html
    assert "&quot;decision&quot;: &quot;approved&quot;" in html
    assert "fingerprint=Order+%3Cn%3E+not+found" in html  # a link to its error group


def test_it_answers_htmx_with_the_payload_fragment(viewer_client: Client) -> None:
    html = viewer_client.get(url(failed_call()), headers=htmx()).content.decode()
    assert "<html" not in html and "<h1" not in html and "Input" in html


def test_it_cuts_huge_payloads(viewer_client: Client) -> None:
    call = failed_call(output={"blob": "x" * 300_000})
    html = viewer_client.get(url(call), headers=htmx()).content.decode()
    assert "Cut at 200 kB" in html
    assert len(html) < 250_000


def test_it_returns_404_for_unknown_calls(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("console:tool-call-detail", args=[999999])).status_code == 404


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client, db: None) -> None:
    assert client.get(url(failed_call())).status_code == 302


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(url(failed_call())).status_code == 403


def test_it_escapes_hostile_payloads(viewer_client: Client) -> None:
    call = failed_call(input={"h": HOSTILE}, output=HOSTILE, error=HOSTILE)
    assert_inert(viewer_client.get(url(call)).content.decode())


@pytest.mark.parametrize("size", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, size: int
) -> None:
    call = failed_call(input={str(i): i for i in range(size)})
    # 1 auth session, 2 user, 3-4 the viewer's permissions, 5 the call with session, agent and
    # message.
    with django_assert_num_queries(5):
        viewer_client.get(url(call))
