"""Reads that find sessions, messages and tool calls: the session browser's filters and text
search, and the API's query calls. Every list is ordered by an index and paged by keyset."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    OuterRef,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from config.database import planner_row_estimate
from config.errors import InvalidInput, NotFound
from config.querysets import filter_given
from sessions_app.models import (
    Message,
    Session,
    ToolCall,
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

    A walk finds a match every `total / hits` messages; the fence fetches all `hits`, so a
    common word favours the walk and a rare one the fence. SQLite has no statistics and no
    fence: always False there.
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
    # index and runs to_tsvector on every row until a page is full (README, "What the code's
    # choices rest on").
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
    before the first row."""

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
    sessions = filter_given(
        Session.objects.select_related("agent", "user"),
        agent_id=f.agent,
        user_id=f.user,
        platform=f.platform or None,
        external_key=f.external_key or None,
        created_at__gte=f.created_after,
        created_at__lt=f.created_before,
    )
    if f.status == "active":
        sessions = sessions.active()
    elif f.status == "finished":
        sessions = sessions.finished()
    elif f.status:
        raise InvalidInput("status must be 'active' or 'finished'.", field="status")
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
    return filter_given(
        Message.objects.without_payloads(),
        agent_id=agent,
        session_id=session,
        role=role or None,
        content_type=content_type or None,
        created_at__gte=created_after,
        created_at__lt=created_before,
    )


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
    calls = filter_given(
        ToolCall.objects.all(),
        agent_id=agent,
        session_id=session,
        call_id=call_id or None,
        tool_name=tool_name or None,
        is_error=is_error,
        state=state or None,
        created_at__gte=created_after,
        created_at__lt=created_before,
    )
    if fingerprint is not None:  # "" is a value here, not "no filter"
        calls = calls.filter(is_error=True, error_fingerprint=fingerprint)
    if has_approval is not None:
        calls = calls.filter(approval__isnull=not has_approval)
    return calls


def count_capped(queryset: QuerySet, *, cap: int) -> int:
    """How many rows `queryset` has, counting no further than `cap + 1`: one bounded query."""
    return queryset.order_by()[: cap + 1].count()
