"""503, not 500, while the database cannot be reached.

A request that finds PostgreSQL away (refused, timed out, its connection killed mid-query) gets
a 503 with `Retry-After`: the console and the admin a styled page, the API its error shape. The
pool gives up after DATABASE_POOL_TIMEOUT seconds, so the answer comes quickly, and it keeps
trying in the background, so the site recovers by itself when the database is back.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error as django_server_error

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# Connection refused or lost, a pool timeout, a server shutting down: all OperationalError or
# InterfaceError ("connection already closed") from Django's wrapped drivers.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
API_MESSAGE = "The database is temporarily unavailable; retry in {seconds} seconds."


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 for this request: the API's error shape under /api/, a styled page elsewhere."""
    if request.path_info.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "error": {
                    "code": "unavailable",
                    "message": API_MESSAGE.format(seconds=RETRY_AFTER_SECONDS),
                    "fields": [],
                }
            },
            status=503,
        )
    else:
        # No request context: the user, the session and the CSRF token would need the database.
        html = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    logger.warning(
        "Database unavailable for %s %s: %s: %s",
        request.method,
        request.path_info,
        type(exc).__name__,
        (str(exc).strip().splitlines() or [""])[0],
    )


class DatabaseUnavailableMiddleware:
    """Turns a view's database outage into the 503 above."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, DATABASE_UNAVAILABLE):
            log_unavailable(request, exc)
            return database_unavailable_response(request)
        return None


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: a 503 when the error was the database going away outside a view (a
    middleware saving the login session), else Django's styled 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable_response(request)
    return django_server_error(request, template_name)
