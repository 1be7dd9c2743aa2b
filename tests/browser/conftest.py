"""Browser fixtures: the shared web chat servers, Debian's Chromium driven by Playwright, and
pages that fail the test on any JavaScript error."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")  # stop Playwright's event loop before other tests run
def browser() -> Iterator[Browser]:
    """Debian's Chromium (scripts/test.sh installs it); Playwright's own download is not used."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"{CHROMIUM} is missing: run `apt-get install -y chromium` (scripts/test.sh does).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


class PageErrors:
    """JavaScript errors and failed requests seen by a page (the widget must cause none)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """Expect console errors containing ``fragment`` (e.g. a deliberately refused upload)."""
        self.allowed.append(fragment)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(f in message.text for f in self.allowed):
            self.messages.append(message.text)


def new_page(browser: Browser, errors: PageErrors, **options: object) -> Page:
    context = browser.new_context(locale="zh-CN", **options)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on("console", errors.console)
    page.on("pageerror", lambda error: errors.messages.append(f"page error: {error}"))
    return page


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A desktop-sized page in a fresh context (fresh localStorage, so a new conversation)."""
    page = new_page(browser, page_errors, viewport={"width": 1280, "height": 800})
    yield page
    page.context.close()
    assert page_errors.messages == []


@pytest.fixture
def phone(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A 375×667 touch phone."""
    page = new_page(
        browser,
        page_errors,
        viewport={"width": 375, "height": 667},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    page.context.close()
    assert page_errors.messages == []


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Saves a screenshot under artifacts/screenshots/ for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
