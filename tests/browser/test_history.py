"""A model's history and manifest revisions in Chromium: what its owner and another user read,
a replaced file's second revision, and a deleted model."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from devhost.azurite import Azurite, start_azurite
from tests.browser.conftest import Visitor
from tests.browser.test_registering import register_public
from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import body, register, wait


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    """An emulator of this module's own: replacing a file schedules the removal of the replaced
    blob on the jobs queue for 11 minutes later, and that queue's name is fixed, so on the shared
    emulator the message would outlive this module and be found by tests that wait for an empty
    queue."""
    with start_azurite(None) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    """No per-caller rate limit: a test clicks through pages faster than people do."""
    return host_env | {"REGISTRY_RATE_LIMITS": "off"}


def history_kinds(page: Page) -> list[str]:
    return [e.get_attribute("data-kind") or "" for e in page.get_by_test_id("history-entry").all()]


def test_the_model_page_shows_its_history_with_the_apis_visibility_and_its_manifest_revisions(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    name = f"hist-{uuid.uuid4().hex[:8]}"
    with local_host.client("alice") as api:
        assert (
            register(api, name, "1", body(sources, {"weights.bin": b"1" * 4096}, private=True))["state"]
            == "Finished"
        )
        for change in ({"private": False}, {"description": "Reverses <em>text</em>"}):
            assert api.patch(f"/api/v1.0/model/{name}/1", json={"model_config": change}).status_code == 200
    model = f"/api/catalog/model/{name}/1/alice"
    alice, bob = visitor("alice"), visitor("bob")

    # bob reads what happened while it was public; alice reads all of it, newest first.
    page = bob.open(model)
    assert history_kinds(page) == ["updated", "updated"]
    entries = page.get_by_test_id("history-entry")
    expect(entries.nth(0).locator("[data-setting=description]")).to_have_text(
        "description: (none) → to Reverses <em>text</em>"
    )
    visibility = entries.nth(1).locator("[data-setting=visibility]")
    expect(visibility).to_have_text("visibility: private → to public")
    expect(entries.nth(0)).to_contain_text("by alice")
    check_page(page, "model-history-reader")

    page = alice.open(model)
    assert history_kinds(page) == ["updated", "updated", "finished", "registered"]
    finished = page.locator("[data-testid=history-entry][data-kind=finished]")
    expect(finished).to_contain_text("Manifest revision 1, digest sha256:")
    expect(finished).to_contain_text("by registry")

    # A replaced file: a second manifest revision, its files listed with size and SHA-256.
    new_weights = b"2" * 5000
    with local_host.client("alice") as api:
        update = {"model_files": {"weights.bin": sources.upload(f"{name}/v2.bin", new_weights)}}
        assert api.patch(f"/api/v1.0/model/{name}/1", json=update).status_code == 200
        assert wait(api, f"/api/v1.0/model/{name}/1/status")["state"] == "Finished"
        listed = api.get(f"/api/v1.0/model/{name}/1/alice/manifests").json()["manifests"]
    page = alice.open(model)
    revisions = page.get_by_test_id("manifests").locator("tbody tr")
    expect(revisions).to_have_count(2)
    assert [r.get_attribute("data-revision") for r in revisions.all()] == ["2", "1"]
    for row, entry in zip(revisions.all(), listed, strict=True):
        expect(row).to_contain_text(entry["digest"])
        expect(row).to_contain_text(entry["by"])
    weights = page.get_by_test_id("manifest-files").locator("tr", has_text="weights.bin")
    expect(weights).to_contain_text("4.9 KiB")
    expect(weights).to_contain_text(hashlib.sha256(new_weights).hexdigest())
    assert history_kinds(page)[:2] == ["finished", "files_replaced"]
    check_page(page, "model-history")

    # The full history page: every change, newest first, with axe at both widths.
    page = alice.open(f"{model}/history")
    assert history_kinds(page) == [
        "finished",
        "files_replaced",
        "updated",
        "updated",
        "finished",
        "registered",
    ]
    expect(page.get_by_role("link", name="Back to the model")).to_be_visible()
    check_page(page, "history-page")
    page = bob.open(f"{model}/history")
    assert history_kinds(page) == ["finished", "files_replaced", "updated", "updated"]
    assert alice.problems == [] and bob.problems == []
    page = alice.open(model)

    # Each revision's JSON, through the catalog (the API's own manifest body).
    page.get_by_role("link", name="Manifest 1 as JSON").click()
    page.wait_for_url(lambda url: url.endswith(f"{model}/manifest?revision=1"))
    first = json.loads(page.locator("pre").first.inner_text())
    assert (first["revision"], first["digest"]) == (1, listed[1]["digest"])
    assert hashlib.sha256(b"1" * 4096).hexdigest() in {f["sha256"] for f in first["files"]}


def test_a_deleted_model_shows_nothing_to_others_and_its_history_to_its_owner(
    visitor: Callable[..., Visitor],
    local_host: LocalHost,
    sources: Sources,
    check_page: Callable[[Page, str], None],
) -> None:
    name = register_public(local_host, sources, "alice", {})
    model = f"/api/catalog/model/{name}/1/alice"
    alice, bob = visitor("alice"), visitor("bob")
    assert history_kinds(bob.open(model)) == ["finished"]
    alice.open(f"/api/catalog/registrations/{name}/1/delete")
    alice.page.get_by_role("button", name="Delete permanently").click()
    alice.page.wait_for_url("**/api/catalog/registrations**")

    for path in (model, f"{model}/history", f"{model}/manifest"):
        page = bob.open(path, 404)
        expect(page.locator("body")).not_to_contain_text("Deleted")
    page = alice.open(model, 404)
    expect(page.get_by_test_id("gone")).to_be_visible()
    assert history_kinds(page) == ["deleted", "finished", "registered"]
    check_page(page, "model-deleted")
    assert history_kinds(alice.open(f"{model}/history")) == ["deleted", "finished", "registered"]
