"""The base of every Logdeck ModelAdmin: fit for tables of a million rows.

- the changelist pages by keyset (`KeysetChangeList`: first / previous / next by cursor, so a deep
  page costs what the first does), and its count is an estimate or a count capped at a small window
  (`BoundedCountPaginator`), never COUNT(*) of a whole table; the "N total" count and facet counts
  are off;
- the action checkbox of each row is written directly rather than through the form renderer's
  templates (a quarter of a changelist's time went there);
- large columns are deferred in the changelist and loaded only by the change form;
- JSON fields are edited pretty-printed (indent 2, sorted keys); invalid JSON is a form error;
- a delete confirmation summarises what goes with capped counts, instead of loading and listing
  every related row as the stock admin does.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import ShowFacets
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from config.admin_paging import (
    COUNT_WINDOW,
    BoundedCountPaginator,
    KeysetChangeList,
    deepest_offset_page,
    requested_page,
)
from config.keyset import stored_value

# How many of the objects being deleted are listed by name on a delete confirmation.
DELETE_LIST_LIMIT = 20
# Rows a changelist counts exactly (beyond the current page) before it says "N+".
CHANGELIST_COUNT_WINDOW = 1_000


class PrettyJSONFormField(forms.JSONField):
    """A JSON form field that shows its value indented and with sorted keys.

    An emptied box means `empty_value` (the model field's default where NULL is not allowed).
    """

    def __init__(self, *, empty_value: Any = None, **kwargs: Any) -> None:
        super().__init__(empty_value=empty_value, **kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not value.strip() and not self.disabled:
            return self.empty_value
        return super().to_python(value)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # the user's own text comes back unchanged, with the error beside it
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, cls=self.encoder)


class PrettyJSONWidget(forms.Textarea):
    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"rows": 12, "cols": 90, "class": "vLargeTextField", "spellcheck": "false"}
            | (attrs or {})
        )


def capped_count(queryset: QuerySet[Any], limit: int = COUNT_WINDOW) -> str:
    """How many rows, counted through a LIMITed subquery: "42" or "10,000+"."""
    counted = queryset.order_by().values("pk")[: limit + 1].count()
    return f"{limit:,}+" if counted > limit else f"{counted:,}"


# Stands for the primary key in a change URL reversed once (admin `quote()` never yields it).
_PK_MARK = "~pk~"
# Quoted keys that reverse() would put into a URL unchanged: ints, UUIDs, slugs.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


@functools.lru_cache(maxsize=128)
def _change_url_pattern(
    site_name: str, app_label: str, model_name: str, script_prefix: str, urlconf: Any
) -> str:
    # The script prefix and URLconf are part of the key: reverse() depends on both.
    return reverse(
        f"admin:{app_label}_{model_name}_change", args=(_PK_MARK,), current_app=site_name
    )


def change_url(model: type[Model], pk: Any, *, site_name: str = "admin") -> str:
    """The admin change page of `model`'s row `pk`: one reverse() per model rather than per row,
    which was a tenth of a changelist's time when every row links to its own and its session's."""
    opts = model._meta
    quoted = str(quote(pk))
    if not _PLAIN_KEY.fullmatch(quoted):
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=(quoted,),
            current_app=site_name,
        )
    pattern = _change_url_pattern(
        site_name, opts.app_label, opts.model_name, get_script_prefix(), get_urlconf()
    )
    return pattern.replace(_PK_MARK, quoted)


class BigTableChangeList(KeysetChangeList):
    """A keyset-paged changelist that leaves the admin's `changelist_deferred_fields` unloaded."""

    def url_for_result(self, result: Model) -> str:
        pk = getattr(result, self.pk_attname)
        return change_url(self.model, pk, site_name=self.model_admin.admin_site.name)

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        deferred = getattr(self.model_admin, "changelist_deferred_fields", ())
        return queryset.defer(*deferred) if deferred else queryset


class CheckedSelectionMixin:
    """Admin actions refuse, with a warning that changes nothing, a checked value no primary key
    could hold: the stock admin fails on it inside `filter(pk__in=...)` with a 500."""

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponseBase | None:
        pk = self.model._meta.pk  # type: ignore[attr-defined]
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                stored_value(pk, value)
        except (ValidationError, ValueError, OverflowError):
            self.message_user(
                request,
                "The selection holds an id no row can have: no items have been changed.",
                messages.WARNING,
            )
            return None
        return super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]


