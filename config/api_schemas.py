"""Types, error shape and paging shared by every API router.

Each field type carries the limits the database has, so a value the database would refuse is a
422 with its path here, never a 500 there: text without NUL characters (PostgreSQL refuses them),
strings no longer than their column, integers within their column, datetimes that exist in UTC.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet
from ninja import Field, Schema
from ninja.schema import DjangoGetter
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from config.database import INT32_MAX
from config.keyset import INT64_MAX, keyset_page

NO_NUL = r"^[^\x00]*$"


def text(max_length: int | None = None, *, min_length: int = 0) -> Any:
    """A string type with the column's length and no NUL characters."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)]


Text = text()
# What Python's str.strip() removes (the services strip names), spelled so that Python, the
# validator's regex engine and JSON Schema's ECMA-262 all read it alike.
PYTHON_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A name: no NUL, and at least one character that stripping leaves.
NAME_PATTERN = rf"^[^\x00]*[^\x00{PYTHON_SPACE}][^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]


def _json_integer(value: Any) -> Any:
    # JSON types are kept: false is not 0 and "5" is not 5; 5.0 is 5, as JSON Schema says.
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


def bounded_int(minimum: int, maximum: int) -> Any:
    """A JSON integer within [minimum, maximum]. The bounds come before the validator in the
    annotation: after it, pydantic publishes them as `ge`/`le`, which no OpenAPI client reads,
    instead of `minimum`/`maximum`."""
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(_json_integer)]


PositiveInt32 = bounded_int(0, INT32_MAX)
Flag = Annotated[bool, Strict()]  # true or false, not 0, 1 or "yes"
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]


def _utc(value: dt.datetime) -> dt.datetime:
    # A naive time is read as UTC; an offset that pushes it past year 1..9999 cannot be stored.
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Date-times the schema refuses up front, so that every one it allows is stored: year 0, the
# first and the last day of the calendar (an offset there leaves years 1 to 9999 once in UTC),
# and a leap second (Python's datetime has none).
UNSTORABLE_TIME = r"^(0000|0001-01-01|9999-12-31)|[Tt ][0-9]{2}:[0-9]{2}:60"


def _iso_only(value: Any) -> Any:
    # Pydantic would also take a number as seconds since 1970; a date-time here is ISO 8601.
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and ISO_DATE.match(value):
        if re.search(UNSTORABLE_TIME, value):
            raise ValueError(
                "the time cannot be stored: year 0, the first and last day of the calendar "
                "and leap seconds are out of range"
            )
        return value
    raise ValueError("must be an ISO 8601 date-time, like 2026-01-31T09:30:00Z")


Moment = Annotated[
    dt.datetime,
    BeforeValidator(_iso_only),
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "not": {"pattern": UNSTORABLE_TIME},
            "description": "ISO 8601, to the microsecond; UTC unless it carries an offset.",
        }
    ),
]


# No control character or space anywhere. With it beside a pattern, a pattern's `$` means the
# end in every regex dialect (Python's also matches before a final newline).
CONTROL = r"[\x00-\x20\x7f]"
# The addresses Django's validate_email takes, in the part of its grammar that every regex
# dialect reads alike: dot-separated atoms, then host labels and a top-level domain of letters.
EMAIL = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _email(value: str) -> str:
    if re.search(CONTROL, value) or not re.search(EMAIL, value):
        raise ValueError("not a valid email address, like ada@example.com")
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("not a valid email address, like ada@example.com") from None
    return value


Email = Annotated[
    str,
    Field(
        min_length=6,
        max_length=254,
        description="An email address (an internationalised domain in its xn-- form).",
        json_schema_extra={"pattern": EMAIL, "not": {"pattern": CONTROL}},
    ),
    AfterValidator(_email),
]


def web_url(max_length: int, description: str) -> Any:
    """An http(s) URL or nothing: the console links it, so never `javascript:` or `data:`."""
    pattern = r"^(https?://[^\x00-\x20\x7f]+)?$"

    def check(value: str) -> str:
        if re.search(CONTROL, value) or not re.search(pattern, value):
            raise ValueError("must be an http:// or https:// URL without spaces, or empty")
        return value

    return Annotated[
        str,
        Field(
            max_length=max_length,
            description=description,
            json_schema_extra={"pattern": pattern, "not": {"pattern": CONTROL}},
        ),
        AfterValidator(check),
    ]


