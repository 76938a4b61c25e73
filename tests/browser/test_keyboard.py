"""The catalog with the keyboard alone, in Chromium: Tab order, a visible focus ring, the skip
link, submitting the filters, opening a model, and making it private through its confirmation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Visitor
from tests.browser.test_registering import register_public
from tests.conftest import Sources
from tests.e2e.conftest import LocalHost


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    """No per-caller rate limit: a test clicks through pages faster than people do."""
    return host_env | {"REGISTRY_RATE_LIMITS": "off"}


# What has the focus: its id, else its text; with what the browser draws for it.
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    name: el.id ? '#' + el.id : el.textContent.trim().replace(/\\s+/g, ' '),
    tag: el.tagName.toLowerCase(),
    href: el.getAttribute('href'),
    focusVisible: el.matches(':focus-visible'),
    outline: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth),
    outlineColor: style.outlineColor,
    // What the ring is drawn on: the nearest background that is not transparent.
    background: (() => {
      for (let node = el.parentElement; node; node = node.parentElement) {
        const color = getComputedStyle(node).backgroundColor;
        if (color !== 'rgba(0, 0, 0, 0)' && color !== 'transparent') return color;
      }
      return 'rgb(255, 255, 255)';
    })(),
    boxShadow: style.boxShadow,
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0
      && box.left < window.innerWidth,
  };
}"""

# The page's nav, in order, before any page's own controls: skip link, brand, the three
# sections, and dev mode's "Act as…".
TOP = ["Skip to content", "Model registry", "Models", "My registrations", "Register", "Act as…"]
FILTERS = ["#q", "#type", "#input_type", "#output_type", "#language", "#owner", "#trainable", "#sort"]


def luminance(css: str) -> float:
    """WCAG's relative luminance of an rgb()/rgba() colour."""
    red, green, blue = (int(float(v)) / 255 for v in re.findall(r"[\d.]+", css)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def tab(page: Page) -> dict[str, Any]:
    """Press Tab; what then has the focus, which must show a focus ring: at least 2px, and at
    least 3:1 against what it is drawn on (WCAG 1.4.11)."""
    page.keyboard.press("Tab")
    focused: dict[str, Any] = page.evaluate(FOCUSED)
    assert focused["focusVisible"], focused
    assert focused["outline"] != "none" and focused["outlineWidth"] >= 2, f"no focus ring: {focused}"
    assert contrast(focused["outlineColor"], focused["background"]) >= 3, f"faint focus ring: {focused}"
    assert focused["onScreen"], f"focused but not on screen: {focused}"
    return focused


def tab_to(page: Page, wanted: Callable[[dict[str, Any]], bool], limit: int = 40) -> list[str]:
    """Tab until `wanted` holds of the focused element; the names of every stop on the way."""
    stops: list[str] = []
    for _ in range(limit):
        focused = tab(page)
        stops.append(focused["name"])
        if wanted(focused):
            return stops
    raise AssertionError(f"not reached with Tab in {limit} presses: {stops}")


def test_a_keyboard_only_user_filters_opens_a_model_and_makes_it_private_through_its_confirmation(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
) -> None:
    name = register_public(local_host, sources, "alice", {})
    model = f"/api/catalog/model/{name}/1/alice"
    alice = visitor("alice")
    page = alice.open("/api/catalog/models")

    # From the top: the skip link, the nav, then the search field; typing and Enter submits.
    assert tab_to(page, lambda f: f["name"] == "#q") == [*TOP, "#q"]
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/api/catalog/models?q={name}**")
    expect(page.get_by_test_id("model-row")).to_have_count(1)

    # The nav, the search and each filter, the buttons, then the one model; Enter opens it.
    stops = tab_to(page, lambda f: f["href"] == model)
    assert stops == [*TOP, *FILTERS, "Show models", "Clear", f"{name} 1"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{model}")

    # The skip link, shown when focused, moves the focus past the nav to the content.
    assert tab(page)["name"] == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    make_private = tab(page)
    assert (make_private["name"], make_private["tag"]) == ("Make private…", "a")  # the first control
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/api/catalog/registrations/{name}/1/visibility")

    # The confirmation: its button is the first control after the nav; Enter confirms.
    stops = tab_to(page, lambda f: f["tag"] == "button")
    assert stops == [*TOP, "Make it private"]
    assert tab(page)["name"] == "Cancel"  # and Cancel right after it
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{model}")
    expect(page.get_by_test_id("model-state")).to_have_text("Finished")
    expect(page.get_by_role("link", name="Make public…")).to_be_visible()
    expect(page.locator(".model .meta")).to_contain_text("private")
    assert alice.problems == []


def test_every_control_on_the_owners_model_page_shows_a_focus_ring_and_none_is_skipped(
    visitor: Callable[..., Visitor], local_host: LocalHost, sources: Sources
) -> None:
    """Tab through the whole page at phone width too: every stop has a visible ring, and the
    order follows the page (actions, the commands to copy, files, manifests, history)."""
    name = register_public(local_host, sources, "alice", {"weights.bin": b"w"})
    alice = visitor("alice")
    for width in (1280, 390):
        page = alice.open(f"/api/catalog/model/{name}/1/alice")
        page.set_viewport_size({"width": width, "height": 844})
        stops = tab_to(page, lambda f: f["name"] == "OpenAPI document", limit=80)
        assert stops[: len(TOP)] == TOP
        after = stops[len(TOP) :]
        assert after[:3] == ["Make private…", "Delete…", "Register a new version of " + f"{name} 1"]
        for later in ("weights.bin", "Manifest 1 as JSON"):
            assert later in after, stops
        assert after.index("weights.bin") < after.index("Manifest 1 as JSON")
