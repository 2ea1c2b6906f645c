"""PostgreSQL going away under a real server: gunicorn over a cluster of the tests' own that is
stopped and started for real, and whose backends are killed with pg_terminate_backend.

Runs in the PostgreSQL suite (CI); needs PostgreSQL's programs (initdb, pg_ctl) on the machine.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.production.live import (
    PASSWORD,
    PRODUCTION_ENV,
    Gunicorn,
    ThrowawayPostgres,
    manage,
    postgres_bin,
    wait_for,
)

pytestmark = pytest.mark.postgres

DATABASE = "logdeck_live"
OPERATOR = "live-operator@logdeck.test"
# The answer must come within about 3 seconds, not after the pool's old 10.
PROMPT_SECONDS = 3.5
METRICS_TOKEN = "live-metrics-token"


@dataclass
class Live:
    cluster: ThrowawayPostgres
    server: Gunicorn
    key: str
    console: httpx.Client  # logged in

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.server.url}/api/v1{path}", headers=headers, timeout=15, **kwargs
        )


def _login(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=15)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        "/accounts/login/",
        data={"username": OPERATOR, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert answer.status_code == 302, answer.text[:500]
    return client


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's programs (initdb, pg_ctl) are not installed")
    cluster = ThrowawayPostgres(bindir)
    server = None
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        env = {
            **PRODUCTION_ENV,
            "DATABASE_URL": cluster.url(DATABASE),
            "LOG_FORMAT": "json",
            "METRICS_TOKEN": METRICS_TOKEN,
        }
        manage("migrate", "--noinput", "-v0", env=env)
        manage(
            "createsuperuser", "--noinput", "--email", OPERATOR,
            env={**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        )  # fmt: skip
        key = manage("create_api_key", "--user", OPERATOR, "--scope", "write", env=env)
        server = Gunicorn(env, workers=2, threads=4)
        yield Live(cluster, server, key.stdout.strip(), _login(server.url))
    finally:
        if server is not None:
            server.stop()
            server.remove_log()
        cluster.destroy()


def _session(live: Live) -> str:
    answer = live.api("POST", "/agents", json={"name": f"live-{uuid.uuid4().hex[:8]}"})
    assert answer.status_code in (200, 201), answer.text
    answer = live.api("POST", "/sessions", json={"agent": answer.json()["name"]})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _request_lines(live: Live) -> list[dict]:
    lines = []
    for text in live.server.output().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line["logger"] == "logdeck.request":
                lines.append(line)
    return lines


def _timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_it_serves_and_is_ready_under_gunicorn(live: Live) -> None:
    ready = httpx.get(f"{live.server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert live.api("GET", "/sessions").status_code == 200
    page = live.console.get("/sessions/")
    assert page.status_code == 200 and "logdeck.css" in page.text


def test_it_hands_out_no_connection_that_died_idle(live: Live) -> None:
    session = _session(live)
    for _ in range(8):  # the pool holds connections now
        assert live.api("GET", f"/sessions/{session}").status_code == 200

    with psycopg.connect(live.cluster.url("postgres"), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()) AS t",
            [DATABASE],
        ).fetchone()[0]
    assert killed >= 1

    statuses = [live.api("GET", f"/sessions/{session}").status_code for _ in range(12)]
    assert statuses == [200] * 12
    page = live.console.get(f"/sessions/{session}/")
    assert page.status_code == 200


def test_it_answers_503_promptly_while_the_database_is_stopped_and_recovers(live: Live) -> None:
    session = _session(live)
    live.cluster.stop()
    try:
        ready, took = _timed(lambda: httpx.get(f"{live.server.url}/readyz", timeout=15))
        assert ready.status_code == 503 and took < PROMPT_SECONDS
        assert ready.json() == {
            "status": "unavailable",
            "checks": {
                "database": {
                    "ok": False,
                    "latency_ms": ready.json()["checks"]["database"]["latency_ms"],
                }
            },
        }
        assert httpx.get(f"{live.server.url}/healthz").status_code == 200  # alive all the same

        listed, took = _timed(lambda: live.api("GET", "/sessions"))
        assert listed.status_code == 503 and took < PROMPT_SECONDS
        assert listed.headers["Retry-After"] == "5"
        assert listed.json()["error"]["code"] == "unavailable"
        assert set(listed.json()["error"]) == {"code", "message", "fields"}

        batch = {"messages": [{"seq": 0, "role": "user", "text_content": "hello"}]}
        appended, took = _timed(
            lambda: live.api("POST", f"/sessions/{session}/messages", json=batch)
        )
        assert appended.status_code == 503 and took < PROMPT_SECONDS
        assert appended.headers["Retry-After"] == "5"

        page, took = _timed(lambda: live.console.get("/sessions/"))
        assert page.status_code == 503 and took < PROMPT_SECONDS
        assert "cannot reach its database" in page.text and "logdeck.css" in page.text
        assert page.headers["Retry-After"] == "5"

        admin, took = _timed(lambda: live.console.get("/admin/sessions_app/session/"))
        assert admin.status_code == 503 and took < PROMPT_SECONDS
    finally:
        live.cluster.start()

    # No restart: every worker's pool reconnects by itself, within seconds.
    took = wait_for(
        lambda: all(live.api("GET", "/sessions").status_code == 200 for _ in range(6)),
        seconds=30,
        what="every worker answering after PostgreSQL came back",
        log=live.server.log,
    )
    assert took < 15
    assert httpx.get(f"{live.server.url}/readyz").status_code == 200
    assert live.api("GET", f"/sessions/{session}").status_code == 200
    assert live.console.get("/sessions/").status_code == 200
    assert live.api("POST", f"/sessions/{session}/messages", json=batch).status_code == 201
    statuses = {line["status"] for line in _request_lines(live)}
    assert 503 in statuses and not statuses & {500, 502, 504}, statuses
    assert "Internal Server Error" not in live.server.output()


def test_it_stores_nothing_of_a_batch_cut_off_in_the_middle(live: Live) -> None:
    session = _session(live)
    body = (
        '{"messages": ['
        + ", ".join(
            f'{{"seq": {i}, "role": "user", "text_content": "message {i}"}}' for i in range(200)
        )
        + "]}"
    ).encode()
    head = (
        f"POST /api/v1/sessions/{session}/messages HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{live.server.port}\r\n"
        f"Authorization: Bearer {live.key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])  # then the client goes away
    time.sleep(1)

    with psycopg.connect(live.cluster.url(DATABASE)) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM sessions_app_message WHERE session_id = %s", [session]
        ).fetchone()[0]
        counted = conn.execute(
            "SELECT message_count FROM sessions_app_session WHERE id = %s", [session]
        ).fetchone()[0]
    assert (stored, counted) == (0, 0)
    listed = live.api("GET", f"/sessions/{session}/messages")
    assert listed.status_code == 200 and listed.json()["items"] == []
    # The server saw a body cut short: a 400, not a 500.
    cut = [
        line
        for line in _request_lines(live)
        if line["method"] == "POST" and line["route"] == "api/v1/sessions/<session_id>/messages"
    ]
    assert cut and cut[-1]["status"] == 400


def test_it_logs_json_lines_and_sums_the_metrics_of_every_worker(live: Live) -> None:
    for i in range(20):
        answer = live.api("GET", "/agents", headers={"X-Request-ID": f"live-{i}"})
        assert answer.status_code == 200 and answer.headers["X-Request-ID"] == f"live-{i}"

    # Whichever of the two workers answers the scrape, it counts the requests of both.
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for _ in range(4):
        scrape = httpx.get(f"{live.server.url}/metrics", headers=auth)
        assert scrape.status_code == 200
        counted = [
            float(line.rsplit(" ", 1)[1])
            for line in scrape.text.splitlines()
            if line.startswith("logdeck_http_requests_total{")
            and 'route="api/v1/agents"' in line
            and 'method="GET"' in line
            and 'status="200"' in line
        ]
        assert counted == [20.0]
    assert httpx.get(f"{live.server.url}/metrics").status_code == 401

    time.sleep(0.5)  # the workers' lines reach the log file
    mine = {line["request_id"]: line for line in _request_lines(live)}
    line = mine["live-7"]
    assert (line["route"], line["method"], line["status"]) == ("api/v1/agents", "GET", 200)
    assert line["api_key_id"] is not None and line["duration_ms"] > 0
