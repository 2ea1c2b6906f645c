"""One structured log line per request, and a request id on every line logged meanwhile.

The id is the caller's `X-Request-ID` when it is a sane token (a proxy's or a client's, so a
request can be followed across systems), else a new one; it is returned in `X-Request-ID`.
With LOG_FORMAT=json each line is one JSON object; otherwise plain text with the same fields.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_finished
from django.db import connection
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from config.metrics import request_observed

logger = logging.getLogger("logdeck.request")

request_id: ContextVar[str] = ContextVar("request_id", default="-")
# What a caller may pass as its own id: a token, not text that could forge log lines.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The fields a request line carries besides the message; a JSON line has them as keys.
REQUEST_FIELDS = ("method", "route", "status", "duration_ms", "user_id", "api_key_id")


def _route(request: HttpRequest) -> str:
    """The URL pattern that answered (`api/v1/sessions/<session_id>`), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<static>" if request.path_info.startswith("/static/") else "<unmatched>"
    return match.route or match.view_name or "<unnamed>"


def _who(request: HttpRequest) -> tuple[int | None, int | None]:
    """(user id, API key id): ids only, never a secret; the user only if the request loaded it."""
    key = getattr(request, "api_key", None)
    if key is not None:
        return key.user_id, key.pk
    user = getattr(request, "_cached_user", None)  # set once something read request.user
    if user is not None and user.is_authenticated:
        return user.pk, None
    return None, None


class RequestLogMiddleware:
    """Times each request, counts its SQL queries, logs it and records its metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        # Kept until the response is closed, so Django's own lines about it (a 404, a 500
        # logged after the middleware returns) carry the id too; see _request_finished.
        request_id.set(rid)
        queries = [0]

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            queries[0] += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            response = self.get_response(request)
        seconds = time.perf_counter() - started
        response["X-Request-ID"] = rid
        route = _route(request)
        user_id, key_id = _who(request)
        fields = {
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1),
            "user_id": user_id,
            "api_key_id": key_id,
        }
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        logger.log(
            level,
            "%s %s %s %.1fms",
            request.method,
            route,
            response.status_code,
            seconds * 1000,
            extra=fields,
        )
        request_observed(
            route=route,
            method=request.method or "",
            status=response.status_code,
            seconds=seconds,
            queries=queries[0],
        )
        return response


@receiver(request_finished)
def _request_finished(**kwargs: Any) -> None:
    request_id.set("-")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, request id, the request
    fields when it is a request line, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
