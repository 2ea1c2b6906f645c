"""Reads for sessions, messages, tool calls and checkpoints.

The console, the API and the admin call these, so a filter means the same everywhere and each
query is tuned once. Every list is ordered by an index and paged with `config.keyset`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    Expression,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    TextField,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Length
from django.utils import timezone

from config.admin_paging import planner_row_estimate
from config.api_schemas import INT32_MAX
from config.errors import InvalidInput, NotFound
from config.keyset import Page, encode_cursor
from sessions_app.models import (
    CONTENT_TYPE_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    Checkpoint,
    DailyActivity,
    ErrorGroupDay,
    Message,
    Session,
    ToolCall,
    ToolCallState,
    ToolStateCount,
    codepoint_order,
)

EXTERNAL_KEY_MAX = Session._meta.get_field("external_key").max_length

SESSION_SORTS: dict[str, tuple[str, ...]] = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "messages": ("-message_count", "-id"),
    "errors": ("-error_count", "-id"),
}
METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class SessionFilters:
    agent: int | None = None
    user: int | None = None
    platform: str = ""
    status: str = ""  # "active", "finished" or "" for both
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    has_errors: bool | None = None
    q: str = ""
    q_common: bool | None = None  # `text_is_common(q)` when the caller already asked
    metadata_key: str = ""
    metadata_value: str = ""
    external_key: str = ""


# Same expression as the `message_text_fts_idx` GIN index (migration 0002), so it serves it.
_FTS_MATCH = (
    "to_tsvector('english'::regconfig, text_content) "
    "@@ websearch_to_tsquery('english'::regconfig, %s)"
)


# A walk in list order tests ~35 messages (to_tsvector on each) in the time the fence fetches
# one hit from the heap; the walk pays per page row, the fence per hit.
_WALK_MESSAGE_COST = 35
_PAGE_ROWS = 51  # a page of 50 and the row that says there is more


def text_is_common(q: str) -> bool:
    """Whether `q` matches so many messages, by the planner's statistics, that walking a list in
    its order and testing each row fills a page sooner than collecting every match first.

    A walk finds a match every `total / hits` messages; the fence fetches all `hits`. "customer"
    in 14% of a million messages: the walk takes 17 ms where the fence takes 250. "refund" in
    0.5%: the fence takes 14 ms where the walk takes 270 (and seconds for a word in none).
    SQLite has no statistics and no fence: always False there.
    """
    if not q or connection.vendor != "postgresql":
        return False
    total = planner_row_estimate(Message, connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {Message._meta.db_table} WHERE {_FTS_MATCH}", [q]
        )
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # json, not jsonb: psycopg may hand over the text
        plan = json.loads(plan)
    hits = plan[0]["Plan"]["Plan Rows"]
    if not total:  # never analysed (or empty): no statistics to trust, so no walk
        return False
    return hits * hits > _WALK_MESSAGE_COST * _PAGE_ROWS * total


def _fts_hits(column: str, q: str) -> RawSQL:
    # The GIN lookup in a MATERIALIZED fence: left to itself the planner walks the created_at
    # index and runs to_tsvector on every row until a page is full (over a second at 1M rows).
    return RawSQL(
        f"WITH hits AS MATERIALIZED (SELECT {column} FROM sessions_app_message "
        f"WHERE {_FTS_MATCH}) SELECT {column} FROM hits",
        [q],
    )


class MessageTextMatch(Expression):
    """A message's text matches the full-text query `q` (PostgreSQL, by the GIN index).

    A query with an ORDER BY gets the GIN lookup in the MATERIALIZED fence of `_fts_hits`, unless
    `q` is common (`text_is_common`). A common word, or a query without an order (a capped
    count, `exists()`), gets the bare match: the planner walks the rows and stops at the LIMIT
    instead of collecting every hit first.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, q: str, *, common: bool) -> None:
        super().__init__()
        self.q = q
        self.common = common

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        query = compiler.query
        table = compiler.quote_name(query.get_initial_alias())
        ordered = bool(query.order_by) or (
            query.default_ordering and bool(query.get_meta().ordering)
        )
        if ordered and not self.common:
            hits = _fts_hits("id", self.q)
            return f"{table}.id IN ({hits.sql})", list(hits.params)
        return _FTS_MATCH.replace("text_content", f"{table}.text_content"), [self.q]


