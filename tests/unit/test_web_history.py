"""The catalog's model page on the fakes: its history (with the API's visibility, paged), its
manifest revisions, a deleted model, and the long-polled progress of registrations."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from typing import Any
from urllib.parse import unquote

import pytest

from registry.services.limits import Admission
from registry.web import core as core_module
from registry.web import history, views
from registry.web.cache import PublicListingCache
from registry.web.core import Core
from tests.builders import make_settings
from tests.unit.web_fixtures import Browser, acting_as
from tests.world import ALICE, BIG, BOB, World, payload

NAME, VERSION = "codegen", "1.0"
MODEL = f"/api/catalog/model/{NAME}/{VERSION}/{ALICE.id}"
ROUTE = {"name": NAME, "version": VERSION, "owner": ALICE.id}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World(settings=make_settings(REGISTRY_DEV_MODE="true", REGISTRY_RATE_LIMITS="off"))
    monkeypatch.setattr(core_module, "_core", Core(world.deps, PublicListingCache(ttl_seconds=0)))
    return world


def page(browser: Browser, path: str = MODEL, status: int = 200, **kwargs: Any) -> str:
    route = kwargs.pop("route", ROUTE)
    response = browser.get(path, route=route, **kwargs)
    assert response.status_code == status, response.get_body()[:800]
    return response.get_body().decode()


def kinds(text: str) -> list[str]:
    """The history entries' kinds on a page, in the order shown."""
    return re.findall(r'data-testid="history-entry" data-kind="([a-z_]+)"', text)


def history_of(text: str) -> str:
    start = text.index('data-testid="history"')
    return text[start : text.index("</ol>", start)]


def registered(world: World, *, private: bool) -> None:
    """A model of alice's, registered and then (a minute later) finished."""
    world.register(private=private, finish=False)
    world.now.advance(60)
    world.run_queue()


def made_public_then_described(world: World) -> None:
    registered(world, private=True)
    world.now.advance(60)
    world.update({"model_config": {"private": False}})
    world.now.advance(60)
    world.update({"model_config": {"description": "Writes <b>code</b>"}})


# -- rendering one entry ----------------------------------------------------------------------------


def test_an_update_reads_as_each_settings_value_before_and_after() -> None:
    entry = history.entry(
        {
            "id": "e1",
            "type": "updated",
            "time": "2026-01-02T03:04:05+00:00",
            "by": "alice",
            "state": "Finished",
            "message": "Registered",
            "changes": {
                "private": {"from": True, "to": False},
                "description": {"from": "", "to": "Better"},
                "model_metainfo": ["num_params", "input_description"],
                "trainable": {"from": False, "to": True},
                "odd": {"nested": [1]},
            },
        }
    )
    assert entry.title == "Updated"
    assert entry.changes == (
        history.Change("visibility", "private", "public"),
        history.Change("description", "(none)", "Better"),
        history.Change("metadata", fields=("num_params", "input_description")),
        history.Change("trainable", "no", "yes"),
        history.Change("odd", after='{"nested": [1]}'),
    )


def test_a_finished_entry_carries_its_manifest_a_clone_its_parent_and_files_their_names() -> None:
    finished = history.entry(
        {
            "type": "finished",
            "by": "registry",
            "revision": 2,
            "manifest_digest": "sha256:ab",
            "state": "Finished",
        }
    )
    assert (finished.title, finished.revision, finished.digest) == ("Finished", 2, "sha256:ab")
    cloned = history.entry({"type": "cloned", "parent": {"name": "p", "version": "1", "owner": "bob"}})
    assert cloned.parent == {"name": "p", "version": "1", "owner": "bob"}
    replaced = history.entry({"type": "files_replaced", "files": ["a.bin", "b.bin"]})
    assert (replaced.title, replaced.files) == ("Files replaced", ("a.bin", "b.bin"))
    assert history.entry({"type": "something_new"}).title == "Something new"
    assert history.changes_of(None) == ()


# -- the history on the model page -------------------------------------------------------------------


def test_the_owner_sees_every_change_and_others_only_those_made_while_it_was_public(world: World) -> None:
    made_public_then_described(world)
    mine = page(acting_as(ALICE.id))
    assert kinds(mine) == ["updated", "updated", "finished", "registered"]
    theirs = page(acting_as(BOB.id))
    assert kinds(theirs) == ["updated", "updated"]  # the private past stays private

    shown = history_of(theirs)
    assert re.search(r'<span class="setting">visibility</span>:\s*<span class="before">private</span>', shown)
    assert '<span class="after">public</span>' in shown
    # Values are escaped like everything else on the page.
    assert '<span class="after">Writes &lt;b&gt;code&lt;/b&gt;</span>' in shown
    assert f"by <code>{ALICE.id}</code>" in shown


