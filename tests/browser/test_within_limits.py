"""The catalog under the API's default rate limit (2 a second, 100 a minute, 500 in 10 minutes per
caller): registering and following the copy, then browsing at a person's pace, is never refused;
a burst of the model's own images fills in by retrying."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request, Response, expect

from tests.browser.conftest import Visitor
from tests.browser.test_registering import DIAGRAM, fill_registration
from tests.conftest import Sources
from tests.e2e.helpers import MIB

DEFAULT_RATE_LIMITS = "2/1,100/60,500/600"  # the setting's default (DeepDev's published limits)
PAUSE_MS = 1100  # a person takes more than a second between pages


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    return host_env | {"REGISTRY_RATE_LIMITS": DEFAULT_RATE_LIMITS}


def counted(url: str) -> bool:
    """Whether a request counts against the caller's rate (static files do not)."""
    return "/api/catalog/" in url and "/api/catalog/static/" not in url


def test_registering_and_following_the_copy_then_browsing_stays_within_the_rate_limit(
    visitor: Callable[..., Visitor], sources: Sources, check_page: Callable[[Page, str], None]
) -> None:
    name = f"limit-{uuid.uuid4().hex[:8]}"
    diagrams = ("one.png", "two.png", "three.png")
    index = b"# Three diagrams\n\n" + b"".join(f"![{d}]({d})\n\n".encode() for d in diagrams)
    files = {
        "score.py": sources.upload(f"{name}/score.py", b"def init(d): pass\n"),
        "env.yml": sources.upload(f"{name}/env.yml", b"name: e\n"),
        "index.md": sources.upload(f"{name}/index.md", index),
        "weights.bin": sources.upload(f"{name}/weights.bin", b"w" * (8 * MIB)),
        **{d: sources.upload(f"{name}/{d}", DIAGRAM) for d in diagrams},
    }
    alice = visitor("alice")
    answers: list[tuple[str, int]] = []
    polls: list[tuple[float, str]] = []  # when each status request was sent

    def answered(response: Response) -> None:
        if counted(response.url):
            answers.append((response.url, response.status))

    def sent(request: Request) -> None:
        if "/api/catalog/registrations/status" in request.url:
            polls.append((time.monotonic(), request.url))

    alice.page.on("response", answered)
    alice.page.on("request", sent)
    alice.page.wait_for_timeout(PAUSE_MS)
    page = alice.open("/api/catalog/register")
    fill_registration(page, name, files, private=True)
    page.wait_for_timeout(PAUSE_MS)
    page.get_by_role("button", name="Register").click()  # the post and the page it leads to
    page.wait_for_url(f"**/api/catalog/model/{name}/1.0/alice")
    started = time.monotonic()
    expect(page.get_by_test_id("state")).to_have_text("Finished", timeout=120_000)
    following = time.monotonic() - started
    expect(page.locator("progress[data-role=total]")).to_have_attribute("value", "100")

    assert [a for a in answers if a[1] == 429] == [], answers
    assert polls and all("wait=30" in url for _, url in polls)
    # Sent at least 3 s apart: at most 20 a minute, however often the copy checkpoints.
    assert all(later - earlier >= 2.9 for (earlier, _), (later, _) in itertools.pairwise(polls)), polls
    assert len(polls) <= following / 3 + 2, (len(polls), following)

    # Browsing at a person's pace: no page is refused.
    answers.clear()
    for path in (
        "/api/catalog/registrations",
        f"/api/catalog/model/{name}/1.0/alice/history",
        f"/api/catalog/model/{name}/1.0/alice/manifest?revision=1",
        "/api/catalog/models",
    ):
        page.wait_for_timeout(PAUSE_MS)
        alice.open(path)
    assert [a for a in answers if a[1] == 429] == [], answers

    # The model page and its three images at once: four requests in a second, so some images
    # are refused at first; each is asked for again and the page fills in.
    page.wait_for_timeout(PAUSE_MS)
    answers.clear()
    alice.open(f"/api/catalog/model/{name}/1.0/alice")
    expect(page.get_by_test_id("index").get_by_role("img")).to_have_count(3)
    loaded = "i => i.complete && i.naturalWidth === 80"
    page.wait_for_function(f"() => [...document.querySelectorAll('.markdown img')].every({loaded})")
    # (Usually two of the images are refused at first; on a slow machine maybe none.)
    refused = [url for url, status in answers if status == 429]
    assert all("/files/" in url for url in refused), answers  # image loads, never a page


def test_the_too_many_requests_page_says_when_to_retry_and_passes_axe(
    visitor: Callable[..., Visitor], check_page: Callable[[Page, str], None]
) -> None:
    """Pages faster than two a second: the catalog answers 429 with a page of its own. (A caller
    of its own: the limit is per caller, so the other tests here keep their budget.)"""
    hasty = visitor(f"hasty-{uuid.uuid4().hex[:6]}")
    statuses = []
    for _ in range(6):
        response = hasty.page.goto(hasty.url("/api/catalog/models"))
        assert response is not None
        statuses.append(response.status)
        if response.status == 429:
            retry_after = int(response.headers["retry-after"])
            break
    else:
        raise AssertionError(f"six pages at once were never refused: {statuses}")
    page = hasty.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many requests")
    seconds = "1 second" if retry_after == 1 else f"{retry_after} seconds"
    expect(page.get_by_role("main")).to_contain_text(f"Slow down: try again in {seconds}.")
    check_page(page, "too-many-requests")
