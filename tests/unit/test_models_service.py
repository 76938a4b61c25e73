"""services/models.py (find, list, read, update, delete, clone) against the in-memory fakes.

The copy worker (services/copying.py) runs on the same fakes where a flow needs files copied, so
that visibility, updates, deletes and clones are shown end to end without storage or HTTP.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from registry.blueprints import views
from registry.domain.jobs import CopyJob
from registry.domain.listing import ModelFilter
from registry.domain.model import Registration
from registry.domain.vocabulary import DataType, FileState, ModelType, State
from registry.identity import Principal
from registry.services import models as service
from registry.services.copying import MIB, Outcome
from registry.services.registration import (
    Conflict,
    Unavailable,
    job_for,
    new_registration,
    request_context,
)
from registry.validation import InvalidRequest, parse_registration
from tests.builders import registration_body, source_url
from tests.fakes import REGISTRY_CONTAINER_URL, T0, StageCall
from tests.world import ALICE, BIG, BOB, CAROL, World, default_files, payload


@pytest.fixture
def world() -> World:
    return World()


def key(r: Registration | Any) -> str:
    return f"{r.name}/{r.version}/{r.owner}"


def same_model(job: CopyJob) -> tuple[str, str, str, str]:
    return (job.owner, job.name, job.version, job.registration_id)


def not_visible(call: Callable[[], Any]) -> str:
    """Run the call expecting NotVisible; returns what the exception says (which must be nothing)."""
    with pytest.raises(service.NotVisible) as raised:
        call()
    return f"{type(raised.value).__name__}:{raised.value}:{raised.value.args}"


def field_names(error: pytest.ExceptionInfo[InvalidRequest]) -> set[str]:
    return {e.field for e in error.value.errors}


# --------------------------------------------------------------------------------------------
# Visibility
# --------------------------------------------------------------------------------------------


def _operations(world: World, name: str) -> dict[str, Callable[[], Any]]:
    """Everything BOB could try on ALICE's model `name` (which may not exist)."""
    clone_body = {"parent_version": "1.0", "parent_owner": ALICE.id}
    return {
        "find": lambda: service.find_visible(world.deps, BOB, name, "1.0", ALICE.id),
        "index": lambda: world.index(BOB) if name == "codegen" else world.find(BOB, name=name),
        "file": lambda: world.file_url(BOB, "score.py") if name == "codegen" else world.find(BOB, name=name),
        "update": lambda: world.update({"model_config": {"description": "mine now"}}, caller=BOB, name=name),
        "delete": lambda: world.delete(caller=BOB, name=name),
        "clone": lambda: service.clone_model(world.deps, BOB, name, "9.0", clone_body),
    }


@pytest.mark.parametrize("operation", ["find", "index", "file", "update", "delete", "clone"])
def test_a_private_model_answers_others_exactly_as_a_model_that_does_not_exist(
    world: World, operation: str
) -> None:
    world.register(private=True)
    before = world.record(ALICE)
    on_private = not_visible(_operations(world, "codegen")[operation])
    on_missing = not_visible(_operations(world, "nosuchmodel")[operation])
    assert on_private == on_missing == "NotVisible::()"
    assert world.record(ALICE) == before  # and nothing changed
    assert world.store.all() == [before]
    assert world.copier.blobs_under(before.blob_path(""))  # nor was anything deleted
    assert world.queue.sent == []


def test_a_private_model_is_absent_from_every_listing_of_others(world: World) -> None:
    world.register(private=True)
    for filters in (ModelFilter(), ModelFilter(owner=ALICE.id), ModelFilter(name="codegen")):
        assert world.listing(BOB, filters) == []
    assert world.listing(ALICE) == [f"codegen/1.0/{ALICE.id}"]


def test_the_owner_sees_a_private_model_everywhere(world: World) -> None:
    registration = world.register(private=True)
    assert world.find(ALICE).registration_id == registration.registration_id
    assert world.index(ALICE) == default_files()["index.md"]
    assert world.read_url_data(world.file_url(ALICE, BIG)) == default_files()[BIG]


def test_a_public_model_is_visible_to_others_only_once_it_finished(world: World) -> None:
    world.register(private=False, finish=False)
    assert world.find(ALICE).state is State.IN_PROGRESS
    assert not_visible(lambda: world.find(BOB))
    assert world.listing(BOB) == []
    assert world.store.catalog() == []

    assert world.run_queue() == [Outcome.FINISHED]
    assert world.find(BOB).state is State.FINISHED
    assert world.index(BOB) == default_files()["index.md"]
    assert world.read_url_data(world.file_url(BOB, "score.py")) == default_files()["score.py"]
    assert world.listing(BOB) == [f"codegen/1.0/{ALICE.id}"]


def test_a_public_model_that_failed_before_finishing_stays_invisible_to_others(world: World) -> None:
    world.register(private=False, finish=False)
    world.copier.fail(source_url(f"{ALICE.id}/codegen/{BIG}"), permanent=True)
    assert world.run_queue() == [Outcome.FAILED]
    assert not_visible(lambda: world.find(BOB))
    assert world.listing(BOB) == []