def test_the_history_shows_who_when_and_the_manifest_revision_with_its_digest(world: World) -> None:
    world.register(private=False)
    text = page(acting_as(BOB.id))
    [digest] = re.findall(r"digest <code>(sha256:[0-9a-f]{64})</code>", history_of(text))
    manifest = json.loads(page(acting_as(BOB.id), f"{MODEL}/manifest", params={"revision": "1"}))
    assert manifest["digest"] == digest
    assert f'href="{MODEL}/manifest?revision=1">revision 1</a>' in history_of(text)
    assert "by <code>registry</code>" in history_of(text)  # the copy's outcome
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', history_of(text))


def test_a_long_history_shows_the_latest_changes_and_pages_through_the_rest(world: World) -> None:
    world.register(private=True)
    for n in range(60):
        world.now.advance(1)
        world.update({"model_config": {"description": f"take {n}"}})
    alice = acting_as(ALICE.id)
    text = page(alice)
    assert len(kinds(text)) == views.HISTORY_ON_MODEL_PAGE
    assert f'href="{MODEL}/history" data-testid="all-history"' in text

    seen: list[str] = []
    path, params = f"{MODEL}/history", None
    for _ in range(5):
        text = page(alice, path, params=params)
        seen += re.findall(r'<span class="after">(take \d+)</span>', text)
        older = re.search(r'rel="next" href="[^"?]+\?page=([^"]+)"', text)
        if older is None:
            break
        params = {"page": unquote(html.unescape(older.group(1)))}
    assert seen == [f"take {n}" for n in reversed(range(60))]  # newest first, each once
    assert "registered" in kinds(text)


def test_a_page_link_of_another_caller_is_refused(world: World) -> None:
    world.register(private=False)
    for n in range(60):
        world.update({"model_config": {"description": f"take {n}"}})
        world.now.advance(1)
    text = page(acting_as(ALICE.id), f"{MODEL}/history")
    token = unquote(html.unescape(re.findall(r'\?page=([^"]+)"', text)[0]))
    response = acting_as(BOB.id).get(f"{MODEL}/history", route=ROUTE, params={"page": token})
    assert response.status_code == 400


# -- manifest revisions ----------------------------------------------------------------------------


def test_replacing_a_file_adds_a_revision_and_the_page_lists_both_with_the_latest_files(world: World) -> None:
    world.register(private=False)
    world.now.advance(60)
    new_weights = payload(1000, seed=7)
    world.update({"model_files": {BIG: world.source(ALICE, NAME, "v2.bin", new_weights)}})
    world.now.advance(60)
    world.run_queue()

    text = page(acting_as(BOB.id))
    revisions = re.findall(r'<tr data-revision="(\d+)">', text)
    assert revisions == ["2", "1"]
    latest = json.loads(page(acting_as(BOB.id), f"{MODEL}/manifest"))
    first = json.loads(page(acting_as(BOB.id), f"{MODEL}/manifest", params={"revision": "1"}))
    assert (latest["revision"], first["revision"]) == (2, 1)
    assert latest["digest"] != first["digest"]
    for revision in (latest, first):
        row = text[text.index(f'<tr data-revision="{revision["revision"]}">') :]
        row = row[: row.index("</tr>")]
        assert f"<code>{revision['digest']}</code>" in row
        assert f'<td data-label="By"><code>{ALICE.id}</code></td>' in row
        assert f'href="{MODEL}/manifest?revision={revision["revision"]}"' in row
    files = text[text.index('data-testid="manifest-files"') :]
    files = files[: files.index("</table>")]
    for f in latest["files"]:
        assert f"<td>{f['path']}</td>" in files and f"<code>{f['sha256']}</code>" in files
    [weights] = [f for f in latest["files"] if f["path"] == BIG]
    assert weights["size"] == len(new_weights)
    assert "1000 bytes" in files
    assert kinds(text)[:2] == ["finished", "files_replaced"]


def test_a_manifest_of_a_model_you_may_not_see_or_a_revision_that_is_not_there_is_a_json_404(
    world: World,
) -> None:
    world.register(private=True)
    bob, alice = acting_as(BOB.id), acting_as(ALICE.id)
    for browser, params in ((bob, None), (bob, {"revision": "1"}), (alice, {"revision": "2"})):
        response = browser.get(f"{MODEL}/manifest", route=ROUTE, params=params)
        assert response.status_code == 404
        assert response.mimetype == "application/json"
        assert json.loads(response.get_body())["message"] == "Not found"
    assert alice.get(f"{MODEL}/manifest", route=ROUTE, params={"revision": "x"}).status_code == 400
    assert "Content-Security-Policy" in alice.get(f"{MODEL}/manifest", route=ROUTE).headers


def test_a_model_still_copying_has_no_revision_yet(world: World) -> None:
    world.register(private=True, finish=False)
    text = page(acting_as(ALICE.id))
    assert "No revision yet" in text
    assert 'data-progress="codegen/1.0"' in text  # its owner follows the copy


# -- a deleted model ---------------------------------------------------------------------------------


