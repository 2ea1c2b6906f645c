"""/healthz and /readyz: no login, nothing revealed, cheap, and honest about what is down."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client

from tests.production.live import free_port


def _redis(settings, url: str) -> None:
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.FallbackRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_it_answers_healthz_without_the_database(client: Client):
    # No database access is allowed in this test: a query would fail it. By IP address, as a
    # load balancer asks: no host check, no login.
    response = client.get("/healthz", HTTP_HOST="10.20.30.40:8000")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies


@pytest.mark.django_db
def test_it_is_ready_with_the_database_latency(client: Client, django_assert_num_queries):
    with django_assert_num_queries(1):  # SELECT 1
        response = client.get("/readyz", HTTP_HOST="10.20.30.40")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database"}  # no Redis configured
    assert body["checks"]["database"]["ok"] is True
    assert 0 <= body["checks"]["database"]["latency_ms"] < 1000
    # Nothing about the deployment: no database name, host, user or version.
    text = response.content.decode()
    for secret in (str(connection.settings_dict["NAME"]), "postgres", "sqlite", "SELECT"):
        assert secret not in text


@pytest.mark.django_db
def test_it_is_ready_with_a_configured_redis(client: Client, settings, redis_url: str):
    _redis(settings, redis_url)

    response = client.get("/readyz")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is True and checks["database"]["ok"] is True
    assert checks["redis"]["latency_ms"] >= 0
    assert "6379" not in response.content.decode()


@pytest.mark.django_db
def test_it_is_not_ready_when_redis_is_on_a_closed_port(client: Client, settings):
    port = free_port()
    _redis(settings, f"redis://127.0.0.1:{port}/0")

    started = time.monotonic()
    response = client.get("/readyz")

    assert time.monotonic() - started < 2
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert str(port) not in response.content.decode()


def test_it_answers_probes_on_every_method_without_csrf(client: Client):
    # A probe is never a form post; and a POST to it must not be a CSRF 403 either.
    assert client.head("/healthz").status_code == 200
    assert Client(enforce_csrf_checks=True).post("/healthz").status_code == 200