def test_a_public_model_stays_visible_to_others_while_its_files_are_updated(world: World) -> None:
    world.register(private=False)
    world.update({"model_files": {"score.py": world.source(ALICE, "codegen", "score.py", b"v2")}})
    assert world.find(BOB).state is State.IN_PROGRESS
    assert world.listing(BOB) == [f"codegen/1.0/{ALICE.id}"]


def test_file_url_refuses_a_path_that_is_not_a_registered_file(world: World) -> None:
    world.register(private=False)
    for path in ("nope.txt", "weights", "../env.yml", ""):
        assert not_visible(functools.partial(world.file_url, BOB, path))


def test_file_url_is_a_short_lived_read_url_of_that_blob(world: World) -> None:
    registration = world.register(private=False)
    url = world.file_url(BOB, BIG)
    assert url.startswith(f"{REGISTRY_CONTAINER_URL}/{registration.blob_path('')}")
    assert "sig=" in url
    assert world.copier.read_url_calls == [registration.blob_path(BIG)]


def test_index_page_is_none_until_the_index_file_is_copied(world: World) -> None:
    world.register(finish=False)
    assert world.index(ALICE) is None
    world.run_queue()
    assert world.index(ALICE) == default_files()["index.md"]


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


def seed(
    world: World,
    owner: Principal,
    name: str,
    version: str = "1.0",
    *,
    private: bool = False,
    state: State = State.FINISHED,
    finished_once: bool | None = None,
    model_type: str = "DECODER",
    trainable: bool = False,
    input_types: tuple[str, ...] = ("SOURCE_CODE",),
    output_types: tuple[str, ...] = ("SOURCE_CODE",),
    languages: tuple[str, ...] = ("PYTHON",),
) -> Registration:
    """A validated registration put straight into the store (published as _finish would)."""
    body = registration_body()
    body["model_config"] |= {"type": model_type, "private": private}
    if trainable:
        body["model_config"]["training_properties"] = {"entry_script": "score.py", "conda_env": "env.yml"}
    meta = body["model_metainfo"]
    meta |= {"input_types": list(input_types), "output_types": list(output_types)}
    for side, types in (("input", input_types), ("output", output_types)):
        wants = {"SOURCE_CODE", "NATURAL_LANGUAGE"} & set(types)
        meta[f"{side}_languages"] = list(languages) if wants else None
        if not wants:
            del meta[f"{side}_languages"]
    request = parse_registration(body, request_context(name, version, owner, world.settings))
    registration, _ = new_registration(request, name=name, version=version, caller=owner, deps=world.deps)
    registration.state = state
    registration.finished_once = state is State.FINISHED if finished_once is None else finished_once
    world.store.insert(registration)
    if registration.listed_publicly:
        world.store.publish(registration)
    return registration


def test_listing_shows_public_models_of_others_and_all_of_the_callers_own(world: World) -> None:
    mine = [
        seed(world, ALICE, "a-own-private", private=True),
        seed(world, ALICE, "b-own-in-progress", state=State.IN_PROGRESS),
        seed(world, ALICE, "c-own-failed", state=State.FAILED, private=True),
        seed(world, ALICE, "d-own-public"),
    ]
    theirs = [
        seed(world, BOB, "a-bob-public"),
        seed(world, CAROL, "e-carol-public-updating", state=State.IN_PROGRESS, finished_once=True),
    ]
    seed(world, BOB, "f-bob-private", private=True)
    seed(world, BOB, "g-bob-public-in-progress", state=State.IN_PROGRESS)
    seed(world, CAROL, "h-carol-public-failed", state=State.FAILED)
    expected = sorted([*mine, *theirs], key=lambda r: (r.name, r.version, r.owner))
    assert world.listing(ALICE) == [key(r) for r in expected]
    page = service.list_models(world.deps, ALICE, ModelFilter(), 100, None)
    states = {m.name: m.state for m in page.models}
    assert states["b-own-in-progress"] == "InProgress"
    assert states["c-own-failed"] == "Failed"
    assert {m.name: m.private for m in page.models}["a-own-private"] is True


def test_others_see_only_models_that_finished(world: World) -> None:
    seed(world, ALICE, "own-in-progress", state=State.IN_PROGRESS)
    seed(world, ALICE, "own-failed", state=State.FAILED)
    seed(world, ALICE, "own-done")
    page = service.list_models(world.deps, BOB, ModelFilter(), 100, None)
    assert [(m.name, m.state) for m in page.models] == [("own-done", "Finished")]


def test_the_same_name_and_version_of_several_owners_are_listed_in_owner_order(world: World) -> None:
    for owner in (CAROL, ALICE, BOB):
        seed(world, owner, "shared")
    owners = sorted(p.id for p in (ALICE, BOB, CAROL))
    for caller in (ALICE, BOB, CAROL, Principal("dave", "dave")):
        assert world.listing(caller, limit=1) == [f"shared/1.0/{o}" for o in owners]


