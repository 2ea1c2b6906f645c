"""The console in a real browser: every step an operator takes, with no console errors and no
CSP violations, and a screenshot of each page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sessions_app.services import MessageIn, message_append, session_finish
from tests.e2e.conftest import Console
from tests.fixtures import console_demo

PASSWORD = "demo-password"


@pytest.fixture
def demo(transactional_db: None) -> console_demo.Demo:
    return console_demo.build(sessions=60)


@pytest.fixture
def signed_in(console: Console, demo: console_demo.Demo) -> Console:
    console.login(demo.operator.email, PASSWORD)
    return console


def test_it_logs_in_and_shows_the_overview(console: Console, demo: console_demo.Demo) -> None:
    console.goto("/sessions/")
    assert "/accounts/login/" in console.page.url  # anonymous: sent to log in
    console.screenshot("login")
    console.login(demo.operator.email, PASSWORD)
    page = console.page
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator("svg.bars rect").count() == 60  # two charts of 30 days
    assert page.locator(".leaders li").count() > 0
    console.screenshot("overview")
    console.assert_clean()


def test_it_filters_sessions_and_loads_more(signed_in: Console, demo: console_demo.Demo) -> None:
    page = signed_in.page
    page.click("nav.nav >> text=Sessions")
    page.wait_for_url(re.compile(r"/sessions/$"))
    rows = page.locator("#session-rows tr:not(#load-more)")
    assert rows.count() == 50
    assert page.locator("#load-more").is_visible()
    page.click("#load-more a")
    # The page's CSP forbids eval, Playwright's wait_for_function included: wait with locators.
    expect(rows).to_have_count(62)  # 60 demo sessions, the live one and the hostile one
    assert page.locator("#load-more").count() == 0

    page.select_option("select[name=agent]", label="billing-assistant")
    page.wait_for_url(re.compile(r"agent=\d+"))
    page.wait_for_load_state("networkidle")
    agents = page.locator("#session-rows tr td:nth-child(2)").all_inner_texts()
    assert agents and set(agents) == {"billing-assistant"}
    page.check("input[name=has_errors]")
    page.wait_for_url(re.compile(r"has_errors=1"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#session-rows tr .badge-error").count() == rows.count() > 0
    signed_in.screenshot("sessions-filtered")

    page.fill("#f-q", "refund")
    page.wait_for_url(re.compile(r"q=refund"))
    page.wait_for_load_state("networkidle")
    assert "refund" in page.locator("#results").inner_text().lower() or rows.count() == 0
    page.reload()  # the URL holds the filters: a reload (or a shared link) shows the same view
    assert page.locator("select[name=agent] option:checked").inner_text() == "billing-assistant"
    assert page.input_value("#f-q") == "refund"
    signed_in.assert_clean()


def test_it_opens_a_transcript_and_expands_a_failed_tool_call(
    signed_in: Console, demo: console_demo.Demo
) -> None:
    page = signed_in.page
    failing = next(s for s in demo.sessions if s.error_count)
    signed_in.goto("/sessions/?has_errors=1")
    signed_in.screenshot("sessions")
    page.click(f"a[href='/sessions/{failing.pk}/'].row-link")
    page.wait_for_url(re.compile(rf"/sessions/{failing.pk}/$"))
    assert page.locator("article.msg").count() == failing.message_count
    assert page.locator(".role-system, .role-user, .role-assistant").count() > 0
    call = page.locator("details.call-failed").first
    assert call.locator(".call-error").inner_text()  # the failure shows before expanding
    assert "Loading input and output" in call.locator(".call-payload").text_content()
    call.locator("summary").click()
    call.locator(".payloads pre.json").first.wait_for()
    assert '"query"' in call.locator(".payloads").inner_text()
    assert call.locator(".call-failure").is_visible()
    signed_in.screenshot("transcript")
    signed_in.assert_clean()


def test_it_renders_hostile_content_inert(signed_in: Console, demo: console_demo.Demo) -> None:
    page = signed_in.page
    signed_in.goto(f"/sessions/{demo.hostile.pk}/")
    page.locator("details.call-failed summary").click()
    page.locator(".payloads pre.json").first.wait_for()
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.locator("main a[href^='javascript']").count() == 0
    assert "<script>" in page.locator("article.msg").first.inner_text()
    signed_in.screenshot("hostile")
    signed_in.assert_clean()  # no alert() dialog, no CSP report


def test_it_follows_an_error_group_into_the_transcript(
    signed_in: Console, demo: console_demo.Demo
) -> None:
    page = signed_in.page
    page.click("nav.nav >> text=Errors")
    page.wait_for_url(re.compile(r"/tool-calls/errors/$"))
    groups = page.locator("#error-groups tbody tr")
    assert groups.count() > 1
    assert page.locator("#error-groups svg.spark").count() == groups.count()
    signed_in.screenshot("error-groups")
    tool = groups.first.locator(".call-name").inner_text()
    groups.first.locator("a.row-link").click()
    page.wait_for_url(re.compile(r"/tool-calls/errors/group/\?tool="))
    assert page.locator("h1").inner_text() == tool
    signed_in.screenshot("error-group")
    link = page.locator("#group-calls a.button-small").first
    seq = link.inner_text().rsplit("#", 1)[1]
    link.click()
    page.wait_for_url(re.compile(rf"#m-{seq}$"))
    target = page.locator(f"#m-{seq}")
    assert target.is_visible()
    assert target.locator("details.call-failed .call-name").first.inner_text() == tool
    signed_in.assert_clean()


def test_it_follows_a_live_session_until_it_finishes(
    signed_in: Console, demo: console_demo.Demo
) -> None:
    page = signed_in.page
    live = demo.live
    signed_in.goto(f"/sessions/{live.pk}/")
    assert page.locator(".tail-live").is_visible()
    before = page.locator("article.msg").count()
    message_append(
        session_id=live.pk,
        messages=[MessageIn(role="user", text_content="Are you still there? <b>hello</b>")],
    )
    page.locator(f"#m-{before}").wait_for(timeout=10_000)
    assert "<b>hello</b>" in page.locator(f"#m-{before}").inner_text()
    message_append(
        session_id=live.pk,
        messages=[MessageIn(role="assistant", text_content="Yes — your parcel is on its way.")],
    )
    page.locator(f"#m-{before + 1}").wait_for(timeout=10_000)
    expect(page.locator("#session-facts dd").first).to_have_text(str(before + 2))  # counters too
    page.locator(".tail-live").scroll_into_view_if_needed()
    signed_in.screenshot("live")
    session_finish(session_id=live.pk)
    page.locator(".tail-end").wait_for(timeout=10_000)
    assert page.locator("#session-status").inner_text() == "finished"
    # Polling has stopped: no request goes out over the next polling interval.
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(2_500)
    assert requests == []
    assert page.locator("article.msg").count() == before + 2
    signed_in.assert_clean()


def test_it_browses_agents_and_memories(signed_in: Console, demo: console_demo.Demo) -> None:
    page = signed_in.page
    page.click("nav.nav >> text=Agents")
    page.wait_for_url(re.compile(r"/agents/$"))
    assert page.locator("#agents tbody tr").count() == 4
    signed_in.screenshot("agents")
    page.click("#agents >> text=support-bot")
    page.wait_for_url(re.compile(r"/agents/\d+/$"))
    assert page.locator("svg.bars").count() == 2
    signed_in.screenshot("agent")
    page.click("nav.nav >> text=Memories")
    page.wait_for_url(re.compile(r"/memories/$"))
    assert page.locator("#memories tbody tr").count() == 8
    signed_in.screenshot("memories")
    page.locator("#memories a.row-link").first.click()
    page.wait_for_url(re.compile(r"/memories/[0-9a-f-]{36}/$"))
    signed_in.screenshot("memory")
    signed_in.assert_clean()


def test_it_shows_styled_error_pages(signed_in: Console) -> None:
    response = signed_in.goto("/sessions/00000000-0000-0000-0000-000000000000/")
    assert response.status == 404
    assert signed_in.page.locator(".error-code").inner_text() == "404"
    signed_in.screenshot("404")
    signed_in.errors.clear()  # Chromium logs the 404 status itself; that is the point here
    response = signed_in.goto("/sessions/?created_after=yesterday")
    assert response.status == 400
    assert "YYYY-MM-DD" in signed_in.page.locator(".notice-error").inner_text()
    signed_in.errors.clear()
    # A NUL in the address: no stored text holds one, so the page says so instead of failing.
    response = signed_in.goto("/sessions/?q=refund%00")
    assert response.status == 400
    assert signed_in.page.locator(".error-code").inner_text() == "400"
    assert "NUL character" in signed_in.page.locator(".lede").inner_text()
    signed_in.screenshot("400")
    signed_in.errors.clear()