def message_text_matches(q: str) -> Q:
    """Messages whose text matches `q`: PostgreSQL full-text search (GIN index), else LIKE."""
    if connection.vendor == "postgresql":
        return Q(MessageTextMatch(q, common=text_is_common(q)))
    return Q(text_content__icontains=q)


def sessions_with_text(q: str, *, common: bool | None = None) -> Q:
    """Sessions with a message whose text matches `q` (see `message_text_matches`). A common `q`
    (`text_is_common`, asked here unless the caller did) is an EXISTS that the planner tests
    session by session in the list's order; any other collects the matching sessions first."""
    if connection.vendor != "postgresql":
        return Q(pk__in=Message.objects.filter(text_content__icontains=q).values("session_id"))
    if common is None:
        common = text_is_common(q)
    if common:
        texts = Message.objects.filter(MessageTextMatch(q, common=True), session_id=OuterRef("pk"))
        return Q(Exists(texts))
    return Q(pk__in=_fts_hits("session_id", q))


class TextOrKeyMatch(Expression):
    """A session with a message whose text matches `q`, or whose external key is `q`, as one
    EXISTS tested session by session in the list's order (a common `q`). Written as two
    conditions joined by OR, the planner would collect every matching message into a hash
    before the first row (137,717 of them for "customer" at 1M: 230 ms, against 20)."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, q: str) -> None:
        super().__init__()
        self.q = q

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        table = compiler.quote_name(compiler.query.get_initial_alias())
        match = _FTS_MATCH.replace("text_content", "m.text_content")
        # UNION ALL keeps the EXISTS whole: the planner can neither hash it nor pull it up.
        return (
            f"EXISTS (SELECT 1 FROM {Message._meta.db_table} m "
            f"WHERE m.session_id = {table}.id AND {match} "
            f"UNION ALL SELECT 1 WHERE {table}.external_key = %s)",
            [self.q, self.q],
        )


def sessions_with_text_or_key(q: str, *, common: bool | None = None) -> Q:
    """Sessions with a message whose text matches `q` (`sessions_with_text`), or whose external
    key is `q`: a framework's thread or session id typed into the search box finds its session."""
    if len(q) > EXTERNAL_KEY_MAX:
        return sessions_with_text(q, common=common)
    by_key = Q(external_key=q)
    if connection.vendor != "postgresql":
        return sessions_with_text(q) | by_key
    if common is None:
        common = text_is_common(q)
    if common:
        return Q(TextOrKeyMatch(q))
    return sessions_with_text(q, common=False) | by_key


def _reads_as_int(key: str) -> bool:
    # As Django's JSON key transform decides: whatever int() takes ("-1", "1_0") is an index.
    try:
        int(key)
    except ValueError:
        return False
    return True


def session_list(filters: SessionFilters | None = None) -> QuerySet[Session]:
    """Sessions matching `filters`, with agent and user joined; order with `SESSION_SORTS`."""
    f = filters or SessionFilters()
    sessions = Session.objects.select_related("agent", "user")
    if f.agent is not None:
        sessions = sessions.filter(agent_id=f.agent)
    if f.user is not None:
        sessions = sessions.filter(user_id=f.user)
    if f.platform:
        sessions = sessions.filter(platform=f.platform)
    if f.external_key:
        sessions = sessions.filter(external_key=f.external_key)
    if f.status == "active":
        sessions = sessions.active()
    elif f.status == "finished":
        sessions = sessions.finished()
    elif f.status:
        raise InvalidInput("status must be 'active' or 'finished'.", field="status")
    if f.created_after is not None:
        sessions = sessions.filter(created_at__gte=f.created_after)
    if f.created_before is not None:
        sessions = sessions.filter(created_at__lt=f.created_before)
    if f.has_errors is True:
        sessions = sessions.with_errors()
    elif f.has_errors is False:
        sessions = sessions.filter(error_count=0)
    if f.metadata_key:
        if not METADATA_KEY.match(f.metadata_key) or "__" in f.metadata_key:
            raise InvalidInput(
                "metadata key may hold letters, digits, '_', '.' and '-' only.",
                field="metadata_key",
            )
        if _reads_as_int(f.metadata_key):  # the JSON path would take it for a list position
            raise InvalidInput("metadata key must not be a bare number.", field="metadata_key")
        # Cast: KT's own exact lookup would parse the value as JSON on SQLite ("malformed JSON").
        annotated = sessions.alias(
            _meta_value=Cast(KT(f"metadata__{f.metadata_key}"), output_field=TextField())
        )
        sessions = (
            annotated.filter(_meta_value=f.metadata_value)
            if f.metadata_value
            else annotated.filter(_meta_value__isnull=False)
        )
    if f.q:
        sessions = sessions.filter(sessions_with_text_or_key(f.q, common=f.q_common))
    return sessions