def _filter_world(world: World) -> dict[str, Registration]:
    models = {
        "plain": seed(world, BOB, "plain"),
        "encoder": seed(world, BOB, "encoder", model_type=ModelType.ENCODER),
        "trainable": seed(world, CAROL, "trainable", trainable=True),
        "nl-in": seed(world, BOB, "nl-in", input_types=("NATURAL_LANGUAGE",), languages=("english",)),
        "labels-out": seed(world, CAROL, "labels-out", output_types=("CLASS_LABEL",), languages=("csharp",)),
        "v2": seed(world, BOB, "plain", "2.0"),
        "prefix": seed(world, BOB, "plain-x"),
        "own": seed(world, ALICE, "own", private=True, languages=("Rust",)),
    }
    return models


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ModelFilter(name="plain"), ["plain", "v2"]),  # not "plain-x": the name is matched whole
        (ModelFilter(version="2.0"), ["v2"]),
        (ModelFilter(owner=CAROL.id), ["trainable", "labels-out"]),
        (ModelFilter(owner=ALICE.id), ["own"]),
        (ModelFilter(type=ModelType.ENCODER), ["encoder"]),
        (ModelFilter(trainable=True), ["trainable"]),
        (ModelFilter(trainable=False), ["plain", "encoder", "nl-in", "labels-out", "v2", "prefix", "own"]),
        (ModelFilter(input_type=DataType.NATURAL_LANGUAGE), ["nl-in"]),
        (ModelFilter(output_type=DataType.CLASS_LABEL), ["labels-out"]),
        (ModelFilter(input_type=DataType.CLASS_LABEL), []),
        (ModelFilter(language="english"), ["nl-in"]),
        (ModelFilter(language="ENGLISH"), ["nl-in"]),  # languages compare without case
        (ModelFilter(language="rust"), ["own"]),
        (ModelFilter(language="csharp"), ["labels-out"]),  # its input's language
        (ModelFilter(name="plain", version="1.0", owner=BOB.id, type=ModelType.DECODER), ["plain"]),
        (ModelFilter(name="plain", owner=CAROL.id), []),
    ],
)
def test_each_filter_selects_exactly_the_matching_models(
    world: World, filters: ModelFilter, expected: list[str]
) -> None:
    models = _filter_world(world)
    want = sorted((models[k] for k in expected), key=lambda r: (r.name, r.version, r.owner))
    assert world.listing(ALICE, filters) == [key(r) for r in want]
    assert world.listing(ALICE, filters, limit=1) == [key(r) for r in want]  # paged alike


def test_the_language_filter_pages_past_many_models_that_do_not_match(world: World) -> None:
    for i in range(30):
        seed(world, BOB, f"m{i:03d}", languages=("GO",) if i % 10 else ("python", "go"))
    assert world.listing(ALICE, ModelFilter(language="Python"), limit=1) == [
        f"m{i:03d}/1.0/{BOB.id}" for i in (0, 10, 20)
    ]


@pytest.mark.parametrize("limit", [0, -1, 1001, 10**9])
def test_a_limit_outside_1_to_1000_is_invalid(world: World, limit: int) -> None:
    with pytest.raises(InvalidRequest) as raised:
        service.list_models(world.deps, ALICE, ModelFilter(), limit, None)
    assert field_names(raised) == {"limit"}


@pytest.mark.parametrize("limit", [1, 1000])
def test_the_limit_bounds_themselves_are_accepted(world: World, limit: int) -> None:
    for i in range(3):
        seed(world, BOB, f"m{i}")
    page = service.list_models(world.deps, ALICE, ModelFilter(), limit, None)
    assert len(page.models) == min(limit, 3)
    assert (page.continuation is None) == (limit == 1000)


def test_a_full_last_page_ends_without_a_token(world: World) -> None:
    for i in range(4):
        seed(world, BOB, f"m{i}")
    first = service.list_models(world.deps, ALICE, ModelFilter(), 2, None)
    second = service.list_models(world.deps, ALICE, ModelFilter(), 2, first.continuation)
    assert [m.name for m in first.models + second.models] == ["m0", "m1", "m2", "m3"]
    assert second.continuation is None


def _crowd(world: World, rng: random.Random, count: int, prefix: str = "") -> list[Registration]:
    """Models of several owners in every state and visibility, in random order."""
    owners = [ALICE, BOB, CAROL, Principal("dave-oid", "dave")]
    made = []
    for i in range(count):
        owner = rng.choice(owners)
        name = f"{prefix}{rng.choice('abcdefgh')}{rng.randrange(1000):03d}-{i}"
        made.append(
            seed(
                world,
                owner,
                name,
                rng.choice(["1.0", "1.1", "2.0"]),
                private=rng.random() < 0.3,
                state=rng.choice([State.FINISHED, State.FINISHED, State.IN_PROGRESS, State.FAILED]),
            )
        )
    return made


def _expected_for(caller: Principal, models: list[Registration]) -> list[str]:
    visible = [r for r in models if r.owner == caller.id or r.listed_publicly]
    return [key(r) for r in sorted(visible, key=lambda r: (r.name, r.version, r.owner))]


@pytest.mark.parametrize("limit", [1, 7, 50, 1000])
def test_paging_over_hundreds_of_models_returns_each_visible_model_once_in_order(
    world: World, limit: int
) -> None:
    models = _crowd(world, random.Random(3), 300)
    for caller in (ALICE, Principal("eve-oid", "eve")):
        listed = world.listing(caller, limit=limit)
        assert listed == _expected_for(caller, models)
        assert len(set(listed)) == len(listed)


