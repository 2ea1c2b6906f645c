"""Reads on a real PostgreSQL streaming replica (`scripts/replica`, which .ci/run starts): the
API's reads go to it, a client that just wrote reads its own writes from the primary, a replica
too far behind or unreachable is skipped, and `status` shows each replica's lag.

Replay is paused on the replica (`pg_wal_replay_pause()`) to make it fall behind on purpose.
Set LOGDECK_REPLICA_URL (postgres://postgres@127.0.0.1:5433) to run these; CI sets
LOGDECK_REQUIRE_REPLICA=1, which makes a missing replica a failure rather than a skip.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from config.replicas import LAG_SQL
from tests.servers import base_env, manage, own_database, server

pytestmark = pytest.mark.postgres
REPLICA_URL = os.environ.get("LOGDECK_REPLICA_URL", "")


@dataclass
class Replicated:
    env: dict[str, str]  # primary and replica, for a server or a command
    replica: psycopg.Connection  # to the replica's copy of the database
    writer: dict[str, str]  # headers of the key that writes
    reader: dict[str, str]  # headers of another key, which never writes


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    if not REPLICA_URL:
        message = "no replica: run scripts/replica and set LOGDECK_REPLICA_URL"
        if os.environ.get("LOGDECK_REQUIRE_REPLICA") == "1":
            pytest.fail(message + " (LOGDECK_REQUIRE_REPLICA=1 makes this a failure)")
        pytest.skip(message)
    with own_database(tmp_path_factory.mktemp("replica")) as database:
        name = urlsplit(database["DATABASE_URL"]).path.lstrip("/")
        replica_url = f"{REPLICA_URL.rstrip('/')}/{name}"
        env = base_env(**database, DATABASE_REPLICA_URLS=replica_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        secrets = manage(
            env,
            "shell",
            "-c",
            "from agents.models import User\n"
            "from agents.services import api_key_create\n"
            "u = User.objects.create_superuser('ops@logdeck.test', 'x' * 20)\n"
            "print(api_key_create(user=u, scope='write').secret)\n"
            "print(api_key_create(user=u, scope='read').secret)",
        ).split()[-2:]
        replica = _connect_when_streamed(replica_url)
        try:
            yield Replicated(
                env,
                replica,
                {"Authorization": f"Bearer {secrets[0]}"},
                {"Authorization": f"Bearer {secrets[1]}"},
            )
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
            replica.close()


def _connect_when_streamed(url: str) -> psycopg.Connection:
    # CREATE DATABASE and the migrations reach the replica a moment later.
    for _ in range(100):
        try:
            replica = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            time.sleep(0.1)
            continue
        if replica.execute("SELECT to_regclass('agents_apikey')").fetchone()[0]:
            return replica
        replica.close()
        time.sleep(0.1)
    raise AssertionError(f"{url} never received the database")


@pytest.fixture
def paused(replicated: Replicated) -> Iterator[Replicated]:
    replicated.replica.execute("SELECT pg_wal_replay_pause()")
    try:
        yield replicated
    finally:
        replicated.replica.execute("SELECT pg_wal_replay_resume()")


def _until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _agent(url: str, name: str, headers: dict[str, str]) -> int:
    return httpx.get(f"{url}/api/v1/agents/{name}", headers=headers, timeout=10).status_code


def test_it_reads_from_the_replica_and_a_writer_reads_its_own_writes(
    paused: Replicated,
) -> None:
    env = {**paused.env, "READ_YOUR_WRITES_SECONDS": "3", "REPLICA_MAX_LAG_SECONDS": "3600"}
    with server(env) as url:
        created = httpx.post(
            f"{url}/api/v1/agents", json={"name": "fresh"}, headers=paused.writer, timeout=10
        )
        assert created.status_code == 201
        # The writer reads its own write (primary); the other key reads the paused replica.
        assert _agent(url, "fresh", paused.writer) == 200
        assert _agent(url, "fresh", paused.reader) == 404
        time.sleep(3.2)
        # The window is over: the writer's reads are the replica's too.
        assert _agent(url, "fresh", paused.writer) == 404
        paused.replica.execute("SELECT pg_wal_replay_resume()")
        _until(lambda: _agent(url, "fresh", paused.reader) == 200)


def test_it_skips_a_replica_that_falls_behind(paused: Replicated) -> None:
    env = {**paused.env, "REPLICA_MAX_LAG_SECONDS": "1", "REPLICA_CHECK_SECONDS": "0"}
    with server(env) as url:
        created = httpx.post(
            f"{url}/api/v1/agents", json={"name": "late"}, headers=paused.writer, timeout=10
        )
        assert created.status_code == 201
        _until(lambda: float(paused.replica.execute(LAG_SQL).fetchone()[0]) > 1.2)
        # Too far behind: the primary serves everyone, so the new agent is there for all.
        assert _agent(url, "late", paused.reader) == 200
        report = manage(env, "status")
        assert "Replica:    replica1" in report and "skipped (too far behind)" in report
        behind = httpx.get(f"{url}/readyz", timeout=10)
        assert behind.status_code == 200  # the primary serves: still ready
        assert behind.json()["replicas"]["replica1"]["serving"] is False


def test_it_serves_from_the_primary_when_the_replica_is_unreachable(
    replicated: Replicated,
) -> None:
    closed = f"postgres://postgres@127.0.0.1:{_closed_port()}/logdeck"
    env = {**replicated.env, "DATABASE_REPLICA_URLS": closed, "REPLICA_CHECK_SECONDS": "5"}
    with server(env) as url:
        started = time.monotonic()
        listed = httpx.get(f"{url}/api/v1/agents", headers=replicated.reader, timeout=10)
        assert listed.status_code == 200
        assert time.monotonic() - started < 5
        assert "skipped (unreachable: " in manage(env, "status")


def test_it_shows_each_replica_and_its_lag(replicated: Replicated) -> None:
    report = manage(replicated.env, "status")
    assert "Replica:    replica1" in report and "serving reads" in report
    with server(replicated.env) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200
    replica = ready.json()["replicas"]["replica1"]
    assert replica["reachable"] and replica["serving"] and replica["lag_s"] >= 0


def _closed_port() -> int:
    from tests.servers import free_port

    return free_port()  # bound and released: nothing listens there
