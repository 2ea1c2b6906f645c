"""logdeck-client against a live server: typed results, cursor-following iterators, the error
shape, the async client, and retries of idempotent calls only (against a real local server
that answers 503 on purpose)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from logdeck_client import AsyncLogdeck, Logdeck, LogdeckError, RetryPolicy
from logdeck_client.types import Session

from sessions_app.models import Message
from tests.client.conftest import LiveApi

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)


def test_it_writes_a_session_and_reads_it_back(live_api: LiveApi, monkeypatch) -> None:
    monkeypatch.setenv("LOGDECK_URL", live_api.url)
    monkeypatch.setenv("LOGDECK_API_KEY", live_api.key)
    with Logdeck() as logdeck:  # from the environment
        logdeck.agents.upsert("support-bot", model="gpt-5-mini")
        session = logdeck.sessions.get_or_create("support-bot", external_key="chat-42")
        again = logdeck.sessions.get_or_create("support-bot", external_key="chat-42")
        messages = [
            {"seq": 0, "role": "user", "text_content": "Where is order 1234?"},
            {"seq": 1, "role": "assistant", "text_content": "It ships today."},
        ]
        first = logdeck.sessions.append(session.id, messages)
        replay = logdeck.sessions.append(session.id, messages)  # idempotent on seq
        read = list(logdeck.sessions.iter_messages(session.id))
        stored = logdeck.sessions.get(session.id)
    assert isinstance(session, Session) and isinstance(session.id, uuid.UUID)
    assert isinstance(session.created_at, dt.datetime) and session.created_at.tzinfo
    assert again.id == session.id and session.external_key == "chat-42"
    assert (first.created, replay.created) == (2, 0)
    assert [(m.seq, m.role, m.text_content) for m in read] == [
        (0, "user", "Where is order 1234?"),
        (1, "assistant", "It ships today."),
    ]
    assert stored.message_count == 2
    assert Message.objects.filter(session_id=session.id).count() == 2


def test_it_follows_cursors_to_the_end_of_a_list(logdeck: Logdeck) -> None:
    logdeck.agents.upsert("pager")
    started = [logdeck.sessions.start("pager", name=f"s{i}").id for i in range(7)]
    listed = [s.id for s in logdeck.sessions.iter(agent="pager", limit=2)]
    assert listed == list(reversed(started))
    page = logdeck.sessions.list(agent="pager", limit=3)
    assert len(page.items) == 3 and page.next_cursor
    rest = logdeck.sessions.list(agent="pager", limit=10, cursor=page.next_cursor)
    assert [s.id for s in page.items + rest.items] == listed and rest.next_cursor is None


def test_it_raises_the_apis_error_shape(logdeck: Logdeck) -> None:
    with pytest.raises(LogdeckError) as missing:
        logdeck.sessions.get(uuid.uuid4())
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert "No session" in missing.value.message
    logdeck.agents.upsert("strict")
    session = logdeck.sessions.start("strict")
    with pytest.raises(LogdeckError) as invalid:
        logdeck.sessions.append(session.id, [{"role": "narrator"}])
    assert (invalid.value.status, invalid.value.code) == (422, "invalid")
    assert [f["path"] for f in invalid.value.fields] == ["messages.0.role"]
    with pytest.raises(LogdeckError) as unauthenticated:
        Logdeck(logdeck.base_url, "ld_wrong").agents.list()
    assert unauthenticated.value.status == 401
    assert logdeck.sessions.latest_checkpoint(session.id) is None  # a 404 read as "none"


def test_it_says_what_is_missing_without_settings(monkeypatch) -> None:
    monkeypatch.delenv("LOGDECK_URL", raising=False)
    monkeypatch.delenv("LOGDECK_API_KEY", raising=False)
    with pytest.raises(LogdeckError, match="LOGDECK_URL"):
        Logdeck()
    with pytest.raises(LogdeckError, match="LOGDECK_API_KEY"):
        Logdeck("http://127.0.0.1:1")


def test_the_async_client_has_the_same_resources(live_api: LiveApi) -> None:
    async def scenario() -> tuple[list[str], int]:
        async with AsyncLogdeck(live_api.url, live_api.key) as logdeck:
            await logdeck.agents.upsert("async-bot")
            session = await logdeck.sessions.get_or_create("async-bot", "thread-a")
            await logdeck.sessions.append(
                session.id, [{"seq": i, "role": "user", "text_content": f"m{i}"} for i in range(5)]
            )
            texts = [
                m.text_content
                async for m in logdeck.sessions.iter_messages(session.id, page_size=2)
            ]
            try:
                await logdeck.agents.get("nobody")
            except LogdeckError as error:
                return texts, error.status
            return texts, 0

    texts, status = asyncio.run(scenario())
    assert texts == ["m0", "m1", "m2", "m3", "m4"] and status == 404


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 answering 503 to the first two requests of each path
    (with Retry-After: 0), then a JSON body; it records every request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            tries = sum(1 for s in seen if s == f"{self.command} {self.path}")
            if tries <= 2:
                body, status = (
                    {"error": {"code": "unavailable", "message": "busy", "fields": []}},
                    503,
                )
            else:
                body, status = {"id": 1, "name": "bot"}, 200
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if status == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_it_retries_idempotent_calls_only(flaky_server) -> None:
    url, seen = flaky_server
    with Logdeck(url, "key", retry=FAST) as logdeck:
        agent = logdeck.agents.upsert("bot")  # an upsert by name: idempotent, retried
        assert agent.name == "bot"
        assert seen.count("POST /api/v1/agents") == 3
        with pytest.raises(LogdeckError) as refused:
            logdeck.sessions.start("bot")  # a new session each time: never retried
        assert refused.value.status == 503 and refused.value.message == "busy"
        assert seen.count("POST /api/v1/sessions") == 1


def test_it_retries_connection_errors_then_says_so() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logdeck = Logdeck(f"http://127.0.0.1:{port}", "key", retry=FAST, timeout=2)
    with logdeck, pytest.raises(LogdeckError) as error:
        logdeck.agents.list()
    assert error.value.status == 0 and error.value.code == "connection_error"
