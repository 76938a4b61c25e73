"""What a language-filtered page costs on Table Storage: the rows of the page, whatever the catalog
holds (the filter picks a key range of index rows; it is never applied after reading)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from devhost.azurite import Azurite
from registry.adapters.tables import TableRegistrationStore
from registry.domain.listing import ModelFilter
from registry.identity import Principal
from registry.services.models import list_models
from tests.builders import make_deps
from tests.contract.conftest import EntityCounter, table_store
from tests.contract.records import registration

pytestmark = pytest.mark.integration

CATALOG = 300
ALICE = Principal("alice", "Alice")


@pytest.fixture(scope="module")
def counted(azurite: Azurite) -> tuple[TableRegistrationStore, EntityCounter]:
    """Bob's 300 public models and Alice's 300 own, one of each in English, sorting last (a scan
    would read every other row before it)."""
    counter = EntityCounter(counting=False)
    store = table_store(azurite, counter)

    def add(i: int) -> None:
        match = i == CATALOG - 1
        name, languages = ("zz-match", ["en"]) if match else (f"m{i:03d}", ["PYTHON"])
        store.publish(registration("bob", name, finished=True, output_languages=languages))
        store.insert(registration("alice", name, output_languages=languages))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(CATALOG)))
    counter.counting = True
    return store, counter


def test_a_language_filtered_page_of_one_reads_only_the_matching_rows(
    counted: tuple[TableRegistrationStore, EntityCounter],
) -> None:
    store, counter = counted
    deps = make_deps(store=store)
    english = ModelFilter(language="EN")

    counter.reset()
    first = list_models(deps, ALICE, english, 1, None)
    first_read = counter.entities
    counter.reset()
    assert first.continuation is not None
    second = list_models(deps, ALICE, english, 1, first.continuation)
    second_read = counter.entities

    assert [(m.name, m.owner) for m in first.models] == [("zz-match", "alice")]
    assert [(m.name, m.owner) for m in second.models] == [("zz-match", "bob")]
    assert second.continuation is None
    # Each source reads at most its next matching row: 2 entities, not the 600 of the catalog.
    assert first_read <= 2
    assert second_read <= 2


def test_the_counter_sees_the_rows_an_unfiltered_page_reads(
    counted: tuple[TableRegistrationStore, EntityCounter],
) -> None:
    """The bound above means something: without a language the same page reads a full page of rows."""
    store, counter = counted
    counter.reset()

    page = list_models(make_deps(store=store), ALICE, ModelFilter(), 1, None)

    assert [(m.name, m.owner) for m in page.models] == [("m000", "alice")]
    assert 2 < counter.entities <= 2 * (1 + 1)  # a page of one reads at most two rows of each source
