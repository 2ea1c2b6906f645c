"""`{% timetag %}`: the console's <time> elements, in the operator's time zone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import override_settings
from django.utils import timezone

AT = dt.datetime(2026, 3, 5, 13, 4, 9, 120000, tzinfo=dt.UTC)


def render(source: str, **context: object) -> str:
    return Template("{% load console %}" + source).render(Context(context))


@override_settings(TIME_ZONE="Europe/Paris")
def test_it_shows_the_local_time_with_the_instant_and_the_full_time_on_hover() -> None:
    assert render("{% timetag at %}", at=AT) == (
        '<time datetime="2026-03-05T14:04:09.120000+01:00" '
        'title="2026-03-05 14:04:09.120000 CET">Mar 5, 14:04</time>'
    )


@pytest.mark.parametrize(
    ("style", "shown"),
    [
        ("short", "Mar 5, 13:04"),
        ("seconds", "Mar 5, 13:04:09"),
        ("year", "Mar 5, 2026 13:04"),
        ("clock", "13:04:09"),
    ],
)
@override_settings(TIME_ZONE="UTC")
def test_each_style_reads_as_its_name_says(style: str, shown: str) -> None:
    assert render(f'{{% timetag at "{style}" %}}', at=AT).endswith(f">{shown}</time>")


def test_no_time_renders_nothing() -> None:
    assert render("{% timetag at %}", at=None) == ""


def test_an_unknown_style_is_a_template_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="short, seconds, year, clock"):
        render('{% timetag at "weekday" %}', at=AT)


class OddZone(dt.tzinfo):
    """A zone whose name is markup: what reaches the page must still be escaped."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return '<b title="x">&'


def test_it_escapes_what_it_writes() -> None:
    with timezone.override(OddZone()):
        html = render("{% timetag at %}", at=AT)
    assert 'title="2026-03-05 14:04:09.120000 &lt;b title=&quot;x&quot;&gt;&amp;"' in html
    assert "<b" not in html
