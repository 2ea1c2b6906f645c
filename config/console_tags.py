"""Template tags of the operator console (`{% load console %}`).

`{% row_url %}` is `{% url %}` for the rows of a list: one reversal per page instead of one per
row, which on a page of fifty sessions was a fifth of the time spent rendering it.

`{% timetag %}` exists for speed as much as for brevity: a transcript page shows a hundred
messages, and three `|date` filters on each (machine time, hover title, the time you read) cost
more than the rest of the row. One local-time conversion and `strftime` do the same work.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from django import template
from django.template.context import Context
from django.utils import timezone
from django.utils.safestring import SafeString

from config.console import RowUrl

register = template.Library()

# How the visible part of a <time> reads; the title always holds the full local time.
TIME_STYLES = {
    "short": "%b {day}, %H:%M",  # Nov 3, 14:05
    "seconds": "%b {day}, %H:%M:%S",  # Nov 3, 14:05:09
    "year": "%b {day}, %Y %H:%M",  # Nov 3, 2026 14:05
    "clock": "%H:%M:%S",  # 14:05:09
}


@register.simple_tag
def timetag(value: dt.datetime | None, style: str = "short") -> SafeString | str:
    """`<time datetime="ISO" title="full local time">short form</time>`, or "" for no value."""
    if value is None:
        return ""
    try:
        shown = TIME_STYLES[style]
    except KeyError:
        styles = ", ".join(TIME_STYLES)
        raise template.TemplateSyntaxError(f"timetag style must be one of {styles}") from None
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    # One strftime for both texts, and html.escape rather than format_html: a row's time is
    # rendered on every list row, and every value is still escaped.
    title, _, text = local.strftime(f"%Y-%m-%d %H:%M:%S.%f %Z\n{shown}").partition("\n")
    return SafeString(
        f'<time datetime="{escape(local.isoformat())}" title="{escape(title.rstrip())}">'
        f"{escape(text.format(day=local.day))}</time>"
    )


@register.filter
def short_id(value: object) -> str:
    """`{{ s.id|short_id }}`: an id's first block, enough to tell rows apart at a glance."""
    return str(value)[:8]


@register.simple_tag(takes_context=True)
def row_url(context: Context, viewname: str, pk: object) -> str:
    """`{% row_url "console:session-detail" s.pk as url %}`: `{% url %}` with an int or UUID
    id, reversed once per template render (a page) and filled in for each row (`RowUrl`)."""
    key = ("row_url", viewname)
    try:
        urls = context.render_context[key]
    except KeyError:
        urls = context.render_context[key] = RowUrl(viewname)
    return urls(pk)
