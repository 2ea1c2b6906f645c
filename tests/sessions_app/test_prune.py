import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from memories.models import Memory
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.services import checkpoint_save
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, conversation

pytestmark = pytest.mark.django_db


def _prune(*args: str) -> str:
    out = StringIO()
    call_command("prune", *args, "-v0", stdout=out)
    return out.getvalue()


def _session(agent, *, days_ago: float | None, turns: int = 2):
    """A session with messages, tool calls (one failing), a checkpoint and a session memory;
    finished `days_ago` days ago, or still active when None."""
    session = SessionFactory(agent=agent)
    conversation(session, turns=turns, failing=1)
    checkpoint_save(session_id=session.pk, type="state", data={"step": 1})
    MemoryFactory(agent=None, session=session)
    if days_ago is not None:
        Session.objects.filter(pk=session.pk).update(
            finished_at=timezone.now() - dt.timedelta(days=days_ago)
        )
    return session


@pytest.fixture
def sessions():
    support, coder = AgentFactory(name="support"), AgentFactory(name="coder")
    return {
        "old": _session(support, days_ago=120, turns=3),
        "old_other_agent": _session(coder, days_ago=100),
        "recent": _session(support, days_ago=10),
        "active_but_old": _session(support, days_ago=None),
    }


def test_it_deletes_old_finished_sessions_with_everything_under_them(sessions):
    Session.objects.filter(pk=sessions["active_but_old"].pk).update(
        created_at=timezone.now() - dt.timedelta(days=400)
    )

    output = _prune("--older-than", "90d")

    gone = [sessions["old"].pk, sessions["old_other_agent"].pk]
    kept = [sessions["recent"].pk, sessions["active_but_old"].pk]
    assert set(Session.objects.values_list("pk", flat=True)) == set(kept)
    for model in (Message, ToolCall, Checkpoint, Memory):
        assert not model.objects.filter(session__in=gone).exists()
        assert model.objects.filter(session__in=kept).exists()
    # 3 + 2 turns of user + assistant messages, one tool call per turn, one checkpoint each.
    assert output.startswith(
        "Deleted 2 sessions, 10 messages, 5 tool calls, 2 checkpoints, 0 pending writes, "
        "2 session memories, 0 memories of other scopes kept without their source session"
    )


def test_it_only_counts_on_a_dry_run_and_the_counts_are_what_is_then_deleted(sessions):
    before = {m: m.objects.count() for m in (Session, Message, ToolCall, Checkpoint, Memory)}

    dry = _prune("--older-than", "90d", "--dry-run")

    assert before == {m: m.objects.count() for m in before}
    assert dry.startswith("Dry run: would delete 2 sessions, 10 messages, 5 tool calls")
    real = _prune("--older-than", "90d")
    assert (
        real.removeprefix("Deleted ").split(" (")[0]
        == dry.removeprefix("Dry run: would delete ").split(" (")[0]
    )


def test_it_limits_to_one_agent(sessions):
    _prune("--older-than", "90d", "--agent", "coder")

    assert not Session.objects.filter(pk=sessions["old_other_agent"].pk).exists()
    assert Session.objects.filter(pk=sessions["old"].pk).exists()


def test_it_deletes_in_batches(sessions):
    output = _prune("--older-than", "1w", "--batch-size", "1")

    assert output.startswith("Deleted 3 sessions")
    assert list(Session.objects.values_list("pk", flat=True)) == [sessions["active_but_old"].pk]


def test_it_deletes_in_a_bounded_number_of_queries_per_batch(
    sessions, django_assert_max_num_queries
):
    # One batch of 3 sessions: count, then per batch: savepoint, select ids, lock the sessions,
    # their messages and tool calls per day (two, for the daily activity), their failures per
    # group and day (for the error groups), their tool calls per state, clear the source link
    # of memories that came from them (counted; Django's SET_NULL finds none left after it),
    # collect messages, delete tool calls, memories, checkpoints, their pending writes,
    # messages, sessions, subtract from the daily activity, lock (PostgreSQL) and recount the
    # error groups' days, update and delete those, subtract from the tool calls by state,
    # release; then an empty batch.
    with django_assert_max_num_queries(31):
        _prune("--older-than", "1w")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--older-than", "banana"), "'banana' is not an age"),
        (("--older-than", "90"), "is not an age"),
        (("--older-than=-5d",), "is not an age"),
        (("--older-than", "0d"), "at least 1"),
        (("--older-than", "999999w"), "too long ago"),
        (("--older-than", "90d", "--agent", "nobody"), "No agent named 'nobody'"),
        (("--older-than", "90d", "--batch-size", "0"), "--batch-size"),
    ],
)
def test_it_explains_bad_input_and_deletes_nothing(sessions, args, message):
    with pytest.raises(CommandError, match=message):
        _prune(*args)
    assert Session.objects.count() == 4
