"""What the benchmark measures: each Logdeck page or API list beside the stock admin's equivalent
list and the raw-SQL floor for the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import psycopg
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench.dataset import COMMON_WORD, SEARCH_WORD, as_json
from bench.measure import Figure, floor, measure_together, page, shown_rows
from config.keyset import encode_cursor
from sessions_app.api import MESSAGE_COLUMNS as API_MESSAGE_COLUMNS
from sessions_app.api import TOOL_CALL_COLUMNS as API_CALL_COLUMNS
from sessions_app.models import SESSION_ROW_FIELDS
from sessions_app.selectors import TRANSCRIPT_CALL_FIELDS, TRANSCRIPT_MESSAGE_FIELDS

PAGE = 50  # rows a page everywhere: console, API, Logdeck's admin and the stock admin
ERROR_DAYS = 30  # the error groups' default window and sparkline
STOCK = "/bench-stock-admin/sessions_app"

# Each floor reads the rows its page or list shows, column for column: the console's session rows
# (`as_rows()`), the API's sessions, messages and tool calls (its `*_COLUMNS`), a transcript's
# messages and calls, one error group's calls with their session, agent and message. The admin's
# changelists, which have no ratio target, are floored by the API's rows of the same table.
SESSION_COLUMNS = ", ".join([*(f"s.{name}" for name in SESSION_ROW_FIELDS), "a.name", "u.email"])
API_SESSION_COLUMNS = (
    "s.id, s.agent_id, a.name, s.user_id, u.email, s.name, s.platform, s.metadata, s.created_at, "
    "s.updated_at, s.last_activity_at, s.finished_at, s.finished_at IS NULL, s.message_count, "
    "s.tool_call_count, s.error_count"
)
SESSION_FROM = (
    "sessions_app_session s JOIN agents_agent a ON a.id = s.agent_id "
    "LEFT JOIN agents_user u ON u.id = s.user_id"
)
MESSAGE_COLUMNS = ", ".join(API_MESSAGE_COLUMNS.values())
CALL_COLUMNS = ", ".join(API_CALL_COLUMNS.values())
TRANSCRIPT_MESSAGES = ", ".join(TRANSCRIPT_MESSAGE_FIELDS)
TRANSCRIPT_CALLS = ", ".join(TRANSCRIPT_CALL_FIELDS)
GROUP_CALLS = (
    "SELECT c.id, c.created_at, c.error_message, c.duration_ms, c.session_id, s.name, a.name, "
    "m.seq FROM sessions_app_toolcall c JOIN sessions_app_session s ON s.id = c.session_id "
    "JOIN agents_agent a ON a.id = c.agent_id LEFT JOIN sessions_app_message m ON "
    "m.id = c.message_id WHERE c.is_error AND c.tool_name = %s AND c.error_fingerprint = %s "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT %s"
)
FTS = (
    "to_tsvector('english'::regconfig, text_content) "
    "@@ websearch_to_tsquery('english'::regconfig, %s)"
)


@dataclass
class Case:
    key: str
    title: str
    # "page1", "deep", "search" or "other": which target ratio applies; "admin": none (see report)
    kind: str
    logdeck: Callable[[], Any] | None
    stock: Callable[[], Any] | None
    floor: Callable[[], Any] | None
    floor_queries: int = 1


@dataclass
class Context:
    console: Client
    api: Client
    read_key: str
    conn: psycopg.Connection
    big_session: str
    agent_id: int
    error_tool: str
    error_fingerprint: str
    session_middle: tuple[Any, Any]  # (created_at, id) of the session halfway down the list
    message_middle: tuple[Any, Any]
    sessions: int
    messages: int
    tool_calls: int


def context(console: Client, api: Client, read_key: str, conn: psycopg.Connection) -> Context:
    """Look up, once, the ids and the middle rows the deep-page measurements start from."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT details FROM bench.dataset WHERE id = 1")
        details = as_json(cursor.fetchone()[0])
        cursor.execute(
            "SELECT agent_id FROM sessions_app_session GROUP BY agent_id ORDER BY count(*) DESC "
            "LIMIT 1"
        )
        agent_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT tool_name, error_fingerprint FROM sessions_app_toolcall WHERE is_error "
            "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
        )
        error_tool, error_fingerprint = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM sessions_app_session")
        sessions = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM sessions_app_toolcall")
        tool_calls = cursor.fetchone()[0]
        cursor.execute(
            "SELECT created_at, id FROM sessions_app_session ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            [sessions // 2],
        )
        session_middle = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM sessions_app_message")
        messages = cursor.fetchone()[0]
        cursor.execute(
            "SELECT created_at, id FROM sessions_app_message ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            [messages // 2],
        )
        message_middle = cursor.fetchone()
    return Context(
        console=console,
        api=api,
        read_key=read_key,
        conn=conn,
        big_session=details["big_session"],
        agent_id=agent_id,
        error_tool=error_tool,
        error_fingerprint=error_fingerprint,
        session_middle=session_middle,
        message_middle=message_middle,
        sessions=sessions,
        messages=messages,
        tool_calls=tool_calls,
    )


