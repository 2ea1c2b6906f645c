"""The JSON API: one NinjaAPI at /api/v1/ with its parser, renderer and one error shape for
everything. The apps' routers are mounted where the URLs are (config/urls.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, Throttled, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from config.api_schemas import (
    JSON_COMPONENT,
    JSON_VALUE_SCHEMA,
    NAME_PATTERN,
    NO_NUL,
    json_schema_marks_resolved,
)
from config.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from config.times import iso_time
from config.unavailable import (
    API_MESSAGE,
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    log_unavailable,
)

logger = logging.getLogger(__name__)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


class StrictJsonParser(Parser):
    """JSON as the RFC says: NaN, Infinity and numbers that overflow to infinity are malformed."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body, parse_constant=_no_constants, parse_float=_finite)


class ApiJSONEncoder(NinjaJSONEncoder):
    """Ninja's encoder with a short way for the two types every row holds: Ninja's tries four
    other types before it hands a time or an id to DjangoJSONEncoder, 250 times for a page of
    sessions. A time is written by `iso_time` (UTC, all six digits of its microseconds: the
    database keeps them, so a filter or a check against a time read here matches the row);
    an id is str(id). Each distinct time and id is written once per response: the rows of a
    batch append share their session and mostly their time (a third of the rendering of 100
    messages)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._written: dict[Any, str] = {}

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime):
            text = self._written.get(o)
            if text is None:
                text = self._written[o] = iso_time(o)
            return text
        if isinstance(o, uuid.UUID):
            text = self._written.get(o)
            if text is None:
                text = self._written[o] = str(o)
            return text
        return super().default(o)


class ApiRenderer(JSONRenderer):
    """Responses through orjson, with `ApiJSONEncoder` for the times (passed through, so they are
    written in `iso_time`'s one form) and anything else orjson leaves to a `default`. What orjson
    refuses (an integer past 64 bits in an agent's payload) goes through the stdlib instead."""

    encoder_class = ApiJSONEncoder

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        encoder = self.encoder_class()
        try:
            return orjson.dumps(
                data, default=encoder.default, option=orjson.OPT_PASSTHROUGH_DATETIME
            )
        except orjson.JSONEncodeError:
            return json.dumps(data, cls=self.encoder_class)


class LogdeckAPI(NinjaAPI):
    """The NinjaAPI with the shared JSON value schema among its components: it refers to itself
    (an array or object of JSON values), which a field's own schema cannot."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        resolved = json_schema_marks_resolved(dict(schema))
        resolved.setdefault("components", {}).setdefault("schemas", {})[JSON_COMPONENT] = (
            JSON_VALUE_SCHEMA
        )
        return resolved


api = LogdeckAPI(
    title="Logdeck API",
    version="1",
    description="Write and query what AI agents persist: users, agents, sessions, messages, "
    "tool calls, memories and checkpoints. Authenticate with `Authorization: Bearer <key>` "
    "(`manage.py create_api_key`). Lists answer `{items, next_cursor}`; pass `cursor` back for "
    "the next page. Every error is `{error: {code, message, fields: [{path, message}]}}`. "
    "Every time is ISO 8601 in UTC to the microsecond (`2026-01-31T09:30:00.123456Z`), and the "
    "time filters take the same form: `created_after` is inclusive, `created_before` exclusive.",
    urls_namespace="api",
    parser=StrictJsonParser(),
    renderer=ApiRenderer(),
)  # its authentication and docs access are set where the routers are mounted (config/urls.py)

ERROR_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


def error_response(
    request: HttpRequest,
    status: int,
    message: str,
    *,
    fields: list[dict[str, str]] | None = None,
    code: str | None = None,
) -> HttpResponse:
    """The one error shape: `{"error": {"code", "message", "fields": [{"path", "message"}]}}`."""
    body = {
        "error": {
            "code": code or ERROR_CODES.get(status, "error"),
            "message": message,
            "fields": fields or [],
        }
    }
    return api.create_response(request, body, status=status)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "payload", "messages", 0, "role") -> "messages.0.role"; ("query", "limit") -> "limit"
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts and parts[0] in {"query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def _field_message(error: dict[str, Any]) -> str:
    pattern = error.get("ctx", {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern == NO_NUL:
        return "Text may not contain the NUL character (\\u0000)."
    if error.get("type") == "string_pattern_mismatch" and pattern == NAME_PATTERN:
        return "A name needs a character other than spaces, and no NUL character (\\u0000)."
    message = str(error.get("msg", "Invalid value."))
    return message.removeprefix("Value error, ")


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {"path": _field_path(err.get("loc", ())), "message": _field_message(err)}
        for err in exc.errors
    ]
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:3])
    return error_response(request, 422, f"The request is not valid: {summary}", fields=fields)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    status = {NotFound: 404, Conflict: 409, InvalidInput: 422, Forbidden: 403}.get(type(exc), 422)
    fields = [{"path": exc.field, "message": exc.message}] if exc.field else []
    return error_response(request, status, exc.message, fields=fields)


@api.exception_handler(Throttled)
def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = max(1, math.ceil(exc.wait or 1))
    response = error_response(
        request, 429, f"Too many failed attempts with API keys; retry in {wait} seconds."
    )
    response["Retry-After"] = str(wait)
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = exc.message
    if exc.status_code == 400:
        message = "The request body is not valid JSON (NaN and Infinity are not JSON numbers)."
    elif exc.status_code == 401 and message == "Unauthorized":
        message = "Authenticate with `Authorization: Bearer <key>` or a staff login."
    return error_response(request, exc.status_code, message)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(
        request, 413, f"The request body is over the limit of {limit} bytes; send smaller batches."
    )


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "Not found.")


@api.exception_handler(IntegrityError)
def on_integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    # Two writers raced for the same natural key or seq; the loser may simply retry.
    logger.info("API write lost a race: %s", exc)
    return error_response(
        request, 409, "The write conflicts with a concurrent change; retry the request."
    )


@api.exception_handler(DataError)
def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the schema let through but the database refused; the schema should be tightened.
    logger.warning("API input refused by the database: %s", exc)
    return error_response(request, 422, "A value is out of the range the database can store.")


def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # PostgreSQL away (refused, pool timeout, connection killed): retry, nothing was stored.
    log_unavailable(request, exc)
    response = error_response(request, 503, API_MESSAGE.format(seconds=RETRY_AFTER_SECONDS))
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


for _unavailable in DATABASE_UNAVAILABLE:
    api.add_exception_handler(_unavailable, on_database_unavailable)


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API error", exc_info=exc)
    return error_response(request, 500, "Something went wrong on our side; it has been logged.")


class ApiErrorShapeMiddleware:
    """Answers a path under /api/ that no operation serves (404) or a method it does not take
    (405) in the API's error shape too, instead of Django's HTML pages."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code in (404, 405)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 404:
                shaped = error_response(request, 404, f"No API operation at {request.path}.")
            else:
                allowed = response.get("Allow", "")
                shaped = error_response(
                    request, 405, f"{request.method} is not allowed here; use {allowed}."
                )
                shaped["Allow"] = allowed
            return shaped
        return response
