"""The admin of people, agents and API keys: every page, actions, the key secret shown once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db.models import Model
from django.test import Client

from agents.models import Agent, ApiKey, User, api_key_hash
from agents.selectors import agent_config
from agents.services import agent_cache_key, api_key_create
from tests.admin_pages import PAGES, AdminCase, get_counting, unbounded_counts
from tests.factories import AgentFactory, OperatorFactory, SessionFactory, UserFactory, conversation

BULK = 999


def many_users(user: User) -> None:
    User.objects.bulk_create(
        User(email=f"bulk{i}@example.com", password="!", user_data={"i": i}) for i in range(BULK)
    )


def many_agents(agent: Agent) -> None:
    Agent.objects.bulk_create(Agent(name=f"bulk-{i:04d}", config={"i": i}) for i in range(BULK))


def many_keys(key: ApiKey) -> None:
    ApiKey.objects.bulk_create(
        ApiKey(user=key.user, prefix=f"ldk_b{i:07d}", hashed_secret=api_key_hash(f"s{i}"))
        for i in range(BULK)
    )


def _user() -> tuple[Model, AdminCase, Callable[[Any], None]]:
    user = UserFactory(email="someone@example.com")
    return user, AdminCase(User, "q=someone@example.com", "is_staff__exact=0"), many_users


def _agent() -> tuple[Model, AdminCase, Callable[[Any], None]]:
    agent = AgentFactory(name="support-bot")
    conversation(SessionFactory(agent=agent), turns=1)
    return agent, AdminCase(Agent, "q=support", "active__exact=1"), many_agents


def _api_key() -> tuple[Model, AdminCase, Callable[[Any], None]]:
    key = api_key_create(user=OperatorFactory(groups=["editor"]), scope="write").api_key
    return key, AdminCase(ApiKey, f"q={key.prefix}", "scope__exact=write"), many_keys


CASES = {"user": _user, "agent": _agent, "api_key": _api_key}


@pytest.mark.parametrize("name", CASES)
def test_it_serves_every_page_with_the_same_queries_at_1_and_1000_rows(
    name: str, superuser_client: Client
) -> None:
    obj, case, add_many = CASES[name]()
    change_url = case.url("change", obj)
    first: dict[str, int] = {}
    for page in PAGES:
        superuser_client.get(case.url(page, obj))  # warm process caches (content types)
        status, queries, body = get_counting(superuser_client, case.url(page, obj))
        assert status == 200, (page, body[:500])
        assert unbounded_counts(queries) == [], page
        first[page] = len(queries)
        if page in ("changelist", "search", "filter"):
            assert change_url.encode() in body, f"{page} does not list the row"

    add_many(obj)
    for page in PAGES:
        status, queries, _ = get_counting(superuser_client, case.url(page, obj))
        assert status == 200, page
        assert unbounded_counts(queries) == [], page
        assert len(queries) == first[page], (page, queries)
    assert max(first.values()) <= 10, first


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("page", PAGES)
def test_it_shows_the_viewer_everything_but_add_and_delete(
    name: str, page: str, viewer_client: Client
) -> None:
    obj, case, _ = CASES[name]()
    status, _, body = get_counting(viewer_client, case.url(page, obj))
    if name == "api_key" and page == "change":
        # Another operator's key: only a superuser sees it (the admin answers "no such key").
        assert status == 302
        return
    assert status == (403 if page in ("add", "delete") else 200)
    if page == "change":
        assert b'name="_save"' not in body


@pytest.mark.parametrize("name", CASES)
def test_it_refuses_anonymous_and_unpermitted_staff(
    name: str, client: Client, outsider_client: Client
) -> None:
    obj, case, _ = CASES[name]()
    for page in PAGES:
        response = client.get(case.url(page, obj))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert outsider_client.get(case.url(page, obj)).status_code == 403


def test_it_creates_an_end_user_without_a_password_and_an_operator_with_one(
    superuser_client: Client,
) -> None:
    response = superuser_client.post(
        "/admin/agents/user/add/", {"email": "New.Person@Example.com", "usable_password": "false"}
    )
    assert response.status_code == 302, response.content[:2000]
    person = User.objects.get(email="new.person@example.com")
    assert not person.has_usable_password() and not person.is_staff

    response = superuser_client.post(
        "/admin/agents/user/add/",
        {
            "email": "ops@logdeck.test",
            "is_staff": "on",
            "usable_password": "true",
            "password1": "a long and unusual passphrase",
            "password2": "a long and unusual passphrase",
        },
    )
    assert response.status_code == 302
    operator = User.objects.get(email="ops@logdeck.test")
    assert operator.is_staff and operator.check_password("a long and unusual passphrase")


def test_it_refuses_an_email_that_differs_only_in_case(superuser_client: Client) -> None:
    UserFactory(email="taken@example.com")
    response = superuser_client.post(
        "/admin/agents/user/add/", {"email": "TAKEN@example.com", "usable_password": "false"}
    )
    assert response.status_code == 200
    assert b"A user with this email already exists." in response.content
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_it_changes_a_user_and_refuses_invalid_user_data(superuser_client: Client) -> None:
    user = UserFactory(email="change.me@example.com", user_data={"b": 1, "a": 2})
    url = f"/admin/agents/user/{user.pk}/change/"
    body = superuser_client.get(url).content.decode()
    assert "{\n  &quot;a&quot;: 2,\n  &quot;b&quot;: 1\n}" in body
    form = {
        "email": user.email,
        "name": "Changed",
        "phone_number": "",
        "user_data": "[1, 2",
        "is_active": "on",
    }
    response = superuser_client.post(url, form)
    assert response.status_code == 200 and b"Enter a valid JSON." in response.content
    user.refresh_from_db()
    assert user.name != "Changed"
    form["user_data"] = ""  # emptied: the field's default, not a database error
    assert superuser_client.post(url, form).status_code == 302
    user.refresh_from_db()
    assert (user.name, user.user_data) == ("Changed", {})


def test_it_deactivates_agents_with_the_action(
    superuser_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    one, two, kept = AgentFactory(), AgentFactory(), AgentFactory()
    agent_config(name=one.name)  # cached, and must be dropped
    with_cache = cache.get(agent_cache_key(one.name))
    assert with_cache is not None and with_cache["active"] is True
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/admin/agents/agent/",
            {"action": "deactivate", "_selected_action": [one.pk, two.pk]},
            follow=True,
        )
    assert b"2 agent(s) deactivated." in response.content
    assert list(Agent.objects.filter(active=False).order_by("pk")) == [one, two]
    assert Agent.objects.get(pk=kept.pk).active
    assert agent_config(name=one.name)["active"] is False


def test_it_renames_an_agent_through_the_service(
    superuser_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    agent = AgentFactory(name="old-name", config={"temperature": 0.2})
    agent_config(name="old-name")
    form = {
        "name": "new-name",
        "type": agent.type,
        "model": agent.model,
        "version": agent.version,
        "active": "on",
        "run_id": "",
        "description": "",
        "system_prompt": "",
        "config": '{"temperature": 0.5}',
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(f"/admin/agents/agent/{agent.pk}/change/", form)
    assert response.status_code == 302, response.content[:3000]
    agent.refresh_from_db()
    assert (agent.name, agent.config) == ("new-name", {"temperature": 0.5})
    assert cache.get(agent_cache_key("old-name")) is None
    assert agent_config(name="new-name")["config"] == {"temperature": 0.5}


def test_it_refuses_invalid_agent_config(superuser_client: Client) -> None:
    agent = AgentFactory(name="strict", config={"a": 1})
    form = {"name": "strict", "type": "", "model": "", "version": "", "active": "on"}
    response = superuser_client.post(
        f"/admin/agents/agent/{agent.pk}/change/", form | {"config": "{'a': 1}"}
    )
    assert response.status_code == 200 and b"Enter a valid JSON." in response.content
    agent.refresh_from_db()
    assert agent.config == {"a": 1}


def test_it_summarises_an_agent_delete_and_deletes_everything_under_it(
    superuser_client: Client,
) -> None:
    agent = AgentFactory()
    session = SessionFactory(agent=agent)
    conversation(session, turns=2, failing=1)
    url = f"/admin/agents/agent/{agent.pk}/delete/"
    body = superuser_client.get(url).content
    assert b"Sessions: 1" in body and b"Messages: 4" in body and b"Tool calls: 2" in body
    assert superuser_client.post(url, {"post": "yes"}).status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert not session.__class__.objects.filter(pk=session.pk).exists()


def test_it_shows_a_new_api_keys_secret_once(superuser_client: Client, operator: User) -> None:
    response = superuser_client.post(
        "/admin/agents/apikey/add/", {"user": operator.pk, "name": "runtime", "scope": "write"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(name="runtime")
    secret = response.context["secret"]
    assert secret.startswith(key.prefix + "_") and secret.encode() in response.content
    assert key.hashed_secret == api_key_hash(secret) and key.scope == "write"
    assert key.user == operator

    # Never again: not on its page, not in the list.
    for url in (f"/admin/agents/apikey/{key.pk}/change/", "/admin/agents/apikey/"):
        body = superuser_client.get(url).content
        assert key.prefix.encode() in body
        assert secret.encode() not in body
        assert key.hashed_secret.encode() not in body


def test_it_offers_only_operators_as_key_owners(superuser_client: Client, operator: User) -> None:
    end_user = UserFactory()
    body = superuser_client.get("/admin/agents/apikey/add/").content
    assert operator.email.encode() in body and end_user.email.encode() not in body
    response = superuser_client.post(
        "/admin/agents/apikey/add/", {"user": end_user.pk, "scope": "read"}
    )
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert not ApiKey.objects.exists()


def test_it_revokes_keys_with_the_action(superuser_client: Client, operator: User) -> None:
    revoked = api_key_create(user=operator).api_key
    kept = api_key_create(user=operator).api_key
    response = superuser_client.post(
        "/admin/agents/apikey/",
        {"action": "revoke", "_selected_action": [revoked.pk]},
        follow=True,
    )
    assert b"1 API key(s) revoked." in response.content
    revoked.refresh_from_db()
    kept.refresh_from_db()
    assert revoked.revoked_at is not None and kept.revoked_at is None
    assert not revoked.is_usable
