"""Nothing is readable without a login or an API key: walk every URL pattern as anonymous."""

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Pages that must answer anonymous visitors: the way in, the way out, and the API's own docs.
PUBLIC = {
    "accounts/login/",
    "accounts/logout/",
    "accounts/password_reset/",
    "accounts/password_reset/done/",
    "accounts/reset/<uidb64>/<token>/",
    "accounts/reset/done/",
    "admin/login/",
    "admin/logout/",
    "api/v1/openapi.json",
    "api/v1/docs",
}

SAMPLE = {"int": "1", "uuid": str(uuid.uuid4()), "path": "x/y", "slug": "x", "str": "x"}


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for entry in resolver.url_patterns:
        pattern = str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _routes(entry, prefix + pattern)
        elif isinstance(entry, URLPattern):
            routes.append(prefix + pattern)
    return routes


def _concrete(route: str) -> str:
    route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\/", "/")
    route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE.get(m.group(1) or "str", "x"), route)
    # Regex-based admin routes: fill groups with a plausible value.
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "x", route)
    return "/" + route


def test_it_refuses_anonymous_visitors_on_every_url():
    client = Client()
    checked = 0
    for route in _routes(get_resolver()):
        if route in PUBLIC or "(?P<url>" in route or route.startswith("static/"):
            continue
        path = _concrete(route)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            status = response.status_code
            if status in (301, 302):
                assert "login" in response["Location"], (method, path, response["Location"])
            else:
                # 404 only where the sample path matches no object: no content is shown.
                assert status in (401, 403, 404, 405), (method, path, status)
        checked += 1
    assert checked > 10