def session_get(*, session_id: uuid.UUID | str) -> Session:
    """One session with its agent and user."""
    try:
        pk = uuid.UUID(str(session_id))
    except ValueError:
        raise NotFound(f"No session {session_id}.") from None
    session = Session.objects.select_related("agent", "user").filter(pk=pk).first()
    if session is None:
        raise NotFound(f"No session {session_id}.")
    return session


# What a transcript shows of a message and of each of its tool calls: never a payload.
TRANSCRIPT_MESSAGE_FIELDS = (
    "id",
    "seq",
    "role",
    "content_type",
    "model",
    "input_tokens",
    "output_tokens",
    "text_content",
    "media_url",
    "created_at",
)
TRANSCRIPT_CALL_FIELDS = (
    "id",
    "message_id",
    "tool_name",
    "state",
    "is_error",
    "duration_ms",
    "call_id",
    "error_message",
)


def session_transcript(
    *, session: Session, after_seq: int = -1, limit: int = 100
) -> list[dict[str, Any]]:
    """Up to `limit` messages after `after_seq`, in order, as dicts of what a transcript shows
    (`TRANSCRIPT_MESSAGE_FIELDS`, `role_label`, `content_type_label`), each with its tool calls
    as the list `calls` (`TRANSCRIPT_CALL_FIELDS`, `state_label`): two queries whatever the page
    size, and no model instance built for rows a template only reads."""
    messages = list(
        Message.objects.filter(session=session, seq__gt=after_seq)
        .order_by("seq")
        .values(*TRANSCRIPT_MESSAGE_FIELDS)[:limit]
    )
    by_id: dict[int, dict[str, Any]] = {}
    for message in messages:
        message["role_label"] = ROLE_LABELS.get(message["role"], message["role"])
        message["content_type_label"] = CONTENT_TYPE_LABELS.get(
            message["content_type"], message["content_type"]
        )
        message["calls"] = []
        by_id[message["id"]] = message
    if by_id:
        calls = ToolCall.objects.filter(message_id__in=by_id).order_by("id")
        for call in calls.values(*TRANSCRIPT_CALL_FIELDS):
            call["state_label"] = STATE_LABELS.get(call["state"], call["state"])
            by_id[call["message_id"]]["calls"].append(call)
    return messages


def message_list(
    *,
    agent: int | None = None,
    session: uuid.UUID | str | None = None,
    role: str = "",
    content_type: str = "",
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Message]:
    """Messages across sessions (provider payload deferred); order by `-created_at, -id`."""
    messages = Message.objects.without_payloads()
    if agent is not None:
        messages = messages.filter(agent_id=agent)
    if session is not None:
        messages = messages.filter(session_id=session)
    if role:
        messages = messages.filter(role=role)
    if content_type:
        messages = messages.filter(content_type=content_type)
    if created_after is not None:
        messages = messages.filter(created_at__gte=created_after)
    if created_before is not None:
        messages = messages.filter(created_at__lt=created_before)
    return messages


