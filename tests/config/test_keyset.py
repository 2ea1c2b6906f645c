import base64
import datetime as dt
import json

import pytest
from django.utils import timezone

from agents.models import Agent
from config.errors import InvalidInput
from config.keyset import keyset_page
from sessions_app.models import Session
from sessions_app.selectors import SESSION_SORTS
from tests.factories import AgentFactory, SessionFactory

pytestmark = pytest.mark.django_db

NEWEST = SESSION_SORTS["newest"]


def _walk(ordering: tuple[str, ...], size: int, between_pages=None) -> list[Session]:
    seen: list[Session] = []
    cursor = None
    while True:
        page = keyset_page(Session.objects.all(), ordering=ordering, cursor=cursor, size=size)
        seen += page.items
        if not page.has_more:
            return seen
        cursor = page.next_cursor
        if between_pages:
            between_pages()


def test_it_pages_through_ties_without_skipping_or_repeating():
    agent = AgentFactory()
    same_time = timezone.now().replace(microsecond=123456)
    SessionFactory.create_batch(7, agent=agent, created_at=same_time)
    SessionFactory.create_batch(5, agent=agent)
    seen = _walk(NEWEST, size=3)
    assert len(seen) == 12
    assert len({s.pk for s in seen}) == 12
    keys = [(s.created_at, str(s.pk)) for s in seen]
    assert keys == sorted(keys, reverse=True)


def test_it_stays_correct_while_rows_are_inserted_between_pages():
    agent = AgentFactory()
    base = timezone.now() - dt.timedelta(hours=1)
    originals = [
        SessionFactory(agent=agent, created_at=base + dt.timedelta(seconds=i)) for i in range(10)
    ]

    def insert_newer_and_older() -> None:
        SessionFactory(agent=agent)  # newer than everything: belongs before the cursor
        SessionFactory(agent=agent, created_at=base - dt.timedelta(days=1))  # after the cursor

    seen = _walk(NEWEST, size=4, between_pages=insert_newer_and_older)
    ids = [s.pk for s in seen]
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert {s.pk for s in originals} <= set(ids), "a row was skipped"


@pytest.mark.parametrize("sort", sorted(SESSION_SORTS))
def test_it_orders_every_session_sort_like_order_by(sort):
    agent = AgentFactory()
    for i in range(9):
        SessionFactory(agent=agent, message_count=i % 3, tool_call_count=i % 4, error_count=i % 2)
    ordering = SESSION_SORTS[sort]
    expected = list(Session.objects.order_by(*ordering).values_list("pk", flat=True))
    assert [s.pk for s in _walk(ordering, size=2)] == expected


def test_it_refuses_forged_and_foreign_cursors():
    SessionFactory.create_batch(3)
    page = keyset_page(Session.objects.all(), ordering=NEWEST, cursor=None, size=1)
    for bad in ["garbage", "e30", page.next_cursor[:-3] + "AAA"]:
        with pytest.raises(InvalidInput) as exc:
            keyset_page(Session.objects.all(), ordering=NEWEST, cursor=bad, size=1)
        assert exc.value.field == "cursor"
    with pytest.raises(InvalidInput):
        keyset_page(
            Session.objects.all(),
            ordering=SESSION_SORTS["messages"],
            cursor=page.next_cursor,
            size=1,
        )


def _token(ordering: tuple[str, ...], values_json: str) -> str:
    payload = f'{{"o":{json.dumps(list(ordering))},"v":{values_json}}}'
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("ordering", "values"),
    [
        (NEWEST, '[null, "00000000-0000-4000-8000-000000000001"]'),  # no sort key is NULL
        (NEWEST, '["2026-01-01T00:00:00+00:00", null]'),
        (SESSION_SORTS["messages"], '[Infinity, "00000000-0000-4000-8000-000000000001"]'),
        (SESSION_SORTS["messages"], '[NaN, "00000000-0000-4000-8000-000000000001"]'),
        (SESSION_SORTS["messages"], '[1e400, "00000000-0000-4000-8000-000000000001"]'),
        (
            SESSION_SORTS["messages"],
            '[9223372036854775808, "00000000-0000-4000-8000-000000000001"]',
        ),
        (
            SESSION_SORTS["messages"],
            '[-9223372036854775809, "00000000-0000-4000-8000-000000000001"]',
        ),
        (NEWEST, '["9999-12-31T23:59:59-14:00", "00000000-0000-4000-8000-000000000001"]'),
        (NEWEST, '["0001-01-01T00:00:00+14:00", "00000000-0000-4000-8000-000000000001"]'),
        (NEWEST, '["2026-01-01T00:00:00", "00000000-0000-4000-8000-000000000001"]'),  # naive
    ],
)
def test_it_refuses_cursors_holding_what_no_row_holds(ordering, values):
    # Each would pass the field's to_python and fail only in the query: a 500, not a 400.
    SessionFactory()
    with pytest.raises(InvalidInput) as exc:
        keyset_page(
            Session.objects.all(), ordering=ordering, cursor=_token(ordering, values), size=1
        )
    assert exc.value.field == "cursor"


def test_it_refuses_a_cursor_holding_a_nul_in_text():
    AgentFactory(name="a")
    with pytest.raises(InvalidInput):
        keyset_page(
            Agent.objects.all(),
            ordering=("name", "id"),
            cursor=_token(("name", "id"), '["\\u0000", 1]'),
            size=1,
        )


def test_it_takes_the_sort_keys_at_the_edges_a_row_can_hold():
    session = SessionFactory(message_count=0)
    edges = [
        (
            SESSION_SORTS["messages"],
            '[9223372036854775807, "ffffffff-ffff-4fff-bfff-ffffffffffff"]',
        ),
        (NEWEST, '["9999-12-31T23:59:59.999999+00:00", "ffffffff-ffff-4fff-bfff-ffffffffffff"]'),
    ]
    for ordering, values in edges:
        cursor = _token(ordering, values)
        page = keyset_page(Session.objects.all(), ordering=ordering, cursor=cursor, size=1)
        assert [s.pk for s in page.items] == [session.pk]


def test_it_fetches_one_page_in_one_query(django_assert_num_queries):
    SessionFactory.create_batch(30)
    page = keyset_page(Session.objects.all(), ordering=NEWEST, cursor=None, size=10)
    # One query: LIMIT size + 1 tells whether there is a next page; no COUNT.
    with django_assert_num_queries(1):
        keyset_page(Session.objects.all(), ordering=NEWEST, cursor=page.next_cursor, size=10)
