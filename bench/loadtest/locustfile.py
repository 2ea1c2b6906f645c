"""Who loads Logdeck at once: operators browsing the console, API readers, API writers.

Started by `python -m bench.loadtest`, which passes the run's facts in LOADTEST_* variables:
the operator's login, the keys, sample ids from the dataset, and where writers record each batch
the server acknowledged (the runner then counts those messages in the database).
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from typing import Any

from locust import HttpUser, between, events, task

FACTS: dict[str, Any] = json.loads(os.environ.get("LOADTEST_FACTS", "{}"))
BATCH = 10  # messages per append; every fifth asks for a tool call
ATTEMPTS = 30  # sends of one batch before a writer gives it up (503s while PostgreSQL is away)
ACKNOWLEDGED: list[dict[str, Any]] = []
GAVE_UP: list[dict[str, Any]] = []
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Operator(HttpUser):
    """Logs in, then reads the console: overview, sessions with filters, transcripts, errors."""

    weight = 3
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        page = self.client.get("/accounts/login/", name="console: login page")
        token = CSRF.search(page.text)
        self.client.post(
            "/accounts/login/",
            data={
                "username": FACTS["operator"],
                "password": FACTS["password"],
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            name="console: log in",
            allow_redirects=False,
        )

    @task(2)
    def overview(self) -> None:
        self.client.get("/", name="console: overview")

    @task(4)
    def sessions(self) -> None:
        self.client.get("/sessions/", name="console: sessions")

    @task(2)
    def sessions_of_an_agent(self) -> None:
        agent = random.choice(FACTS["agents"])
        self.client.get(f"/sessions/?agent={agent}", name="console: sessions of one agent")

    @task(1)
    def sessions_with_errors(self) -> None:
        self.client.get("/sessions/?has_errors=1", name="console: sessions with errors")

    @task(1)
    def search(self) -> None:
        self.client.get("/sessions/?q=refund", name="console: sessions, text search")

    @task(4)
    def transcript(self) -> None:
        session = random.choice(FACTS["sessions"])
        self.client.get(f"/sessions/{session}/", name="console: transcript")

    @task(2)
    def error_groups(self) -> None:
        self.client.get("/tool-calls/errors/", name="console: error groups")

    @task(1)
    def error_group(self) -> None:
        tool, fingerprint = random.choice(FACTS["error_groups"])
        self.client.get(
            "/tool-calls/errors/group/",
            params={"tool": tool, "fingerprint": fingerprint},
            name="console: one error group",
        )


class ApiReader(HttpUser):
    """An agent runtime or a dashboard reading through the API with a read key."""

    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {FACTS['read_key']}"

    @task(3)
    def sessions_of_an_agent(self) -> None:
        agent = random.choice(FACTS["agents"])
        self.client.get(f"/api/v1/sessions?agent={agent}", name="api: sessions of one agent")

    @task(3)
    def transcript(self) -> None:
        session = random.choice(FACTS["sessions"])
        self.client.get(f"/api/v1/sessions/{session}/messages", name="api: a transcript")

    @task(2)
    def messages(self) -> None:
        self.client.get("/api/v1/messages?role=assistant", name="api: messages")

    @task(2)
    def failing_tool_calls(self) -> None:
        self.client.get("/api/v1/tool-calls?is_error=true", name="api: failed tool calls")

    @task(1)
    def stats(self) -> None:
        agent = random.choice(FACTS["agents"])
        self.client.get(f"/api/v1/stats?agent={agent}", name="api: stats of one agent")


class ApiWriter(HttpUser):
    """An agent runtime: starts a session, then appends batches of messages with tool calls.
    A batch that is not acknowledged (a 503 while PostgreSQL is away, a lost connection) is sent
    again as it was: appends are idempotent on `seq`, so a retry never stores twice."""

    weight = 4
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {FACTS['write_key']}"
        self.session: str | None = None
        self.seq = 0
        for _ in range(ATTEMPTS):
            answer = self.client.post(
                "/api/v1/sessions",
                json={"agent": FACTS["write_agent"], "name": f"loadtest {uuid.uuid4().hex[:8]}",
                      "platform": "loadtest"},
                name="api: start a session",
            )  # fmt: skip
            if answer.status_code == 201:
                self.session = answer.json()["id"]
                return
            self.wait()

    def _batch(self) -> list[dict[str, Any]]:
        messages = []
        for seq in range(self.seq, self.seq + BATCH):
            message: dict[str, Any] = {
                "seq": seq,
                "role": "assistant" if seq % 2 else "user",
                "text_content": f"loadtest {self.session} {seq}",
            }
            if seq % 5 == 4:
                message["content_type"] = "tool_use"
                message["tool_calls"] = [
                    {"tool_name": "lookup_order", "call_id": f"call-{seq}",
                     "input": {"order": seq}, "state": "completed", "output": {"ok": True}}
                ]  # fmt: skip
            messages.append(message)
        return messages

    @task
    def append(self) -> None:
        if self.session is None:
            return
        batch = {"messages": self._batch()}
        for attempt in range(1, ATTEMPTS + 1):
            answer = self.client.post(
                f"/api/v1/sessions/{self.session}/messages",
                json=batch,
                name="api: append a batch of 10",
            )
            if answer.status_code in (200, 201):
                ACKNOWLEDGED.append(
                    {"session": self.session, "first": self.seq, "count": BATCH,
                     "attempts": attempt}
                )  # fmt: skip
                self.seq += BATCH
                return
            self.wait()  # a 503 says retry; so does a connection that broke off
        GAVE_UP.append({"session": self.session, "first": self.seq, "count": BATCH})


@events.test_stop.add_listener
def _write_acknowledged(environment: Any, **kwargs: Any) -> None:
    path = os.environ.get("LOADTEST_ACKS")
    if path:
        with open(path, "w") as out:
            json.dump({"acknowledged": ACKNOWLEDGED, "gave_up": GAVE_UP}, out)