def tool_call_list(
    *,
    agent: int | None = None,
    session: uuid.UUID | str | None = None,
    tool_name: str = "",
    is_error: bool | None = None,
    has_approval: bool | None = None,
    state: str = "",
    fingerprint: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    call_id: str = "",
) -> QuerySet[ToolCall]:
    """Tool calls matching the filters; order by `-created_at, -id`."""
    calls = ToolCall.objects.all()
    if agent is not None:
        calls = calls.filter(agent_id=agent)
    if session is not None:
        calls = calls.filter(session_id=session)
    if call_id:
        calls = calls.filter(call_id=call_id)
    if tool_name:
        calls = calls.filter(tool_name=tool_name)
    if is_error is not None:
        calls = calls.filter(is_error=is_error)
    if fingerprint is not None:
        calls = calls.filter(is_error=True, error_fingerprint=fingerprint)
    if has_approval is not None:
        calls = calls.filter(approval__isnull=not has_approval)
    if state:
        calls = calls.filter(state=state)
    if created_after is not None:
        calls = calls.filter(created_at__gte=created_after)
    if created_before is not None:
        calls = calls.filter(created_at__lt=created_before)
    return calls


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _starts_a_day(moment: dt.datetime | None) -> bool:
    if moment is None:
        return True
    try:
        return timezone.localtime(moment).time() == dt.time.min
    except OverflowError:  # a moment at the edge of year 1 or 9999: no day row starts there
        return False


def error_group_days(
    *,
    agent: int | None = None,
    tool_name: str = "",
    fingerprint: str | None = None,
    since: dt.date | None = None,
) -> QuerySet[ErrorGroupDay]:
    """Rows of the error-group rollup: failures per (agent, tool, fingerprint, day)."""
    days = ErrorGroupDay.objects.all()
    if agent is not None:
        days = days.filter(agent_id=agent)
    if tool_name:
        days = days.filter(tool_name=tool_name)
    if fingerprint is not None:
        days = days.filter(error_fingerprint=fingerprint)
    if since is not None:
        days = days.filter(day__gte=since)
    return days


class _FailuresOn(RawSQL):
    """The failures of one day's rows, an aggregate over ErrorGroupDay: the same SQL as
    `Sum("failures", filter=Q(day=day))`, which the ORM takes about 0.1 ms to build; thirty of
    them (a sparkline) took longer to build than the query to run."""

    contains_aggregate = True

    def __init__(self, day: dt.date) -> None:
        super().__init__(
            "SUM(failures) FILTER (WHERE day = %s)", [day.isoformat()], output_field=IntegerField()
        )

    def get_group_by_cols(self) -> list[Any]:
        return []


def tool_error_groups(
    *,
    agent: int | None = None,
    tool_name: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    daily_from: dt.date | None = None,
    days: int = 0,
) -> QuerySet:
    """Failing tool calls grouped by (tool, fingerprint): count, sessions hit, first and last
    seen, a sample message, and with `days` the failures of each day from `daily_from` on as
    `day_0`, `day_1`, …; the biggest group first.

    A window that starts at midnight (or is open) and has no end is summed from ErrorGroupDay,
    a few hundred small rows whatever the number of calls. Any other window cuts through a day
    row, so it groups the failures themselves, served by the partial index on failures.
    """
    if until is None and _starts_a_day(since):
        groups = error_group_days(
            agent=agent,
            tool_name=tool_name,
            since=timezone.localdate(since) if since is not None else None,
        )
        numbers = {
            "count": Sum("failures"),
            "sessions": Sum("sessions"),
            "first_seen": Min("first_seen_at"),
            "last_seen": Max("last_seen_at"),
            "sample_message": Max(codepoint_order("sample_message")),
        }
        daily = {
            f"day_{i}": _FailuresOn(daily_from + dt.timedelta(days=i))
            for i in range(days if daily_from else 0)
        }
    else:
        groups = tool_call_list(
            agent=agent,
            tool_name=tool_name,
            is_error=True,
            created_after=since,
            created_before=until,
        )
        numbers = {
            "count": Count("id"),
            "sessions": Count("session_id", distinct=True),
            "first_seen": Min("created_at"),
            "last_seen": Max("created_at"),
            "sample_message": Max(codepoint_order("error_message")),
        }
        daily = {
            f"day_{i}": Count(
                "id",
                filter=Q(
                    created_at__gte=_day_start(daily_from + dt.timedelta(days=i)),
                    created_at__lt=_day_start(daily_from + dt.timedelta(days=i + 1)),
                ),
            )
            for i in range(days if daily_from else 0)
        }
    return (
        groups.order_by()
        .values("tool_name", "error_fingerprint")
        .annotate(**numbers, **daily)
        .order_by(*ERROR_GROUP_ORDERING)
    )


ERROR_GROUP_ORDERING = ("-count", "tool_name", "error_fingerprint")


