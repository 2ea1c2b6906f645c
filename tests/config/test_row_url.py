"""`RowUrl` and `{% row_url %}`: a row's link, reversed once per page, is what `reverse()` gives."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import override_settings
from django.urls import (
    NoReverseMatch,
    clear_script_prefix,
    path,
    register_converter,
    reverse,
    set_script_prefix,
)

from config.console import RowUrl
from memories.models import Memory
from sessions_app.models import ToolCall
from tests.factories import MemoryFactory, SessionFactory, conversation


class PaddedConverter:
    """An id written as nine digits, as long as the stand-in id: a path that is not `str(pk)`."""

    regex = "[0-9]{9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return f"{value:09d}"


class HexConverter:
    """An id written in hexadecimal: the stand-in id's digits are not in the path."""

    regex = "[0-9a-f]+"

    def to_python(self, value: str) -> int:
        return int(value, 16)

    def to_url(self, value: int) -> str:
        return f"{value:x}"


register_converter(PaddedConverter, "row-url-test-padded")
register_converter(HexConverter, "row-url-test-hex")


def view(request: HttpRequest, pk: object) -> HttpResponse:
    return HttpResponse()


urlpatterns = [
    path("padded/<row-url-test-padded:pk>/", view, name="padded"),
    path("hex/<row-url-test-hex:pk>/", view, name="hex"),
    path("a&b/<int:pk>/", view, name="ampersand"),
]


@pytest.fixture
def rows(db: None) -> dict[str, list[object]]:
    """Real ids of every console row that links by id: sessions, agents, tool calls, memories."""
    sessions = [SessionFactory() for _ in range(3)]
    for session in sessions:
        conversation(session, turns=2, failing=1)
    MemoryFactory(session=sessions[0])
    return {
        "console:session-detail": [s.pk for s in sessions],
        "console:session-export-json": [s.pk for s in sessions],
        "console:agent-detail": [s.agent_id for s in sessions],
        "console:tool-call-detail": list(ToolCall.objects.values_list("pk", flat=True)),
        "console:memory-detail": list(Memory.objects.values_list("pk", flat=True)),
    }


@pytest.mark.parametrize("prefix", ["/", "/deck/"])
def test_it_gives_what_reverse_gives_for_real_rows(
    rows: dict[str, list[object]], prefix: str
) -> None:
    set_script_prefix(prefix)
    try:
        for name, ids in rows.items():
            urls = RowUrl(name)
            assert ids
            for pk in ids:
                assert urls(pk) == reverse(name, args=[pk]), name
                assert urls(pk).startswith(prefix)
    finally:
        clear_script_prefix()


def test_it_reverses_twice_for_a_whole_page() -> None:
    urls = RowUrl("console:session-detail")
    ids = [uuid.uuid4() for _ in range(50)]
    with mock.patch("config.console.reverse", wraps=reverse) as reversed_:
        links = [urls(pk) for pk in ids]
    assert reversed_.call_count == 2
    assert links == [reverse("console:session-detail", args=[pk]) for pk in ids]


def test_it_hands_any_other_id_to_reverse() -> None:
    sessions, agents = RowUrl("console:session-detail"), RowUrl("console:agent-detail")
    pk = uuid.uuid4()
    assert sessions(str(pk)) == reverse("console:session-detail", args=[str(pk)])
    assert sessions(pk) == reverse("console:session-detail", args=[pk])
    assert agents("7") == reverse("console:agent-detail", args=["7"])
    for wrong in (-1, True, "seven"):
        with pytest.raises(NoReverseMatch):
            agents(wrong)
    with pytest.raises(NoReverseMatch):
        sessions(42)


@override_settings(ROOT_URLCONF=__name__)
def test_it_reverses_each_row_when_the_path_is_not_the_id_as_text() -> None:
    for name, ids in {"padded": [0, 42, 918_273_645], "hex": [0, 255, 918_273_645]}.items():
        urls = RowUrl(name)
        for pk in ids:
            assert urls(pk) == reverse(name, args=[pk]), name
    assert RowUrl("padded")(42) == "/padded/000000042/"
    assert RowUrl("hex")(255) == "/hex/ff/"


@override_settings(ROOT_URLCONF=__name__)
def test_the_tag_escapes_like_the_url_tag() -> None:
    template = "{% load console %}{% for pk in ids %}{% row_url name pk %}|{% endfor %}"
    expected = "{% for pk in ids %}{% url name pk %}|{% endfor %}"
    context = {"ids": [1, 22, 333], "name": "ampersand"}
    html = Template(template).render(Context(context))
    assert html == Template(expected).render(Context(context))
    assert "/a&amp;b/22/" in html


def test_the_tag_links_each_row_as_the_url_tag_does(rows: dict[str, list[object]]) -> None:
    for name, ids in rows.items():
        context = {"ids": ids, "name": name}
        fast = "{% load console %}{% for pk in ids %}{% row_url name pk as u %}{{ u }} {% endfor %}"
        slow = "{% for pk in ids %}{% url name pk as u %}{{ u }} {% endfor %}"
        assert Template(fast).render(Context(context)) == Template(slow).render(Context(context))