def test_a_deleted_model_is_not_found_for_others_and_its_owner_still_reads_its_history(world: World) -> None:
    made_public_then_described(world)
    world.now.advance(60)
    world.delete()
    bob, alice = acting_as(BOB.id), acting_as(ALICE.id)

    for path in (MODEL, f"{MODEL}/history"):
        text = page(bob, path, 404)
        assert "history-entry" not in text and "Writes" not in text

    text = page(alice, MODEL, 404)  # the model is gone, for its owner too
    assert 'data-testid="gone"' in text
    assert kinds(text) == ["deleted", "updated", "updated", "finished", "registered"]
    text = page(alice, f"{MODEL}/history")
    assert kinds(text)[0] == "deleted" and 'data-testid="gone"' in text
    assert "Back to the model" not in text
    assert "Manifest revision 1, digest" in history_of(text)  # told, not linked: it is gone too
    assert "/manifest?revision=" not in text


def test_a_model_that_never_existed_is_a_plain_404_for_its_would_be_owner(world: World) -> None:
    text = page(acting_as(ALICE.id), MODEL, 404)
    assert "does not exist or is not visible to you" in text


# -- long-polled progress ----------------------------------------------------------------------------


def statuses(browser: Browser, models: str, wait: str | None = None) -> tuple[int, Any]:
    params = {"models": models} | ({"wait": wait} if wait is not None else {})
    response = browser.get("/api/catalog/registrations/status", params=params)
    return response.status_code, json.loads(response.get_body())


def test_one_long_poll_answers_as_soon_as_any_of_the_pages_registrations_changes(world: World) -> None:
    world.register("first", private=True, finish=False)
    world.register("second", private=True, finish=False)
    alice = acting_as(ALICE.id)
    code, body = statuses(alice, "first/1.0,second/1.0")
    assert code == 200
    assert [(s["name"], s["state"]) for s in body["registrations"]] == [
        ("first", "InProgress"),
        ("second", "InProgress"),
    ]

    def finish_soon() -> None:
        time.sleep(0.3)
        world.run_queue()

    threading.Thread(target=finish_soon).start()
    started = time.monotonic()
    code, body = statuses(alice, "first/1.0,second/1.0", wait="30")
    assert time.monotonic() - started < 10
    assert code == 200
    assert "Finished" in {s["state"] for s in body["registrations"]}


def test_a_long_poll_with_nothing_changing_answers_after_the_wait(world: World) -> None:
    world.register(private=True)
    started = time.monotonic()
    code, body = statuses(acting_as(ALICE.id), "codegen/1.0", wait="1")
    assert 1 <= time.monotonic() - started < 5
    assert (code, body["registrations"][0]["state"]) == (200, "Finished")


def test_only_the_callers_own_registrations_are_answered_and_nothing_else_waits(world: World) -> None:
    world.register(private=False)
    started = time.monotonic()
    code, body = statuses(acting_as(BOB.id), "codegen/1.0", wait="30")
    assert (code, body) == (200, {"registrations": []})
    assert time.monotonic() - started < 5  # nothing of bob's to watch: answered at once


@pytest.mark.parametrize(
    ("models", "wait"),
    [("", None), ("codegen", None), ("codegen/1.0/x", None), ("a/1," * 51, None), ("codegen/1.0", "61")],
)
def test_a_malformed_progress_request_is_a_json_400(world: World, models: str, wait: str | None) -> None:
    code, body = statuses(acting_as(ALICE.id), models.rstrip(","), wait)
    assert code == 400 and body["message"] == "Invalid request"


def test_the_single_registration_status_long_polls_too(world: World) -> None:
    world.register(private=True)
    started = time.monotonic()
    response = acting_as(ALICE.id).get(
        f"/api/catalog/registrations/{NAME}/{VERSION}/status",
        route={"name": NAME, "version": VERSION},
        params={"wait": "1"},
    )
    assert response.status_code == 200 and 1 <= time.monotonic() - started < 5
    assert json.loads(response.get_body())["state"] == "Finished"


def limit(world: World, monkeypatch: pytest.MonkeyPatch, requests: int) -> None:
    """The catalog with a rate limit of `requests` a minute per caller."""
    deps = world.deps
    limited = type(deps)(**{**vars(deps), "admission": Admission(((requests, 60.0),))})
    monkeypatch.setattr(core_module, "_core", Core(limited, PublicListingCache(ttl_seconds=0)))


def test_a_long_poll_counts_once_against_the_rate_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.register(private=True)
    alice = acting_as(ALICE.id)
    limit(world, monkeypatch, 3)
    for _ in range(3):  # each waits about a second, looking at the record twice or more
        assert statuses(alice, "codegen/1.0", wait="1")[0] == 200
    response = alice.get("/api/catalog/registrations/status", params={"models": "codegen/1.0", "wait": "1"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


def test_static_files_do_not_count_against_the_rate_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = acting_as(ALICE.id)  # choosing whom to act as is not counted: nobody is signed in yet
    limit(world, monkeypatch, 1)
    page(alice, "/api/catalog/models", route={})
    for name in views.STATIC:
        response = alice.get(f"/api/catalog/static/{name}", route={"file": name})
        assert response.status_code == 200
        assert "immutable" in response.headers["Cache-Control"]
    assert alice.get("/api/catalog/models").status_code == 429
