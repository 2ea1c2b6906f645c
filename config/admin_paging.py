"""Admin paging for big tables: page counts without `COUNT(*)` over a whole table.

The stock admin paginator counts every matching row to draw its page links; on a million rows that
count is the slowest part of the page. `BoundedCountPaginator` instead asks PostgreSQL's planner
for an unfiltered table (`pg_class.reltuples`), and otherwise counts at most a window of rows
through a LIMITed subquery, so no changelist's count is unbounded.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

# Rows counted exactly beyond the current page; past this the count shows as "N+".
COUNT_WINDOW = 10_000


def planner_row_estimate(model: type[Model], using: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (kept by ANALYZE/autovacuum), or None if unknown."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 means "never analysed" (PostgreSQL 14+); 0 may be an empty or a brand-new table.
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class BoundedCountPaginator(Paginator):
    """A paginator whose count is an estimate or a capped count, never a whole-table COUNT(*).

    - Unfiltered on PostgreSQL with more rows than the window: the planner's estimate (1 query).
    - Otherwise: rows counted up to `page_number * per_page + window` (1 query, LIMITed), so the
      next `window / per_page` pages are always linked and a filtered count stays bounded.
    """

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        page_number: int = 1,
        window: int = COUNT_WINDOW,
    ) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.page_number = max(page_number, 1)
        self.window = window
        self.count_is_estimate = False
        self.count_is_capped = False

    @property
    def count_limit(self) -> int:
        return self.page_number * self.per_page + self.window

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        if not queryset.query.where:
            estimate = planner_row_estimate(queryset.model, queryset.db)
            if estimate is not None and estimate > self.count_limit:
                self.count_is_estimate = True
                return estimate
        limit = self.count_limit
        # SELECT COUNT(*) FROM (SELECT id ... LIMIT n): stops after n + 1 rows whatever the table.
        counted = queryset.order_by().values("pk")[: limit + 1].count()
        if counted > limit:
            self.count_is_capped = True
            return limit
        return counted

    @property
    def count_label(self) -> str:
        """The count as the page shows it: "about 1,000,000", "10,100+" or exact."""
        if self.count_is_estimate:
            return f"about {self.count:,}"
        if self.count_is_capped:
            return f"{self.count:,}+"
        return f"{self.count:,}"


def requested_page(request: HttpRequest) -> int:
    """The changelist page the request asks for (the admin's `p`, 1-based); 1 if malformed."""
    try:
        return max(int(request.GET.get("p", 1)), 1)
    except ValueError:
        return 1
