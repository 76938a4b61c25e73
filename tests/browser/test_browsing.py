"""Browsing the catalog in Chromium: search, filters, sorting and paging over seeded models."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from registry.bootstrap import build
from registry.domain.model import Registration, utcnow
from registry.settings import load_settings
from registry.web.listing import PAGE_SIZE
from tests.browser.conftest import Visitor
from tests.e2e.helpers import record


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    """No per-caller rate limit: a test clicks through pages faster than people do."""
    return host_env | {"REGISTRY_RATE_LIMITS": "off"}


TYPES = ("ENCODER", "DECODER", "SEQ2SEQ")
PUBLIC = 47


@dataclass(frozen=True)
class Seeded:
    registrations: list[Registration]

    def visible_to(self, caller: str) -> list[Registration]:
        return [r for r in self.registrations if r.visible_to(caller)]

    def keys(self, caller: str, where: Callable[[Registration], bool] = lambda r: True) -> list[str]:
        """What the list should show `caller`, in the catalog's order (name, version, owner)."""
        chosen = [r for r in self.visible_to(caller) if where(r)]
        ordered = sorted(chosen, key=lambda r: (r.name, r.version, r.owner))
        return [f"{r.name}/{r.version}/{r.owner}" for r in ordered]


def _model(i: int) -> Registration:
    registration = record(
        owner=f"pub{i % 3}",
        name=f"m{i:03d}",
        version="1",
        model_type=TYPES[i % 3],
        trainable=i % 4 == 0,
        languages=("python",) if i % 2 else ("en",),
        input_types=("SOURCE_CODE",) if i % 2 else ("NATURAL_LANGUAGE",),
        description="translates text between languages" if i % 5 == 0 else "summarizes code",
    )
    # Update times in another order than the names, to tell the two sorts apart.
    registration.updated_at = utcnow() - timedelta(minutes=(i * 17) % PUBLIC)
    return registration


@pytest.fixture(scope="module")
def seeded(host_env: dict[str, str]) -> Seeded:
    """Public models of three owners, carol's private ones, and alice's own (private, one copying)."""
    deps = build(load_settings(host_env))
    registrations = [_model(i) for i in range(PUBLIC)]
    registrations += [
        record(owner="carol", name=f"m{i:03d}", version="2", private=True, description="translates secrets")
        for i in (3, 10, 30)
    ]
    registrations += [
        record(owner="alice", name="m020", version="9", private=True, description="my own translates"),
        record(owner="alice", name="zz-alice", version="1", private=True, finished=False),
        record(owner="alice", name="m000", version="1", private=False, description="alice's public one"),
    ]

    def insert(registration: Registration) -> None:
        deps.store.insert(registration)
        if registration.listed_publicly:
            deps.store.publish(registration)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(insert, registrations))
    return Seeded(registrations)


def shown(page: Page) -> list[str]:
    return [row.get_attribute("data-key") or "" for row in page.get_by_test_id("model-row").all()]


def walk(page: Page) -> tuple[list[str], int]:
    """Every row of every page, following "Next page" to the end; and how many pages."""
    rows, pages = shown(page), 1
    while page.get_by_role("link", name="Next page").count():
        page.get_by_role("link", name="Next page").click()
        page.wait_for_load_state()
        rows += shown(page)
        pages += 1
    return rows, pages


def test_paging_walks_every_visible_model_exactly_once_in_name_order(
    seeded: Seeded, visitor: Callable[..., Visitor]
) -> None:
    alice = visitor("alice")
    rows, pages = walk(alice.open("/api/catalog/models"))

    expected = seeded.keys("alice")
    assert rows == expected
    assert len(rows) == len(set(rows))
    assert pages == math.ceil(len(expected) / PAGE_SIZE)
    assert not [key for key in rows if key.endswith("/carol")]  # carol's models are all private


