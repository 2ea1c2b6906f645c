"""`/healthz` (liveness) and `/readyz` (readiness), answered before any other middleware.

Load balancers and orchestrators poll these every second, often by IP address rather than host
name and over plain HTTP inside the network, so they skip the host check, the HTTPS redirect,
sessions and login. They reveal nothing but "ok" and latencies: no host, version or error text
(the reason a check failed goes to the log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.replicas import replica_aliases, replica_report

logger = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/readyz")


def _timed(check: Callable[[], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        logger.warning("Readiness check failed: %s: %s", type(exc).__name__, exc)
        ok = False
    else:
        ok = True
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": ok, "latency_ms": latency}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def readiness() -> dict[str, dict[str, Any]]:
    """Each dependency the site needs, with whether it answered and how long it took."""
    checks = {"database": _timed(_database)}
    if settings.REDIS_URL:
        checks["redis"] = _timed(cache.ping)  # type: ignore[attr-defined]
    return checks


def _answer(body: dict[str, Any], status: int) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


class HealthMiddleware:
    """Answers the two probe paths itself; every other request goes on down the stack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz":
            return _answer({"status": "ok"}, 200)
        if request.path_info == "/readyz":
            checks = readiness()
            ready = all(check["ok"] for check in checks.values())
            body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
            if replica_aliases():
                # Shown, never a reason to be unready: without replicas the primary serves.
                body["replicas"] = replica_report()
            return _answer(body, 200 if ready else 503)
        return self.get_response(request)
