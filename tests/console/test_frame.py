"""The console's frame: login, logout, CSP with nonces, htmx set up, styled error pages, and
no console URL readable without login."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.views.defaults import server_error

from tests.factories import MemoryFactory, SessionFactory, conversation


def console_patterns() -> list[str]:
    """Every console URL pattern, filled with sample arguments."""
    names = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "console":
            names += [p.name for p in entry.url_patterns if isinstance(p, URLPattern)]
    return names


SAMPLE_ARGS = {
    "session-detail": [uuid.uuid4()],
    "session-export-json": [uuid.uuid4()],
    "session-export-md": [uuid.uuid4()],
    "tool-call-detail": [1],
    "agent-detail": [1],
    "memory-detail": [uuid.uuid4()],
}


def test_it_mounts_every_contract_url_in_the_console_namespace() -> None:
    expected = {
        "overview": "/",
        "session-list": "/sessions/",
        "error-groups": "/tool-calls/errors/",
        "error-group": "/tool-calls/errors/group/",
        "agent-list": "/agents/",
        "memory-list": "/memories/",
    }
    for name, path in expected.items():
        assert reverse(f"console:{name}") == path
    assert reverse("console:agent-detail", args=[7]) == "/agents/7/"


@pytest.mark.parametrize("name", console_patterns())
def test_it_redirects_anonymous_requests_to_login_on_every_console_url(
    client: Client, name: str
) -> None:
    path = reverse(f"console:{name}", args=SAMPLE_ARGS.get(name, []))
    response = client.get(path)
    assert response.status_code == 302, path
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("name", console_patterns())
def test_it_answers_a_nul_in_the_query_string_with_a_styled_400_on_every_console_url(
    viewer_client: Client, name: str
) -> None:
    # PostgreSQL refuses a NUL in any text it is given, whichever parameter carries it.
    path = reverse(f"console:{name}", args=SAMPLE_ARGS.get(name, []))
    response = viewer_client.get(path, {"q": "a\x00", "cursor": "\x00"})
    assert response.status_code == 400, path
    assert "holds a NUL character" in response.content.decode()
    fragment = viewer_client.get(path, {"tool": "\x00"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 400 and "<html" not in fragment.content.decode()


def test_it_shows_a_styled_login_page_and_logs_in(client: Client, viewer) -> None:
    page = client.get(reverse("login"))
    html = page.content.decode()
    assert page.status_code == 200 and "Log in to Logdeck" in html and "logdeck.css" in html
    wrong = client.post(reverse("login"), {"username": viewer.email, "password": "nope"})
    assert "do not match" in wrong.content.decode()
    right = client.post(
        reverse("login"), {"username": viewer.email, "password": "correct horse battery staple"}
    )
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get("/").status_code == 200
    out = client.post(reverse("logout"))
    assert out.status_code == 302
    assert client.get("/").status_code == 302


def test_it_sends_a_nonce_csp_and_gives_every_script_the_nonce(viewer_client: Client) -> None:
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    MemoryFactory(session=session)
    pages = [
        "/",
        "/sessions/",
        f"/sessions/{session.pk}/",
        "/tool-calls/errors/",
        "/agents/",
        f"/agents/{session.agent_id}/",
        "/memories/",
    ]
    for path in pages:
        response = viewer_client.get(path)
        policy = response["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        html = response.content.decode()
        scripts = re.findall(r"<script[^>]*>", html)
        assert scripts, path
        assert all(f'nonce="{nonce}"' in tag for tag in scripts), path
        # Inline style attributes and <style> blocks would be blocked by the policy.
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", html), path  # no inline handlers


def test_it_configures_htmx_for_the_csp(viewer_client: Client) -> None:
    html = viewer_client.get("/").content.decode()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1)
    assert '"includeIndicatorStyles": false' in config
    assert '"allowEval": false' in config
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "django_htmx/htmx-2.min.js" in html


def test_it_shows_styled_403_404_and_500_pages(
    outsider_client: Client, viewer_client: Client
) -> None:
    forbidden = outsider_client.get("/sessions/")
    assert forbidden.status_code == 403
    assert "You may not view this page" in forbidden.content.decode()
    assert "logdeck.css" in forbidden.content.decode()
    missing = viewer_client.get("/no-such-page/")
    assert missing.status_code == 404 and "Nothing here" in missing.content.decode()
    broken = server_error(RequestFactory().get("/"))
    html = broken.content.decode()
    assert broken.status_code == 500
    assert "Something broke on our side" in html and "logdeck.css" in html
    assert "<script" not in html  # no request context, so no nonce: no script at all


def test_it_refuses_writes_to_console_pages(viewer_client: Client) -> None:
    assert viewer_client.post("/sessions/").status_code == 405
