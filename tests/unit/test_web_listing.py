"""The models list on the real listing service (over the fakes): search, filters, sort, pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from registry.domain.vocabulary import ModelType
from registry.web import listing
from registry.web.core import Core, ModelFilter, ModelPage, Principal
from tests.unit.web_fixtures import fake_core, model, seed

ALICE = Principal("alice", "Alice")


@pytest.fixture
def core() -> Core:
    the_core = fake_core()
    models = [
        model(
            f"pub{i % 3}", f"m{i:03d}", minutes=(i * 7) % 53, description="finds cats" if i % 4 == 0 else ""
        )
        for i in range(53)
    ]
    models += [model("alice", "m010a", private=True, description="cats of my own", minutes=99)]
    models += [model("bob", "m020b", private=True, description="cats hidden")]
    seed(the_core, models)
    return the_core


def fetcher(
    core: Core, calls: list[int] | None = None
) -> Callable[[ModelFilter, int, str | None], ModelPage]:
    def fetch(filters: ModelFilter, limit: int, continuation: str | None) -> ModelPage:
        if calls is not None:
            calls.append(limit)
        return core.list_page(ALICE, filters, limit, continuation)

    return fetch


def walk(core: Core, **params: str) -> tuple[list[str], int]:
    keys: list[str] = []
    pages = 0
    query = listing.Query.parse(params)
    while True:
        result = listing.browse(fetcher(core), query)
        keys += [f"{r.name}/{r.owner}" for r in result.rows]
        pages += 1
        if result.next_page is None:
            return keys, pages
        query = listing.Query.parse({**params, "page": result.next_page})


def test_pages_walk_every_visible_model_once_in_key_order(core: Core) -> None:
    keys, pages = walk(core)
    assert len(keys) == 54 == len(set(keys))
    assert keys == sorted(keys)
    assert "m010a/alice" in keys and "m020b/bob" not in keys
    assert pages == 3


def test_an_unfiltered_page_costs_one_service_page_of_its_own_size(core: Core) -> None:
    calls: list[int] = []
    result = listing.browse(fetcher(core, calls), listing.Query.parse({}))
    assert calls == [listing.PAGE_SIZE]
    assert len(result.rows) == listing.PAGE_SIZE


def test_search_matches_every_word_in_name_or_description_case_blind(core: Core) -> None:
    keys, _ = walk(core, q="CATS")
    expected = sorted([f"m{i:03d}/pub{i % 3}" for i in range(0, 53, 4)] + ["m010a/alice"])
    assert keys == expected
    assert walk(core, q="cats own")[0] == ["m010a/alice"]
    assert walk(core, q="m01")[0] == [k for k in walk(core)[0] if k.startswith("m01")]


def test_search_stops_at_its_budget_and_the_next_page_goes_on(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SEARCH_BUDGET", 10)
    monkeypatch.setattr(listing, "SEARCH_STEP", 10)
    first = listing.browse(fetcher(core), listing.Query.parse({"q": "nothing matches this"}))
    assert first.rows == [] and first.partial and first.next_page is not None
    keys, _ = walk(core, q="cats")
    assert len(keys) == 15


def test_sorting_by_update_lists_newest_first_across_pages(core: Core) -> None:
    keys, pages = walk(core, sort="updated")
    assert pages == 3 and len(keys) == 54
    assert keys[0] == "m010a/alice"  # updated last
    times = {f"m{i:03d}/pub{i % 3}": (i * 7) % 53 for i in range(53)} | {"m010a/alice": 99}
    assert [times[k] for k in keys] == sorted(times.values(), reverse=True)


def test_sorting_by_update_says_when_it_looked_at_part_of_the_list(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SORT_BUDGET", 30)
    result = listing.browse(fetcher(core), listing.Query.parse({"sort": "updated"}))
    assert result.truncated and result.scanned == 30


def test_filters_go_to_the_service_and_bad_values_are_named() -> None:
    query = listing.Query.parse({"type": "ENCODER", "trainable": "true", "language": "py", "owner": "o"})
    assert query.filters == ModelFilter(owner="o", type=ModelType.ENCODER, trainable=True, language="py")
    bad = listing.Query.parse({"type": "CNN", "sort": "random", "input_type": "IMAGE"})
    assert set(bad.errors) == {"type", "sort", "input_type"}


def test_the_url_holds_the_query_and_a_changed_filter_starts_at_page_one() -> None:
    query = listing.Query.parse({"q": "cats", "type": "ENCODER", "page": "abc"})
    assert query.url() == "/api/catalog/models?q=cats&type=ENCODER"
    assert query.url(owner="bob") == "/api/catalog/models?q=cats&type=ENCODER&owner=bob"
    assert query.url(page="xyz").endswith("&page=xyz")


def test_a_page_link_that_was_not_made_here_is_refused(core: Core) -> None:
    with pytest.raises(listing.BadToken):
        listing.browse(fetcher(core), listing.Query.parse({"page": "not-a-token!"}))
