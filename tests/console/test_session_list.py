"""The session browser: filters, sorts, keyset "load more", capped totals."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.console import CappedCount
from config.keyset import encode_cursor
from sessions_app.selectors import SESSION_SORTS
from sessions_app.services import MessageIn, message_append, session_finish
from tests.console.conftest import HOSTILE, assert_inert, bulk_activity, htmx
from tests.factories import AgentFactory, SessionFactory, UserFactory, conversation

URL = reverse("console:session-list")


def names(response) -> list[str]:
    return [s["name"] for s in response.context["sessions"]]


def test_it_lists_sessions_newest_first(viewer_client: Client) -> None:
    now = timezone.now()
    SessionFactory(name="older", created_at=now - dt.timedelta(hours=2))
    SessionFactory(name="newer", created_at=now)
    response = viewer_client.get(URL)
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert names(response) == ["newer", "older"]
    assert str(response.context["total"]) == "2"


def test_it_filters_by_every_field_in_the_query_string(viewer_client: Client) -> None:
    now = timezone.now()
    agent = AgentFactory(name="billing")
    user = UserFactory()
    hit = SessionFactory(
        name="hit",
        agent=agent,
        user=user,
        platform="slack",
        metadata={"channel": "email"},
        created_at=now - dt.timedelta(days=2),
    )
    conversation(hit, turns=1, failing=1)
    SessionFactory(name="other agent", platform="slack", metadata={"channel": "email"})
    finished = SessionFactory(name="finished", agent=agent, user=user, platform="slack")
    session_finish(session_id=finished.pk)
    day = (now - dt.timedelta(days=2)).date().isoformat()
    cases = {
        f"agent={agent.pk}": {"hit", "finished"},
        f"user={user.pk}": {"hit", "finished"},
        "platform=slack": {"hit", "other agent", "finished"},
        "status=active": {"hit", "other agent"},
        "status=finished": {"finished"},
        f"created_after={day}&created_before={day}": {"hit"},
        "has_errors=1": {"hit"},
        "meta_key=channel&meta_value=email": {"hit", "other agent"},
        "q=Question": {"hit"},
    }
    for query, expected in cases.items():
        response = viewer_client.get(f"{URL}?{query}")
        assert response.status_code == 200, query
        assert set(names(response)) == expected, query


@pytest.mark.parametrize("sort", ["messages", "errors"])
def test_it_sorts_by_messages_and_errors(viewer_client: Client, sort: str) -> None:
    small, big = SessionFactory(name="small"), SessionFactory(name="big")
    conversation(small, turns=1)
    conversation(big, turns=3, failing=2)
    response = viewer_client.get(f"{URL}?sort={sort}")
    assert names(response)[0] == "big"


def test_it_loads_more_by_keyset_with_no_repeats(viewer_client: Client) -> None:
    bulk_activity(120)
    first = viewer_client.get(URL)
    assert len(names(first)) == 50
    assert str(first.context["total"]) == "120"
    seen = names(first)
    more = first.context["more_url"]
    while more:
        page = viewer_client.get(URL + more, headers=htmx("load-more"))
        html = page.content.decode()
        assert "<html" not in html and "<tr" in html
        seen += names(page)
        more = page.context["more_url"]
    assert len(seen) == len(set(seen)) == 120


def test_it_caps_the_total_instead_of_counting_the_table(viewer_client: Client) -> None:
    bulk_activity(1005)
    response = viewer_client.get(URL)
    assert response.context["total"] == CappedCount(1001, 1000)
    assert "1,000+" in response.content.decode()


def test_it_answers_htmx_filters_with_the_results_fragment(viewer_client: Client) -> None:
    SessionFactory(name="only")
    response = viewer_client.get(f"{URL}?platform=web", headers=htmx("results"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<form" not in html
    assert "only" in html


@pytest.mark.parametrize(
    "query",
    [
        "created_after=yesterday",
        "agent=abc",
        "status=gone",
        "sort=random",
        "has_errors=maybe",
        "meta_key=a__b",
        # Bare numbers, as int() reads them: a JSON path takes them for list positions.
        "meta_key=2147483648",
        "meta_key=-2147483649",
        "meta_key=1_0",
        "cursor=forged",
        # Past what a bigint or a UTC time holds: well-formed, yet no query could run with them.
        "agent=99999999999999999999",
        "user=-9223372036854775809",
        "created_before=9999-12-31",
        "cursor=" + encode_cursor(("-created_at", "-id"), {"created_at": None, "id": 1}),
    ],
)
def test_it_explains_bad_filters_instead_of_failing(viewer_client: Client, query: str) -> None:
    response = viewer_client.get(f"{URL}?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert "That filter could not be applied." in html
    assert "<form" in html  # the form is still there, holding what was typed


def test_it_returns_a_redirect_to_login_for_anon_requests(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_returns_403_without_view_permission(outsider_client: Client) -> None:
    assert outsider_client.get(URL).status_code == 403


def test_it_escapes_hostile_names(viewer_client: Client) -> None:
    SessionFactory(
        name=HOSTILE,
        platform=HOSTILE,
        agent=AgentFactory(name=HOSTILE),
        user=UserFactory(email=HOSTILE),
    )
    html = viewer_client.get(URL).content.decode()
    assert_inert(html)
    # The row's name, agent, user and platform, and the agent in the filter's choices.
    assert len(re.findall(r"&lt;img src=x onerror=alert\(1\)&gt;", html)) == 5


def test_a_row_shows_the_session_its_agent_and_its_user(viewer_client: Client) -> None:
    agent = AgentFactory(name="billing-bot")
    known = SessionFactory(name="known", agent=agent, user=UserFactory(email="ann@example.com"))
    anonymous = SessionFactory(name="anonymous", agent=agent, user=None)
    html = viewer_client.get(URL).content.decode()
    for session in (known, anonymous):
        detail = reverse("console:session-detail", args=[session.pk])
        assert f'href="{detail}"' in html
        assert f'<div class="sub mono">{str(session.pk)[:8]}</div>' in html
    agent_link = reverse("console:agent-detail", args=[agent.pk])
    assert html.count(f'<a href="{agent_link}">billing-bot</a>') == 2
    rows = html.split("<tr")
    known_row = next(r for r in rows if ">known</a>" in r)
    anonymous_row = next(r for r in rows if ">anonymous</a>" in r)
    assert "ann@example.com" in known_row
    assert '<span class="muted">—</span>' in anonymous_row


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    bulk_activity(rows)
    # 1 auth session, 2 user, 3-4 the viewer's user and group permissions,
    # 5 one page of sessions with agent and user, 6 the capped total, 7 the agents for the filter.
    with django_assert_num_queries(7) as queries:
        response = viewer_client.get(f"{URL}?has_errors=1&sort=newest")
    assert response.status_code == 200
    # The capped total counts sessions alone, without the joins that bring a row's agent and user.
    (count,) = [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"]]
    assert "JOIN" not in count
    # A "load more" request (a cursor after the first row): the page only.
    cursor = encode_cursor(SESSION_SORTS["newest"], response.context["sessions"][0])
    with django_assert_num_queries(5):
        more = viewer_client.get(f"{URL}?has_errors=1&cursor={cursor}", headers=htmx("load-more"))
    assert "<html" not in more.content.decode()


@pytest.mark.parametrize("rows", [10, 1000])
def test_it_runs_a_fixed_number_of_queries_when_searching_text(
    viewer_client: Client, django_assert_num_queries, rows: int
) -> None:
    first = bulk_activity(rows)[0]
    # As above, but one fewer: the page query counts the matches too (a window over the rows it
    # sorts), so the messages are searched once. PostgreSQL first asks the planner's statistics
    # how common the words are (an EXPLAIN, and the table's size) to choose the plan.
    with django_assert_num_queries(6 + 2 * (connection.vendor == "postgresql")) as queries:
        response = viewer_client.get(f"{URL}?q=Calling")
    assert len(response.context["sessions"]) == min(rows, 50)
    assert response.context["total"] == CappedCount(min(rows, 1001), 1000)
    # Every match is sorted before the page is cut: the rows' agent names and user emails are
    # subqueries, read for the page's rows alone, not joins carried through the sort.
    (page,) = [q["sql"] for q in queries.captured_queries if " OVER " in q["sql"]]
    assert "JOIN" not in page
    shown = response.context["sessions"][0]
    assert (shown["agent_name"], shown["user_email"]) == (first.agent.name, first.user.email)


def test_a_text_search_counts_only_the_sessions_that_match(viewer_client: Client) -> None:
    hit, miss = SessionFactory(name="hit"), SessionFactory(name="miss")
    said = [MessageIn(role="user", text_content=t) for t in ("a refund", "a second refund")]
    message_append(session_id=hit.pk, messages=said)
    message_append(session_id=miss.pk, messages=[MessageIn(role="user", text_content="nothing")])
    response = viewer_client.get(f"{URL}?q=refund")
    assert names(response) == ["hit"]
    assert str(response.context["total"]) == "1"
    assert str(viewer_client.get(f"{URL}?q=absent").context["total"]) == "0"


@pytest.mark.postgres
def test_a_common_word_fills_the_page_without_counting_every_match(
    viewer_client: Client, django_assert_num_queries
) -> None:
    bulk_activity(2000)  # "Calling a tool for Session i" in every session
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sessions_app_message")  # the statistics autovacuum keeps
    # The session, its user and their permissions (two), the estimate and the table's size, the
    # page, the agents for the filter: no count, which would search every message.
    with django_assert_num_queries(8):
        response = viewer_client.get(f"{URL}?q=Calling")
    assert names(response) == [f"Session {i}" for i in range(50)]
    assert response.context["total"] == CappedCount(51, 50)
    assert "50+" in response.content.decode()
    more = viewer_client.get(URL + response.context["more_url"], headers=htmx("load-more"))
    assert names(more) == [f"Session {i}" for i in range(50, 100)]


def test_it_pushes_a_clean_url_for_htmx_filters(viewer_client: Client) -> None:
    response = viewer_client.get(
        f"{URL}?q=&agent=&platform=web&status=&has_errors=1&cursor=", headers=htmx("results")
    )
    assert response["HX-Push-Url"] == f"{URL}?platform=web&has_errors=1"
