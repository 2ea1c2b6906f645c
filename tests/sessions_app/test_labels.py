"""A transcript's rows carry the labels a page shows (`role_label`, `content_type_label`,
`state_label`) as `get_<field>_display()` gives them, for every choice and for a value outside
them (a row written before a choice was removed)."""

from __future__ import annotations

import pytest

from sessions_app.models import ContentType, Message, Role, ToolCall, ToolCallState
from sessions_app.selectors import session_transcript
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.factories import SessionFactory


@pytest.fixture
def transcript(db):
    """One message per role and per content type, one tool call per state, and a message and a
    call whose stored values are outside the choices."""
    session = SessionFactory()
    messages = [MessageIn(role=role) for role in Role]
    messages += [MessageIn(role=Role.ASSISTANT, content_type=kind) for kind in ContentType]
    messages.append(
        MessageIn(
            role=Role.ASSISTANT,
            tool_calls=[
                ToolCallIn(tool_name="lookup", state=state, error_message="no")
                if state == ToolCallState.FAILED
                else ToolCallIn(tool_name="lookup", state=state)
                for state in ToolCallState
            ],
        )
    )
    message_append(session_id=session.pk, messages=messages)
    Message.objects.filter(session=session, seq=0).update(role="narrator", content_type="video")
    ToolCall.objects.filter(session=session, state=ToolCallState.PENDING).update(state="paused")
    return session


def test_a_messages_labels_are_its_displays(transcript) -> None:
    rows = session_transcript(session=transcript)
    stored = {m.pk: m for m in Message.objects.filter(session=transcript)}
    assert {row["role"] for row in rows} == {*Role, "narrator"} - {Role.SYSTEM}
    assert {row["content_type"] for row in rows} == {*ContentType, "video"}
    for row in rows:
        message = stored[row["id"]]
        assert row["role_label"] == message.get_role_display()
        assert row["content_type_label"] == message.get_content_type_display()


def test_a_tool_calls_label_is_its_display(transcript) -> None:
    calls = [call for row in session_transcript(session=transcript) for call in row["calls"]]
    stored = {c.pk: c for c in ToolCall.objects.filter(session=transcript)}
    assert {call["state"] for call in calls} == {*ToolCallState, "paused"} - {"pending"}
    for call in calls:
        assert call["state_label"] == stored[call["id"]].get_state_display()
