"""Random sequences of every public write, each followed by a full recount: every derived number
(session counters, daily activity, error groups, tool states) is what the rows give.

The example count is fixed and the run derandomized, so CI is quick and repeatable; set
LOGDECK_ROLLUP_EXAMPLES to search longer on a laptop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from agents.models import Agent
from agents.services import agent_delete, agent_upsert
from config.errors import Conflict, InvalidInput, NotFound
from sessions_app import rollups
from sessions_app.models import Message, Session, ToolCall, ToolCallState
from sessions_app.services import (
    MessageIn,
    ToolCallIn,
    message_append,
    message_pop,
    messages_delete,
    session_delete,
    session_finish,
    session_get_or_start,
    session_messages_clear,
    session_start,
    sessions_finish,
    sessions_prune,
    sessions_to_prune,
    tool_call_add,
    tool_call_finish,
    tool_call_update,
    tool_calls_delete,
)
from sessions_app.thread_services import checkpoint_put, thread_copy, thread_get_or_start

EXAMPLES = int(os.environ.get("LOGDECK_ROLLUP_EXAMPLES", "25"))
REFUSED = (Conflict, InvalidInput, NotFound)  # a refused write changes nothing

pick = st.integers(min_value=0, max_value=10_000)  # an index into what exists, modulo its size
days_ago = st.sampled_from([0, 0, 1, 3, 40])  # an import with old timestamps, now and then
hours = st.integers(min_value=0, max_value=23)
tools = st.sampled_from(["search", "lookup_order"])
errors = st.sampled_from(["", "Timeout after 30s", "Timeout after 45s", "Order 12 not found"])
states = st.sampled_from(ToolCallState.values)
call_ids = st.sampled_from(["", "", "", "c1", "c2"])


@st.composite
def tool_calls_in(draw: st.DrawFn) -> ToolCallIn:
    message = draw(errors)
    return ToolCallIn(
        tool_name=draw(tools),
        call_id=draw(call_ids),
        state=draw(states),
        is_error=bool(message) and draw(st.booleans()),
        error_message=message,
    )


@st.composite
def messages_in(draw: st.DrawFn) -> MessageIn:
    at = draw(st.none() | st.tuples(days_ago, hours))
    return MessageIn(
        role=draw(st.sampled_from(["user", "assistant", "tool"])),
        text_content="hello",
        created_at=None if at is None else timezone.now() - dt.timedelta(days=at[0], hours=at[1]),
        tool_calls=draw(st.lists(tool_calls_in(), max_size=2)),
    )


def _nth[T](rows: list[T], index: int) -> T:
    return rows[index % len(rows)]


class EveryWrite(RuleBasedStateMachine):
    """Each example runs in a savepoint rolled back at its end, so examples do not meet."""

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.threads = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # What exists, read afresh: a delete may have taken anything.
    def agents(self) -> list[Agent]:
        return list(Agent.objects.order_by("pk"))

    def sessions(self) -> list[Session]:
        return list(Session.objects.order_by("created_at", "pk"))

    def call_ids(self) -> list[int]:
        return list(ToolCall.objects.order_by("pk").values_list("pk", flat=True))

    def message_ids(self) -> list[int]:
        return list(Message.objects.order_by("pk").values_list("pk", flat=True))

    @rule(name=st.sampled_from(["support", "billing"]))
    def agent_upsert(self, name: str) -> None:
        agent_upsert(name=name)

    @precondition(lambda self: Agent.objects.exists())
    @rule(agent=pick, age=days_ago, hour=hours)
    def session_start(self, agent: int, age: int, hour: int) -> None:
        created = timezone.now() - dt.timedelta(days=age, hours=hour) if age else None
        session_start(agent=_nth(self.agents(), agent), created_at=created)

    @precondition(lambda self: Agent.objects.exists())
    @rule(agent=pick, key=st.sampled_from(["thread-a", "thread-b"]))
    def session_get_or_start(self, agent: int, key: str) -> None:
        session_get_or_start(agent=_nth(self.agents(), agent), external_key=key)

    @precondition(lambda self: Agent.objects.exists())
    @rule(agent=pick, thread=st.sampled_from(["thread-a", "thread-c"]))
    def checkpoint_put(self, agent: int, thread: str) -> None:
        self.threads += 1
        checkpoint_put(
            session=thread_get_or_start(agent=_nth(self.agents(), agent).pk, thread_id=thread),
            checkpoint_ns="",
            checkpoint_id=f"cp-{self.threads}",
            parent_checkpoint_id="",
            state_type="msgpack",
            state=b"\x80",
            metadata={},
        )

    @precondition(lambda self: Session.objects.exclude(external_key="").exists())
    @rule(source=pick, to=st.sampled_from(["thread-a", "thread-d"]))
    def thread_copy(self, source: int, to: str) -> None:
        threads = list(Session.objects.exclude(external_key="").order_by("pk"))
        session = _nth(threads, source)
        thread_copy(
            agent=session.agent,
            source_thread_id=session.external_key,
            target_thread_id=to,
        )

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick, messages=st.lists(messages_in(), min_size=1, max_size=3))
    def message_append(self, session: int, messages: list[MessageIn]) -> None:
        with contextlib.suppress(REFUSED):
            message_append(session_id=_nth(self.sessions(), session).pk, messages=messages)

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick, call=tool_calls_in(), under_a_message=st.booleans())
    def tool_call_add(self, session: int, call: ToolCallIn, under_a_message: bool) -> None:
        target = _nth(self.sessions(), session)
        message = Message.objects.filter(session=target).first() if under_a_message else None
        with contextlib.suppress(REFUSED):
            tool_call_add(
                session_id=target.pk, call=call, message_id=message.pk if message else None
            )

    @precondition(lambda self: ToolCall.objects.exists())
    @rule(call=pick, error=errors, state=st.none() | states)
    def tool_call_finish(self, call: int, error: str, state: str | None) -> None:
        tool_call_finish(
            tool_call_id=_nth(self.call_ids(), call), error_message=error or None, state=state
        )

    @precondition(lambda self: ToolCall.objects.exists())
    @rule(
        call=pick,
        fields=st.fixed_dictionaries(
            {},
            optional={
                "state": states,
                "is_error": st.booleans(),
                "error_message": errors,
                "tool_name": tools,
            },
        ),
    )
    def tool_call_update(self, call: int, fields: dict) -> None:
        tool_call_update(tool_call_id=_nth(self.call_ids(), call), **fields)

    @precondition(lambda self: ToolCall.objects.exists())
    @rule(calls=st.lists(pick, min_size=1, max_size=3))
    def tool_calls_delete(self, calls: list[int]) -> None:
        ids = [_nth(self.call_ids(), i) for i in calls]
        tool_calls_delete(tool_calls=ToolCall.objects.filter(pk__in=ids))

    @precondition(lambda self: Message.objects.exists())
    @rule(messages=st.lists(pick, min_size=1, max_size=3))
    def messages_delete(self, messages: list[int]) -> None:
        ids = [_nth(self.message_ids(), i) for i in messages]
        messages_delete(messages=Message.objects.filter(pk__in=ids))

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick)
    def message_pop(self, session: int) -> None:
        message_pop(session_id=_nth(self.sessions(), session).pk)

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick)
    def session_messages_clear(self, session: int) -> None:
        session_messages_clear(session_id=_nth(self.sessions(), session).pk)

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick, age=days_ago)
    def session_finish(self, session: int, age: int) -> None:
        at = timezone.now() - dt.timedelta(days=age)
        session_finish(session_id=_nth(self.sessions(), session).pk, at=at)

    @precondition(lambda self: Agent.objects.exists())
    @rule(agent=pick)
    def sessions_finish(self, agent: int) -> None:
        sessions_finish(sessions=Session.objects.filter(agent=_nth(self.agents(), agent)))

    @precondition(lambda self: Session.objects.exists())
    @rule(session=pick)
    def session_delete(self, session: int) -> None:
        session_delete(session_id=_nth(self.sessions(), session).pk)

    @precondition(lambda self: Agent.objects.exists())
    @rule(agent=pick)
    def agent_delete(self, agent: int) -> None:
        agent_delete(agent=_nth(self.agents(), agent))

    @rule(older_than=st.sampled_from([0, 2, 30]), batch_size=st.sampled_from([1, 200]))
    def sessions_prune(self, older_than: int, batch_size: int) -> None:
        cutoff = timezone.now() - dt.timedelta(days=older_than)
        sessions_prune(sessions=sessions_to_prune(cutoff=cutoff), batch_size=batch_size)

    @invariant()
    def every_number_is_a_recount(self) -> None:
        drifted = [line for lines in rollups.drift().values() for line in lines]
        assert not drifted, "\n".join(drifted)


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.django_db
def test_every_write_keeps_every_derived_number_exact() -> None:
    run_state_machine_as_test(EveryWrite, settings=SETTINGS)
