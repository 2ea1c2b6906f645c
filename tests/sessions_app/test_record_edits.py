"""Single-record edits (the admin's): counters stay exact and `seq` gapless, on both databases."""

from __future__ import annotations

import pytest

from config.errors import Conflict, InvalidInput
from sessions_app.models import Message, Session, ToolCall
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    message_append,
    messages_delete,
    tool_call_add,
    tool_call_update,
    tool_calls_delete,
)
from tests.factories import SessionFactory, conversation


def _counters(session: Session) -> tuple[int, int, int]:
    session.refresh_from_db()
    return session.message_count, session.tool_call_count, session.error_count


def _exact(session: Session) -> tuple[int, int, int]:
    calls = ToolCall.objects.filter(session=session)
    return (
        Message.objects.filter(session=session).count(),
        calls.count(),
        calls.filter(is_error=True).count(),
    )


@pytest.mark.django_db
def test_it_closes_gaps_in_several_sessions_at_once() -> None:
    first, second = SessionFactory(), SessionFactory()
    conversation(first, turns=3, failing=2)  # 6 messages, 3 calls, 2 failed
    conversation(second, turns=2)
    doomed = Message.objects.filter(session=first, seq__in=[0, 3]) | Message.objects.filter(
        session=second, seq=1
    )
    assert messages_delete(messages=doomed) == 3

    for session in (first, second):
        seqs = list(Message.objects.filter(session=session).order_by("seq").values_list("seq"))
        assert [s for (s,) in seqs] == list(range(len(seqs)))
        assert _counters(session) == _exact(session)
    assert _counters(first) == (4, 2, 1)

    # Appending afterwards continues the gapless sequence.
    result = message_append(session_id=first.pk, messages=[MessageIn(role="user")])
    assert result.messages[0].seq == 4


@pytest.mark.django_db
def test_it_counts_added_changed_and_deleted_tool_calls() -> None:
    session = SessionFactory()
    conversation(session, turns=1)
    message = Message.objects.get(session=session, seq=1)
    call = tool_call_add(
        session_id=session.pk,
        message_id=message.pk,
        call=ToolCallIn(tool_name="refund", call_id="c9", state="failed", error_message="No 42"),
    )
    assert call.is_error and call.error_fingerprint and _counters(session) == (2, 2, 1)

    tool_call_update(tool_call_id=call.pk, state="completed", is_error=False, error_message="")
    call.refresh_from_db()
    assert not call.is_error and call.error_fingerprint == "" and _counters(session) == (2, 2, 0)

    with pytest.raises(Conflict):
        tool_call_update(tool_call_id=call.pk, call_id="call_0")  # taken by the conversation
    with pytest.raises(InvalidInput):
        tool_call_update(tool_call_id=call.pk, state="exploded")
    with pytest.raises(InvalidInput):
        tool_call_add(
            session_id=SessionFactory().pk, message_id=message.pk, call=ToolCallIn(tool_name="x")
        )

    assert tool_calls_delete(tool_calls=ToolCall.objects.filter(session=session)) == 2
    assert _counters(session) == (2, 0, 0) == _exact(session)
