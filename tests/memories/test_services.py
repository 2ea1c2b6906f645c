import pytest
from django.db import IntegrityError, transaction

from config.errors import InvalidInput, NotFound
from memories.models import Memory
from memories.selectors import memory_get_by_name
from memories.services import memory_upsert
from tests.factories import AgentFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

SCOPES = ["agent and user", "agent only", "user only", "neither"]


def _scope(kind: str):
    agent = AgentFactory(name="support") if "agent" in kind and kind != "user only" else None
    user = UserFactory(email="ada@example.com") if kind in ("agent and user", "user only") else None
    return agent, user


def test_it_creates_a_memory_then_updates_it_in_its_scope():
    agent, user = AgentFactory(), UserFactory()
    session = SessionFactory(agent=agent, user=user)

    memory, created = memory_upsert(
        name=" preferences ",
        agent=agent,
        user=user,
        content="Prefers email.",
        source_session=session,
    )
    again, created_again = memory_upsert(
        name="preferences", agent=agent, user=user, content="Prefers phone.", read_mode="tool"
    )

    assert created and not created_again
    assert again.pk == memory.pk
    again.refresh_from_db()
    assert (again.name, again.content, again.source_session) == (
        "preferences",
        "Prefers phone.",
        session,
    )
    assert Memory.objects.count() == 1


@pytest.mark.parametrize("kind", SCOPES)
def test_it_keeps_one_memory_per_name_and_scope_through_the_service(kind):
    agent, user = _scope(kind)

    memory_upsert(name="notes", agent=agent, user=user, content="one")
    memory_upsert(name="notes", agent=agent, user=user, content="two")

    assert Memory.objects.get().content == "two"
    assert memory_get_by_name(name="notes", agent=agent, user=user).content == "two"


@pytest.mark.parametrize("kind", SCOPES)
def test_it_has_the_database_refuse_a_second_memory_with_the_name_in_a_scope(kind):
    # Straight to the table, past the service: the constraint itself must hold, also when the
    # agent or the user is empty (NULL), on SQLite as on PostgreSQL.
    agent, user = _scope(kind)
    Memory.objects.create(name="notes", agent=agent, user=user)

    with pytest.raises(IntegrityError), transaction.atomic():
        Memory.objects.create(name="notes", agent=agent, user=user)

    assert Memory.objects.count() == 1


def test_it_allows_the_same_name_in_different_scopes():
    agent, other_agent = AgentFactory(), AgentFactory()
    user, other_user = UserFactory(), UserFactory()
    scopes = [
        (None, None),
        (agent, None),
        (other_agent, None),
        (None, user),
        (None, other_user),
        (agent, user),
        (agent, other_user),
        (other_agent, user),
    ]
    for a, u in scopes:
        Memory.objects.create(name="notes", agent=a, user=u, content=f"{a}/{u}")

    assert Memory.objects.count() == len(scopes)
    for a, u in scopes:
        assert memory_get_by_name(name="notes", agent=a, user=u).content == f"{a}/{u}"


def test_it_refuses_bad_memory_input():
    agent = AgentFactory()
    foreign_session = SessionFactory()
    for kwargs, field in (
        ({"name": "  "}, "name"),
        ({"name": "x", "read_mode": "telepathy"}, "read_mode"),
        ({"name": "x", "access": "everyone"}, "access"),
        ({"name": "x", "agent": agent, "source_session": foreign_session}, "source_session"),
        ({"name": "x", "agent": agent, "session": foreign_session}, "agent"),
        ({"name": "x", "owner": "me"}, "owner"),
    ):
        with pytest.raises(InvalidInput) as error:
            memory_upsert(**kwargs)
        assert error.value.field == field
    assert not Memory.objects.exists()


def test_it_finds_a_memory_only_in_its_exact_scope():
    agent, user = AgentFactory(), UserFactory()
    memory_upsert(name="notes", agent=agent, user=user)

    for a, u in ((agent, None), (None, user), (None, None)):
        with pytest.raises(NotFound):
            memory_get_by_name(name="notes", agent=a, user=u)
