"""One structured line per request, with a request id that is returned and carried by every
line logged meanwhile; Prometheus metrics behind a token."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from agents.models import ApiKey
from tests.factories import SessionFactory
from tests.production.live import PRODUCTION_ENV, ROOT

pytestmark = pytest.mark.django_db


def _lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "logdeck.request"]


def test_it_logs_one_line_per_api_request_by_route_with_the_key(api, write_secret, caplog):
    caplog.set_level(logging.INFO, logger="logdeck.request")
    session = SessionFactory()
    key = ApiKey.objects.get(name="runtime")

    response = api.get(f"/sessions/{session.pk}", headers={"X-Request-ID": "lb-7f3a.01"})

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a.01"
    [line] = _lines(caplog)
    assert line.route == "api/v1/sessions/<session_id>"  # the pattern, not the id
    assert str(session.pk) not in line.getMessage()
    assert (line.method, line.status) == ("GET", 200)
    assert line.duration_ms > 0
    assert (line.api_key_id, line.user_id) == (key.pk, key.user_id)
    every = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert write_secret not in every  # never the secret


def test_it_logs_the_operator_of_a_console_page(viewer_client: Client, viewer, caplog):
    caplog.set_level(logging.INFO, logger="logdeck.request")

    response = viewer_client.get("/sessions/")

    [line] = _lines(caplog)
    assert (line.route, line.status, line.user_id, line.api_key_id) == (
        "sessions/",
        200,
        viewer.pk,
        None,
    )
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.parametrize(
    "given",
    ["", "has space", "forged\nline", "x" * 129, "<script>"],
)
def test_it_makes_its_own_id_when_the_given_one_is_not_a_token(anon_api, given: str):
    response = anon_api.get("/sessions", headers={"X-Request-ID": given} if given else {})

    assert response.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_it_writes_json_lines_where_django_own_lines_carry_the_same_id(tmp_path: Path):
    # A fresh process configured as production with LOG_FORMAT=json: a 404 makes two lines,
    # Logdeck's request line and Django's "Not Found", both with the id returned.
    code = (
        "import django; django.setup(); from django.test import Client;"
        "r = Client().get('/no-such-page/', HTTP_HOST='localhost', HTTP_X_REQUEST_ID='req-42');"
        "print(r.status_code, r['X-Request-ID'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            **PRODUCTION_ENV,
            "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
            "LOG_FORMAT": "json",
            # Not a log line: WhiteNoise's warning where static files were never collected.
            "PYTHONWARNINGS": "ignore:No directory at",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.stdout.strip() == "404 req-42", done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    request = next(line for line in lines if line["logger"] == "logdeck.request")
    django_line = next(line for line in lines if line["logger"] == "django.request")
    assert request["request_id"] == django_line["request_id"] == "req-42"
    assert request["route"] == "<unmatched>" and request["status"] == 404
    assert {"time", "level", "message", "method", "duration_ms", "user_id"} <= set(request)


def test_it_refuses_a_malformed_log_format():
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **PRODUCTION_ENV,
             "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "LOG_FORMAT='xml'" in done.stderr


# --- /metrics ---------------------------------------------------------------------------------


def test_it_has_no_metrics_endpoint_unless_a_token_is_set(client: Client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_it_wants_the_token_for_the_metrics(client: Client, settings):
    settings.METRICS_TOKEN = "m-token-123"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer m-token-12"})
    assert wrong.status_code == 401
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer m-token-123"}).status_code == 200
    )


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_it_counts_requests_queries_and_stored_rows(
    client: Client, settings, api, django_capture_on_commit_callbacks
):
    settings.METRICS_TOKEN = "m-token-123"
    auth = {"Authorization": "Bearer m-token-123"}
    session = SessionFactory()
    before = client.get("/metrics", headers=auth).content.decode()

    assert api.get("/sessions").status_code == 200
    batch = {
        "messages": [
            {"seq": 0, "role": "user", "text_content": "hi"},
            {"seq": 1, "role": "assistant", "content_type": "tool_use",
             "tool_calls": [{"tool_name": "lookup", "input": {}}]},
        ]
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/sessions/{session.pk}/messages", batch).status_code == 201
        replay = api.post(f"/sessions/{session.pk}/messages", batch)  # stores nothing again
        assert replay.status_code in (200, 201) and replay.json()["created"] == 0
    after = client.get("/metrics", headers=auth).content.decode()

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    route = {"route": "api/v1/sessions", "method": "GET", "status": "200"}
    assert grew("logdeck_http_requests_total", **route) == 1
    assert grew("logdeck_http_request_duration_seconds_count",
                route="api/v1/sessions", method="GET") == 1  # fmt: skip
    assert grew("logdeck_db_queries_total", route="api/v1/sessions") >= 1
    assert grew("logdeck_messages_stored_total") == 2
    assert grew("logdeck_tool_calls_stored_total") == 1