def test_models_inserted_between_pages_never_make_another_be_skipped_or_repeated(world: World) -> None:
    rng = random.Random(5)
    before = _crowd(world, rng, 250)
    expected_before = set(_expected_for(ALICE, before))
    listed: list[str] = []
    inserted: list[Registration] = []
    token = None
    while True:
        page = service.list_models(world.deps, ALICE, ModelFilter(), 13, token)
        listed += [key(m) for m in page.models]
        if page.continuation is None:
            break
        token = page.continuation
        # Others (and the caller) register meanwhile: before, at and after the cursor.
        last = page.models[-1]
        inserted += _crowd(world, rng, 3, prefix="z")
        inserted.append(seed(world, BOB, last.name, last.version + "0"))  # right after the cursor
        inserted.append(seed(world, ALICE, last.name, last.version + "0"))
        inserted.append(seed(world, CAROL, "0" + last.name))  # before it: not in this walk
    assert len(listed) == len(set(listed)), "a model was listed twice"
    assert listed == sorted(listed, key=lambda k: tuple(k.split("/"))), "out of order"
    assert expected_before <= set(listed), "a model that was there from the start was skipped"
    assert set(listed) <= expected_before | set(_expected_for(ALICE, inserted))


def test_a_token_issued_for_other_filters_is_refused(world: World) -> None:
    for i in range(3):
        seed(world, BOB, f"m{i}")
    page = service.list_models(world.deps, ALICE, ModelFilter(type=ModelType.DECODER), 1, None)
    assert page.continuation
    for other in (
        ModelFilter(),
        ModelFilter(type=ModelType.ENCODER),
        ModelFilter(type=ModelType.DECODER, language="go"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            service.list_models(world.deps, ALICE, other, 1, page.continuation)
        assert field_names(raised) == {"continuation"}
    service.list_models(world.deps, ALICE, ModelFilter(type=ModelType.DECODER), 1, page.continuation)


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: "not-a-token",
        lambda token: token[:-3],
        lambda token: base64.urlsafe_b64encode(b"[1, 2]").decode(),
        lambda token: base64.urlsafe_b64encode(b'"o"').decode(),
        lambda token: base64.urlsafe_b64encode(b'{"o": "a"}').decode(),
        lambda token: base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _tampered,
    ],
    ids=["garbage", "truncated", "list", "string", "missing-keys", "not-utf8", "one-character-changed"],
)
def test_a_forged_token_is_refused(world: World, forge: Callable[[str], str]) -> None:
    for i in range(3):
        seed(world, BOB, f"m{i}")
    page = service.list_models(world.deps, ALICE, ModelFilter(), 1, None)
    assert page.continuation
    with pytest.raises(InvalidRequest) as raised:
        service.list_models(world.deps, ALICE, ModelFilter(), 1, forge(page.continuation))
    assert field_names(raised) == {"continuation"}


def test_listing_while_storage_is_down_is_unavailable(world: World) -> None:
    seed(world, BOB, "m")
    world.store.unavailable.add("public_models")
    with pytest.raises(Unavailable):
        service.list_models(world.deps, ALICE, ModelFilter(), 10, None)


# --------------------------------------------------------------------------------------------
# update_model
# --------------------------------------------------------------------------------------------


def test_making_a_private_model_public_lists_it_and_records_who_when_and_what(world: World) -> None:
    world.register(private=True)
    world.now.advance(3600)
    updated = world.update({"model_config": {"private": False}})
    record = world.record(ALICE)
    assert record.private is False
    assert record.document["model_config"]["private"] is False
    assert record.updated_at == T0 + timedelta(hours=1)
    change = {
        "by": ALICE.id,
        "by_name": ALICE.name,
        "at": (T0 + timedelta(hours=1)).isoformat(),
        "changes": {"private": {"from": True, "to": False}},
    }
    assert record.last_change == updated.last_change == change
    assert world.updates() == [change["changes"]]
    assert [key(m) for m in world.store.catalog()] == [f"codegen/1.0/{ALICE.id}"]
    assert world.find(BOB).private is False
    assert world.listing(BOB) == [f"codegen/1.0/{ALICE.id}"]


def test_making_a_public_model_private_unlists_it_and_hides_it_from_others(world: World) -> None:
    world.register(private=False)
    assert world.store.catalog()
    world.now.advance(60)
    world.update({"model_config": {"private": True}})
    assert world.store.catalog() == []
    assert world.listing(BOB) == []
    assert not_visible(lambda: world.find(BOB))
    record = world.record(ALICE)
    assert record.last_change is not None
    assert record.last_change["changes"] == {"private": {"from": False, "to": True}}


def test_each_change_is_logged_newest_first(world: World) -> None:
    world.register(private=True)
    for i, body in enumerate(
        [
            {"model_config": {"private": False}},
            {"model_config": {"description": "Second"}},
            {"model_metainfo": {"num_params": 7}},
        ]
    ):
        world.now.advance(10)
        world.update(body, caller=ALICE)
        assert len(world.updates()) == i + 1
    log = world.updates()
    assert log == [
        {"model_metainfo": ["num_params"]},
        {"description": {"from": "A small test model", "to": "Second"}},
        {"private": {"from": True, "to": False}},
    ]
    last_change = world.record(ALICE).last_change
    assert last_change is not None
    assert last_change["changes"] == log[0]


