import uuid
import warnings

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache, caches

from agents.models import Agent, User
from agents.selectors import agent_config
from agents.services import (
    agent_cache_key,
    agent_delete,
    agent_update,
    agent_upsert,
    agents_deactivate,
    user_upsert,
)
from config.errors import Conflict, InvalidInput, NotFound
from memories.models import Memory
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.services import checkpoint_save
from tests.factories import (
    AgentFactory,
    MemoryFactory,
    OperatorFactory,
    SessionFactory,
    conversation,
)

pytestmark = pytest.mark.django_db

# --- users ---------------------------------------------------------------------------------


def test_it_creates_an_end_user_without_a_usable_password():
    user, created = user_upsert(email="ada@example.com", name="Ada", user_data={"plan": "pro"})

    assert created
    user.refresh_from_db()
    assert (user.name, user.user_data) == ("Ada", {"plan": "pro"})
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser


def test_it_updates_the_user_with_that_email_whatever_its_case():
    first, _ = user_upsert(email="Ada.Lovelace@Example.COM", name="Ada")

    again, created = user_upsert(email="  ada.lovelace@example.com ", phone_number="+4930123")

    assert not created
    assert again.pk == first.pk
    assert User.objects.count() == 1
    again.refresh_from_db()
    assert again.email == "ada.lovelace@example.com"
    assert (again.name, again.phone_number) == ("Ada", "+4930123")


def test_it_refuses_to_touch_an_operator():
    operator = OperatorFactory(email="ops@logdeck.test", name="Ops")

    with pytest.raises(Conflict, match="cannot be used for an end user"):
        user_upsert(email="OPS@logdeck.test", name="Taken over")

    operator.refresh_from_db()
    assert operator.name == "Ops"
    assert operator.is_staff
    assert operator.check_password("correct horse battery staple")


def test_it_finds_a_user_by_natural_key_as_stored_or_case_folded():
    folded = User.objects.create_user("ada@example.com")
    unfolded = User.objects.create(email="Old.Import@Example.COM")  # stored past the manager

    assert User.objects.get_by_natural_key("ADA@example.com") == folded
    assert User.objects.get_by_natural_key("Old.Import@Example.COM") == unfolded
    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("nobody@example.com")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"email": "   "}, "email"),
        ({"email": "x@example.com", "is_staff": True}, "is_staff"),
        ({"email": "x@example.com", "password": "secret"}, "password"),
    ],
)
def test_it_refuses_bad_user_input(kwargs, field):
    with pytest.raises(InvalidInput) as error:
        user_upsert(**kwargs)
    assert error.value.field == field
    assert not User.objects.exists()


# --- agents --------------------------------------------------------------------------------


def test_it_creates_an_agent_then_updates_it_by_name():
    agent, created = agent_upsert(name=" support ", model="gpt-5", config={"t": 0.2})
    assert created
    assert agent.name == "support"

    again, created = agent_upsert(name="support", model="gpt-5-mini", version="2")

    assert not created
    assert again.pk == agent.pk
    again.refresh_from_db()
    assert (again.model, again.version, again.config) == ("gpt-5-mini", "2", {"t": 0.2})


def test_it_refuses_bad_agent_input():
    for kwargs in ({"name": "  "}, {"name": "x", "secret_sauce": 1}):
        with pytest.raises(InvalidInput):
            agent_upsert(**kwargs)
    assert not Agent.objects.exists()


def test_it_renames_an_agent_and_refuses_a_taken_name():
    agent = AgentFactory(name="old")
    AgentFactory(name="taken")

    with pytest.raises(Conflict):
        agent_update(agent=agent, name="taken")
    agent_update(agent=agent, name="new", model="m2")

    agent.refresh_from_db()
    assert (agent.name, agent.model) == ("new", "m2")


