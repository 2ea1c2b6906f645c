"""What the framework costs before a page shows anything, mounted only while the benchmark runs.

A console page with no rows (login, the view permission, the frame every page is drawn in) and an
API list with no items (key lookup, Ninja, the page schema, the renderer) go through the same
middleware, decorators, authentication and templates as Logdeck's own pages. Their times are what
no query or row rendering could take away: a page cannot be faster than its empty twin.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.template import engines
from django.urls import path
from ninja import NinjaAPI

from agents.api_auth import READ_AUTH
from config.api import ApiRenderer
from config.console import HtmxHttpRequest, console_view
from sessions_app.api import SessionPage
from sessions_app.views import VIEW_SESSIONS

EMPTY_PAGE = engines["django"].from_string(
    '{% extends "base.html" %}{% block title %}Nothing{% endblock %}'
    '{% block content %}<p class="muted">Nothing to show.</p>{% endblock %}'
)


@console_view(VIEW_SESSIONS)
def empty_console_page(request: HtmxHttpRequest) -> HttpResponse:
    return HttpResponse(EMPTY_PAGE.render({}, request))


api = NinjaAPI(
    urls_namespace="bench-framework-api",
    auth=READ_AUTH,
    renderer=ApiRenderer(),
    docs_url=None,
    openapi_url=None,
)


@api.get("/sessions", response=SessionPage)
def empty_api_list(request: HtmxHttpRequest) -> dict[str, object]:
    return {"items": [], "next_cursor": None}


urlpatterns = [
    path("page/", empty_console_page, name="bench-empty-page"),
    path("api/", api.urls),
]
