"""The README's screenshots of the console, taken from the demo data (without the hostile
session). They land in tests/e2e/screenshots/; LOGDECK_README_SCREENSHOTS=1 also writes the
committed copies under docs/screenshots/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.e2e.conftest import SCREENSHOTS, Console
from tests.fixtures import console_demo

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_it_takes_the_readme_screenshots(console: Console) -> None:
    demo = console_demo.build(sessions=60, hostile=False)
    console.login(demo.operator.email, "demo-password")
    page = console.page

    console.goto("/sessions/")
    page.locator("#session-rows tr").first.wait_for()
    console.screenshot("readme-sessions")

    failing = max(demo.sessions, key=lambda s: (s.error_count, s.message_count))
    console.goto(f"/sessions/{failing.pk}/")
    article = page.locator("article.msg-failed").first
    seq = int(article.get_attribute("id").removeprefix("m-"))
    # Start the view at the question before the failure: the hash scrolls, no script needed.
    console.goto(f"/sessions/{failing.pk}/#m-{max(seq - 2, 0)}")
    call = page.locator("details.call-failed").first
    call.locator("summary").click()
    call.locator(".payloads pre.json").first.wait_for()
    console.screenshot("readme-transcript")

    console.goto("/tool-calls/errors/")
    page.locator("#error-groups svg.spark").first.wait_for()
    console.screenshot("readme-error-groups")
    console.assert_clean()

    # The same console in the dark theme and on a phone: both follow the system, no script.
    page.emulate_media(color_scheme="dark")
    console.goto("/")
    console.screenshot("dark-overview")
    console.goto(f"/sessions/{failing.pk}/")
    console.screenshot("dark-transcript")
    page.set_viewport_size({"width": 390, "height": 844})
    console.goto("/sessions/")
    console.screenshot("dark-phone-sessions")
    console.assert_clean()

    if os.environ.get("LOGDECK_README_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name in ("sessions", "transcript", "error-groups"):
            shutil.copyfile(SCREENSHOTS / f"readme-{name}.png", DOCS / f"console-{name}.png")
