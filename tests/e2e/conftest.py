"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Without Chromium they skip, saying how to enable them; with LOGDECK_REQUIRE_BROWSER=1 (CI) a
missing Chromium fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls from it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOW_TO_ENABLE = (
    "Chromium is not installed, so the browser tests cannot run: install it with "
    "`apt-get install chromium` (or point LOGDECK_CHROMIUM at a Chromium binary)."
)


def _chromium() -> str | None:
    configured = os.environ.get("LOGDECK_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        if os.environ.get("LOGDECK_REQUIRE_BROWSER") == "1":
            pytest.fail(HOW_TO_ENABLE + " LOGDECK_REQUIRE_BROWSER=1 makes this a failure.")
        pytest.skip(HOW_TO_ENABLE)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """A browser page on the live server that records console errors and CSP violations."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("dialog", lambda dialog: self.errors.append(f"dialog: {dialog.message}"))

    def _on_console(self, message: Any) -> None:
        # CSP violations are reported by Chromium as console errors.
        if message.type in ("error", "warning") and "DevTools" not in message.text:
            self.errors.append(f"console {message.type}: {message.text}")

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def login(self, email: str, password: str) -> None:
        self.goto("/accounts/login/")
        self.page.fill("input[name=username]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base_url + "/")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)

    def assert_clean(self) -> None:
        assert self.errors == [], "the browser reported errors:\n" + "\n".join(self.errors)


@pytest.fixture
def console(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Console(page, live_server.url)
    context.close()
