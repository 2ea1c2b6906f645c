"""Prometheus metrics: requests and latency by route and status, SQL queries, messages and tool
calls stored. `/metrics` is off unless METRICS_TOKEN is set, and then wants that token.

Under gunicorn every worker writes its counters to PROMETHEUS_MULTIPROC_DIR (config/gunicorn.py
sets it), and a scrape sums them all, whichever worker answers it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

REQUESTS = Counter(
    "logdeck_http_requests_total",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "logdeck_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUERIES = Counter(
    "logdeck_db_queries_total", "SQL queries run while answering requests, by route.", ["route"]
)
MESSAGES_STORED = Counter("logdeck_messages_stored_total", "Messages stored (committed).")
TOOL_CALLS_STORED = Counter("logdeck_tool_calls_stored_total", "Tool calls stored (committed).")


def request_observed(*, route: str, method: str, status: int, seconds: float, queries: int) -> None:
    """One answered request; `route` is the URL pattern, never the path with its ids."""
    method = method if method in METHODS else "OTHER"
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(seconds)
    if queries:
        QUERIES.labels(route).inc(queries)


def ingestion_recorded(*, messages: int = 0, tool_calls: int = 0) -> None:
    """Rows a service stored; call it on commit, so a rolled-back batch counts nothing."""
    if messages:
        MESSAGES_STORED.inc(messages)
    if tool_calls:
        TOOL_CALLS_STORED.inc(tool_calls)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class MetricsMiddleware:
    """Answers /metrics before the host check (a scraper comes by address), only with the
    token: `Authorization: Bearer <METRICS_TOKEN>`. Without a token configured it is a 404."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != "/metrics" or not settings.METRICS_TOKEN:
            return self.get_response(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = settings.METRICS_TOKEN.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            response = HttpResponse("The metrics need `Authorization: Bearer <token>`.\n",
                                    status=401, content_type="text/plain")  # fmt: skip
            response["WWW-Authenticate"] = "Bearer"
            return response
        response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response