def test_a_patch_that_changes_nothing_records_nothing(world: World) -> None:
    world.register(private=True)
    before = world.record(ALICE)
    world.update({"model_config": {"private": True, "description": before.description}})
    assert world.record(ALICE) == before
    assert world.updates() == []


def test_description_update_is_stored_and_refreshes_the_public_listing(world: World) -> None:
    world.register(private=False)
    world.update({"model_config": {"description": "Now with more code"}})
    record = world.record(ALICE)
    assert record.description == "Now with more code"
    assert record.document["model_config"]["description"] == "Now with more code"
    assert [m.description for m in world.store.catalog()] == ["Now with more code"]
    page = service.list_models(world.deps, BOB, ModelFilter(), 10, None)
    assert [m.description for m in page.models] == ["Now with more code"]


def test_metainfo_fields_are_merged_into_the_model(world: World) -> None:
    world.register()
    world.update(
        {"model_metainfo": {"num_params": 5e7, "output_description": "Better code", "images": ["index.md"]}}
    )
    meta = world.record(ALICE).document["model_metainfo"]
    assert meta["num_params"] == 50_000_000
    assert meta["output_description"] == "Better code"
    assert meta["images"] == ["index.md"]
    assert meta["input_description"] == registration_body()["model_metainfo"]["input_description"]


@pytest.mark.parametrize(
    ("metainfo", "field"),
    [
        ({"num_params": -1}, "model_metainfo.num_params"),
        ({"num_params": "many"}, "model_metainfo.num_params"),
        ({"index_page_file": "missing.md"}, "model_metainfo.index_page_file"),
        ({"index_page_file": "score.py"}, "model_metainfo.index_page_file"),
        ({"input_types": ["PICTURES"]}, "model_metainfo.input_types[0]"),
        ({"input_types": ["CLASS_LABEL"]}, "model_metainfo.input_languages"),
        ({"images": ["nope.png"]}, "model_metainfo.images[0]"),
        ({"colour": "blue"}, "model_metainfo.colour"),
    ],
)
def test_metainfo_fields_are_validated_as_at_registration_naming_the_field(
    world: World, metainfo: dict[str, Any], field: str
) -> None:
    world.register()
    before = world.record(ALICE)
    with pytest.raises(InvalidRequest) as raised:
        world.update({"model_metainfo": metainfo})
    assert field in field_names(raised)
    assert world.record(ALICE) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"colour": "blue"}, "colour"),
        ({"model_config": {"type": "ENCODER"}}, "model_config.type"),
        ({"model_config": {"private": "yes"}}, "model_config.private"),
        ({"model_files": {"x.bin": "ftp://example.com/x"}}, "model_files['x.bin']"),
        ({"private_packages": []}, "private_packages"),
        ([], "body"),
    ],
)
def test_an_empty_or_unknown_patch_is_invalid_naming_it(world: World, body: Any, field: str) -> None:
    world.register()
    before = world.record(ALICE)
    with pytest.raises(InvalidRequest) as raised:
        world.update(body)
    assert field in field_names(raised)
    assert world.record(ALICE) == before


@pytest.mark.parametrize("section", ["model_config", "model_metainfo", "model_files"])
def test_a_patch_of_only_an_empty_section_is_invalid_and_records_nothing(world: World, section: str) -> None:
    world.register()
    before = world.record(ALICE)
    world.now.advance(60)
    try:
        with pytest.raises(InvalidRequest) as raised:
            world.update({section: {}})
        assert field_names(raised) & {"body", section}
    finally:
        assert world.record(ALICE) == before
        assert world.updates() == []


def test_replacing_a_file_recopies_it_while_the_previous_one_stays_served(world: World) -> None:
    registration = world.register(private=False)
    world.now.advance(60)
    new = payload(MIB + 5, seed=9)
    url = world.source(ALICE, "codegen", "v2/model.bin", new)
    world.update({"model_files": {BIG: url}})

    record = world.record(ALICE)
    assert record.state is State.IN_PROGRESS
    assert record.message == "Updating 1 file"
    assert record.file_names == registration.file_names
    assert record.document["model_files"][BIG] == url.split("?")[0]
    assert [same_model(job) for job in world.queue.jobs] == [same_model(job_for(record))]
    # The update is recorded in one write: the worker resets and re-copies the listed files.
    assert record.refresh_files == [BIG]
    progress = {p.target: p for p in world.store.peek_files(record)}
    assert all(p.state is FileState.FINISHED for p in progress.values())
    assert record.last_change is not None
    assert record.last_change["changes"] == {"model_files": [BIG]}
    # Meanwhile readers get the previous file.
    assert world.read_url_data(world.file_url(BOB, BIG)) == default_files()[BIG]

    stages_before = len(world.copier.stage_calls)
    assert world.run_queue() == [Outcome.FINISHED]
    assert world.served(record, BIG) == new
    assert world.served(record, "score.py") == default_files()["score.py"]
    assert {c.url for c in world.copier.stage_calls[stages_before:]} == {url}  # only the new file
    assert world.record(ALICE).state is State.FINISHED
    assert world.record(ALICE).refresh_files == []
    assert [m.state for m in world.store.catalog()] == ["Finished"]


