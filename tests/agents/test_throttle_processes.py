"""The login throttle and the API key failure limit hold across worker processes, without
Redis: two servers share one database (a SQLite file, or a PostgreSQL database of their own
when the suite runs on PostgreSQL), and failures on either count on both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers import base_env, manage, own_database, server

PASSWORD = "correct horse battery staple"


@dataclass
class Servers:
    urls: list[str]
    secret: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with own_database(tmp_path_factory.mktemp("throttle")) as database:
        env = base_env(**database, LOGIN_FAILURE_LIMIT="5")
        env.update(API_AUTH_FAILURE_LIMIT="10", API_AUTH_FAILURE_WINDOW="600")
        manage(env, "migrate", "--noinput", "-v", "0")
        secret = manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import Group\n"
            "from agents.models import User\n"
            "from agents.services import api_key_create\n"
            f"u = User.objects.create_user('ops@logdeck.test', {PASSWORD!r}, is_staff=True)\n"
            "u.groups.set([Group.objects.get(name='editor')])\n"
            "print(api_key_create(user=u, scope='read').secret)",
        ).split()[-1]  # the last line: the shell may say what it imported first
        with server(env) as first, server(env) as second:
            yield Servers([first, second], secret, env)


def _login(url: str, form: str, email: str, password: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get(form)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = client.post(
            form, data={"username": email, "password": password, "csrfmiddlewaretoken": token}
        )
        return answer.status_code


@pytest.mark.parametrize("form", ["/accounts/login/", "/admin/login/"])
def test_it_counts_failed_logins_on_both_workers(servers: Servers, form: str) -> None:
    manage(servers.env, "axes_reset")  # every login here comes from 127.0.0.1: start afresh
    first, second = servers.urls
    for n in range(4):
        assert _login((first, second)[n % 2], form, "ops@logdeck.test", "wrong") == 200
    assert _login(second, form, "ops@logdeck.test", "wrong") == 429  # the fifth, wherever
    assert _login(first, form, "ops@logdeck.test", PASSWORD) == 429
    manage(servers.env, "axes_reset_username", "ops@logdeck.test")
    assert _login(first, form, "ops@logdeck.test", PASSWORD) == 302  # unlocked by the command


def test_it_counts_failed_keys_on_both_workers_and_never_refuses_a_valid_key(
    servers: Servers,
) -> None:
    first, second = servers.urls
    bad = {"Authorization": "Bearer ldk_00000000_guess"}
    good = {"Authorization": f"Bearer {servers.secret}"}
    answers = [httpx.get(f"{(first, second)[n % 2]}/api/v1/agents", headers=bad).status_code
               for n in range(11)]  # fmt: skip
    assert answers == [401] * 10 + [429]
    assert httpx.get(f"{first}/api/v1/agents", headers=bad).status_code == 429
    # Two clients behind one address: the one with a valid key is served on both workers.
    for url in servers.urls:
        assert httpx.get(f"{url}/api/v1/agents", headers=good).status_code == 200