def error_groups_after(token: str) -> Q:
    """The groups after a cursor (`encode_cursor(ERROR_GROUP_ORDERING, group)`) in
    `tool_error_groups`' order: a filter on the aggregate, so a HAVING clause. A forged cursor
    is `InvalidInput`."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        count, tool, fingerprint = payload["v"]
        if payload["o"] != list(ERROR_GROUP_ORDERING) or not (
            isinstance(count, int) and isinstance(tool, str) and isinstance(fingerprint, str)
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidInput(
            "The cursor is not valid for this list: pass back the `next_cursor` you were given.",
            field="cursor",
        ) from None
    if "\x00" in tool + fingerprint or not 0 <= count <= INT32_MAX:
        raise InvalidInput("The cursor is not valid for this list.", field="cursor")
    return (
        Q(count__lt=count)
        | Q(count=count, tool_name__gt=tool)
        | Q(count=count, tool_name=tool, error_fingerprint__gt=fingerprint)
    )


def tool_error_group_page(
    groups: QuerySet, *, cursor: str | None, size: int
) -> Page[dict[str, Any]]:
    """One page of `tool_error_groups`, after `cursor`: by keyset on the aggregates, no OFFSET."""
    if cursor:
        groups = groups.filter(error_groups_after(cursor))
    rows = list(groups[: size + 1])
    next_cursor = encode_cursor(ERROR_GROUP_ORDERING, rows[size - 1]) if len(rows) > size else None
    return Page(items=rows[:size], next_cursor=next_cursor)


def daily_counts(group: dict[str, Any], days: int) -> list[int]:
    """The `day_0` … counts `tool_error_groups` annotated, oldest first, taken off `group`."""
    return [group.pop(f"day_{i}") or 0 for i in range(days)]


def checkpoint_latest(*, session_id: uuid.UUID | str) -> Checkpoint:
    """The newest checkpoint of a session: one probe of `checkpoint_latest_idx`."""
    checkpoint = Checkpoint.objects.latest_for(session_id)
    if checkpoint is None:
        raise NotFound(f"Session {session_id} has no checkpoint.")
    return checkpoint


def activity_stats(*, agent: int | None = None, days: int = 30) -> dict[str, Any]:
    """Totals and a per-day series for one agent or all: sessions, messages, tool calls by state,
    success rate. Totals and the series come from DailyActivity, the states from ToolStateCount:
    a row per agent and day or state, whatever the number of sessions, messages or tool calls."""
    activity = DailyActivity.objects.all()
    if agent is not None:
        activity = activity.filter(agent_id=agent)
    totals = activity.aggregate(
        sessions=Sum("sessions", default=0),
        active_sessions=Sum("active_sessions", default=0),
        messages=Sum("messages", default=0),
        tool_calls=Sum("tool_calls", default=0),
        tool_errors=Sum("tool_errors", default=0),
    )
    counts = ToolStateCount.objects.all()
    if agent is not None:
        counts = counts.filter(agent_id=agent)
    by_state = {state: 0 for state in ToolCallState.values}
    for row in counts.order_by().values("state").annotate(n=Sum("calls")):
        by_state[row["state"]] = row["n"]
    finished = by_state[ToolCallState.COMPLETED] + by_state[ToolCallState.FAILED]
    success_rate = by_state[ToolCallState.COMPLETED] / finished if finished else None

    today = timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    per_day = {
        row["day"]: row
        for row in activity.filter(day__gte=start)
        .order_by()
        .values("day")
        .annotate(messages=Sum("messages"), tool_errors=Sum("tool_errors"))
    }
    series = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        row = per_day.get(day, {})
        series.append(
            {
                "day": day,
                "messages": row.get("messages", 0),
                "tool_errors": row.get("tool_errors", 0),
            }
        )
    return {
        **totals,
        "tool_calls_by_state": by_state,
        "success_rate": success_rate,
        "per_day": series,
    }


# --- Console reads ------------------------------------------------------------------------------


def count_capped(queryset: QuerySet, *, cap: int) -> int:
    """How many rows `queryset` has, counting no further than `cap + 1`: one bounded query."""
    return queryset.order_by()[: cap + 1].count()


# A checkpoint's state is shown as JSON up to this size; a larger one by its size alone.
STATE_SHOWN_BYTES = 200_000


def session_checkpoints(*, session: Session, limit: int = 10) -> list[Checkpoint]:
    """The newest checkpoints of a session (data included), by `checkpoint_latest_idx`. A
    framework checkpoint's state is read only when small (`state_size` says its size)."""
    checkpoints = list(
        Checkpoint.objects.filter(session=session)
        .order_by("-created_at", "-id")
        .defer("state")
        .annotate(state_bytes=Length("state"))[:limit]
    )
    small = [c.pk for c in checkpoints if c.state_bytes and c.state_bytes <= STATE_SHOWN_BYTES]
    states = (
        dict(Checkpoint.objects.filter(pk__in=small).values_list("pk", "state")) if small else {}
    )
    for checkpoint in checkpoints:
        checkpoint.state = states.get(checkpoint.pk)
    return checkpoints


