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
    model_validator,
)

from config.keyset import INT64_MAX, keyset_page

NO_NUL = r"^[^\x00]*$"
INT32_MAX = 2**31 - 1


def text(max_length: int | None = None, *, min_length: int = 0) -> Any:
    """A string type with the column's length and no NUL characters."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)]


Text = text()
Name = text(200, min_length=1)


def _json_integer(value: Any) -> Any:
    # JSON types are kept: false is not 0 and "5" is not 5; 5.0 is 5, as JSON Schema says.
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


PositiveInt32 = Annotated[int, BeforeValidator(_json_integer), Field(ge=0, le=INT32_MAX)]
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


def _iso_only(value: Any) -> Any:
    # Pydantic would also take a number as seconds since 1970; a date-time here is ISO 8601.
    if isinstance(value, dt.datetime) or (isinstance(value, str) and ISO_DATE.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time, like 2026-01-31T09:30:00Z")


Moment = Annotated[dt.datetime, BeforeValidator(_iso_only), AfterValidator(_utc)]


def _email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("not a valid email address") from None
    return value


Email = Annotated[
    str,
    Field(min_length=3, max_length=254, pattern=NO_NUL, json_schema_extra={"format": "email"}),
    AfterValidator(_email),
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


JsonValue = Annotated[Any, AfterValidator(_json_checked)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_checked)]


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
        description="The `next_cursor` of the previous page.",
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