def _cursor(created_at: Any, pk: Any) -> str:
    # The console and API page with config.keyset on (-created_at, -id); a cursor is its token.
    return encode_cursor(("-created_at", "-id"), {"created_at": created_at, "id": pk})


def _url(name: str, *args: Any, **query: Any) -> Callable[[], str]:
    def build() -> str:
        url = reverse(name, args=args)
        return f"{url}?{urlencode(query)}" if query else url

    return build


def _path(path: str, **query: Any) -> Callable[[], str]:
    return lambda: f"{path}?{urlencode(query)}" if query else path


def cases(ctx: Context) -> list[Case]:
    """Every page measurement, in the order of the table."""
    console, api, conn = ctx.console, ctx.api, ctx.conn
    bearer = {"Authorization": f"Bearer {ctx.read_key}"}
    session_cursor = _cursor(*ctx.session_middle)
    message_cursor = _cursor(*ctx.message_middle)
    session_deep_page = max(1, ctx.sessions // 2 // PAGE)
    message_deep_page = max(1, ctx.messages // 2 // PAGE)

    def stock(path: str, **query: Any) -> Callable[[], Any]:
        return page(console, _path(f"{STOCK}/{path}/", **query))

    def admin(model: str, **query: Any) -> Callable[[], Any]:
        return page(console, _url(f"admin:sessions_app_{model}_changelist", **query))

    def transcript_floor() -> None:
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT {TRANSCRIPT_MESSAGES} FROM sessions_app_message WHERE session_id = %s "
                "AND seq > -1 ORDER BY seq LIMIT 100",
                [ctx.big_session],
            )
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                f"SELECT {TRANSCRIPT_CALLS} FROM sessions_app_toolcall WHERE message_id = ANY(%s) "
                "ORDER BY id",
                [ids],
            )
            cursor.fetchall()

    sessions_page = f"SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} "
    api_sessions_page = f"SELECT {API_SESSION_COLUMNS} FROM {SESSION_FROM} "
    order = " ORDER BY s.created_at DESC, s.id DESC LIMIT %s"
    messages_page = f"SELECT {MESSAGE_COLUMNS} FROM sessions_app_message "
    calls_page = f"SELECT {CALL_COLUMNS} FROM sessions_app_toolcall "
    newest = " ORDER BY created_at DESC, id DESC LIMIT %s"
    keyset = " WHERE (created_at, id) < (%s, %s)"
    session_keyset = " WHERE (s.created_at, s.id) < (%s, %s)"
    # The GIN index first, in a fence: left to itself the planner walks the created_at index and
    # runs to_tsvector on every row until the page is full.
    search = (
        f" WHERE s.id IN (WITH hits AS MATERIALIZED (SELECT session_id FROM sessions_app_message "
        f"WHERE {FTS}) SELECT session_id FROM hits)"
    )
    # A common word is faster tested session by session in list order, stopping at the LIMIT.
    common_search = (
        " WHERE EXISTS (SELECT 1 FROM sessions_app_message m WHERE m.session_id = s.id AND "
        + FTS.replace("text_content", "m.text_content")
        + ")"
    )
    message_search = (
        f"WITH hits AS MATERIALIZED (SELECT id FROM sessions_app_message WHERE {FTS}) "
        f"SELECT {MESSAGE_COLUMNS} FROM sessions_app_message WHERE id IN (SELECT id FROM hits)"
    )
    # The page's rows: the first page of groups of the last 30 days (the default window) with
    # their failures per day, summed from the rollup the page reads; grouping the tool calls
    # themselves is no longer what the page has to do.
    spark_from = timezone.localdate() - dt.timedelta(days=ERROR_DAYS - 1)
    spark_days = [spark_from + dt.timedelta(days=i) for i in range(ERROR_DAYS)]
    groups = (
        "SELECT tool_name, error_fingerprint, sum(failures), sum(sessions), min(first_seen_at), "
        'max(last_seen_at), max(sample_message COLLATE "C"), '
        + ", ".join(["sum(failures) FILTER (WHERE day = %s)"] * ERROR_DAYS)
        + " FROM sessions_app_errorgroupday WHERE day >= %s GROUP BY 1, 2 "
        "ORDER BY 3 DESC, 1, 2 LIMIT %s"
    )
    return [
        # --- what the framework costs with nothing to show --------------------------------------
        Case(
            "framework.console",
            "framework: console page, no rows",
            "other",
            page(console, _path("/bench-framework/page/")),
            None,
            None,
        ),
        Case(
            "framework.api",
            "framework: API list, no items",
            "other",
            page(api, _path("/bench-framework/api/sessions"), bearer),
            None,
            None,
        ),
        # --- the console ---------------------------------------------------------------------
        Case(
            "console.overview",
            "console: overview",
            "other",
            page(console, _url("console:overview")),
            None,
            None,
        ),
        Case(
            "console.sessions",
            "console: sessions, first page",
            "page1",
            page(console, _url("console:session-list")),
            stock("session"),
            floor(conn, sessions_page + order, [PAGE]),
        ),
        Case(
            "console.sessions_deep",
            "console: sessions, deep page",
            "deep",
            page(console, _url("console:session-list", cursor=session_cursor)),
            stock("session", p=session_deep_page),
            floor(conn, sessions_page + session_keyset + order, [*ctx.session_middle, PAGE]),
        ),
        Case(
            "console.sessions_agent",
            "console: sessions of one agent",
            "page1",
            page(console, _url("console:session-list", agent=ctx.agent_id)),
            stock("session", agent__id__exact=ctx.agent_id),
            floor(conn, sessions_page + " WHERE s.agent_id = %s" + order, [ctx.agent_id, PAGE]),
        ),
        Case(
            "console.sessions_search",
            f"console: sessions, text search '{SEARCH_WORD}'",
            "search",
            page(console, _url("console:session-list", q=SEARCH_WORD)),
            stock("message", q=SEARCH_WORD),
            floor(conn, sessions_page + search + order, [SEARCH_WORD, PAGE]),
        ),
        Case(
            "console.sessions_search_common",
            f"console: sessions, text search '{COMMON_WORD}'",
            "search",
            page(console, _url("console:session-list", q=COMMON_WORD)),
            stock("message", q=COMMON_WORD),
            floor(conn, sessions_page + common_search + order, [COMMON_WORD, PAGE]),
        ),
        Case(
            "console.transcript",
            "console: transcript of a 5,000-message session",
            "other",
            page(console, _url("console:session-detail", ctx.big_session)),
            stock("message", session__id__exact=ctx.big_session),
            transcript_floor,
            floor_queries=2,
        ),
        Case(
            "console.error_groups",
            "console: error groups",
            "page1",
            page(console, _url("console:error-groups")),
            stock("toolcall", is_error__exact=1),
            floor(conn, groups, [*spark_days, spark_from, PAGE + 1]),
        ),
        Case(
            "console.error_group",
            "console: one error group",
            "page1",
            page(
                console,
                _url("console:error-group", tool=ctx.error_tool, fingerprint=ctx.error_fingerprint),
            ),
            stock(
                "toolcall",
                is_error__exact=1,
                tool_name=ctx.error_tool,
                error_fingerprint=ctx.error_fingerprint,
            ),
            floor(conn, GROUP_CALLS, [ctx.error_tool, ctx.error_fingerprint, PAGE]),
        ),
        # --- the API -------------------------------------------------------------------------
        Case(
            "api.sessions",
            "api: sessions of one agent",
            "page1",
            page(api, _path("/api/v1/sessions", agent=ctx.agent_id), bearer),
            stock("session", agent__id__exact=ctx.agent_id),
            floor(conn, api_sessions_page + " WHERE s.agent_id = %s" + order, [ctx.agent_id, PAGE]),
        ),
        Case(
            "api.messages",
            "api: messages, first page",
            "page1",
            page(api, _path("/api/v1/messages"), bearer),
            stock("message"),
            floor(conn, messages_page + newest, [PAGE]),
        ),
        Case(
            "api.messages_deep",
            "api: messages, deep page",
            "deep",
            page(api, _path("/api/v1/messages", cursor=message_cursor), bearer),
            stock("message", p=message_deep_page),
            floor(conn, messages_page + keyset + newest, [*ctx.message_middle, PAGE]),
        ),
        Case(
            "api.tool_call_errors",
            "api: tool calls with is_error",
            "page1",
            page(api, _path("/api/v1/tool-calls", is_error="true"), bearer),
            stock("toolcall", is_error__exact=1),
            floor(conn, calls_page + " WHERE is_error" + newest, [PAGE]),
        ),
        Case(
            "api.stats",
            "api: stats of one agent",
            "other",
            page(api, _path("/api/v1/stats", agent=ctx.agent_id), bearer),
            None,
            None,
        ),
        # --- Logdeck's admin ---------------------------------------------------------------
        Case(
            "admin.messages",
            "admin: messages, first page",
            "admin",
            admin("message"),
            stock("message"),
            floor(conn, messages_page + newest, [PAGE]),
        ),
        # Logdeck's admin pages by keyset, as the console and the API do: its deep page is the
        # page a "next" link reaches from the middle row (a cursor), beside the stock admin's
        # `?p=` page at that same row, read with OFFSET.
        Case(
            "admin.messages_deep",
            "admin: messages, deep page",
            "admin",
            admin("message", cursor=message_cursor),
            stock("message", p=message_deep_page),
            floor(conn, messages_page + keyset + newest, [*ctx.message_middle, PAGE]),
        ),
        Case(
            "admin.messages_search",
            f"admin: messages, search '{SEARCH_WORD}'",
            "admin",
            admin("message", q=SEARCH_WORD),
            stock("message", q=SEARCH_WORD),
            floor(conn, message_search + newest, [SEARCH_WORD, PAGE]),
        ),
        Case(
            "admin.tool_call_errors",
            "admin: tool calls with is_error",
            "admin",
            admin("toolcall", is_error__exact=1),
            stock("toolcall", is_error__exact=1),
            floor(conn, calls_page + " WHERE is_error" + newest, [PAGE]),
        ),
        Case(
            "admin.sessions",
            "admin: sessions, first page",
            "admin",
            admin("session"),
            stock("session"),
            floor(conn, sessions_page + order, [PAGE]),
        ),
    ]


def run_case(case: Case, *, warmup: int, repeat: int) -> dict[str, Figure]:
    """The three figures of one row."""
    figures = measure_together(
        {"logdeck": case.logdeck, "stock": case.stock, "floor": case.floor},
        # The stock admin's searches take a second a run: one warm-up is enough for it.
        warmup={"logdeck": warmup, "stock": min(warmup, 1), "floor": warmup},
        repeat=repeat,
    )
    if figures["floor"].ok:
        figures["floor"].queries = case.floor_queries
    for side in ("logdeck", "stock"):  # what each page showed, from one more call
        call = getattr(case, side)
        if call is not None and figures[side].ok:
            try:
                figures[side].extra["shown_rows"] = shown_rows(call())
            except Exception:  # timed already: a count that cannot be taken is only missing
                figures[side].extra["shown_rows"] = None
    return figures
