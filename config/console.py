"""The operator console's frame: who may look, which fragment an htmx request gets, and the
small value types (charts, capped counts) its pages hand to templates."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from config.errors import InvalidInput
from config.keyset import INT64_MAX, INT64_MIN


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware."""

    htmx: HtmxDetails


type View = Callable[..., HttpResponse]


def console_view(permission: str) -> Callable[[View], View]:
    """A console page: GET only, login required, and `permission` (a view permission) checked;
    a logged-in user without it gets the styled 403, a query string holding a NUL the styled 400.
    Responses vary on the htmx headers."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied("Your account may not view this page.")
            if any("\x00" in value for _, values in request.GET.lists() for value in values):
                # No stored text holds a NUL (PostgreSQL refuses one in any text it is given).
                reason = "A value in the address holds a NUL character, which no record holds."
                return render_page(request, "400.html", {"reason": reason}, status=400)
            return view(request, *args, **kwargs)

        return login_required(require_GET(vary_on_headers("HX-Request", "HX-Target")(checked)))

    return decorate


def render_page(
    request: HtmxHttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The whole page for a normal request; for htmx, the partial `fragment` (by default the
    page's `content`, which replaces <main>). A history restore always gets the whole page."""
    if request.htmx and not request.htmx.history_restore_request:
        template = f"{template}#{fragment or 'content'}"
    return render(request, template, context, status=status)


def push_clean_url(request: HtmxHttpRequest, response: HttpResponse) -> HttpResponse:
    """For a filter form submitted by htmx, push the URL without its empty fields, so the
    address bar (and a shared link) reads `?agent=3` rather than `?q=&agent=3&user=…`."""
    kept = [(k, v) for k, values in request.GET.lists() for v in values if v and k != "cursor"]
    query = urlencode(kept)
    return push_url(response, f"{request.path}?{query}" if query else request.path)


def render_filtered_list(
    request: HtmxHttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None,
    error: str | None,
) -> HttpResponse:
    """A list page behind a filter form: 400 with the form error shown when the filters are
    wrong, and for a form submitted by htmx (target `results`) the clean URL pushed."""
    response = render_page(
        request, template, context, fragment=fragment, status=400 if error else 200
    )
    if htmx_target(request) == "results":
        push_clean_url(request, response)
    return response


def htmx_target(request: HtmxHttpRequest) -> str:
    """The id of the element an htmx request will swap, or "" for a normal request."""
    if not request.htmx or request.htmx.history_restore_request:
        return ""
    return request.htmx.target or ""


def load_more_url(request: HttpRequest, next_cursor: str | None) -> str | None:
    """The current list's URL with its filters and the next page's cursor, or None at the end."""
    if not next_cursor:
        return None
    params = request.GET.copy()
    params["cursor"] = next_cursor
    return "?" + params.urlencode()


def cached_stats[T](key: str, compute: Callable[[], T]) -> tuple[T, dt.datetime]:
    """An expensive aggregate and when it was computed: at most once a minute, shared by every
    operator (`CONSOLE_STATS_CACHE_SECONDS`), so a dashboard over millions of rows stays cheap."""
    hit = cache.get(key)
    if hit is None:
        hit = (compute(), timezone.now())
        cache.set(key, hit, getattr(settings, "CONSOLE_STATS_CACHE_SECONDS", 60))
    return hit


# --- Row links ----------------------------------------------------------------------------------

# Two stand-in ids per type: the first with digits found nowhere else in a console path, the
# second (for ints) of another length, so a converter that pads ids does not pass for `str()`.
_SAMPLE_IDS: dict[type, tuple[Any, Any]] = {
    int: (918_273_645, 52),
    uuid.UUID: (
        uuid.UUID("9182736a-4519-4273-8645-9182736a4519"),
        uuid.UUID("5463728b-1954-4637-8819-5463728b1954"),
    ),
}


class RowUrl:
    """`reverse(viewname, args=[pk])` for every row of a list at the price of two reversals.

    For an `<int:…>` or `<uuid:…>` parameter the resolver writes `str(pk)` into a path that is
    otherwise the same for every row, so the path is cut around a stand-in id once and each row's
    id is put in its place. An id of another type, a negative int, or a path that does not follow
    (checked with a second stand-in) goes to `reverse()` as before."""

    def __init__(self, viewname: str) -> None:
        self.viewname = viewname
        self._parts: dict[type, tuple[str, str] | None] = {}

    def __call__(self, pk: Any) -> str:
        kind = type(pk)
        if kind not in self._parts:
            self._parts[kind] = self._cut(kind)
        parts = self._parts[kind]
        if parts is None or (kind is int and pk < 0):
            return reverse(self.viewname, args=[pk])
        return f"{parts[0]}{pk}{parts[1]}"

    def _cut(self, kind: type) -> tuple[str, str] | None:
        if kind not in _SAMPLE_IDS:
            return None
        first, second = _SAMPLE_IDS[kind]
        try:
            url = reverse(self.viewname, args=[first])
            head, found, tail = url.partition(str(first))
            if found and reverse(self.viewname, args=[second]) == f"{head}{second}{tail}":
                return head, tail
        except NoReverseMatch:
            pass
        return None


