"""The login throttle and the API key failure limit hold across worker processes, without
Redis: two servers share one database (a SQLite file, or a PostgreSQL database of their own
when the suite runs on PostgreSQL), and failures on either count on both."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


@dataclass
class Servers:
    urls: list[str]
    secret: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_env(tmp: Path) -> Iterator[dict[str, str]]:
    if connection.vendor != "postgresql":
        yield {"SQLITE_PATH": str(tmp / "throttle.sqlite3")}
        return
    params = settings.DATABASES["default"]
    name = f"logdeck_throttle_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        user = params["USER"]
        host = params["HOST"] or "127.0.0.1"
        port = params["PORT"] or 5432
        yield {"DATABASE_URL": f"postgres://{user}@{host}:{port}/{name}"}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("throttle")
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    for database in _database_env(tmp):
        env = {**base, **database, "DEBUG": "1", "LOGIN_FAILURE_LIMIT": "5"}
        env.update(API_AUTH_FAILURE_LIMIT="10", API_AUTH_FAILURE_WINDOW="600")
        _manage(env, "migrate", "--noinput", "-v", "0")
        secret = _manage(
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
        ports = [_free_port(), _free_port()]
        procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for url in urls:
                for _ in range(100):
                    try:
                        httpx.get(f"{url}/accounts/login/", timeout=2)
                        break
                    except httpx.TransportError:
                        time.sleep(0.2)
            yield Servers(urls, secret)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)


def _login(url: str, email: str, password: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = client.post(
            "/accounts/login/",
            data={"username": email, "password": password, "csrfmiddlewaretoken": token},
        )
        return answer.status_code


def test_it_counts_failed_logins_on_both_workers(servers: Servers) -> None:
    first, second = servers.urls
    for n in range(4):
        assert _login((first, second)[n % 2], "ops@logdeck.test", "wrong") == 200
    assert _login(second, "ops@logdeck.test", "wrong") == 429  # the fifth, wherever it lands
    assert _login(first, "ops@logdeck.test", PASSWORD) == 429


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
