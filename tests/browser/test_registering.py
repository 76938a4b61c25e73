"""Registering and managing models in Chromium: the form, live progress, visibility, delete, and
an index page full of XSS payloads."""

from __future__ import annotations

import struct
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from registry.web.core import LISTING_CACHE_SECONDS
from tests.browser.conftest import Visitor
from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import MIB, body, register


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    """No per-caller rate limit: a test clicks through pages faster than people do."""
    return host_env | {"REGISTRY_RATE_LIMITS": "off"}


INDEX = b"""# A sample model

It **reverses** text. ![diagram](diagram.png)

| input | output |
|-------|--------|
| abc   | cba    |
"""


def _png(width: int, height: int) -> bytes:
    """A grey PNG (sniffed as an image whatever content type the blob has)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


DIAGRAM = _png(80, 20)

# Every payload would set window.__xss (or the opener's) if anything of it ran.
XSS_CORPUS = """# Nothing here runs

<script>window.__xss = 'script'</script>

<img src="x" onerror="window.__xss = 'img onerror'">

<svg onload="window.__xss = 'svg onload'"><circle r="5"/></svg>

<svg><script>window.__xss = 'svg script'</script></svg>

<svg><animate onbegin="window.__xss = 'animate'" attributeName="x" dur="1s"/></svg>

<svg><a xlink:href="javascript:window.__xss = 'svg link'"><text y="20">svg link</text></a></svg>

<a href="javascript:window.__xss = 'href'">plain javascript link</a>

<a href="  jav&#x09;ascript:window.__xss = 'obfuscated'">obfuscated link</a>

<a href="JaVaScRiPt:window.__xss = 'case'">mixed case link</a>

<a href="data:text/html,<script>opener.__xss = 'data url'</script>">data link</a>

[markdown link](javascript:window.__xss='markdown')

![markdown image](javascript:window.__xss='markdown image')

<iframe src="javascript:parent.__xss = 'iframe'"></iframe>

<iframe srcdoc="<script>parent.__xss = 'srcdoc'</script>"></iframe>

<object data="javascript:window.__xss = 'object'"></object>

<embed src="javascript:window.__xss = 'embed'">

<details open ontoggle="window.__xss = 'details'"><summary>details</summary>x</details>

<input autofocus onfocus="window.__xss = 'input'">

<body onload="window.__xss = 'body'">

<div onmouseover="window.__xss = 'mouseover'" style="width:100px;height:100px">hover me</div>

<p title="</p><img src=x onerror=window.__xss='title'>">attribute breakout</p>

<noscript><p title="</noscript><img src=x onerror=window.__xss='noscript'>"></p></noscript>

<math><maction actiontype="statusline" xlink:href="javascript:window.__xss='math'">math</maction></math>

<form action="javascript:window.__xss='form'">
<button formaction="javascript:window.__xss='button'">go</button></form>

<meta http-equiv="refresh" content="0;url=javascript:window.__xss='meta'">

<base href="javascript:window.__xss='base'//">

<style>@import 'javascript:window.__xss="style"';</style>

<video><source onerror="window.__xss = 'video'"></video>

<marquee onstart="window.__xss = 'marquee'">marquee</marquee>