# --- Reading the query string -------------------------------------------------------------------


def query_int(request: HttpRequest, name: str) -> int | None:
    """An integer parameter; empty means absent, anything else non-numeric is `InvalidInput`."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}.", field=name) from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{name} is out of range: no record has that number.", field=name)
    return value


def query_date(request: HttpRequest, name: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """A YYYY-MM-DD parameter as an aware datetime at the start of that day (or of the next day,
    so that "created before 2026-01-31" includes the 31st)."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        day = parse_date(raw)
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(f"{name} must be a date as YYYY-MM-DD, not {raw!r}.", field=name)
    try:
        if end_of_day:
            day += dt.timedelta(days=1)
        moment = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
        moment.astimezone(dt.UTC)  # stored in UTC: the first and last days may not fit
    except OverflowError:
        message = f"{name} is too far in the past or the future: pick a day in years 2 to 9998."
        raise InvalidInput(message, field=name) from None
    return moment


def form_values(request: HttpRequest, names: Sequence[str]) -> dict[str, str]:
    """A filter form's fields as the query string gives them, "" for an absent one. A template
    lookup that misses a QueryDict costs two exceptions and a dir() (~15 µs), and an agent
    select looks its field up once per agent."""
    return {name: request.GET.get(name, "") for name in names}


def query_choice(request: HttpRequest, name: str, choices: Sequence[str], default: str) -> str:
    raw = request.GET.get(name, "").strip() or default
    if raw not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}.", field=name)
    return raw


# --- Values for templates -----------------------------------------------------------------------


@dataclass(frozen=True)
class CappedCount:
    """A count that stops at `cap`: "1,000+" instead of a COUNT over a whole table."""

    value: int
    cap: int

    @property
    def capped(self) -> bool:
        return self.value > self.cap

    def __str__(self) -> str:
        return f"{self.cap:,}+" if self.capped else f"{self.value:,}"


def pretty_json(value: Any, *, limit: int = 200_000) -> tuple[str, bool]:
    """`value` as indented JSON text (escaped later by the template) and whether it was cut."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > limit:
        return text[:limit], True
    return text, False


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """A server-rendered SVG bar chart: coordinates only, no script and no style attributes."""

    bars: list[Bar]
    width: int
    height: int
    max_value: int
    first_label: str
    last_label: str
    total: int


def activity_charts(stats: dict[str, Any]) -> dict[str, Any]:
    """The success rate and the two per-day charts of an `activity_stats` result, as the
    overview and an agent's page show them."""
    rate = stats["success_rate"]
    per_day = stats["per_day"]
    return {
        "success_percent": None if rate is None else round(rate * 100, 1),
        "messages_chart": bar_chart([(d["day"], d["messages"]) for d in per_day], what="messages"),
        "errors_chart": bar_chart(
            [(d["day"], d["tool_errors"]) for d in per_day], what="failed tool calls"
        ),
    }


def bar_chart(
    points: Sequence[tuple[dt.date, int]], *, width: int = 600, height: int = 120, what: str = ""
) -> BarChart:
    top = max((n for _, n in points), default=0)
    slot = width / max(len(points), 1)
    bars = []
    for i, (day, n) in enumerate(points):
        h = 0.0 if top == 0 else max(n / top * (height - 4), 1.0 if n else 0.0)
        bars.append(
            Bar(
                x=round(i * slot + 1, 2),
                y=round(height - h, 2),
                width=round(max(slot - 2, 1), 2),
                height=round(h, 2),
                label=f"{day:%b %-d}: {n:,} {what}".strip(),
            )
        )
    return BarChart(
        bars=bars,
        width=width,
        height=height,
        max_value=top,
        first_label=f"{points[0][0]:%b %-d}" if points else "",
        last_label=f"{points[-1][0]:%b %-d}" if points else "",
        total=sum(n for _, n in points),
    )


@dataclass(frozen=True)
class Sparkline:
    points: str  # the SVG polyline's points attribute
    area: str  # the same line closed along the bottom, for a light fill
    width: int
    height: int
    peak: int


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 28) -> Sparkline:
    """A small SVG line of `values` (oldest first), scaled to its own peak."""
    peak = max(values, default=0)
    step = width / max(len(values) - 1, 1)
    coords = []
    for i, n in enumerate(values):
        y = height - 2 - (0 if peak == 0 else n / peak * (height - 4))
        coords.append(f"{i * step:.1f},{y:.1f}")
    line = " ".join(coords)
    area = f"0,{height} {line} {width:.1f},{height}" if coords else ""
    return Sparkline(points=line, area=area, width=width, height=height, peak=peak)