def test_adding_a_file_appends_it_and_copies_only_it(world: World) -> None:
    registration = world.register()
    url = world.source(ALICE, "codegen", "tokenizer.json", b'{"vocab": {}}')
    world.update({"model_files": {"tokenizer.json": url}})
    record = world.record(ALICE)
    assert record.file_names == [*registration.file_names, "tokenizer.json"]
    assert record.state is State.IN_PROGRESS
    assert not_visible(lambda: world.file_url(ALICE, "tokenizer.json"))  # not there yet
    assert world.run_queue() == [Outcome.FINISHED]
    progress = world.store.peek_files(record)
    assert [(p.index, p.target) for p in progress][-1] == (len(registration.file_names), "tokenizer.json")
    assert all(p.state is FileState.FINISHED for p in progress)
    assert world.served(record, "tokenizer.json") == b'{"vocab": {}}'
    assert world.read_url_data(world.file_url(ALICE, "tokenizer.json")) == b'{"vocab": {}}'


def test_a_file_update_is_refused_while_a_copy_is_in_progress(world: World) -> None:
    world.register(finish=False)
    before = world.record(ALICE)
    url = world.source(ALICE, "codegen", "tokenizer.json", b"{}")
    world.queue.take()
    with pytest.raises(Conflict):
        world.update({"model_files": {"tokenizer.json": url}, "model_config": {"description": "x"}})
    assert world.record(ALICE) == before
    assert world.queue.sent == []


def test_a_file_update_may_name_a_new_index_page_in_the_same_patch(world: World) -> None:
    world.register()
    url = world.source(ALICE, "codegen", "README.md", b"# Read me\n")
    world.update({"model_files": {"README.md": url}, "model_metainfo": {"index_page_file": "README.md"}})
    assert world.run_queue() == [Outcome.FINISHED]
    assert world.index(ALICE) == b"# Read me\n"


def test_adding_a_file_to_a_failed_model_retries_its_failed_file_and_finishes(world: World) -> None:
    world.register(finish=False)
    broken = source_url(f"{ALICE.id}/codegen/{BIG}")
    world.copier.fail(broken, permanent=True)
    assert world.run_queue() == [Outcome.FAILED]
    world.copier.heal(broken)  # the owner fixed the source
    url = world.source(ALICE, "codegen", "tokenizer.json", b"{}")
    world.update({"model_files": {"tokenizer.json": url}})
    assert world.run_queue() == [Outcome.FINISHED]


def test_a_description_patch_during_a_copy_does_not_stop_the_copy(world: World) -> None:
    world.register(finish=False)

    def patch_once(number: int, call: StageCall) -> None:
        if number == 2:
            world.update({"model_config": {"description": "patched meanwhile"}})

    world.copier.before_stage = patch_once
    assert world.run_queue() == [Outcome.FINISHED]


def test_patching_another_users_model_is_not_visible_and_changes_nothing(world: World) -> None:
    world.register(private=False)
    before = world.record(ALICE)
    assert not_visible(lambda: world.update({"model_config": {"private": True}}, caller=BOB))
    assert world.record(ALICE) == before
    assert world.store.catalog()


# --------------------------------------------------------------------------------------------
# delete_model
# --------------------------------------------------------------------------------------------


def test_delete_removes_the_record_listing_file_progress_and_blobs_and_keeps_the_history(
    world: World,
) -> None:
    world.register(private=True)
    world.now.advance(60)
    world.update({"model_config": {"private": False}})
    registration = world.record(ALICE)
    assert world.store.catalog()
    world.now.advance(60)
    world.delete()
    assert world.store.peek(ALICE.id, "codegen", "1.0") is None
    assert world.store.peek_files(registration) == []
    # The history stays: its owner can read the history of a model they deleted.
    assert world.updates() == [{"private": {"from": True, "to": False}}]
    kinds = [e.type.short for e in world.history()]
    assert kinds[:2] == ["deleted", "updated"]
    assert sorted(kinds[2:]) == ["finished", "registered"]  # at one moment of the fake clock
    assert world.store.catalog() == []
    assert world.copier.blobs_under(registration.blob_path("")) == []
    assert world.listing(ALICE) == world.listing(BOB) == []
    assert not_visible(lambda: world.find(ALICE))


def test_deleting_twice_is_not_visible_the_second_time(world: World) -> None:
    world.register()
    world.delete()
    assert not_visible(lambda: world.delete())


def test_delete_leaves_other_models_of_the_same_name_alone(world: World) -> None:
    world.register()
    other = world.register("codegen", "1.0", caller=BOB, private=False)
    longer = world.register("codegen", "1.0.1")  # its blob prefix starts with the deleted one's
    world.delete()
    assert world.copier.blobs_under(other.blob_path(""))
    assert world.served(longer, "score.py") == default_files()["score.py"]
    assert world.store.peek(ALICE.id, "codegen", "1.0.1") is not None
    assert world.listing(BOB) == [key(other)]  # Alice's 1.0.1 is private
    assert world.listing(ALICE) == [key(other), key(longer)]


def test_a_job_for_a_deleted_model_is_ignored(world: World) -> None:
    world.register(finish=False)
    jobs = world.queue.take()
    world.delete()
    assert [world.process(job) for job in jobs] == [Outcome.IGNORED]
    assert world.store.all() == []
    assert world.copier.committed == {}


