"""Shared helpers for the admin tests: the URLs of a model's admin pages and a query counter."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.utils import quote
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

PAGES = ("changelist", "search", "filter", "add", "change", "delete")


@dataclass(frozen=True)
class AdminCase:
    """One model's admin under test: a search term and a filter query that should find `obj`."""

    model: type[Model]
    search: str
    filter: str

    def url(self, page: str, obj: Model) -> str:
        opts = self.model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        if page == "changelist":
            return reverse(f"{base}_changelist")
        if page == "search":
            return reverse(f"{base}_changelist") + "?" + self.search
        if page == "filter":
            return reverse(f"{base}_changelist") + "?" + self.filter
        if page == "add":
            return reverse(f"{base}_add")
        return reverse(f"{base}_{page}", args=[quote(obj.pk)])


def get_counting(client: Client, url: str) -> tuple[int, list[str], bytes]:
    """GET `url`; the status, the SQL it ran, and the body."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return response.status_code, [q["sql"] for q in ctx.captured_queries], response.content


def unbounded_counts(queries: list[str]) -> list[str]:
    """The COUNT queries that are not limited: none may run on a changelist."""
    return [sql for sql in queries if "COUNT(" in sql.upper() and "LIMIT" not in sql.upper()]
