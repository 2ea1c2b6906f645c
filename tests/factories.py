"""Factories for test data. Sessions with content go through the services, so counters agree."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from agents.models import Agent, User
from memories.models import Memory
from sessions_app import rollups
from sessions_app.models import ErrorGroupDay, Session
from sessions_app.services import MessageIn, ToolCallIn, message_append


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True  # the groups hook saves what it changes

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    phone_number = factory.Sequence(lambda n: f"+1555{n:07d}")
    user_data = factory.LazyFunction(lambda: {"plan": "free"})
    password = factory.django.Password(None)


class OperatorFactory(UserFactory):
    email = factory.Sequence(lambda n: f"operator{n}@logdeck.test")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"agent-{n}")
    type = "assistant"
    model = "gpt-5-mini"
    description = "Answers support questions."
    config = factory.LazyFunction(lambda: {"temperature": 0.2, "tools": ["search", "lookup"]})
    system_prompt = "You are a helpful support agent."
    version = "1.0"


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    agent = factory.SubFactory(AgentFactory)
    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Session {n}")
    platform = "web"
    metadata = factory.LazyFunction(lambda: {"channel": "chat"})

    @classmethod
    def _create(cls, model_class: type[Session], *args, **kwargs) -> Session:
        # Counted by the rollups, as `session_start` counts the sessions it starts.
        session = super()._create(model_class, *args, **kwargs)
        rollups.rows_added(sessions=[session])
        return session


class MemoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Memory

    name = factory.Sequence(lambda n: f"memory-{n}")
    content = "The customer prefers email."
    session = None
    # An agent's memory by default; a session's own memory has no agent (its session is all).
    agent = factory.Maybe("session", None, factory.SubFactory(AgentFactory))
    user = None


def conversation(session: Session, *, turns: int = 2, failing: int = 0) -> None:
    """Append `turns` user/assistant exchanges; the first `failing` tool calls fail."""
    messages: list[MessageIn] = []
    for turn in range(turns):
        messages.append(MessageIn(role="user", text_content=f"Question {turn}"))
        failed = turn < failing
        messages.append(
            MessageIn(
                role="assistant",
                content_type="tool_use",
                text_content=f"Looking up order {turn}",
                tool_calls=[
                    ToolCallIn(
                        tool_name="lookup_order",
                        call_id=f"call_{turn}",
                        input={"order": turn},
                        output=None if failed else {"status": "shipped"},
                        state="failed" if failed else "completed",
                        error_message=f"Order {1000 + turn} not found" if failed else "",
                    )
                ],
            )
        )
    message_append(session_id=session.pk, messages=messages)


def error_group_days() -> set[tuple]:
    """Every row of the error-group rollup with all its fields, to compare with a recount."""
    return set(
        ErrorGroupDay.objects.values_list(
            "agent_id",
            "tool_name",
            "error_fingerprint",
            "day",
            "failures",
            "sessions",
            "first_seen_at",
            "last_seen_at",
            "sample_message",
        )
    )