class BigTableAdmin(CheckedSelectionMixin, admin.ModelAdmin):
    """A ModelAdmin whose changelist, forms and delete confirmation stay fast on big tables."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    list_per_page = 50
    list_max_show_all = 200
    # Rows counted beyond the current page before the count shows as "N+". Keyset pages need no
    # page count, only the "N messages" line, so the window is small: counting costs a heap read
    # per row counted, which thousands of rows make a large share of a filtered page.
    count_window = CHANGELIST_COUNT_WINDOW
    # Columns the changelist never loads (payloads, long texts); the change form loads them.
    changelist_deferred_fields: tuple[str, ...] = ()
    # What a delete takes with it: (model, lookup from that model to the deleted one).
    delete_cascades: tuple[tuple[type[Model], str], ...] = ()

    def __init__(self, model: type[Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        self.json_fields = tuple(
            f.name for f in model._meta.concrete_fields if isinstance(f, models.JSONField)
        )
        # A view-only page shows each JSON field through `pretty_<name>`, indented in a <pre>.
        for name in self.json_fields:
            setattr(self, f"pretty_{name}", self._json_display(name))

    def _json_display(self, name: str) -> Any:
        field = self.model._meta.get_field(name)

        @admin.display(description=field.verbose_name)
        def show(obj: Model) -> SafeString:
            text = json.dumps(
                getattr(obj, name),
                ensure_ascii=False,
                indent=2,
                sort_keys=True,
                cls=field.encoder,  # type: ignore[attr-defined]
            )
            return format_html("<pre>{}</pre>", text)

        return show

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets

        def pretty(name: Any) -> Any:
            if isinstance(name, tuple | list):
                return tuple(pretty(n) for n in name)
            return f"pretty_{name}" if name in self.json_fields else name

        return [
            (title, {**options, "fields": [pretty(name) for name in options["fields"]]})
            for title, options in fieldsets
        ]

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if kwargs.get("fields"):
            # Display-only names never reach the form.
            kwargs["fields"] = [
                f for f in kwargs["fields"] if not (isinstance(f, str) and f.startswith("pretty_"))
            ]
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_dbfield(
        self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", PrettyJSONFormField)
            kwargs.setdefault("widget", PrettyJSONWidget)
            kwargs.setdefault("empty_value", None if db_field.null else db_field.get_default())
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BigTableChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # A regex in the query string reads every row of the table, and one PostgreSQL cannot
        # parse fails only once the query runs: refused (400) like any lookup not allowed.
        if lookup.endswith(("__regex", "__iregex")):
            return False
        return super().lookup_allowed(lookup, value, request)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.list_editable:
            # Its formset needs the page as a QuerySet; a keyset page is a list of rows.
            errors.append(
                checks.Error(
                    "A BigTableAdmin pages by keyset and cannot have list_editable.",
                    obj=self.__class__,
                    id="logdeck.E001",
                )
            )
        return errors

    def action_checkbox(self, obj: Model) -> SafeString:
        """The stock admin's checkbox, the same HTML, without a template render for each row."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(_("Select this object for an action - {}"), str(obj)),
        )

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> BoundedCountPaginator:
        return self.paginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            # A page number past what OFFSET serves shows the first page: it must not stretch
            # the count either (`?p=100000` would otherwise count a whole table).
            page_number=min(requested_page(request), deepest_offset_page(per_page)),
            window=self.count_window,
        )

    def get_deleted_objects(
        self, objs: Iterable[Model], request: HttpRequest
    ) -> tuple[list[Any], dict[str, str], set[str], list[Any]]:
        """A bounded summary of a delete: up to DELETE_LIST_LIMIT objects by name, then capped
        counts per cascaded model (one query each), instead of every related row."""
        if isinstance(objs, QuerySet):
            shown = list(objs[: DELETE_LIST_LIMIT + 1])
            total = capped_count(objs) if len(shown) > DELETE_LIST_LIMIT else f"{len(shown):,}"
            ids: Any = objs.values("pk")
        else:
            shown = list(objs)
            total = f"{len(shown):,}"
            ids = [obj.pk for obj in shown]
        if not shown:
            return [], {}, set(), []
        opts = self.model._meta
        deleted: list[Any] = [self._deleted_link(obj) for obj in shown[:DELETE_LIST_LIMIT]]
        if len(shown) > DELETE_LIST_LIMIT:
            deleted.append(f"… and more {opts.verbose_name_plural} ({total} in all)")
        model_count = {opts.verbose_name_plural: total}
        perms_needed: set[str] = set()
        for model, lookup in self.delete_cascades:
            related = model._default_manager.filter(**{f"{lookup}__in": ids})
            count = capped_count(related)
            if count == "0":
                continue
            related_opts = model._meta
            model_count[related_opts.verbose_name_plural] = count
            deleted.append(f"{capfirst(related_opts.verbose_name_plural)}: {count}")
            codename = f"{related_opts.app_label}.delete_{related_opts.model_name}"
            if not request.user.has_perm(codename):
                perms_needed.add(related_opts.verbose_name)
        return deleted, model_count, perms_needed, []

    def _deleted_link(self, obj: Model) -> SafeString:
        url = change_url(type(obj), obj.pk, site_name=self.admin_site.name)
        return format_html('{}: <a href="{}">{}</a>', capfirst(obj._meta.verbose_name), url, obj)


def changelist_link(model: type[Model], label: str, **lookups: Any) -> SafeString:
    """A link to `model`'s changelist filtered by `lookups` (e.g. a session's messages)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(lookups), label)