def test_search_narrows_the_list_to_names_and_descriptions_that_match(
    seeded: Seeded, visitor: Callable[..., Visitor], check_page: Callable[[Page, str], None]
) -> None:
    alice = visitor("alice")
    page = alice.open("/api/catalog/models")
    page.get_by_label("Search name and description").fill("translates")
    page.get_by_role("button", name="Show models").click()
    page.wait_for_url("**q=translates**")

    rows, _ = walk(page)

    expected = seeded.keys("alice", lambda r: "translates" in f"{r.name} {r.description}")
    assert rows == expected
    assert "m020/9/alice" in rows  # her own private model matches too; carol's never
    assert 0 < len(rows) < len(seeded.keys("alice"))
    page = alice.open("/api/catalog/models?q=translates")
    check_page(page, "models-search")


def test_filters_narrow_the_list_and_the_url_holds_them(
    seeded: Seeded, visitor: Callable[..., Visitor]
) -> None:
    alice = visitor("alice")
    page = alice.open("/api/catalog/models")
    page.get_by_label("Type", exact=True).select_option("ENCODER")
    page.get_by_label("Trainable").select_option("true")
    page.get_by_role("button", name="Show models").click()
    page.wait_for_url("**type=ENCODER**")

    rows, _ = walk(page)

    assert "trainable=true" in page.url
    assert rows == seeded.keys("alice", lambda r: r.model_type == "ENCODER" and r.trainable)
    assert rows

    # The same view again from its URL alone: a filtered view can be shared.
    bob = visitor("bob")
    shared = bob.open("/api/catalog/models?type=ENCODER&trainable=true")
    assert shown(shared) == seeded.keys("bob", lambda r: r.model_type == "ENCODER" and r.trainable)


def test_language_input_type_and_owner_filters_select_exactly_their_models(
    seeded: Seeded, visitor: Callable[..., Visitor]
) -> None:
    alice = visitor("alice")

    def meta(r: Registration, key: str) -> list[str]:
        return list(r.document["model_metainfo"].get(key, []))

    python, _ = walk(alice.open("/api/catalog/models?language=python"))
    assert python == seeded.keys("alice", lambda r: "python" in meta(r, "input_languages"))

    natural, _ = walk(alice.open("/api/catalog/models?input_type=NATURAL_LANGUAGE"))
    assert natural == seeded.keys("alice", lambda r: "NATURAL_LANGUAGE" in meta(r, "input_types"))

    page = alice.open("/api/catalog/models")
    page.get_by_role("link", name="pub1").first.click()  # the owner's name filters by owner
    page.wait_for_url("**owner=pub1**")
    by_owner, _ = walk(page)
    assert by_owner == seeded.keys("alice", lambda r: r.owner == "pub1")


def test_sorting_by_last_update_puts_the_newest_first_and_pages_through_all(
    seeded: Seeded, visitor: Callable[..., Visitor]
) -> None:
    alice = visitor("alice")
    page = alice.open("/api/catalog/models")
    page.get_by_label("Sort by").select_option("updated")
    page.get_by_role("button", name="Show models").click()
    page.wait_for_url("**sort=updated**")

    rows, _ = walk(page)

    newest_first = sorted(seeded.visible_to("alice"), key=lambda r: (-r.updated_at.timestamp(), r.name))
    assert rows == [f"{r.name}/{r.version}/{r.owner}" for r in newest_first]


def test_another_owners_private_model_is_not_found_and_pages_pass_axe(
    seeded: Seeded, visitor: Callable[..., Visitor], check_page: Callable[[Page, str], None]
) -> None:
    alice = visitor("alice")
    alice.open("/api/catalog/model/m003/2/carol", 404)
    check_page(alice.page, "not-found")
    check_page(alice.open("/api/catalog/models"), "models")
    check_page(alice.open("/api/catalog/models?type=NOPE", 400), "models-bad-filter")
    carol = visitor("carol")
    page = carol.open("/api/catalog/model/m003/2/carol")
    assert page.get_by_test_id("model-state").inner_text() == "Finished"


def test_the_act_as_picker_passes_axe(
    visitor: Callable[..., Visitor], check_page: Callable[[Page, str], None]
) -> None:
    nobody = visitor("nobody", act=False)
    nobody.open("/api/catalog/models", 401)
    check_page(nobody.page, "sign-in")
    check_page(nobody.open("/api/catalog/dev/act-as"), "act-as")
