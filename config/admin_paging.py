"""Admin paging for big tables: keyset pages, and counts without `COUNT(*)` over a whole table.

The stock changelist counts every matching row to draw numbered page links, then reads page N with
OFFSET, so a deep page walks and throws away every row before it. `KeysetChangeList` pages like
the console and the API (config/keyset.py): "first / previous / next" links carry an opaque cursor,
the sort key of the row they continue from, and every page, however deep, is one indexed range read.

`BoundedCountPaginator` still says how many rows there are, for the "N messages" line and "select
all": it asks PostgreSQL's planner for an unfiltered table (`pg_class.reltuples`), and otherwise
counts at most a window of rows through a LIMITed subquery, so no count is unbounded.

Sorting: the keyset follows whatever order the changelist shows, the default (`-created_at, -id`)
or a column the user sorted by, with the primary key last in that column's direction (the order
the named `(column, id)` indexes hold). An order a cursor cannot hold (an expression, a related
model's field, a nullable column) pages by OFFSET instead, up to `OFFSET_ROWS_LIMIT` rows deep.
`?p=N` links from before keyset paging open page N by OFFSET within the same limit, then page on by
cursor; a deeper `?p=`, or a cursor that is not valid for the list, shows the first page with a
message that says so. A lookup in the query string that fails only when its query runs (a number
past a bigint, a time past year 9999, a JSON lookup SQLite lacks) is answered as the stock admin
answers one it cannot build: the plain list, here with a message naming the failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.db.models import Model, QuerySet
from django.db.models.options import Options
from django.http import HttpRequest
from django.utils.functional import cached_property

from config.database import planner_row_estimate
from config.errors import InvalidInput
from config.keyset import after, decode_cursor, encode_cursor, reverse_ordering

# Rows counted exactly beyond the current page; past this the count shows as "N+".
COUNT_WINDOW = 10_000
# The query-string parameter of a keyset page.
CURSOR_VAR = "cursor"
# How deep `?p=N` may reach by OFFSET (old links, and orders a cursor cannot follow).
OFFSET_ROWS_LIMIT = 10_000
# What a query-string lookup the ORM accepted can still raise once its query runs.
LOOKUP_RUN_FAILURES = (OverflowError, ValueError, TypeError, ValidationError, DatabaseError)


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


def deepest_offset_page(per_page: int) -> int:
    """The deepest `?p=N` a changelist reads by OFFSET: at most OFFSET_ROWS_LIMIT rows skipped."""
    return OFFSET_ROWS_LIMIT // per_page + 1


def requested_page(request: HttpRequest) -> int:
    """The changelist page the request asks for (the admin's `p`, 1-based); 1 if malformed."""
    try:
        return max(int(request.GET.get("p", 1)), 1)
    except ValueError:
        return 1


def keyset_ordering(opts: Options, ordering: Sequence[Any]) -> tuple[str, ...] | None:
    """`ordering` as the field names a cursor holds, or None if a cursor cannot follow it: an
    expression, a related model's ordering, or a nullable column (NULL breaks row comparison)."""
    names: list[str] = []
    seen: set[str] = set()
    for part in ordering:
        if not isinstance(part, str):
            return None
        descending = part.startswith("-")
        name = part.removeprefix("-")
        if name == "pk":
            name = opts.pk.name
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            return None  # a lookup through a relation, or "?"
        if not getattr(field, "concrete", False) or field.null:
            return None
        if field.is_relation and name != field.attname:
            return None  # "session" orders by the session's own ordering; "session_id" by the id
        if field.name in seen:
            continue
        seen.add(field.name)
        names.append(f"-{name}" if descending else name)
    return tuple(names) or None


@dataclass(frozen=True)
class PageLinks:
    """The query strings of a changelist's first, previous and next pages (None: no such page),
    and a note when a page cannot be reached from here."""

    first: str | None = None
    previous: str | None = None
    next: str | None = None
    note: str = ""

    def __bool__(self) -> bool:
        return bool(self.first or self.previous or self.next or self.note)


class KeysetChangeList(ChangeList):
    """A changelist whose pages are keyset ranges of its ordering, reached by cursor links.

    The cursor narrows only the page: `get_queryset()`, which actions and "select all" act on, is
    the whole filtered and searched list, as in the stock admin.
    """

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.cursor = request.GET.get(CURSOR_VAR, "")
        self.keyset_ordering: tuple[str, ...] | None = None
        self.page_links = PageLinks()
        super().__init__(request, *args, **kwargs)
        # A new search, filter or sort starts on its first page: no link carries the cursor on.
        self.params.pop(CURSOR_VAR, None)
        self.filter_params.pop(CURSOR_VAR, None)

    def get_filters_params(self, params: Any = None) -> dict[str, Any]:
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(CURSOR_VAR, None)
        return lookup_params

    def get_query_string(self, new_params: Any = None, remove: Any = None) -> str:
        return super().get_query_string(new_params, [*(remove or ()), CURSOR_VAR])

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        # Without the queryset's own ordering (the admin's default, again), a sorted column is
        # followed by the primary key alone, which `(column, id)` indexes serve.
        ordering = list(super().get_ordering(request, queryset.order_by()))
        if ORDER_VAR in self.params and len(ordering) > 1 and ordering[-1] == "-pk":
            last = ordering[-2]
            if isinstance(last, str) and not last.startswith("-"):
                ordering[-1] = "pk"
        self.keyset_ordering = keyset_ordering(self.lookup_opts, ordering)
        return ordering

    def get_results(self, request: HttpRequest) -> None:
        try:
            self._read_results(request)
        except LOOKUP_RUN_FAILURES as exc:
            if not (self.filter_params or request.GET.get(SEARCH_VAR)):
                raise  # nothing the user typed: a fault of ours, not a request to refuse
            messages.error(request, f"That filter or search cannot be applied: {exc}")
            raise IncorrectLookupParameters(exc) from exc

    def _read_results(self, request: HttpRequest) -> None:
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        result_count = paginator.count
        if self.model_admin.show_full_result_count:
            full_result_count = self.root_queryset.count()
        else:
            full_result_count = None
        can_show_all = result_count <= self.list_max_show_all
        multi_page = result_count > self.list_per_page
        if (self.show_all and can_show_all) or not multi_page:
            result_list: Any = list(self.queryset._clone())  # read here, where failures are met
        else:
            result_list = self.page_rows(request)

        self.result_count = result_count
        self.show_full_result_count = self.model_admin.show_full_result_count
        self.show_admin_actions = not self.show_full_result_count or bool(full_result_count)
        self.full_result_count = full_result_count
        self.result_list = result_list
        self.can_show_all = can_show_all
        self.multi_page = multi_page
        self.paginator = paginator

    def page_rows(self, request: HttpRequest) -> list[Model]:
        """The rows of the page the request asks for, in one query; sets `page_links`."""
        ordering = self.keyset_ordering
        if ordering is None:
            return self._offset_rows(request, ordering=None)
        if self.cursor:
            try:
                values, backward = self._decode_cursor(ordering)
            except InvalidInput:
                messages.warning(
                    request,
                    "That page link is not valid for this list (it may come from another sort "
                    "order, or be cut short): showing the first page.",
                )
            else:
                return self._keyset_rows(ordering, values, backward=backward)
        if self.page_num > 1:
            return self._offset_rows(request, ordering=ordering)
        return self._keyset_rows(ordering, None, backward=False)

    def _decode_cursor(self, ordering: tuple[str, ...]) -> tuple[list[Any], bool]:
        # A "previous" cursor is a cursor of the reversed ordering: its sort keys say which way.
        try:
            return decode_cursor(self.queryset, ordering, self.cursor), False
        except InvalidInput:
            backward = reverse_ordering(ordering)
            return decode_cursor(self.queryset, backward, self.cursor), True

    def _cursor_link(self, ordering: Sequence[str], row: Model) -> str:
        return self.get_query_string({CURSOR_VAR: encode_cursor(ordering, row)})

    def _keyset_rows(
        self, ordering: tuple[str, ...], values: list[Any] | None, *, backward: bool
    ) -> list[Model]:
        size = self.list_per_page
        if backward:
            reverse = reverse_ordering(ordering)
            before = after(self.queryset.order_by(*reverse), reverse, values or [])
            fetched = list(before[: size + 1])
            rows = fetched[:size][::-1]
            more_before, more_after = len(fetched) > size, True
        else:
            queryset = self.queryset.order_by(*ordering)
            if values is not None:
                queryset = after(queryset, ordering, values)
            fetched = list(queryset[: size + 1])
            rows = fetched[:size]
            more_before, more_after = values is not None, len(fetched) > size
        at_start = not more_before
        self.page_links = PageLinks(
            first=None if at_start else self.get_query_string(),
            previous=self._cursor_link(reverse_ordering(ordering), rows[0])
            if more_before and rows
            else None,
            next=self._cursor_link(ordering, rows[-1]) if more_after and rows else None,
        )
        return rows

    def _offset_rows(
        self, request: HttpRequest, *, ordering: tuple[str, ...] | None
    ) -> list[Model]:
        """Page `?p=N` by OFFSET, no deeper than OFFSET_ROWS_LIMIT rows; with a keyset `ordering`
        its links go on by cursor, else by page number."""
        size = self.list_per_page
        page = max(self.page_num, 1)
        deepest = deepest_offset_page(size)
        if page > deepest:
            messages.warning(
                request,
                f"Page {page:,} cannot be opened by its number: this list pages with “next” and "
                "“previous” links. Showing the first page.",
            )
            page = 1
        fetched = list(self.queryset[(page - 1) * size : page * size + 1])
        rows = fetched[:size]
        more_after = len(fetched) > size
        first = self.get_query_string() if page > 1 else None
        if ordering is not None:
            self.page_links = PageLinks(
                first=first,
                previous=self._cursor_link(reverse_ordering(ordering), rows[0])
                if page > 1 and rows
                else None,
                next=self._cursor_link(ordering, rows[-1]) if more_after and rows else None,
            )
            return rows
        beyond = more_after and page >= deepest
        self.page_links = PageLinks(
            first=first,
            previous=self.get_query_string({PAGE_VAR: page - 1}) if page > 1 else None,
            next=self.get_query_string({PAGE_VAR: page + 1}) if more_after and not beyond else None,
            note="Later pages of this order are reached by narrowing the list with a filter or "
            "a search, or in the default order."
            if beyond
            else "",
        )
        return rows
