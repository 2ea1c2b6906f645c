"""Standing actors and shared fixtures."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.test import Client
from django.test.testcases import LiveServerThread

from agents.models import User
from tests.factories import OperatorFactory, UserFactory


class OneRequestAtATimeServer(ThreadedWSGIServer):
    """The live server, answering one request at a time: on SQLite its threads share the test
    database's one in-memory connection, which concurrent requests (a LangGraph run stores
    checkpoints in the background while its tasks write) would corrupt."""

    def set_app(self, application: Any) -> None:
        lock = threading.Lock()

        def one_at_a_time(environ: Any, start_response: Any) -> Any:
            with lock:
                return application(environ, start_response)

        super().set_app(one_at_a_time)


if connection.vendor == "sqlite":
    LiveServerThread.server_class = OneRequestAtATimeServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _suite_settings(settings) -> None:
    """What every test shares: production settings hash static names from a manifest made by
    collectstatic, so tests serve the source files instead; passwords hash fast (tests log in
    often and never test hashing); and the cache (dashboards, failed-key counters, agent
    configurations) starts empty."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()


@pytest.fixture
def superuser(db: None) -> User:
    """An operator who may do everything."""
    return OperatorFactory(is_superuser=True, email="root@logdeck.test")


@pytest.fixture
def operator(db: None) -> User:
    """An operator in the "editor" group: may look and change."""
    return OperatorFactory(email="editor@logdeck.test", groups=["editor"])


@pytest.fixture
def viewer(db: None) -> User:
    """An operator in the "viewer" group: may look, not change."""
    return OperatorFactory(email="viewer@logdeck.test", groups=["viewer"])


@pytest.fixture
def outsider(db: None) -> User:
    """Logged-in staff with no permissions at all."""
    return OperatorFactory(email="outsider@logdeck.test")


@pytest.fixture
def end_user(db: None) -> User:
    return UserFactory(email="customer@example.com")


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(superuser: User) -> Client:
    return _client_for(superuser)


@pytest.fixture
def operator_client(operator: User) -> Client:
    return _client_for(operator)


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    return _client_for(viewer)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return _client_for(outsider)


@pytest.fixture
def redis_url() -> str:
    """A real Redis for the cache tests, in a database number of the tests' own. Skipped when
    none answers, unless LOGDECK_REQUIRE_REDIS=1 (as in CI), where that is a failure."""
    import os

    import redis

    url = os.environ.get("LOGDECK_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("LOGDECK_REQUIRE_REDIS") == "1":
            pytest.fail(f"no Redis at {url}, and LOGDECK_REQUIRE_REDIS=1")
        pytest.skip(f"no Redis at {url} (set LOGDECK_TEST_REDIS_URL)")
    return url
