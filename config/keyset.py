"""Keyset pagination: every list pages by the index it is sorted on, never by OFFSET or COUNT.

A cursor is the sort key of the last row shown, wrapped in an opaque token. Rows inserted while a
client pages never shift the pages after the cursor, so nothing is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field, Model, Q, QuerySet

from config.errors import InvalidInput

# What a bigint column holds, the widest integer any id, count or seq here is stored in.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()  # full microseconds: DjangoJSONEncoder would round them away
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _attr(row: Model | dict[str, Any], name: str) -> Any:
    if isinstance(row, dict):
        return row[name]
    field = row._meta.get_field(name)
    return getattr(row, field.attname)


def encode_cursor(ordering: Sequence[str], row: Model | dict[str, Any]) -> str:
    values = [_plain(_attr(row, name.lstrip("-"))) for name in ordering]
    payload = json.dumps({"o": list(ordering), "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a sort key")


def stored_value(field: Field, value: Any) -> Any:
    """`value` as `field` holds it, or ValueError (ValidationError, OverflowError) for what no
    row could hold: a NULL (every keyset sort key and primary key is NOT NULL), a NUL in text,
    an integer past a bigint, a time that leaves years 1 to 9999 in UTC."""
    value = field.to_python(value)
    if value is None:
        raise ValueError("no sort key or primary key is NULL")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("no stored text holds a NUL")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("past a bigint")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a cursor's time carries its offset")
        value.astimezone(dt.UTC)  # OverflowError at the edges of year 1 and 9999
    return value


def decode_cursor(queryset: QuerySet, ordering: Sequence[str], token: str) -> list[Any]:
    """The sort-key values inside `token`, typed by the model's fields; `InvalidInput` if forged."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()), parse_constant=_no_constant)
        if payload["o"] != list(ordering) or len(payload["v"]) != len(ordering):
            raise ValueError
        meta = queryset.model._meta
        return [
            stored_value(meta.get_field(name.lstrip("-")), value)
            for name, value in zip(ordering, payload["v"], strict=True)
        ]
    except (
        ValueError,
        KeyError,
        TypeError,
        OverflowError,
        binascii.Error,
        ValidationError,
        UnicodeError,
    ):
        raise InvalidInput(
            "The cursor is not valid for this list: pass back the `next_cursor` you were given.",
            field="cursor",
        ) from None


def reverse_ordering(ordering: Sequence[str]) -> tuple[str, ...]:
    """The same sort keys walked the other way: the page *before* a row is the page after it in
    the reversed ordering, read backwards."""
    return tuple(name[1:] if name.startswith("-") else f"-{name}" for name in ordering)


def after(queryset: QuerySet, ordering: Sequence[str], values: Sequence[Any]) -> QuerySet:
    """Rows strictly after `values` in `ordering` (each name may start with `-` for descending)."""
    first = ordering[0]
    lead = "lte" if first.startswith("-") else "gte"
    # The redundant bound on the leading column lets the planner walk the index from there.
    condition = Q()
    for i, name in enumerate(ordering):
        step = Q(**{f"{name.lstrip('-')}__{'lt' if name.startswith('-') else 'gt'}": values[i]})
        for prev, value in zip(ordering[:i], values[:i], strict=True):
            step &= Q(**{prev.lstrip("-"): value})
        condition |= step
    return queryset.filter(Q(**{f"{first.lstrip('-')}__{lead}": values[0]}) & condition)


def keyset_page[T](
    queryset: QuerySet,
    *,
    ordering: Sequence[str],
    cursor: str | None,
    size: int,
    shape: Sequence[str] | None = None,
) -> Page[T]:
    """One page of `queryset` in `ordering`, fetched with LIMIT size + 1 and no COUNT. With
    `shape`, `queryset` yields tuples (`values_list`) and each becomes a dict with those keys."""
    queryset = queryset.order_by(*ordering)
    if cursor:
        queryset = after(queryset, ordering, decode_cursor(queryset, ordering, cursor))
    rows = list(queryset[: size + 1])
    if shape is not None:
        rows = [dict(zip(shape, row, strict=True)) for row in rows]
    next_cursor = encode_cursor(ordering, rows[size - 1]) if len(rows) > size else None
    return Page(items=rows[:size], next_cursor=next_cursor)
