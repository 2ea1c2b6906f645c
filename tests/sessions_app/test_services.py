import threading
import uuid

import pytest
from django.db import connection, connections

from config.errors import Conflict, InvalidInput, NotFound
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.selectors import checkpoint_latest
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    checkpoint_save,
    message_append,
    session_delete,
    session_finish,
    session_start,
    tool_call_finish,
)
from tests.factories import AgentFactory, SessionFactory, UserFactory, conversation

pytestmark = pytest.mark.django_db


def _text(role: str, text: str, seq: int | None = None) -> MessageIn:
    return MessageIn(role=role, text_content=text, seq=seq)


def test_it_starts_a_session_with_the_runtimes_own_id_and_time():
    agent = AgentFactory()
    sid = uuid.uuid4()
    session = session_start(agent=agent, user=UserFactory(), id=sid, platform="slack")
    assert session.pk == sid
    assert session.is_active
    with pytest.raises(Conflict):
        session_start(agent=agent, id=sid)


def test_it_appends_messages_at_gapless_seq_and_keeps_counters_exact():
    session = SessionFactory()
    conversation(session, turns=3, failing=1)
    session.refresh_from_db()
    assert list(session.messages.values_list("seq", flat=True)) == [0, 1, 2, 3, 4, 5]
    assert (session.message_count, session.tool_call_count, session.error_count) == (6, 3, 1)
    failed = ToolCall.objects.get(is_error=True)
    assert failed.state == "failed"
    assert failed.error_fingerprint == "Order <n> not found"
    assert failed.agent_id == session.agent_id
    assert Message.objects.filter(agent_id=session.agent_id).count() == 6


def test_it_replays_a_batch_without_creating_anything():
    session = SessionFactory()
    batch = [_text("user", "hi", seq=0), _text("assistant", "hello", seq=1)]
    first = message_append(session_id=session.pk, messages=batch)
    again = message_append(session_id=session.pk, messages=batch)
    assert (first.created, again.created) == (2, 0)
    assert [m.pk for m in first.messages] == [m.pk for m in again.messages]
    session.refresh_from_db()
    assert session.message_count == 2


def test_it_refuses_a_different_message_at_a_taken_seq():
    session = SessionFactory()
    message_append(session_id=session.pk, messages=[_text("user", "hi", seq=0)])
    with pytest.raises(Conflict) as exc:
        message_append(
            session_id=session.pk,
            messages=[_text("assistant", "ok", seq=1), _text("user", "other", seq=0)],
        )
    assert exc.value.field == "messages.1.seq"
    # All or nothing: the valid first message of the refused batch was not kept.
    assert Message.objects.filter(session=session).count() == 1


def test_it_refuses_a_gap_in_seq():
    session = SessionFactory()
    with pytest.raises(Conflict) as exc:
        message_append(session_id=session.pk, messages=[_text("user", "hi", seq=3)])
    assert "next seq in this session is 0" in exc.value.message


def test_it_refuses_bad_roles_and_unknown_sessions():
    session = SessionFactory()
    with pytest.raises(InvalidInput) as exc:
        message_append(session_id=session.pk, messages=[_text("robot", "hi")])
    assert exc.value.field == "messages.0.role"
    with pytest.raises(NotFound):
        message_append(session_id=uuid.uuid4(), messages=[_text("user", "hi")])


def test_it_refuses_appends_to_a_finished_session_and_finishing_is_idempotent():
    session = SessionFactory()
    first = session_finish(session_id=session.pk)
    again = session_finish(session_id=session.pk)
    assert first.finished_at == again.finished_at
    with pytest.raises(Conflict):
        message_append(session_id=session.pk, messages=[_text("user", "late")])


def test_it_refuses_a_call_id_used_twice_in_a_session():
    session = SessionFactory()
    call = ToolCallIn(tool_name="search", call_id="c1")
    message_append(session_id=session.pk, messages=[MessageIn(role="assistant", tool_calls=[call])])
    with pytest.raises(Conflict):
        message_append(
            session_id=session.pk, messages=[MessageIn(role="assistant", tool_calls=[call])]
        )
    session.refresh_from_db()
    assert (session.message_count, session.tool_call_count) == (1, 1)


def test_it_finishes_a_tool_call_and_moves_the_error_count_both_ways():
    session = SessionFactory()
    running = ToolCallIn(tool_name="search", call_id="c1", state="running")
    result = message_append(
        session_id=session.pk, messages=[MessageIn(role="assistant", tool_calls=[running])]
    )
    call = result.messages[0].tool_calls.get()
    assert call.finished_at is None

    failed = tool_call_finish(
        tool_call_id=call.pk, error_message="Timeout after 30s", duration_ms=9
    )
    session.refresh_from_db()
    assert (failed.state, failed.is_error, session.error_count) == ("failed", True, 1)
    assert failed.finished_at is not None

    fixed = tool_call_finish(tool_call_id=call.pk, state="completed", output={"hits": 3})
    session.refresh_from_db()
    assert (fixed.is_error, fixed.error_fingerprint, session.error_count) == (False, "", 0)
    assert fixed.output == {"hits": 3}


def test_it_saves_checkpoints_and_finds_the_latest():
    session = SessionFactory()
    checkpoint_save(session_id=session.pk, type="state", data={"step": 1})
    latest = checkpoint_save(session_id=session.pk, type="state", data={"step": 2})
    assert checkpoint_latest(session_id=session.pk) == latest
    with pytest.raises(NotFound):
        checkpoint_save(session_id=uuid.uuid4(), data={})


def test_it_deletes_a_session_with_everything_under_it():
    session = SessionFactory()
    conversation(session, turns=2)
    checkpoint_save(session_id=session.pk, data={})
    counts = session_delete(session_id=session.pk)
    assert counts == {
        "deleted": {"session": 1, "message": 4, "toolcall": 2, "checkpoint": 1},
        "unlinked": {"memory": 0},
    }
    assert not Checkpoint.objects.exists()


def test_it_keeps_sessions_when_their_user_is_deleted():
    session = SessionFactory()
    session.user.delete()
    session.refresh_from_db()
    assert session.user is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_keeps_seq_gapless_under_concurrent_appends():
    session = SessionFactory()
    writers, per_writer = 8, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                message_append(
                    session_id=session.pk,
                    messages=[
                        _text("user", f"w{n} m{i}"),
                        MessageIn(
                            role="assistant",
                            tool_calls=[
                                ToolCallIn(tool_name="t", state="failed", error_message="x")
                            ],
                        ),
                    ],
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = writers * per_writer * 2
    seqs = list(
        Message.objects.filter(session=session).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(total))
    session = Session.objects.get(pk=session.pk)
    assert (session.message_count, session.tool_call_count, session.error_count) == (
        total,
        total // 2,
        total // 2,
    )
    assert connection.vendor == "postgresql"