<a href="https://example.invalid/" onclick="window.__xss = 'onclick'">an https link with a handler</a>
"""

# What the DOM of the rendered index may not hold, whatever the payloads were.
DANGEROUS_DOM = """() => {
  const root = document.querySelector('[data-testid=index]');
  const found = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['script', 'iframe', 'object', 'embed', 'svg', 'math', 'form', 'meta', 'base', 'style',
         'input', 'button', 'video', 'source', 'marquee'].includes(tag)) found.push('<' + tag + '>');
    for (const attr of el.attributes) {
      const value = attr.value.replace(/[\\u0000-\\u0020]/g, '').toLowerCase();
      if (attr.name.startsWith('on')) found.push(tag + '[' + attr.name + ']');
      if (attr.name === 'style') found.push(tag + '[style]');
      if (value.startsWith('javascript:') || value.startsWith('data:')) {
        found.push(tag + '[' + attr.name + '=' + value + ']');
      }
    }
  }
  return found;
}"""

# Give every handler a chance: the events the payloads listen for, on every element.
PROVOKE = """() => {
  for (const el of document.querySelectorAll('[data-testid=index] *')) {
    for (const type of ['mouseover', 'mouseenter', 'focus', 'toggle', 'load', 'error', 'animationstart']) {
      el.dispatchEvent(new Event(type, {bubbles: true}));
    }
    if (el.tagName !== 'A') el.click();
  }
}"""


def fill_registration(page: Page, name: str, files: dict[str, str], *, private: bool) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Version", exact=True).fill("1.0")
    page.get_by_label("Description", exact=True).fill("Reverses text, registered through the web catalog")
    if not private:
        page.get_by_label("Private (only you can see it)").uncheck()
    page.get_by_label("Entry script (a file name)").fill("score.py")
    page.get_by_label("Conda environment (a file name)").fill("env.yml")
    for index, (target, url) in enumerate(files.items()):
        if page.locator(f"#file_name_{index}").count() == 0:
            page.get_by_role("button", name="Add a file").click()
        page.get_by_label(f"File name {index + 1}", exact=True).fill(target)
        page.get_by_label(f"Source URL {index + 1}", exact=True).fill(url)
    page.get_by_role("group", name="Input types").get_by_label("NATURAL_LANGUAGE").check()
    page.get_by_label("Input languages (comma-separated)").fill("en, de")
    page.get_by_label("Input description").fill("Any text")
    page.get_by_role("group", name="Output types").get_by_label("NATURAL_LANGUAGE").check()
    page.get_by_label("Output languages (comma-separated)").fill("en")
    page.get_by_label("Output description").fill("The text reversed")
    page.get_by_label("Number of parameters").fill("1000")


def register_public(local_host: LocalHost, sources: Sources, owner: str, files: dict[str, bytes]) -> str:
    """A finished public model of `owner`, registered through the JSON API; returns its name."""
    name = f"web-{uuid.uuid4().hex[:8]}"
    with local_host.client(owner) as client:
        status = register(client, name, "1", body(sources, files, private=False, description="shared model"))
    assert status["state"] == "Finished", status
    return name


def test_a_registration_shows_live_progress_until_100_percent_and_finished(
    visitor: Callable[..., Visitor], sources: Sources, check_page: Callable[[Page, str], None]
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    files = {
        "score.py": sources.upload(f"{name}/score.py", b"def init(d): pass\n"),
        "env.yml": sources.upload(f"{name}/env.yml", b"name: e\n"),
        "index.md": sources.upload(f"{name}/index.md", INDEX),
        "diagram.png": sources.upload(f"{name}/diagram.png", DIAGRAM),
        "weights.bin": sources.upload(f"{name}/weights.bin", b"w" * (6 * MIB)),
    }
    alice = visitor("alice")
    page = alice.open("/api/catalog/register")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/registrations/status" in r.url else None)
    fill_registration(page, name, files, private=True)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(f"**/api/catalog/model/{name}/1.0/alice")
    check_page(page, "registration-progress")  # whatever the copy has reached by now

    state = page.get_by_test_id("state")
    expect(state).to_have_text("Finished", timeout=90_000)
    # Followed by long polls (?wait=), one request for the page's registrations at a time.
    assert polls and all("wait=30" in url and f"models={name}%2F1.0" in url for url in polls), polls
    total = page.locator("progress[data-role=total]")
    expect(total).to_have_attribute("value", "100")
    assert total.evaluate("bar => bar.position") == 1.0
    for bar in page.locator("li[data-file] progress").all():
        assert bar.evaluate("bar => bar.value") == 100
    expect(page.locator("li[data-file='weights.bin'] [data-role=file-text]")).to_have_text(
        "6.0 MiB of 6.0 MiB · Finished"
    )

    page = alice.open(f"/api/catalog/model/{name}/1.0/alice")
    expect(page.get_by_test_id("index").locator("h1")).to_have_text("A sample model")
    image = page.get_by_test_id("index").get_by_role("img", name="diagram")
    expect(image).to_have_attribute("src", f"/api/catalog/model/{name}/1.0/alice/files/diagram.png")
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") == 80  # served through the redirect to the blob
    assert alice.problems == []
    check_page(page, "model")
    registrations = alice.open("/api/catalog/registrations")
    expect(registrations.locator(f"[data-key='{name}/1.0']")).to_contain_text("Finished")


def test_the_register_form_shows_each_rule_of_the_apis_errors_beside_its_field(
    visitor: Callable[..., Visitor], local_host: LocalHost, check_page: Callable[[Page, str], None]
) -> None:
    alice = visitor("alice")
    page = alice.open("/api/catalog/register")
    page.get_by_label("Name", exact=True).fill("bad-model")
    page.get_by_label("Version", exact=True).fill("1")
    page.get_by_label("Entry script (a file name)").fill("score.py")
    page.get_by_label("Conda environment (a file name)").fill("env.yml")
    page.get_by_label("File name 1", exact=True).fill("index.md")
    page.get_by_label("Source URL 1", exact=True).fill("ftp://example.invalid/index.md")
    page.get_by_role("group", name="Input types").get_by_label("SOURCE_CODE").check()
    page.get_by_role("group", name="Output types").get_by_label("OTHER").check()
    page.get_by_label("Number of parameters").fill("many")
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state()

    # The same body through the JSON API: its errors[] are what the form shows.
    api_body: dict[str, Any] = {
        "model_config": {
            "type": "SEQ2SEQ",
            "private": True,
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": {"index.md": "ftp://example.invalid/index.md"},
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "output_types": ["OTHER"],
            "num_params": "many",
            "index_page_file": "index.md",
        },
    }
    with local_host.client("alice") as client:
        response = client.put("/api/v1.0/model/bad-model/1", json=api_body)
    assert response.status_code == 400
    errors = {e["field"]: e["rule"] for e in response.json()["errors"]}
    beside = {
        "model_metainfo.input_languages": "input_languages",
        "model_metainfo.input_description": "input_description",
        "model_metainfo.num_params": "num_params",
        "model_files['index.md']": "file_url_0",
    }
    assert set(beside) <= set(errors), errors
    for field, element in beside.items():
        control = page.locator(f"#{element}")
        expect(control).to_have_attribute("aria-invalid", "true")
        expect(control).to_have_attribute("aria-describedby", f"{element}-error")
        expect(page.locator(f"#{element}-error")).to_contain_text(errors[field])
    summary = page.get_by_role("alert")
    for rule in errors.values():
        expect(summary).to_contain_text(rule)
    # What was typed is kept.
    expect(page.get_by_label("Source URL 1", exact=True)).to_have_value("ftp://example.invalid/index.md")
    with local_host.client("alice") as client:
        assert client.get("/api/v1.0/model/bad-model/1/status").status_code == 404
    check_page(page, "register-errors")
    check_page(alice.open("/api/catalog/register"), "register")


def test_making_a_model_private_hides_it_from_a_second_user_and_public_shows_it_again(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    name = register_public(local_host, sources, "alice", {})
    alice, bob = visitor("alice"), visitor("bob")
    listed = f"[data-key='{name}/1/alice']"
    # Published by the worker: lists on this instance show it once their cached rows expire.
    deadline = time.monotonic() + LISTING_CACHE_SECONDS + 5
    while not bob.open(f"/api/catalog/models?q={name}").locator(listed).count():
        assert time.monotonic() < deadline, "a newly public model was not listed within the cache's TTL"
        bob.page.wait_for_timeout(500)
    bob.open(f"/api/catalog/model/{name}/1/alice", 200)

    page = alice.open(f"/api/catalog/model/{name}/1/alice")
    page.get_by_role("link", name="Make private…").click()
    page.wait_for_url("**/visibility")
    check_page(page, "confirm-private")
    page.get_by_role("button", name="Make it private").click()  # through this instance: seen at once
    page.wait_for_url(f"**/api/catalog/model/{name}/1/alice")
    expect(page.get_by_role("link", name="Make public…")).to_be_visible()

    expect(bob.open(f"/api/catalog/models?q={name}").locator(listed)).to_have_count(0)
    bob.open(f"/api/catalog/model/{name}/1/alice", 404)
    bob.open(f"/api/catalog/model/{name}/1/alice/files/score.py", 404)

    page = alice.open(f"/api/catalog/registrations/{name}/1/visibility")
    page.get_by_role("button", name="Make it public").click()
    page.wait_for_url(f"**/api/catalog/model/{name}/1/alice")
    expect(bob.open(f"/api/catalog/models?q={name}").locator(listed)).to_have_count(1)


def test_delete_after_confirmation_removes_the_model_everywhere(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    name = register_public(local_host, sources, "alice", {})
    alice, bob = visitor("alice"), visitor("bob")
    page = alice.open(f"/api/catalog/model/{name}/1/alice")
    page.get_by_role("link", name="Delete…").click()
    page.wait_for_url("**/delete")
    check_page(page, "confirm-delete")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"**/api/catalog/model/{name}/1/alice")  # cancelling changes nothing

    alice.open(f"/api/catalog/registrations/{name}/1/delete")
    alice.page.get_by_role("button", name="Delete permanently").click()
    alice.page.wait_for_url("**/api/catalog/registrations**")

    expect(alice.page.locator(f"[data-key='{name}/1']")).to_have_count(0)
    alice.open(f"/api/catalog/model/{name}/1/alice", 404)
    expect(bob.open(f"/api/catalog/models?q={name}").get_by_test_id("model-row")).to_have_count(0)
    with local_host.client("alice") as client:
        assert client.get(f"/api/v1.0/model/{name}/1/alice").status_code == 404


def test_my_registrations_show_a_failed_registration_with_its_reason(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    name = f"fail-{uuid.uuid4().hex[:8]}"
    request = body(sources)
    request["model_files"]["missing.bin"] = sources.url(f"{name}/never-uploaded.bin")
    with local_host.client("alice") as client:
        status = register(client, name, "1", request)
    assert status["state"] == "Failed"
    page = visitor("alice").open("/api/catalog/registrations")
    failure = page.locator(f"[data-key='{name}/1'] .failure")
    expect(failure).to_contain_text("Failed: ")
    expect(failure).to_contain_text(status["message"])
    check_page(page, "registrations")


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "sanitizer-alone"])
def test_an_index_page_full_of_xss_payloads_runs_none_of_them(
    bypass_csp: bool, visitor: Callable[..., Visitor], local_host: LocalHost, sources: Sources
) -> None:
    """With the CSP, and without it (so the sanitizer alone is tested), as owner and as reader."""
    name = register_public(local_host, sources, "alice", {"index.md": XSS_CORPUS.encode()})
    for who in ("alice", "bob"):
        person = visitor(who, bypass_csp=bypass_csp)
        page = person.open(f"/api/catalog/model/{name}/1/alice")
        page.wait_for_load_state("networkidle")
        page.evaluate(PROVOKE)
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__xss") is None
        assert page.evaluate(DANGEROUS_DOM) == []
        assert page.url.endswith(f"/api/catalog/model/{name}/1/alice")
        expect(page.get_by_test_id("index")).to_contain_text("plain javascript link")
        # Nothing was left for the CSP to block: the sanitizer removed it all first.
        assert [p for p in person.problems if "Content Security Policy" in p] == []


def check_the_copy_actions(page: Page, scope: Locator, name: str, label: str) -> None:
    """Both commands shown (opened with the keyboard), each copied by its button with the keyboard,
    and the clipboard then holds exactly the command shown."""
    commands = scope.get_by_test_id("register-commands")
    commands.locator("summary").focus()
    page.keyboard.press("Enter")  # a <details> opens from the keyboard
    curl, cli = commands.get_by_test_id("curl-command"), commands.get_by_test_id("cli-command")
    expect(curl).to_be_visible()
    expect(cli).to_be_visible()
    shown = {"curl": curl.input_value(), "CLI": cli.input_value()}
    assert shown["curl"].startswith("curl -X PUT ")
    assert f"/api/v1.0/model/{name}/<new-version>'" in shown["curl"]
    assert shown["CLI"].startswith("registry register '<folder-with-the-files>'")
    assert f"--name {name} \\\n  --version '<new-version>'" in shown["CLI"]
    for kind, key in (("curl", "Enter"), ("CLI", " ")):
        button = commands.get_by_role("button", name=f"Copy the {kind} command{label}")
        button.focus()
        page.keyboard.press(key)  # Enter or Space, as a keyboard user presses a button
        note = commands.locator(f"[data-copied-for$=-{kind.lower()}]")
        expect(note).to_have_text("Copied.")
        assert page.evaluate("() => navigator.clipboard.readText()") == shown[kind]
    assert "sig=" not in page.content()  # no source URL's SAS anywhere on the page


def test_the_copy_actions_put_the_curl_and_cli_commands_for_a_new_version_on_the_clipboard(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    """On My registrations (per registration) and on the owner's model page. The clipboard is
    granted to the context (headless Chromium honours clipboard-read/-write permissions), so the
    test reads back what the button copied."""
    name = register_public(local_host, sources, "alice", {"weights.bin": b"w" * 1024})
    alice = visitor("alice")
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=alice.base)

    page = alice.open("/api/catalog/registrations")
    row = page.locator(f"[data-key='{name}/1']")
    check_the_copy_actions(page, row, name, f" for {name} 1")
    check_page(page, "registrations-commands")

    page = alice.open(f"/api/catalog/model/{name}/1/alice")
    section = page.locator(".owner-actions")
    check_the_copy_actions(page, section, name, f" for {name} 1")
    curl = section.get_by_test_id("curl-command").input_value()
    assert '"weights.bin": "<https URL of weights.bin, with a read SAS>"' in curl
    assert '"description": "shared model"' in curl  # this version's settings
    assert alice.problems == []
    check_page(page, "model-commands")
