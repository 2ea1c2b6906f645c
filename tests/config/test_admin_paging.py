"""The admin's paginator: an estimate or a capped count, never a COUNT(*) of a whole table."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from config.admin_paging import BoundedCountPaginator, planner_row_estimate


@pytest.fixture
def agents(db: None) -> None:
    Agent.objects.bulk_create(Agent(name=f"a-{i:03d}", active=i % 2 == 0) for i in range(100))


def _paginator(queryset: object, page: int = 1) -> BoundedCountPaginator:
    return BoundedCountPaginator(queryset, per_page=5, page_number=page, window=10)


def test_it_counts_exactly_below_the_window(agents: None) -> None:
    paginator = _paginator(Agent.objects.filter(name__lt="a-012").order_by("name"))
    assert paginator.count == 12 and paginator.num_pages == 3
    assert paginator.count_label == "12"
    assert not paginator.count_is_capped and not paginator.count_is_estimate


def test_it_caps_the_count_and_keeps_the_next_pages_linked(agents: None) -> None:
    active = Agent.objects.filter(active=True).order_by("name")  # 50 rows
    with CaptureQueriesContext(connection) as ctx:
        first = _paginator(active, page=1)
        assert first.count == 15  # page 1 of 5 rows, plus a window of 10
    (sql,) = [q["sql"] for q in ctx.captured_queries]
    assert "LIMIT 16" in sql  # one row past the cap tells "more"
    assert first.count_is_capped and first.count_label == "15+"
    assert first.num_pages == 3

    # Deeper pages count a little further, so every next page stays reachable.
    deep = _paginator(active, page=8)
    assert deep.count == 50 and not deep.count_is_capped
    assert [a.name for a in deep.page(10).object_list] == [f"a-{i:03d}" for i in range(90, 100, 2)]


@pytest.mark.postgres
def test_it_uses_the_planner_estimate_for_a_whole_big_table(agents: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agents_agent")  # what autovacuum does for a real table
    assert planner_row_estimate(Agent, "default") == 100
    with CaptureQueriesContext(connection) as ctx:
        paginator = _paginator(Agent.objects.order_by("name"))
        assert paginator.count == 100
    (sql,) = [q["sql"] for q in ctx.captured_queries]
    assert "pg_class" in sql and "COUNT" not in sql.upper()
    assert paginator.count_is_estimate and paginator.count_label == "about 100"
    assert len(paginator.page(20).object_list) == 5


def test_it_counts_a_small_whole_table_exactly(agents: None) -> None:
    paginator = BoundedCountPaginator(Agent.objects.order_by("name"), per_page=50)
    assert paginator.count == 100 and paginator.count_label == "100"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite has no planner estimate")
def test_it_has_no_estimate_on_sqlite(agents: None) -> None:
    assert planner_row_estimate(Agent, "default") is None
    assert BoundedCountPaginator(Agent.objects.all(), per_page=5).count == 100