def tool_call_get(*, call_id: int) -> ToolCall:
    """One tool call with its payloads, its session and the message that asked for it."""
    call = (
        ToolCall.objects.select_related("session", "agent", "message")
        .defer("message__raw")
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        raise NotFound(f"No tool call {call_id}.")
    return call


def tool_error_group_calls(*, tool_name: str, fingerprint: str) -> QuerySet:
    """The failed calls of one error group as rows to list: id, created_at, error_message,
    duration_ms, session_id, session_name, agent_name and the asking message's message_seq;
    order by `-created_at, -id` (served by `toolcall_error_group_idx`). Plain rows rather than
    four model instances per call, which took a page of them longer to build than to query."""
    return tool_call_list(tool_name=tool_name, fingerprint=fingerprint).values(
        "id",
        "created_at",
        "error_message",
        "duration_ms",
        "session_id",
        session_name=F("session__name"),
        agent_name=F("agent__name"),
        message_seq=F("message__seq"),
    )


def tool_error_group_summary(
    *, tool_name: str, fingerprint: str, daily_from: dt.date | None = None, days: int = 0
) -> dict[str, Any] | None:
    """Count, sessions hit, first and last seen, a sample message and, with `days`, the daily
    failures (see `tool_error_groups`) of one error group, over all agents and all time."""
    return (
        tool_error_groups(tool_name=tool_name, daily_from=daily_from, days=days)
        .filter(error_fingerprint=fingerprint)
        .order_by()
        .first()
    )


def tool_failure_leaders(
    *, since: dt.datetime, agent: int | None = None, limit: int = 8
) -> list[dict[str, Any]]:
    """The tools failing most since `since`: failures and sessions hit per tool."""
    calls = ToolCall.objects.filter(is_error=True, created_at__gte=since)
    if agent is not None:
        calls = calls.filter(agent_id=agent)
    return list(
        calls.order_by()
        .values("tool_name")
        .annotate(failures=Count("id"), sessions=Count("session_id", distinct=True))
        .order_by("-failures", "tool_name")[:limit]
    )


def agent_activity(
    *, agent_ids: list[int], since: dt.date | None = None
) -> dict[int, dict[str, int]]:
    """Per agent: sessions started, messages, tool calls and errors from `since` (a day) on,
    summed from DailyActivity: a row per agent and day, never the sessions or messages."""
    activity = DailyActivity.objects.filter(agent_id__in=agent_ids)
    if since is not None:
        activity = activity.filter(day__gte=since)
    rows = (
        activity.order_by()
        .values("agent_id")
        .annotate(
            sessions=Sum("sessions", default=0),
            messages=Sum("messages", default=0),
            tool_calls=Sum("tool_calls", default=0),
            tool_errors=Sum("tool_errors", default=0),
        )
    )
    return {row.pop("agent_id"): row for row in rows}


def session_export_chunks(*, session: Session, chunk: int = 500) -> Any:
    """The whole transcript with payloads, in chunks of `chunk` messages: two queries per chunk,
    so an export of any length streams in bounded memory."""
    after_seq = -1
    while True:
        messages = list(
            Message.objects.filter(session=session, seq__gt=after_seq)
            .order_by("seq")
            .prefetch_related(Prefetch("tool_calls", queryset=ToolCall.objects.order_by("id")))[
                :chunk
            ]
        )
        if not messages:
            return
        yield messages
        if len(messages) < chunk:
            return
        after_seq = messages[-1].seq