def test_an_old_job_does_not_touch_a_model_registered_again_after_the_delete(world: World) -> None:
    world.register(finish=False)
    old_jobs = world.queue.take()
    world.delete()
    again = world.register(finish=False)
    assert [world.process(job) for job in old_jobs] == [Outcome.IGNORED]
    assert world.record(ALICE) == again
    assert world.run_queue() == [Outcome.FINISHED]


def _delete_during_copy(world: World, on_stage_call: int) -> Registration:
    registration = world.register(finish=False, private=False)
    jobs = world.queue.take()

    def delete_once(number: int, call: StageCall) -> None:
        if number == on_stage_call:
            world.delete()

    world.copier.before_stage = delete_once
    outcomes = [world.process(job) for job in jobs]
    outcomes += world.run_queue()
    assert outcomes[0] in (Outcome.LOST, Outcome.IGNORED), outcomes
    assert set(outcomes[1:]) <= {Outcome.IGNORED}
    return registration


@pytest.mark.parametrize("on_stage_call", [1, 3, 5])
def test_a_worker_copying_a_deleted_model_stops_without_resurrecting_its_records(
    world: World, on_stage_call: int
) -> None:
    registration = _delete_during_copy(world, on_stage_call)
    assert world.store.all() == []
    assert world.store.peek_files(registration) == []
    assert world.store.catalog() == []
    assert world.listing(ALICE) == []


def test_a_worker_that_commits_a_file_after_the_delete_removes_it_again(world: World) -> None:
    world.policy = dataclasses.replace(world.policy, concurrency=1)  # the block in flight completes
    committed_after_delete: list[str] = []
    world.copier.after_commit = lambda path: committed_after_delete.append(path)
    registration = _delete_during_copy(world, on_stage_call=1)
    assert committed_after_delete == [registration.blob_path("env.yml")]  # the race happened
    assert world.copier.blobs_under(registration.blob_path("")) == []


def test_delete_of_another_users_model_is_not_visible_and_deletes_nothing(world: World) -> None:
    registration = world.register(private=False)
    assert not_visible(lambda: world.delete(caller=BOB))
    assert world.record(ALICE) == registration
    assert world.copier.blobs_under(registration.blob_path(""))


# --------------------------------------------------------------------------------------------
# clone_model
# --------------------------------------------------------------------------------------------


def _parent_with_extra(world: World, *, private: bool = False) -> Registration:
    files = default_files(seed=4) | {"notes/extra.txt": b"scratch notes"}
    return world.register(private=private, files=files)


def test_clone_copies_the_inherited_files_byte_identically_from_the_registry(world: World) -> None:
    parent = _parent_with_extra(world)
    # The parent's original sources are gone: a clone must never refetch them.
    for target in parent.file_names:
        world.copier.fail(source_url(f"{ALICE.id}/codegen/{target}"), permanent=True)
    new_url = world.source(BOB, "codegen", "tokenizer.json", b'{"vocab": 1}')
    stages_before = len(world.copier.stage_calls)
    clone = world.clone(
        {
            "parent_version": "1.0",
            "parent_owner": ALICE.id,
            "ignore_files": ["notes/extra.txt"],
            "model_files": {"tokenizer.json": new_url},
            "model_config": {"description": "Bob's fine-tune", "type": "ENCODER"},
            "model_metainfo": {"num_params": 7, "output_description": "Different code"},
        }
    )
    record = world.record(BOB, version="2.0")
    assert record.registration_id == clone.registration_id
    assert record.owner == BOB.id and record.owner_name == BOB.name
    assert record.parent == {"name": "codegen", "version": "1.0", "owner": ALICE.id}
    assert record.private is True
    assert record.state is State.IN_PROGRESS
    assert record.description == "Bob's fine-tune"
    assert record.model_type == "ENCODER"
    assert record.file_names == sorted(["score.py", "env.yml", "index.md", BIG, "tokenizer.json"])
    meta = record.document["model_metainfo"]
    assert (meta["num_params"], meta["output_description"]) == (7, "Different code")
    assert meta["input_description"] == registration_body()["model_metainfo"]["input_description"]
    # The readable document shows where files came from, never a SAS.
    assert "sig=" not in json.dumps(record.document)
    assert record.document["model_files"][BIG] == parent.document["model_files"][BIG]
    assert record.document["model_files"]["tokenizer.json"] == new_url.split("?")[0]

    assert world.run_queue() == [Outcome.FINISHED]
    for target in ("score.py", "env.yml", "index.md", BIG):
        assert world.served(record, target) == world.served(parent, target)
        assert world.served(record, target) == default_files(seed=4)[target]
    assert world.served(record, "tokenizer.json") == b'{"vocab": 1}'
    assert world.served(record, "notes/extra.txt") is None
    sources = {c.url.split("?")[0] for c in world.copier.stage_calls[stages_before:]}
    assert sources == {
        *(
            f"{REGISTRY_CONTAINER_URL}/{parent.blob_path(t)}"
            for t in ("score.py", "env.yml", "index.md", BIG)
        ),
        new_url.split("?")[0],
    }
    # The parent is untouched, and the clone shows it in its view and in Bob's list.
    assert world.record(ALICE) == parent
    mine = service.find_visible(world.deps, BOB, "codegen", "2.0", BOB.id)
    view = views.model(mine, service.files_of(world.deps, mine)).model_dump(mode="json", by_alias=True)
    assert view["parent_model"] == {"name": "codegen", "version": "1.0", "owner": ALICE.id}
    page = service.list_models(world.deps, BOB, ModelFilter(owner=BOB.id), 10, None)
    assert [m.parent_model for m in page.models] == [record.parent]
    assert not_visible(lambda: service.find_visible(world.deps, CAROL, "codegen", "2.0", BOB.id))


