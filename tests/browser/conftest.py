"""Browser tests: the catalog served by the local Functions host, driven in headless Chromium.

Playwright (PyPI `playwright`, its driver only) drives Debian's Chromium at /usr/bin/chromium
(`make browser` installs it; no browser is ever downloaded by Playwright). axe-core (npm) checks
accessibility. Screenshots go to a temporary folder, or to docs/screenshots with
SAVE_SCREENSHOTS=1 (`make screenshots`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.e2e.conftest import LocalHost, host_env, local_host  # noqa: F401  (fixtures, re-used)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# As root, without a sandbox; and no background traffic: this machine reaches no outside host.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped: sync Playwright runs an event loop in this thread while it is started,
    which later tests (that call asyncio.run) must not find still running."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Iterator[Path]:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield SCREENSHOTS
    else:
        with tempfile.TemporaryDirectory(prefix="catalog-screenshots-") as scratch:
            yield Path(scratch)


@dataclass
class Visitor:
    """One person in their own browser context, acting as a principal through the dev picker."""

    principal: str
    context: BrowserContext
    page: Page
    base: str
    problems: list[str] = field(default_factory=list)  # console errors and CSP violations

    def url(self, path: str) -> str:
        return self.base + path

    def open(self, path: str, status: int = 200) -> Page:
        response = self.page.goto(self.url(path))
        assert response is not None
        assert response.status == status, f"{path}: {response.status}"
        return self.page

    def act_as(self) -> None:
        page = self.open("/api/catalog/dev/act-as", 200)
        page.get_by_label("Principal id").fill(self.principal)
        page.get_by_role("button", name="Act as this principal").click()
        page.wait_for_url("**/api/catalog/models")
        assert page.get_by_test_id("caller").inner_text() == self.principal


def _record_problem(problems: list[str]) -> Callable[[ConsoleMessage], None]:
    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    return record


@pytest.fixture
def visitor(browser: Browser, local_host: LocalHost) -> Iterator[Callable[..., Visitor]]:  # noqa: F811
    contexts: list[BrowserContext] = []

    def make(principal: str, *, bypass_csp: bool = False, act: bool = True) -> Visitor:
        context = browser.new_context(viewport=DESKTOP, bypass_csp=bypass_csp)
        contexts.append(context)
        page = context.new_page()
        person = Visitor(principal, context, page, local_host.url)
        page.on("console", _record_problem(person.problems))
        if act:
            person.act_as()
        return person

    yield make
    for context in contexts:
        context.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def check_page(screenshot_dir: Path) -> Callable[[Page, str], None]:
    """axe at desktop and phone widths, and a screenshot of each."""

    def check(page: Page, name: str) -> None:
        try:
            for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
                page.set_viewport_size(size)
                assert serious_violations(page) == [], f"{name} at {label} width"
                page.screenshot(path=str(screenshot_dir / f"{name}-{label}.png"), full_page=True)
        finally:
            page.set_viewport_size(DESKTOP)

    return check
