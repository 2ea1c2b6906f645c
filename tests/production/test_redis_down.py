"""Redis unreachable (a closed port, or a real Redis stopped): the site serves from the
database, warns once a minute, and counts failed API keys in the database as ever."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.test import Client

import config.cache
from tests.production.live import free_port, wait_for
from tests.production.test_health import _redis


@pytest.fixture
def redis_down(settings) -> str:
    url = f"redis://127.0.0.1:{free_port()}/0"
    _redis(settings, url)
    return url


def _cache_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "config.cache" and r.levelno == logging.WARNING]


def test_it_serves_the_api_and_the_console_without_redis(
    redis_down, api, anon_api, superuser_client: Client, caplog
):
    caplog.set_level(logging.WARNING, logger="config.cache")

    assert api.get("/agents").status_code == 200
    assert api.post("/agents", {"name": "support"}).status_code in (200, 201)
    assert api.get("/agents/support").status_code == 200  # the configuration, read through
    for path in ("/", "/sessions/", "/agents/", "/tool-calls/errors/"):
        assert superuser_client.get(path).status_code == 200, path

    # A bad key is a 401, not a 500, and the failure limit still holds (it is in the database).
    bad = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [
        bad.get("/api/v1/agents", headers={"Authorization": "Bearer nope"}).status_code
        for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]

    # One warning for the whole outage so far, not one per request.
    assert len(_cache_warnings(caplog)) == 1
    assert "Redis is unreachable" in _cache_warnings(caplog)[0].getMessage()


def test_it_warns_again_only_after_a_minute(redis_down, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="config.cache")
    clock = [1000.0]
    monkeypatch.setattr(config.cache, "_clock", lambda: clock[0])

    for _ in range(12):  # two minutes, a cache call every 10 s
        cache.get("some-key")
        clock[0] += 10

    assert len(_cache_warnings(caplog)) == 2


@pytest.fixture
def own_redis() -> Iterator[tuple[str, callable, callable]]:
    """A redis-server of this test's own that keeps its data on disk across a restart."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="logdeck-redis-"))
    process: list[subprocess.Popen] = []

    def start() -> None:
        process.append(
            subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                 "--appendonly", "yes", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_for(lambda: redis.Redis(port=port).ping(), seconds=10, what="redis-server")

    def stop() -> None:
        redis.Redis(port=port).shutdown()  # writes the append-only file, then exits
        process[-1].wait(timeout=10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", start, stop
    finally:
        if process[-1].poll() is None:
            process[-1].terminate()
            process[-1].wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_it_drops_keys_changed_while_redis_was_away_when_it_returns(
    own_redis, settings, monkeypatch
):
    url, start, stop = own_redis
    _redis(settings, url)
    monkeypatch.setattr(config.cache, "RETRY_SECONDS", 0.2)
    cache.set("agent-config", "old", 300)
    key = cache.make_key("agent-config")

    stop()  # the port is closed now
    cache.delete("agent-config")  # the agent changed meanwhile
    assert cache.get("agent-config") is None  # this process does not serve the old value
    start()
    assert redis.Redis.from_url(url).get(key) is not None  # Redis kept the stale copy

    time.sleep(0.3)
    assert cache.get("agent-config") is None  # Redis is used again: the delete is replayed
    assert redis.Redis.from_url(url).get(key) is None
