"""A stateless web tier: two `make serve` instances on two ports, sharing one database and Redis,
behave as one. A login made on one works on the other, the API key failure limit counts on both,
and the live transcript on one follows a session written through the other."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from tests.servers import base_env, manage, own_database, served

PASSWORD = "correct horse battery staple"


@dataclass
class Tier:
    first: str
    second: str
    write: dict[str, str]


def _redis_env() -> dict[str, str]:
    url = "redis://127.0.0.1:6379/8"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return {}  # without Redis the instances still share everything this file tests
    return {"REDIS_URL": url, "CACHE_PREFIX": f"tier-{uuid.uuid4().hex[:8]}"}


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    with own_database(tmp_path_factory.mktemp("tier")) as database:
        env = base_env(**database, **_redis_env(), API_AUTH_FAILURE_LIMIT="10")
        env.pop("DEBUG")
        manage(env, "migrate", "--noinput", "-v", "0")
        secret = manage(
            env,
            "shell",
            "-c",
            "from agents.models import User\n"
            "from agents.services import api_key_create\n"
            f"u = User.objects.create_superuser('ops@logdeck.test', {PASSWORD!r})\n"
            "print(api_key_create(user=u, scope='write').secret)",
        ).split()[-1]
        with served(env) as first, served(env) as second:
            yield Tier(first, second, {"Authorization": f"Bearer {secret}"})


def test_it_keeps_a_login_made_on_one_instance_on_the_other(tier: Tier) -> None:
    with httpx.Client(base_url=tier.first, timeout=10) as first:
        page = first.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = first.post(
            "/accounts/login/",
            data={
                "username": "ops@logdeck.test",
                "password": PASSWORD,
                "csrfmiddlewaretoken": token,
            },
        )
        assert login.status_code == 302
        cookies = first.cookies
    with httpx.Client(base_url=tier.second, timeout=10, cookies=cookies) as second:
        overview = second.get("/")
        assert overview.status_code == 200 and "Log out" in overview.text


def test_it_follows_a_session_written_through_the_other_instance(tier: Tier) -> None:
    agent = httpx.post(f"{tier.first}/api/v1/agents", json={"name": "tier-bot"}, headers=tier.write)
    assert agent.status_code in (200, 201)
    started = httpx.post(
        f"{tier.second}/api/v1/sessions", json={"agent": "tier-bot"}, headers=tier.write
    )
    assert started.status_code == 201, started.text
    session = started.json()["id"]

    def append(base: str, text: str) -> None:
        answer = httpx.post(
            f"{base}/api/v1/sessions/{session}/messages",
            json={"messages": [{"role": "user", "text_content": text}]},
            headers=tier.write,
        )
        assert answer.status_code == 201, answer.text

    append(tier.first, "first words")
    with httpx.Client(base_url=tier.first, timeout=10) as console:
        page = console.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        console.post(
            "/accounts/login/",
            data={
                "username": "ops@logdeck.test",
                "password": PASSWORD,
                "csrfmiddlewaretoken": token,
            },
        )
        follow = {"HX-Request": "true", "HX-Target": "transcript-tail"}
        tail = f"/sessions/{session}/?after_seq=0&follow=1"
        assert console.get(tail, headers=follow).status_code == 204  # nothing new yet
        append(tier.second, "written through the other instance")
        followed = console.get(tail, headers=follow)
        assert followed.status_code == 200
        assert "written through the other instance" in followed.text


def test_it_counts_failed_keys_on_both_instances(tier: Tier) -> None:
    bad = {"Authorization": "Bearer ldk_00000000_guess", "X-Test": "tier"}
    answers = [
        httpx.get(f"{(tier.first, tier.second)[n % 2]}/api/v1/agents", headers=bad).status_code
        for n in range(11)
    ]
    assert answers == [401] * 10 + [429]
    assert httpx.get(f"{tier.first}/api/v1/agents", headers=tier.write).status_code == 200
