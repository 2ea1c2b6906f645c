"""Keyset paging of the big tables' changelists (config/admin_paging.py): every page by cursor
is the page OFFSET would give, stays put while rows are inserted, and costs what page 1 does."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core import checks
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import config.admin_paging
from agents.models import Agent
from config.admin_bigtable import BigTableAdmin, change_url
from config.keyset import encode_cursor
from sessions_app.admin import MessageAdmin, SessionAdmin
from sessions_app.models import Message, Session
from tests.factories import AgentFactory, SessionFactory

SESSIONS = "/admin/sessions_app/session/"
MESSAGES = "/admin/sessions_app/message/"
TOOL_CALLS = "/admin/sessions_app/toolcall/"
PER_PAGE = 7
# Columns of the session changelist, counted as ?o= counts them (the action checkbox is 0).
CREATED, MESSAGE_COUNT, FINISHED = 5, 8, 7


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SessionAdmin, "list_per_page", PER_PAGE)
    monkeypatch.setattr(MessageAdmin, "list_per_page", PER_PAGE)


def make_sessions(count: int, *, agent: Agent | None = None, start: int = 0) -> list[Session]:
    """Sessions with tied timestamps and tied message counts, so the primary key must break ties."""
    agent = agent or AgentFactory()
    base = timezone.now() - timedelta(days=1)
    return Session.objects.bulk_create(
        Session(
            agent=agent,
            name=f"S{start + i}",
            created_at=base - timedelta(minutes=(start + i) // 3),  # three per minute
            last_activity_at=base,
            message_count=(start + i) % 4,
        )
        for i in range(count)
    )


def rows(body: bytes) -> list[str]:
    """The primary keys of the rows on a changelist page, in the order shown."""
    return re.findall(r'name="_selected_action" value="([^"]+)"', body.decode())


def link(body: bytes, rel: str) -> str | None:
    found = re.search(rf'<a role="button" href="([^"]*)" rel="{rel}">', body.decode())
    return html.unescape(found.group(1)) if found else None


def walk(client: Client, url: str, rel: str = "next") -> list[list[str]]:
    """Every page from `url` on, following the `rel` link until there is none."""
    pages = []
    query: str | None = url.partition("?")[2]
    path = url.partition("?")[0]
    while query is not None:
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200
        pages.append(rows(response.content))
        href = link(response.content, rel)
        query = href.removeprefix("?") if href is not None else None
        assert len(pages) < 100, "the links go round in a circle"
    return pages


def flat(pages: list[list[str]]) -> list[str]:
    return [pk for page in pages for pk in page]


def chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + PER_PAGE] for i in range(0, len(ids), PER_PAGE)]


def ids(queryset: object) -> list[str]:
    return [str(pk) for pk in queryset.values_list("pk", flat=True)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "ordering"),
    [
        ("", ("-created_at", "-id")),
        (f"o={CREATED}", ("created_at", "id")),
        (f"o={MESSAGE_COUNT}", ("message_count", "id")),
        (f"o=-{MESSAGE_COUNT}", ("-message_count", "-id")),
        (f"o=-{MESSAGE_COUNT}.{CREATED}", ("-message_count", "created_at", "id")),
    ],
)
def test_it_walks_every_page_by_cursor_as_offset_would(
    query: str, ordering: tuple[str, ...], superuser_client: Client, small_pages: None
) -> None:
    make_sessions(45)
    expected = chunks(ids(Session.objects.order_by(*ordering)))

    forward = walk(superuser_client, f"{SESSIONS}?{query}")
    assert forward == expected

    # Back from the last page by "previous": the same pages, in reverse.
    last = superuser_client.get(f"{SESSIONS}?{query}")
    for _ in range(len(expected) - 1):
        last = superuser_client.get(SESSIONS + link(last.content, "next"))
    backward = walk(superuser_client, SESSIONS + link(last.content, "prev"), rel="prev")
    assert [rows(last.content), *backward] == expected[::-1]

    # An old `?p=N` link opens page N (by OFFSET, while shallow) and goes on by cursor.
    third = superuser_client.get(f"{SESSIONS}?{query}&p=3")
    assert rows(third.content) == expected[2]
    assert "cursor=" in link(third.content, "next") and "p=" not in link(third.content, "next")
    assert rows(superuser_client.get(SESSIONS + link(third.content, "prev")).content) == expected[1]


def test_it_pages_a_filtered_and_searched_list_by_cursor(
    superuser_client: Client, small_pages: None
) -> None:
    mine, other = AgentFactory(name="mine"), AgentFactory(name="other")
    make_sessions(30, agent=mine)
    make_sessions(30, agent=other, start=30)
    Session.objects.filter(message_count=0).update(error_count=0)
    url = f"{SESSIONS}?q=mine&has_errors=0&o={MESSAGE_COUNT}"
    expected = ids(Session.objects.filter(agent=mine).order_by("message_count", "id"))
    assert flat(walk(superuser_client, url)) == expected


def test_it_keeps_the_next_pages_put_while_rows_are_inserted(
    superuser_client: Client, small_pages: None
) -> None:
    make_sessions(30)
    before = chunks(ids(Session.objects.order_by("-created_at", "-id")))
    first = superuser_client.get(SESSIONS)
    assert rows(first.content) == before[0]

    SessionFactory.create_batch(5)  # newer than every row listed: they go on top
    second = superuser_client.get(SESSIONS + link(first.content, "next"))
    assert rows(second.content) == before[1]  # OFFSET would have shifted by five
    third = superuser_client.get(SESSIONS + link(second.content, "next"))
    assert rows(third.content) == before[2]
    # "Previous" is the rows just before: the first page as it was; the new rows are above it.
    back = superuser_client.get(SESSIONS + link(second.content, "prev"))
    assert rows(back.content) == before[0]
    assert link(back.content, "prev") is not None


def test_it_runs_the_same_queries_on_every_page_at_1_and_1000_rows(
    superuser_client: Client, django_assert_num_queries: Callable[..., object]
) -> None:
    make_sessions(1)
    # 1 the login session, 2 the user, [the planner's row estimate, PostgreSQL only], 3 the
    # capped count, 4 the page of sessions, 5 the agents for the agent filter.
    queries = 5 + (connection.vendor == "postgresql")
    with django_assert_num_queries(queries):
        assert superuser_client.get(SESSIONS).status_code == 200

    make_sessions(999, start=1)
    middle = Session.objects.order_by("-created_at", "-id")[500]
    cursor = encode_cursor(("-created_at", "-id"), middle)
    first = superuser_client.get(SESSIONS)
    for url in (
        SESSIONS,
        f"{SESSIONS}?cursor={cursor}",
        SESSIONS + link(first.content, "next"),
        SESSIONS + link(superuser_client.get(f"{SESSIONS}?cursor={cursor}").content, "prev"),
        f"{SESSIONS}?p=3",
        f"{SESSIONS}?o={MESSAGE_COUNT}&cursor=" + encode_cursor(("message_count", "id"), middle),
    ):
        with django_assert_num_queries(queries):
            response = superuser_client.get(url)
        assert response.status_code == 200 and len(rows(response.content)) == 50, url


def test_it_reads_a_deep_page_as_one_range_without_offset(superuser_client: Client) -> None:
    make_sessions(120)
    middle = Session.objects.order_by("-created_at", "-id")[60]
    cursor = encode_cursor(("-created_at", "-id"), middle)
    with CaptureQueriesContext(connection) as ctx:
        response = superuser_client.get(f"{SESSIONS}?cursor={cursor}")
    (page,) = [q["sql"] for q in ctx.captured_queries if "sessions_app_session" in q["sql"]][-1:]
    assert "OFFSET" not in page.upper() and "LIMIT 51" in page.upper()
    expected = ids(Session.objects.order_by("-created_at", "-id")[61:111])
    assert rows(response.content) == expected


def test_it_acts_on_the_rows_selected_on_a_keyset_page(
    superuser_client: Client, small_pages: None
) -> None:
    make_sessions(20)
    first = superuser_client.get(SESSIONS)
    second_url = SESSIONS + link(first.content, "next")
    chosen = rows(superuser_client.get(second_url).content)[2:4]
    response = superuser_client.post(
        second_url, {"action": "finish", "index": 0, "_selected_action": chosen}
    )
    assert response.status_code == 302 and "cursor=" in response["Location"]
    assert set(ids(Session.objects.finished())) == set(chosen)


def test_it_acts_on_the_whole_filtered_list_when_all_are_selected(
    superuser_client: Client, small_pages: None
) -> None:
    mine, other = AgentFactory(name="mine"), AgentFactory(name="other")
    make_sessions(20, agent=mine)
    make_sessions(20, agent=other, start=20)
    first = superuser_client.get(f"{SESSIONS}?q=mine")
    second_url = SESSIONS + link(first.content, "next")
    on_page = rows(superuser_client.get(second_url).content)
    response = superuser_client.post(
        second_url,
        {"action": "finish", "index": 0, "select_across": "1", "_selected_action": on_page[:1]},
    )
    assert response.status_code == 302
    # Every session of the search, on this page or any other, and none outside it.
    assert set(ids(Session.objects.finished())) == set(ids(Session.objects.filter(agent=mine)))


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


BAD_CURSORS = {
    "garbage": "not a cursor!",
    "not base64 JSON": "eyJvIjpbIi1jcmVhdGVk",
    "another list's order": _token({"o": ["message_count", "id"], "v": [1, 2]}),
    "a forged value": _token({"o": ["-created_at", "-id"], "v": ["yesterday", "x"]}),
    "too few values": _token({"o": ["-created_at", "-id"], "v": ["2026-01-01T00:00:00+00:00"]}),
    "not an object": _token([1, 2]),
    "a NULL sort key": _token({"o": ["-created_at", "-id"], "v": [None, str(uuid.UUID(int=1))]}),
    "a time past year 9999 in UTC": _token(
        {"o": ["-created_at", "-id"], "v": ["9999-12-31T23:59:59-14:00", str(uuid.UUID(int=1))]}
    ),
}


@pytest.mark.parametrize("name", BAD_CURSORS)
def test_it_answers_a_bad_cursor_with_the_first_page_and_a_message(
    name: str, superuser_client: Client, small_pages: None
) -> None:
    make_sessions(20)
    response = superuser_client.get(SESSIONS, {"cursor": BAD_CURSORS[name]})
    assert response.status_code == 200
    assert b"That page link is not valid for this list" in response.content
    assert rows(response.content) == ids(Session.objects.order_by("-created_at", "-id")[:7])
    assert link(response.content, "prev") is None and link(response.content, "next")


# Lookups the admin builds from the query string that fail only once their query runs, on
# SQLite (its integers stop at a bigint; its times are converted to UTC text) or on both.
FAILING_LOOKUPS = {
    "an id past a bigint": (MESSAGES, {"id__in": "99999999999999999999"}, "sqlite"),
    "a year past a C long": (SESSIONS, {"created_at__year": "99999999999999999999"}, "both"),
    "a time past year 9999 in UTC": (
        SESSIONS,
        {"created_at__gte": "9999-12-31T23:59:59-14:00"},
        "sqlite",
    ),
    "a foreign key past a bigint": (TOOL_CALLS, {"message": "99999999999999999999"}, "sqlite"),
}


@pytest.mark.parametrize("name", FAILING_LOOKUPS)
def test_it_answers_a_lookup_that_cannot_run_with_the_plain_list_and_a_message(
    name: str, superuser_client: Client
) -> None:
    make_sessions(3)
    path, query, fails_on = FAILING_LOOKUPS[name]
    response = superuser_client.get(path, query)
    if fails_on == "sqlite" and connection.vendor != "sqlite":
        assert response.status_code == 200 and rows(response.content) == []  # run, and empty
        return
    # As the stock admin answers a lookup it cannot build: back to the list, unfiltered.
    assert response.status_code == 302 and response["Location"] == f"{path}?e=1"
    shown = superuser_client.get(response["Location"])
    assert shown.status_code == 200
    assert b"That filter or search cannot be applied" in shown.content


def test_it_refuses_regex_lookups(superuser_client: Client) -> None:
    for lookup in ("name__regex", "name__iregex"):
        assert superuser_client.get(SESSIONS, {lookup: "("}).status_code == 400


def test_it_refuses_a_selection_no_row_could_have(superuser_client: Client) -> None:
    session = make_sessions(1)[0]
    agent = session.agent
    for url, selected in [
        (SESSIONS, ["not-a-uuid"]),
        (SESSIONS, [str(session.pk), "\x00"]),
        ("/admin/agents/agent/", ["x"]),
        ("/admin/agents/agent/", ["99999999999999999999"]),
        ("/admin/auth/group/", ["x"]),
    ]:
        data = {"action": "delete_selected", "index": 0, "_selected_action": selected}
        response = superuser_client.post(url, data, follow=True)
        assert response.status_code == 200, (url, selected)
        assert b"The selection holds an id no row can have" in response.content
    assert Session.objects.filter(pk=session.pk).exists() and Agent.objects.filter(pk=agent.pk)


@pytest.mark.parametrize(("page", "shown"), [("abc", 0), ("0", 0), ("-4", 0), ("3", 2)])
def test_it_opens_an_old_page_number_link(
    page: str, shown: int, superuser_client: Client, small_pages: None
) -> None:
    make_sessions(30)
    response = superuser_client.get(SESSIONS, {"p": page})
    assert response.status_code == 200
    assert (
        rows(response.content) == chunks(ids(Session.objects.order_by("-created_at", "-id")))[shown]
    )
    assert b"cannot be opened by its number" not in response.content


def test_it_says_so_when_a_page_number_is_too_deep_for_offset(
    superuser_client: Client, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config.admin_paging, "OFFSET_ROWS_LIMIT", 14)  # pages 1 to 3
    make_sessions(30)
    assert rows(superuser_client.get(SESSIONS, {"p": 3}).content)  # still by OFFSET
    response = superuser_client.get(SESSIONS, {"p": 4})
    assert response.status_code == 200
    assert b"Page 4 cannot be opened by its number" in response.content
    assert rows(response.content) == ids(Session.objects.order_by("-created_at", "-id")[:7])


def test_it_pages_an_order_a_cursor_cannot_hold_by_number_within_a_limit(
    superuser_client: Client, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finished_at may be NULL, and NULL breaks a row comparison: numbered pages instead.
    monkeypatch.setattr(SessionAdmin, "sortable_by", ("created_at", "finished_at"))
    monkeypatch.setattr(config.admin_paging, "OFFSET_ROWS_LIMIT", 14)
    sessions = make_sessions(30)
    Session.objects.filter(pk__in=[s.pk for s in sessions[::2]]).update(finished_at=timezone.now())
    expected = chunks(ids(Session.objects.order_by("finished_at", "id")))
    pages = walk(superuser_client, f"{SESSIONS}?o={FINISHED}")
    assert pages == expected[:3]  # pages 1 to 3, then no "next"
    last = superuser_client.get(f"{SESSIONS}?o={FINISHED}&p=3")
    assert "p=2" in link(last.content, "prev")
    assert b"Later pages of this order are reached by narrowing the list" in last.content


def test_it_keeps_the_date_hierarchy_working(
    superuser_client: Client, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MessageAdmin, "date_hierarchy", "created_at")
    session = SessionFactory()
    Message.objects.bulk_create(
        Message(
            session=session,
            agent_id=session.agent_id,
            seq=i,
            role="user",
            text_content=f"m{i}",
            created_at=timezone.now().replace(year=2024 + i % 2, month=3) - timedelta(hours=i),
        )
        for i in range(40)
    )
    listed = flat(walk(superuser_client, f"{MESSAGES}?created_at__year=2025"))
    assert listed == ids(
        Message.objects.filter(created_at__year=2025).order_by("-created_at", "-id")
    )
    body = superuser_client.get(MESSAGES).content.decode()
    assert "created_at__year=2025" in body  # the drill-down links


def test_it_finds_the_same_rows_by_cursor_in_a_text_search(
    superuser_client: Client, small_pages: None
) -> None:
    session = SessionFactory()
    Message.objects.bulk_create(
        Message(
            session=session,
            agent_id=session.agent_id,
            seq=i,
            role="user",
            text_content="refund please" if i % 3 else "hello",
            created_at=timezone.now() - timedelta(minutes=i // 2),
        )
        for i in range(60)
    )
    expected = ids(
        Message.objects.filter(text_content__contains="refund").order_by("-created_at", "-id")
    )
    with CaptureQueriesContext(connection) as ctx:
        pages = walk(superuser_client, f"{MESSAGES}?q=refund")
    assert flat(pages) == expected
    if connection.vendor == "postgresql":
        sql = [
            q["sql"]
            for q in ctx.captured_queries
            if "to_tsvector" in q["sql"] and not q["sql"].startswith("EXPLAIN")
        ]
        counts = [q for q in sql if q.startswith("SELECT COUNT(*)")]
        lists = [q for q in sql if not q.startswith("SELECT COUNT(*)")]
        # The page keeps the GIN lookup fenced; the capped count stops at its LIMIT instead.
        assert counts and all("MATERIALIZED" not in q for q in counts)
        assert lists and all("MATERIALIZED" in q for q in lists)


def test_it_refuses_list_editable_on_a_big_table() -> None:
    class Editable(BigTableAdmin):
        list_display = ("name", "platform")
        list_editable = ("platform",)

    errors = Editable(Session, admin.AdminSite()).check()
    assert [e.id for e in errors if e.level >= checks.ERROR] == ["logdeck.E001"]


def test_it_never_lets_a_page_number_stretch_the_count(
    superuser_client: Client, small_pages: None
) -> None:
    make_sessions(30)
    with CaptureQueriesContext(connection) as ctx:
        response = superuser_client.get(SESSIONS, {"p": 10**9, "has_errors": "0"})
    assert response.status_code == 200
    (count,) = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    limit = int(re.search(r"LIMIT (\d+)", count).group(1))
    # Counted as deep as the deepest page OFFSET serves, plus the window: never the whole table.
    deepest = config.admin_paging.OFFSET_ROWS_LIMIT // PER_PAGE + 1
    assert limit == deepest * PER_PAGE + SessionAdmin.count_window + 1


def test_it_writes_the_stock_action_checkbox(db: None) -> None:
    session = Session(name='<b>"x" & y</b>', agent=Agent(name="a"))
    model_admin = SessionAdmin(Session, admin.site)
    stock = admin.ModelAdmin.action_checkbox(model_admin, session)
    assert model_admin.action_checkbox(session) == stock
    assert "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;" in stock


@pytest.mark.parametrize(
    ("model", "pk"),
    [(Session, uuid.UUID(int=7)), (Message, 42), (Agent, "a/b c_d%"), (Agent, "ünï")],
)
def test_it_builds_change_links_as_reverse_does(model: type[Model], pk: object) -> None:
    opts = model._meta
    expected = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=(quote(pk),))
    assert change_url(model, pk) == expected


def test_it_counts_a_filtered_list_only_a_small_window_past_the_page(
    superuser_client: Client,
) -> None:
    make_sessions(1_060)
    with CaptureQueriesContext(connection) as ctx:
        response = superuser_client.get(SESSIONS, {"has_errors": "0"})
    # Keyset pages need no page count: 50 rows and a window of 1,000, not 10,000.
    assert b"1,050+ sessions" in response.content
    (count,) = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "LIMIT 1051" in count


def test_it_pages_a_sessions_messages_in_transcript_order(
    superuser_client: Client, small_pages: None
) -> None:
    session, other = SessionFactory(), SessionFactory()
    for owner in (session, other):
        Message.objects.bulk_create(
            Message(session=owner, agent_id=owner.agent_id, seq=i, role="user", text_content="x")
            for i in range(20)
        )
    # Ordered by the (session, seq) unique index: the cursor holds the session id and seq.
    pages = walk(superuser_client, f"{MESSAGES}?session={session.pk}")
    assert flat(pages) == ids(Message.objects.filter(session=session).order_by("seq"))


def test_it_keeps_a_lookup_popup_a_popup_from_page_to_page(
    superuser_client: Client, small_pages: None
) -> None:
    make_sessions(20)
    first = superuser_client.get(SESSIONS, {"_popup": "1", "_to_field": "id"})
    assert first.status_code == 200
    next_page = link(first.content, "next")
    assert "_popup=1" in next_page and "_to_field=id" in next_page and "cursor=" in next_page
    second = superuser_client.get(SESSIONS + next_page)
    assert second.status_code == 200 and b"data-popup-opener" in second.content
