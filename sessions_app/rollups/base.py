"""What every rollup shares: the rows a write describes, the statements it sends, and the hooks
a rollup answers. The registry in `__init__` calls the hooks; no service calls a rollup itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.utils import timezone

from config.database import client_binding_cursor
from sessions_app.models import Message, Session, ToolCall

Statement = tuple[str, list[Any]]  # SQL and its values
After = Callable[[], list[Statement]]  # what a rollup does once the rows changed


@dataclass(frozen=True)
class Added:
    """Rows a write has just inserted, in memory with their ids."""

    sessions: Sequence[Session] = ()
    messages: Sequence[Message] = ()
    tool_calls: Sequence[ToolCall] = ()


@dataclass(frozen=True)
class Removed:
    """Stored rows a write is about to delete, as querysets read before the delete. `sessions`
    set: whole sessions go, with every row under them. `session_ids`: the sessions whose rows
    go (locked by the writer), so their counters can be recounted after."""

    sessions: QuerySet[Session] | None = None
    messages: QuerySet[Message] | None = None
    tool_calls: QuerySet[ToolCall] | None = None
    session_ids: Sequence[Any] = ()


class Rollup:
    """One derived number kept beside the rows it counts. Each hook returns the statements to
    send; `removing` and `changing` read what they need before the change, and return what to
    send after it."""

    name: str = ""
    model: type[Model]  # the table the numbers live in

    def added(self, rows: Added) -> list[Statement]:
        return []

    def removing(self, rows: Removed) -> After | None:
        return None

    def changing(self, call: ToolCall) -> Callable[[ToolCall], list[Statement]] | None:
        """Before an edit of one tool call; the returned function hears of the edited call."""
        return None

    def finishing(self, sessions: Sequence[Session] | QuerySet[Session]) -> After | None:
        return None

    def counted_from(self, using: str) -> QuerySet:
        """The rows this rollup counts: when there are some, an empty rollup is stale."""
        raise NotImplementedError

    def rebuild(self) -> int:
        """Count every number again from the rows; returns how many rollup rows there are."""
        raise NotImplementedError

    def drift(self) -> list[str]:
        """What differs between the stored numbers and a count from the rows (read only)."""
        raise NotImplementedError

    def bulk_sql(self) -> list[str]:
        """PostgreSQL statements that fill an empty rollup from the rows, in bulk loads."""
        raise NotImplementedError


def execute_in_order(statements: Sequence[Statement]) -> None:
    """Run writes in their order: on PostgreSQL as one string in one round trip (a cursor that
    binds the values client-side may send several statements at once); elsewhere each run of
    the same statement as one executemany."""
    if not statements:
        return
    if connection.vendor == "postgresql":
        with client_binding_cursor() as cursor:
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [value for _, values in statements for value in values],
            )
        return
    with connection.cursor() as cursor:
        start = 0
        for end in range(1, len(statements) + 1):
            if end == len(statements) or statements[end][0] != statements[start][0]:
                cursor.executemany(statements[start][0], [p for _, p in statements[start:end]])
                start = end


def activity_day(value: dt.datetime) -> dt.date:
    return timezone.localdate(value)  # the charts' days, in TIME_ZONE like TruncDate


def moment(value: dt.datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "max"


def least() -> str:
    return "LEAST" if connection.vendor == "postgresql" else "min"


def day_sql(column: str = "created_at") -> str:
    """PostgreSQL: the day of `column` in the console's time zone, as TruncDate gives it."""
    return f"({column} AT TIME ZONE %(tz)s)::date"


def differences(name: str, stored: dict, counted: dict, *, shown: int = 3) -> list[str]:
    """Lines naming the keys whose stored value is not the counted one (a few, then a total)."""
    keys = sorted(
        (k for k in stored.keys() | counted.keys() if stored.get(k) != counted.get(k)), key=repr
    )
    lines = [
        f"{name}: {key}: stored {stored.get(key)}, counted {counted.get(key)}"
        for key in keys[:shown]
    ]
    if len(keys) > shown:
        lines.append(f"{name}: and {len(keys) - shown} more rows differ")
    return lines
