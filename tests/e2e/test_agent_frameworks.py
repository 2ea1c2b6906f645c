"""Framework data in the console, in Chromium: an OpenAI Agents SDK conversation written through
LogdeckSession is found by its session id, read as a transcript, and its failing tool call is
in its error group."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.services import api_key_create
from sessions_app.models import Session
from tests.e2e.conftest import Console
from tests.factories import OperatorFactory

SCRIPT = Path(__file__).resolve().parents[1] / "client" / "agents_run.py"
PASSWORD = "correct horse battery staple"  # OperatorFactory's


@pytest.fixture
def conversation(console: Console, tmp_path: Path):
    # A superuser: the flush between browser tests empties the groups the migrations made.
    operator = OperatorFactory(email="frameworks@logdeck.test", is_superuser=True)
    key = api_key_create(user=operator, scope="write").secret
    env = {**os.environ, "LOGDECK_URL": console.base_url, "LOGDECK_API_KEY": key}
    # The SDK (its package is called `agents`, like Logdeck's app) runs in its own process.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "scripted", "sdk-chat-7", "order-desk"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["answers"][1] == "You are welcome."
    console.login(operator.email, PASSWORD)
    return Session.objects.get(agent__name="order-desk", external_key="sdk-chat-7")


def test_it_shows_an_agents_sdk_transcript_and_its_failing_call(
    console: Console, conversation: Session
) -> None:
    page = console.page
    console.goto("/sessions/?q=sdk-chat-7")  # found by the SDK's own session id
    rows = page.locator("#session-rows tr:not(#load-more)")
    assert rows.count() == 1, page.locator("main").inner_text()
    page.click(f"a[href='/sessions/{conversation.pk}/'].row-link")
    page.wait_for_url(re.compile(rf"/sessions/{conversation.pk}/$"))
    assert page.locator("article.msg").count() == 8
    assert "Where is order 1234?" in page.locator("article.msg").first.inner_text()
    # The agent's answer is escaped text, not markup.
    assert "<b>could not</b>" in page.locator("article.msg").nth(5).inner_text()
    assert page.locator("main b").count() == 0
    failed = page.locator("details.call-failed")
    assert failed.count() == 1
    assert failed.locator(".call-name").first.inner_text() == "charge_card"
    assert "An error occurred while running the tool" in failed.locator(".call-error").inner_text()
    console.screenshot("agents-sdk-transcript")

    console.goto("/tool-calls/errors/")
    group = page.locator("#error-groups tbody tr", has_text="charge_card")
    assert group.count() == 1
    group.locator("a.row-link").click()
    page.wait_for_url(re.compile(r"/tool-calls/errors/group/\?tool=charge_card"))
    assert page.locator("h1").inner_text() == "charge_card"
    link = page.locator("#group-calls a.button-small").first
    link.click()
    page.wait_for_url(re.compile(rf"/sessions/{conversation.pk}/.*#m-\d+$"))
    assert page.locator("details.call-failed .call-name").first.inner_text() == "charge_card"
    console.screenshot("agents-sdk-error-group")
    console.assert_clean()
