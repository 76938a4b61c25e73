"""The RegistrationStore contract, listing: the owner's models and the public catalog, every
filter in the query, key order, paging by `after`, language index rows that follow the record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from registry.domain.listing import ModelFilter, ModelSummary
from registry.domain.model import Registration
from registry.domain.vocabulary import DataType, ModelType
from registry.ports import RegistrationStore
from tests.contract.records import own_key, public_key, registration
from tests.fakes import T0

CALLER = "zed"  # lists the public catalog; owns nothing in it


def _catalog(owner: str) -> list[Registration]:
    """Four models that each filter tells apart (inserted out of key order)."""
    sc, nl = DataType.SOURCE_CODE, DataType.NATURAL_LANGUAGE
    return [
        registration(
            owner, "gamma", "1.0", input_types=[DataType.OTHER], output_types=[DataType.OTHER],
            input_languages=(), finished=True,
        ),
        registration(
            owner, "beta", "1.0", model_type=ModelType.SEQ2SEQ, trainable=True, input_types=[sc],
            input_languages=["JAVA"], output_types=[nl], output_languages=["en"], finished=True,
        ),
        registration(
            owner, "alpha", "2.0", model_type=ModelType.ENCODER, trainable=True, input_types=[nl],
            input_languages=["En"], output_types=[DataType.CLASS_LABEL], finished=True,
        ),
        registration(owner, "alpha", "1.0", input_languages=["PYTHON"], finished=True),
    ]  # fmt: skip


FILTERS: dict[str, tuple[ModelFilter, list[str]]] = {
    "none": (ModelFilter(), ["alpha 1.0", "alpha 2.0", "beta 1.0", "gamma 1.0"]),
    "name": (ModelFilter(name="alpha"), ["alpha 1.0", "alpha 2.0"]),
    "name not a prefix": (ModelFilter(name="alp"), []),
    "version": (ModelFilter(version="1.0"), ["alpha 1.0", "beta 1.0", "gamma 1.0"]),
    "name and version": (ModelFilter(name="alpha", version="2.0"), ["alpha 2.0"]),
    "type": (ModelFilter(type=ModelType.ENCODER), ["alpha 2.0"]),
    "trainable": (ModelFilter(trainable=True), ["alpha 2.0", "beta 1.0"]),
    "not trainable": (ModelFilter(trainable=False), ["alpha 1.0", "gamma 1.0"]),
    "input type": (ModelFilter(input_type=DataType.SOURCE_CODE), ["alpha 1.0", "beta 1.0"]),
    "output type": (ModelFilter(output_type=DataType.NATURAL_LANGUAGE), ["beta 1.0"]),
    "language, any case": (ModelFilter(language="EN"), ["alpha 2.0", "beta 1.0"]),
    "input language": (ModelFilter(language="python"), ["alpha 1.0"]),
    "unknown language": (ModelFilter(language="cobol"), []),
    "language and name": (ModelFilter(name="alpha", language="en"), ["alpha 2.0"]),
    "language and more": (
        ModelFilter(language="en", trainable=True, type=ModelType.SEQ2SEQ, version="1.0"),
        ["beta 1.0"],
    ),
}


def _names(models: Iterator[ModelSummary] | list[ModelSummary]) -> list[str]:
    return [f"{m.name} {m.version}" for m in models]


def _own(store: RegistrationStore, filters: ModelFilter = ModelFilter(), after: str = "") -> list[str]:  # noqa: B008
    return _names(store.own_models("alice", after, filters))


def _public(store: RegistrationStore, filters: ModelFilter = ModelFilter(), after: str = "") -> list[str]:  # noqa: B008
    return [f"{m.name} {m.version} {m.owner}" for m in store.public_models(after, filters, CALLER)]


# -- the owner's own models ---------------------------------------------------------------------


@pytest.mark.parametrize("case", FILTERS)
def test_own_models_are_filtered_in_key_order(store: RegistrationStore, case: str) -> None:
    for r in _catalog("alice"):
        store.insert(r)
    store.insert(registration("bob", "alpha", "1.0", input_languages=["PYTHON", "EN"]))
    filters, expected = FILTERS[case]

    assert _own(store, filters) == expected


@pytest.mark.parametrize("case", ["none", "version", "language, any case", "not trainable"])
def test_own_models_page_after_any_key_with_the_filter_kept(store: RegistrationStore, case: str) -> None:
    for r in _catalog("alice"):
        store.insert(r)
    filters, expected = FILTERS[case]
    listed = list(store.own_models("alice", "", filters))

    for i, summary in enumerate(listed):
        assert _own(store, filters, after=f"{summary.name}!{summary.version}") == expected[i + 1 :]


def test_own_models_show_the_summary_of_the_record(store: RegistrationStore) -> None:
    r = registration(description="what it does", private=True, trainable=True, output_languages=["en"])
    r.parent = {"name": "gpt", "version": "2", "owner": "bob"}
    store.insert(r)

    [summary] = list(store.own_models("alice", "", ModelFilter(language="EN")))

    assert summary == ModelSummary(
        name="bert", version="1.0", owner="alice", owner_name="Alice", type="DECODER",
        description="what it does", private=True, state="InProgress", trainable=True,
        languages=("en", "python"), parent_model={"name": "gpt", "version": "2", "owner": "bob"},
        created_at=T0, updated_at=T0,
    )  # fmt: skip


def test_a_tombstone_is_not_listed_under_any_filter(store: RegistrationStore) -> None:
    store.insert(registration(name="kept"))
    gone = store.insert(registration(name="gone", output_languages=["en"]))
    gone.mark_deleting(T0)
    store.replace(gone)

    assert _own(store) == ["kept 1.0"]
    assert _own(store, ModelFilter(language="python")) == ["kept 1.0"]
    assert _own(store, ModelFilter(language="en")) == []
    assert _own(store, ModelFilter(name="gone")) == []


def test_a_deleted_record_takes_its_language_rows_with_it(store: RegistrationStore) -> None:
    r = store.insert(registration(output_languages=["en"]))
    store.delete(r)

    assert _own(store, ModelFilter(language="en")) == []
    assert _own(store, ModelFilter(language="python")) == []
    store.insert(registration(input_languages=["GO"]))  # the same key again, other languages
    assert _own(store, ModelFilter(language="python")) == []
    assert _own(store, ModelFilter(language="go")) == ["bert 1.0"]


def _relanguage(store: RegistrationStore, inputs: list[str], outputs: list[str]) -> Registration:
    r = store.get("alice", "bert", "1.0")
    assert r is not None
    r.metainfo["input_languages"], r.metainfo["output_languages"] = inputs, outputs
    return store.replace(r)


def test_a_metainfo_change_moves_the_record_between_language_filters(store: RegistrationStore) -> None:
    store.insert(registration(input_languages=["PYTHON"], output_languages=["en"]))

    _relanguage(store, ["JAVA"], ["en"])  # python removed, java added
    assert [_own(store, ModelFilter(language=x)) for x in ("python", "java", "en")] == [
        [],
        ["bert 1.0"],
        ["bert 1.0"],
    ]

    _relanguage(store, ["JAVA", "GO"], [])  # go added, en removed
    assert [_own(store, ModelFilter(language=x)) for x in ("java", "go", "en")] == [
        ["bert 1.0"],
        ["bert 1.0"],
        [],
    ]

    _relanguage(store, [], [])  # none left
    assert [_own(store, ModelFilter(language=x)) for x in ("java", "go")] == [[], []]
    assert _own(store) == ["bert 1.0"]

    _relanguage(store, ["PYTHON"], [])  # back again
    assert _own(store, ModelFilter(language="python")) == ["bert 1.0"]


def test_a_language_filtered_listing_shows_the_current_summary(store: RegistrationStore) -> None:
    r = store.insert(registration(description="old", input_languages=["PYTHON"]))
    r.description = "new"
    r.finish(T0, "Finished")  # the state changes too
    store.replace(r)

    [summary] = list(store.own_models("alice", "", ModelFilter(language="python")))

    assert (summary.description, summary.state) == ("new", "Finished")


# -- the public catalog -------------------------------------------------------------------------


def _publish_catalog(store: RegistrationStore) -> None:
    for owner in ("bob", "carol"):
        for r in _catalog(owner):
            store.publish(store.insert(r))
    store.publish(
        store.insert(registration(CALLER, "alpha", "1.0", input_languages=["PYTHON"], finished=True))
    )


@pytest.mark.parametrize("case", FILTERS)
def test_public_models_are_filtered_in_key_order_without_the_callers_own(
    store: RegistrationStore, case: str
) -> None:
    _publish_catalog(store)
    filters, expected = FILTERS[case]

    assert _public(store, filters) == [f"{m} {owner}" for m in expected for owner in ("bob", "carol")]


@pytest.mark.parametrize("case", ["none", "name", "language, any case", "language and name"])
def test_public_models_filter_by_owner(store: RegistrationStore, case: str) -> None:
    _publish_catalog(store)
    filters, expected = FILTERS[case]
    by_carol = dataclasses.replace(filters, owner="carol")

    assert _public(store, by_carol) == [f"{m} carol" for m in expected]


@pytest.mark.parametrize("case", ["none", "name", "input type", "language, any case"])
def test_public_models_page_after_any_key_with_the_filter_kept(store: RegistrationStore, case: str) -> None:
    _publish_catalog(store)
    filters, _ = FILTERS[case]
    listed = _public(store, filters)
    summaries = list(store.public_models("", filters, CALLER))

    for i, summary in enumerate(summaries):
        assert _public(store, filters, after=summary.sort_key) == listed[i + 1 :]


def test_publish_is_idempotent_and_unpublish_too(store: RegistrationStore) -> None:
    r = store.insert(registration("bob", finished=True, output_languages=["en"]))

    store.unpublish(r)  # never published: nothing to do
    store.publish(r)
    store.publish(r)
    assert _public(store) == ["bert 1.0 bob"]
    assert _public(store, ModelFilter(language="en")) == ["bert 1.0 bob"]

    store.unpublish(r)
    store.unpublish(r)
    assert _public(store) == []
    assert _public(store, ModelFilter(language="en")) == []
    assert _public(store, ModelFilter(language="python")) == []


def test_republishing_after_a_metainfo_change_moves_the_language_rows(store: RegistrationStore) -> None:
    store.publish(store.insert(registration("bob", input_languages=["PYTHON"], output_languages=["en"])))

    r = store.get("bob", "bert", "1.0")
    assert r is not None
    r.metainfo["input_languages"], r.metainfo["output_languages"] = ["JAVA"], []
    r.description = "now in java"
    store.publish(store.replace(r))

    assert _public(store, ModelFilter(language="python")) == []
    assert _public(store, ModelFilter(language="en")) == []
    assert _public(store, ModelFilter(language="java")) == ["bert 1.0 bob"]
    [summary] = list(store.public_models("", ModelFilter(language="java"), CALLER))
    assert summary.description == "now in java"
    store.unpublish(r)
    assert _public(store, ModelFilter(language="java")) == []


def test_the_catalog_is_a_projection_written_only_by_publish(store: RegistrationStore) -> None:
    r = store.insert(registration("bob", description="listed"))
    store.publish(r)
    r.description = "not yet listed"
    store.replace(r)

    [summary] = list(store.public_models("", ModelFilter(), CALLER))
    assert summary.description == "listed"  # until the record is published again
    assert [m.description for m in store.own_models("bob", "", ModelFilter())] == ["not yet listed"]


def test_the_public_catalog_orders_owners_of_one_name_and_version(store: RegistrationStore) -> None:
    for owner in ("mallory", "bob", "carol-2", "carol"):
        store.publish(store.insert(registration(owner, "same", "1.0")))
    store.publish(store.insert(registration("bob", "same", "1.0.1")))
    store.publish(store.insert(registration("bob", "same-2", "1.0")))

    assert _public(store) == [
        "same 1.0 bob", "same 1.0 carol", "same 1.0 carol-2", "same 1.0 mallory",
        "same 1.0.1 bob", "same-2 1.0 bob",
    ]  # fmt: skip
    assert _public(store, ModelFilter(name="same")) == _public(store)[:5]
    after_carol = _public(store, ModelFilter(name="same"), after="same!1.0!carol")
    assert after_carol == ["same 1.0 carol-2", "same 1.0 mallory", "same 1.0.1 bob"]
    assert public_key(registration("carol", "same", "1.0")) == "same!1.0!carol"
    assert own_key(registration("carol", "same", "1.0")) == "same!1.0"