def test_clone_of_ones_own_private_model_may_be_made_public(world: World) -> None:
    _parent_with_extra(world, private=True)
    world.clone(
        {"parent_version": "1.0", "parent_owner": ALICE.id, "model_config": {"private": False}}, caller=ALICE
    )
    clone = world.record(ALICE, version="2.0")
    assert clone.private is False
    assert world.run_queue() == [Outcome.FINISHED]
    assert world.listing(BOB) == [f"codegen/2.0/{ALICE.id}"]


def test_clone_keeps_the_parents_index_page(world: World) -> None:
    _parent_with_extra(world)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    world.run_queue()
    clone = world.record(BOB, version="2.0")
    assert service.index_page(world.deps, clone) == default_files()["index.md"]


def test_clone_with_unknown_ignore_files_is_invalid_naming_them(world: World) -> None:
    _parent_with_extra(world)
    with pytest.raises(InvalidRequest) as raised:
        world.clone(
            {"parent_version": "1.0", "parent_owner": ALICE.id, "ignore_files": ["nope.bin", "env.yml"]}
        )
    assert field_names(raised) == {"ignore_files"}
    assert "nope.bin" in raised.value.errors[0].rule
    assert "env.yml" not in raised.value.errors[0].rule
    assert world.store.peek(BOB.id, "codegen", "2.0") is None


def test_clone_that_ignores_a_file_the_config_needs_is_invalid(world: World) -> None:
    _parent_with_extra(world)
    with pytest.raises(InvalidRequest) as raised:
        world.clone({"parent_version": "1.0", "parent_owner": ALICE.id, "ignore_files": ["score.py"]})
    assert "model_config.inference_properties.entry_script" in field_names(raised)


def test_clone_overrides_are_validated(world: World) -> None:
    _parent_with_extra(world)
    with pytest.raises(InvalidRequest) as raised:
        world.clone(
            {
                "parent_version": "1.0",
                "parent_owner": ALICE.id,
                "model_config": {"type": "GIANT"},
                "model_metainfo": {"num_params": 0},
            }
        )
    assert {"model_config.type", "model_metainfo.num_params"} <= field_names(raised)


@pytest.mark.parametrize(
    "parent",
    [
        {"parent_version": "1.0", "parent_owner": ALICE.id},  # private to Alice
        {"parent_version": "9.9", "parent_owner": ALICE.id},  # no such version
        {"parent_version": "1.0", "parent_owner": "nobody"},  # no such owner
    ],
)
def test_clone_of_a_model_the_caller_cannot_see_is_not_visible(world: World, parent: dict[str, str]) -> None:
    _parent_with_extra(world, private=True)
    assert not_visible(lambda: world.clone(parent)) == "NotVisible::()"
    assert world.store.peek(BOB.id, "codegen", "2.0") is None
    assert world.copier.read_url_calls == []


@pytest.mark.parametrize(
    ("parent", "field"),
    [
        ({"parent_version": "1.0", "parent_owner": "bad/owner"}, "parent_owner"),
        ({"parent_version": "status", "parent_owner": ALICE.id}, "parent_version"),
    ],
)
def test_clone_of_a_parent_that_cannot_exist_is_a_bad_request(
    world: World, parent: dict[str, str], field: str
) -> None:
    _parent_with_extra(world, private=False)
    with pytest.raises(InvalidRequest) as raised:
        world.clone(parent)
    assert field_names(raised) == {field}
    assert world.copier.read_url_calls == []


def test_clone_of_a_public_model_that_never_finished_is_not_visible(world: World) -> None:
    world.register(private=False, finish=False)
    assert not_visible(lambda: world.clone({"parent_version": "1.0", "parent_owner": ALICE.id}))


def test_a_cloned_file_that_is_deleted_from_the_parent_meanwhile_fails_the_clone(world: World) -> None:
    parent = _parent_with_extra(world)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    world.delete()  # Alice deletes the parent before Bob's copy ran
    assert world.copier.blobs_under(parent.blob_path("")) == []
    assert world.run_queue() == [Outcome.FAILED]
    clone = world.record(BOB, version="2.0")
    assert clone.state is State.FAILED
    assert "no longer visible" in clone.message
    assert any(f"'{target}'" in clone.message for target in parent.file_names)


def test_a_file_update_whose_record_write_fails_leaves_nothing_half_written(world: World) -> None:
    world.register()
    before = world.record(ALICE)
    rows_before = world.store.peek_files(before)
    url = world.source(ALICE, "codegen", "v2/model.bin", payload(MIB, seed=3))
    world.store.unavailable.add("replace")

    with pytest.raises(Unavailable):
        world.update({"model_files": {BIG: url}})

    assert world.record(ALICE) == before
    assert world.store.peek_files(before) == rows_before
    assert world.queue.jobs == []
