"""Lists filtered by whichever of their filters the caller gave."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


def filter_given[M](queryset: QuerySet[M], **lookups: Any) -> QuerySet[M]:
    """`queryset` filtered by each lookup whose value is not None (a filter left out). Callers
    pass `text or None` where an empty text means no filter."""
    return queryset.filter(**{name: value for name, value in lookups.items() if value is not None})