def _json_checked(value: Any, path: str = "") -> Any:
    # PostgreSQL's jsonb refuses the NUL character anywhere in a string or a key.
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"text at {path or 'the top'} contains a NUL character (\\u0000)")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"text at {path or 'the top'} is not valid Unicode") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"number at {path or 'the top'} is not finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_checked(key, f"{path}.{key}" if path else str(key))
            _json_checked(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json_checked(item, f"{path}.{i}" if path else str(i))
    return value


# Any JSON, as PostgreSQL's jsonb stores it: no NUL in a string or an object's key, at any
# depth. The API's schema holds it once, as a component that refers to itself; a field's own
# schema cannot refer to it (pydantic resolves every $ref it writes), so a field carries a mark
# that `json_schema_marks_resolved` turns into the reference (config/api.py does, for the API).
JSON_COMPONENT = "JsonValue"
JSON_REF = {"$ref": f"#/components/schemas/{JSON_COMPONENT}"}
JSON_MARK = "x-logdeck-json"
JSON_OBJECT_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": JSON_REF,
}
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value; no NUL character (\\u0000) in its text or keys.",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": JSON_REF},
        JSON_OBJECT_SCHEMA,
    ],
}


def json_schema_marks_resolved(node: Any) -> Any:
    """`node` (an OpenAPI document or part of one) with every JSON mark made a reference."""
    if isinstance(node, dict):
        mark = node.get(JSON_MARK)
        if mark == "value":
            return dict(JSON_REF)
        if mark == "object":
            return {**JSON_OBJECT_SCHEMA, "additionalProperties": dict(JSON_REF)}
        return {key: json_schema_marks_resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [json_schema_marks_resolved(value) for value in node]
    return node


JsonValue = Annotated[Any, AfterValidator(_json_checked), WithJsonSchema({JSON_MARK: "value"})]
JsonObject = Annotated[
    dict[str, Any], AfterValidator(_json_checked), WithJsonSchema({JSON_MARK: "object"})
]


class InputSchema(Schema):
    """Request bodies: an unknown field is an error (a typo must not be dropped silently)."""

    model_config = ConfigDict(extra="forbid")

    # Ninja's Schema validates a body with `extra="forbid"` twice (the dict, then the dict
    # wrapped for attribute access), and each nested schema twice again inside each pass: a
    # tool call in a batch was checked eight times. A body is always a dict, so once is enough.
    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        return handler(values)


class OutputSchema(Schema):
    """Responses: a dict is a row already shaped like the schema (see `paged(columns=...)`) and
    goes to pydantic as it is; a model instance is read through Ninja's getter and resolvers."""

    # Ninja wraps every value, dicts included, in a DjangoGetter that pydantic then reads field
    # by field in Python: for a page of 50 rows that cost more than the query.
    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        if isinstance(values, dict):
            return handler(values)
        return handler(DjangoGetter(values, cls, info.context))


class FieldError(Schema):
    path: str
    message: str


class ErrorBody(Schema):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorOut(Schema):
    """Every error the API answers has this shape."""

    error: ErrorBody


class DeletedOut(Schema):
    """What a delete removed: rows per kind of record."""

    deleted: dict[str, int]


# Statuses any operation may answer: no or bad credentials, CSRF or scope refused, a parameter
# that does not validate, too many failed key attempts, the database unavailable (Retry-After).
ALWAYS = (401, 403, 422, 429, 503)
BODY = (400, 413)  # malformed JSON; body or batch over the limit
WRITE = (*BODY, 409)  # plus a conflict with what is stored


def responses(ok: dict[int, Any], *errors: int | Sequence[int]) -> dict[int, Any]:
    """The `response=` of an operation: its successes plus every error status it can answer."""
    codes: set[int] = set(ALWAYS)
    for item in errors:
        codes.update([item] if isinstance(item, int) else item)
    return {**ok, **dict.fromkeys(sorted(codes), ErrorOut)}


class PageQuery(Schema):
    limit: int = Field(
        default=50,
        ge=1,
        le=INT64_MAX,
        description="Page size; default 50, values above the maximum (500) are capped.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=2000,
        pattern=NO_NUL,
        description="Opaque: the `next_cursor` of the previous page of this list, with the same "
        "filters, passed back as it is; any other value is answered 422.",
    )


def page_size(limit: int | None) -> int:
    return max(1, min(limit or settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE))


def paged(
    queryset: QuerySet,
    *,
    ordering: Sequence[str],
    query: PageQuery,
    columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`{"items": [...], "next_cursor": ...}` for one keyset page of `queryset`. With `columns`
    (output name: field or expression; the sort fields under their own names), each item is a
    dict of those columns instead of a model instance."""
    shape = None
    if columns is not None:
        queryset, shape = queryset.values_list(*columns.values()), tuple(columns)
    page = keyset_page(
        queryset, ordering=ordering, cursor=query.cursor, size=page_size(query.limit), shape=shape
    )
    return {"items": page.items, "next_cursor": page.next_cursor}