def test_it_deletes_an_agent_with_everything_and_returns_the_counts():
    agent = AgentFactory()
    other = SessionFactory()
    conversation(other, turns=1)
    for _ in range(2):
        session = SessionFactory(agent=agent)
        conversation(session, turns=2, failing=1)
        checkpoint_save(session_id=session.pk, data={"x": 1})
    MemoryFactory(agent=agent)

    counts = agent_delete(agent=agent)

    assert counts == {
        "agent": 1,
        "session": 2,
        "message": 8,
        "toolcall": 4,
        "checkpoint": 2,
        "memory": 1,
    }
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert Session.objects.get() == other
    assert Message.objects.filter(session=other).count() == 2
    assert ToolCall.objects.count() == 1
    assert not Checkpoint.objects.exists() and not Memory.objects.exists()


# --- the agent configuration cache, on local memory and on a real Redis ---------------------


@pytest.fixture(params=["locmem", "redis"])
def agent_cache(request, settings):
    """The cache the settings would build: local memory, or Redis when REDIS_URL is set."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": f"logdeck-test-{uuid.uuid4().hex}",
            }
        }
    else:
        cache.clear()
    return request.param


def _in_backend(name: str) -> bool:
    """Whether the agent's configuration is stored in the real backend (not a Python copy)."""
    key = agent_cache_key(name)
    if type(caches["default"]).__name__ == "RedisCache":
        location = django_settings.CACHES["default"]["LOCATION"]
        return bool(redis.Redis.from_url(location).exists(cache.make_key(key)))
    return cache.get(key) is not None


def test_it_reads_an_agent_configuration_through_the_cache(agent_cache, django_assert_num_queries):
    AgentFactory(name="support bot", config={"temperature": 0.2})
    assert not _in_backend("support bot")

    with django_assert_num_queries(1):  # the agent row, once
        first = agent_config(name="support bot")
    with django_assert_num_queries(0):  # then from the cache
        second = agent_config(name="support bot")

    assert first == second
    assert first["config"] == {"temperature": 0.2}
    assert _in_backend("support bot")
    expected = "RedisCache" if agent_cache == "redis" else "LocMemCache"
    assert type(caches["default"]).__name__ == expected


def test_it_drops_the_cached_configuration_when_the_agent_changes(
    agent_cache, django_capture_on_commit_callbacks
):
    AgentFactory(name="support", model="gpt-5")
    agent_config(name="support")

    with django_capture_on_commit_callbacks(execute=True):
        agent_upsert(name="support", model="gpt-5-mini", config={"temperature": 0.9})

    assert not _in_backend("support")
    config = agent_config(name="support")
    assert (config["model"], config["config"]) == ("gpt-5-mini", {"temperature": 0.9})


def test_it_keeps_the_cache_until_the_change_commits(
    agent_cache, django_capture_on_commit_callbacks
):
    AgentFactory(name="support", model="gpt-5")
    agent_config(name="support")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent_upsert(name="support", model="gpt-5-mini")

    # Not committed yet: the cached row stays; the drop is queued for the commit.
    assert _in_backend("support")
    assert len(callbacks) == 1


def test_it_drops_both_names_on_a_rename_and_the_name_on_delete(
    agent_cache, django_capture_on_commit_callbacks
):
    agent = AgentFactory(name="old name")
    agent_config(name="old name")

    with django_capture_on_commit_callbacks(execute=True):
        agent_update(agent=agent, name="new name")
    with pytest.raises(NotFound):
        agent_config(name="old name")
    assert agent_config(name="new name")["id"] == agent.pk

    with django_capture_on_commit_callbacks(execute=True):
        agent_delete(agent=agent)
    assert not _in_backend("new name")
    with pytest.raises(NotFound):
        agent_config(name="new name")


def test_it_drops_the_cache_when_agents_are_deactivated(
    agent_cache, django_capture_on_commit_callbacks
):
    AgentFactory(name="a")
    assert agent_config(name="a")["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        assert agents_deactivate(agents=Agent.objects.filter(name="a")) == 1

    assert agent_config(name="a")["active"] is False


def test_it_uses_cache_keys_that_are_valid_for_any_name(agent_cache):
    name = "Support bot: Ünïcode & spaces " + "x" * 170  # 200 characters
    AgentFactory(name=name)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CacheKeyWarning would fail here
        agent_config(name=name)
        agent_config(name=name)

    assert _in_backend(name)
