"""End to end: find, read, update, delete and clone models over HTTP, with visibility enforced.

The local Functions host serves function_app.py on its own tables in the session's emulator. Some
tests insert many records through the registry's own store (the tables the host reads), which is
how a catalogue of hundreds of models is set up in a second rather than by hundreds of copies.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devhost.azurite import OWNER_ACCOUNT, Azurite
from registry.bootstrap import build
from registry.domain.model import Registration
from registry.services.dependencies import Dependencies
from registry.settings import load_settings
from tests.conftest import Sources, unique
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import MIB, body, download, record, register, wait

pytestmark = pytest.mark.e2e
API = "/api/v1.0"
Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def host_env(host_env: dict[str, str]) -> dict[str, str]:
    """This module's host gets its own catalog and change log too, so that lists hold only its models."""
    return host_env | {
        "REGISTRY_CATALOG_TABLE": unique("catalog"),
        "REGISTRY_CHANGES_TABLE": unique("changes"),
    }


@pytest.fixture(scope="module")
def deps(host_env: dict[str, str]) -> Dependencies:
    """The registry's adapters on the very tables and container the host uses."""
    return build(load_settings(host_env))


def _insert(deps: Dependencies, registrations: list[Registration]) -> None:
    def one(registration: Registration) -> None:
        deps.store.insert(registration)
        if registration.listed_publicly:
            deps.store.publish(registration)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, registrations))


def _key(item: dict[str, Any]) -> Key:
    return item["name"], item["version"], item["owner"]


def _pages(client: httpx.Client, query: str, limit: int = 1000) -> Iterator[dict[str, Any]]:
    """Every page of a listing, following the Link header from one page to the next."""
    url: str | None = f"{API}/models?{query}&limit={limit}" if query else f"{API}/models?limit={limit}"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        link = response.headers.get("Link")
        if page["continuation"] is None:
            assert link is None
            url = None
        else:
            assert link is not None and link.endswith('>; rel="next"'), link
            url = link[1 : -len('>; rel="next"')]
            assert parse_qs(urlsplit(url).query)["continuation"] == [page["continuation"]]
        yield page


def _listed(client: httpx.Client, query: str = "") -> list[dict[str, Any]]:
    return [item for page in _pages(client, query) for item in page["models"]]


# -- 1. the authorization matrix --------------------------------------------------------------


def _calls(name: str, version: str, owner: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """Every endpoint that addresses one model, as (method, path, JSON body)."""
    model = f"{API}/model/{name}/{version}"
    return {
        "get": ("GET", f"{model}/{owner}", None),
        "index": ("GET", f"{model}/{owner}/index", None),
        "file": ("GET", f"{model}/{owner}/files/score.py", None),
        "nested file": ("GET", f"{model}/{owner}/files/model/w.bin", None),
        "status": ("GET", f"{model}/status", None),
        "patch": ("PATCH", model, {"model_config": {"private": False, "description": "taken over"}}),
        "delete": ("DELETE", model, None),
        "clone": (
            "PUT",
            f"{API}/model/clone/{name}/{version}-copy",
            {"parent_version": version, "parent_owner": owner},
        ),
    }


def _call(client: httpx.Client, call: tuple[str, str, dict[str, Any] | None]) -> httpx.Response:
    method, path, payload = call
    return client.request(method, path, json=payload)


def _shape(response: httpx.Response, name: str, version: str) -> tuple[int, str, str]:
    """Status, content type and body, with the echo of the requested name and version masked."""
    text = response.text.replace(name, "<name>").replace(version, "<version>")
    return response.status_code, response.headers.get("content-type", ""), text


Call = tuple[str, str, dict[str, Any] | None]


@dataclass(frozen=True)
class Matrix:
    """Alice's private and public models, a model that never existed, and who asks."""

    secret: tuple[str, str]
    public: tuple[str, str]
    ghost: tuple[str, str]
    marker: str  # in the private model's description: must never reach anyone else
    weights: bytes


def _private_model_is_as_if_absent(m: Matrix, bob: httpx.Client, anonymous: httpx.Client) -> list[str]:
    """For another user and for an anonymous caller, the private model answers as the ghost does."""
    seen = []
    for caller, expected_status in ((bob, 404), (anonymous, 401)):
        ghost_calls = _calls(*m.ghost, "alice")
        for endpoint, call in _calls(*m.secret, "alice").items():
            answer = _call(caller, call)
            nothing = _call(caller, ghost_calls[endpoint])
            assert answer.status_code == expected_status, (endpoint, answer.text)
            assert _shape(answer, *m.secret) == _shape(nothing, *m.ghost), endpoint
            assert m.marker not in answer.text and "sig=" not in answer.text
            assert "Location" not in answer.headers, endpoint
            if caller is bob:
                seen.append(_shape(answer, *m.secret)[2])
    return seen


def _public_model_is_read_only(
    m: Matrix, bob: httpx.Client, anonymous: httpx.Client
) -> tuple[str, list[str]]:
    """Another user reads the public model and clones it, never changes it; anonymous gets nothing."""
    expected_for_bob = {
        "get": 200, "index": 200, "file": 302, "nested file": 302,
        "status": 404, "patch": 404, "delete": 404, "clone": 202,
    }  # fmt: skip
    ghost_calls = _calls(*m.ghost, "alice")
    seen, clone_status = [], ""
    for endpoint, call in _calls(*m.public, "alice").items():
        answer = _call(bob, call)
        assert answer.status_code == expected_for_bob[endpoint], (endpoint, answer.text)
        seen.append(answer.text)
        if answer.status_code == 404:  # status, patch, delete address bob's own (absent) model
            assert _shape(answer, *m.public) == _shape(_call(bob, ghost_calls[endpoint]), *m.ghost), endpoint
        if endpoint == "clone":
            clone_status = answer.headers["Location"]
        unauthenticated = _call(anonymous, call)
        assert unauthenticated.status_code == 401, endpoint
        assert _shape(unauthenticated, *m.public) == _shape(_call(anonymous, ghost_calls[endpoint]), *m.ghost)
    assert bob.get(f"{API}/model/{m.public[0]}/{m.public[1]}/alice/index").text == "# m\n"
    assert download(_call(bob, _calls(*m.public, "alice")["nested file"])) == m.weights
    return clone_status, seen


def _lists_never_show_the_private_model(m: Matrix, bob: httpx.Client, anonymous: httpx.Client) -> list[str]:
    secret, ghost = m.secret[0], m.ghost[0]
    by_name = bob.get(f"{API}/models", params={"name": secret})
    assert by_name.status_code == 200 and by_name.json() == []
    assert _shape(by_name, *m.secret) == _shape(bob.get(f"{API}/models", params={"name": ghost}), *m.ghost)
    assert _listed(bob, f"name={secret}") == []
    alices = _listed(bob, "owner=alice")
    assert [x["name"] for x in alices if x["name"] in (secret, m.public[0])] == [m.public[0]]
    assert all(not x["private"] for x in alices)
    everything = bob.get(f"{API}/models", params={"limit": 1000})
    assert (*m.public, "alice") in {_key(x) for x in everything.json()["models"]}
    for query in ("", "?limit=5", f"?name={secret}", "?owner=alice"):
        assert anonymous.get(f"{API}/models{query}").status_code == 401
    return [by_name.text, everything.text, bob.get(f"{API}/models").text]


def _the_owner_does_everything_then_deletes(m: Matrix, alice: httpx.Client, bob: httpx.Client) -> None:
    clones = []
    for name, v in (m.secret, m.public):
        calls = _calls(name, v, "alice")
        view = _call(alice, calls["get"])
        assert view.status_code == 200 and view.json()["name"] == name
        index = _call(alice, calls["index"])
        assert (index.status_code, index.text) == (200, "# m\n")
        assert index.headers["content-type"].startswith("text/markdown")
        assert download(_call(alice, calls["file"])) == b"def init(d): pass\n"
        assert download(_call(alice, calls["nested file"])) == m.weights
        assert _call(alice, calls["status"]).json()["state"] == "Finished"
        patched = alice.patch(f"{API}/model/{name}/{v}", json={"model_config": {"description": "mine"}})
        assert patched.status_code == 200, patched.text
        clone = _call(alice, calls["clone"])
        assert clone.status_code == 202, clone.text
        clones.append(clone.headers["Location"])
    assert [wait(alice, status_url)["state"] for status_url in clones] == ["Finished", "Finished"]
    for name, v in (m.secret, m.public):
        calls = _calls(name, v, "alice")
        assert _call(alice, calls["delete"]).status_code == 200
        assert _call(alice, calls["delete"]).status_code == 404
        assert _call(alice, calls["get"]).status_code == 404
        listed = bob.get(f"{API}/models", params={"name": name}).json()
        assert [_key(x) for x in listed if x["owner"] == "alice"] == []
        assert bob.get(f"{API}/model/{name}/{v}/alice").status_code == 404


def test_authorization_matrix_private_models_exist_only_for_their_owner(
    local_host: LocalHost, sources: Sources
) -> None:
    tag = uuid.uuid4().hex[:8]
    m = Matrix(
        secret=(f"secret-{tag}", "1.0.7"),
        public=(f"open-{tag}", "2.0.1"),
        ghost=(f"ghost-{tag}", "9.9.9"),
        marker=f"SECRET-{uuid.uuid4().hex}",
        weights=os.urandom(64 * 1024),
    )
    alice, bob, anonymous = (local_host.client(p) for p in ("alice", "bob", None))
    with alice, bob, anonymous:
        accepted = [
            alice.put(
                f"{API}/model/{name}/{version}",
                json=body(sources, {"model/w.bin": m.weights}, private=private, description=text),
            )
            for (name, version), private, text in (
                (m.secret, True, m.marker),
                (m.public, False, "open to all"),
            )
        ]
        assert [r.status_code for r in accepted] == [202, 202], [r.text for r in accepted]
        assert [wait(alice, r.headers["Location"])["state"] for r in accepted] == ["Finished", "Finished"]
        owner_views = {
            name: (
                alice.get(f"{API}/model/{name}/{v}/alice").json(),
                alice.get(f"{API}/model/{name}/{v}/status").json(),
            )
            for name, v in (m.secret, m.public)
        }

        seen = _private_model_is_as_if_absent(m, bob, anonymous)
        clone_status, answers = _public_model_is_read_only(m, bob, anonymous)
        seen += answers + _lists_never_show_the_private_model(m, bob, anonymous)
        for text in seen:  # every answer given to bob
            assert m.secret[0] not in text and m.marker not in text

        # Nothing another user did changed anything (not even the updated_at of the models).
        assert wait(bob, clone_status)["state"] == "Finished"
        for name, v in (m.secret, m.public):
            view, status = owner_views[name]
            assert alice.get(f"{API}/model/{name}/{v}/alice").json() == view
            assert alice.get(f"{API}/model/{name}/{v}/status").json() == status
            assert "last_change" not in view  # absent, not null, until the first change
        assert bob.get(f"{API}/model/{m.secret[0]}/{m.secret[1]}/bob").status_code == 404, "no clone of it"
        assert bob.get(f"{API}/model/{m.public[0]}/{m.public[1]}-copy/bob").json()["parent_model"] == {
            "name": m.public[0], "version": m.public[1], "owner": "alice"
        }  # fmt: skip

        _the_owner_does_everything_then_deletes(m, alice, bob)


# -- 2. pagination ----------------------------------------------------------------------------


def test_pages_hold_every_visible_model_exactly_once_even_with_inserts_between_pages(
    local_host: LocalHost, deps: Dependencies
) -> None:
    tag = uuid.uuid4().hex[:6]
    owners = ("carol", "dora", "erin", "frank")
    catalogue = [
        record(
            owner=owners[i % 4],
            name=f"pg{i % 7}-{tag}",
            version=f"{i:04d}",
            private=i % 5 == 0,
            finished=i % 11 != 0,
        )
        for i in range(320)
    ]
    _insert(deps, catalogue)

    def visible(r: Registration) -> bool:
        return r.owner == "carol" or (not r.private and r.finished_once)

    expected = {(r.name, r.version, r.owner) for r in catalogue if visible(r)}
    invisible = {(r.name, r.version, r.owner) for r in catalogue if not visible(r)}
    assert len(expected) > 200

    with local_host.client("carol") as carol:
        bare = carol.get(f"{API}/models")
        first_hundred = carol.get(f"{API}/models", params={"limit": 100}).json()
        assert bare.status_code == 200
        assert isinstance(bare.json(), list) and len(bare.json()) == 100
        assert bare.json() == first_hundred["models"]
        link = bare.headers["Link"]
        following = carol.get(link[1 : link.index(">")])
        assert following.status_code == 200
        assert _key(following.json()["models"][0]) > _key(bare.json()[-1])

        seen: list[Key] = []
        inserted: list[Registration] = []
        for number, page in enumerate(_pages(carol, "", limit=37)):
            assert 0 < len(page["models"]) <= 37
            seen += [_key(m) for m in page["models"]]
            if number in (2, 5):  # new models, sorting both before and after where the list stands
                batch = [
                    record(owner=owners[j % 4], name=f"pg{j % 7}-{tag}", version=f"{j:04d}x{number}")
                    for j in range(0, 320, 8)
                ]
                _insert(deps, batch)
                inserted += batch

    assert len(seen) == len(set(seen)), "a model was listed twice"
    originals = [k for k in seen if k in expected]
    assert originals == sorted(originals, key=lambda k: f"{k[0]}!{k[1]}!{k[2]}"), "pages follow the key order"
    assert expected <= set(seen), f"missing: {sorted(expected - set(seen))[:5]}"
    assert not invisible & set(seen)
    known = expected | {(r.name, r.version, r.owner) for r in inserted}
    for key in set(seen) - known:  # other tests' models: only what carol may see
        assert key[2] == "carol" or key[0].startswith(("open-", "par-", "vis-")), key

    with local_host.client("carol") as carol:
        for params in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"continuation": "nonsense"}):
            refused = carol.get(f"{API}/models", params=params)
            assert refused.status_code == 400, (params, refused.text)
            assert next(iter(params)) in refused.json()["error_message"]
        token = carol.get(f"{API}/models", params={"limit": 3}).json()["continuation"]
        other_filter = carol.get(
            f"{API}/models", params={"limit": 3, "continuation": token, "type": "ENCODER"}
        )
        assert other_filter.status_code == 400


# -- 3. filters -------------------------------------------------------------------------------


def _assert_filtered(
    client: httpx.Client,
    params: dict[str, str],
    wanted: set[tuple[str, str, str]],
    ours: set[tuple[str, str, str]],
) -> None:
    """The listing with these filters holds exactly the wanted models of ours, once each, and
    nothing (of other tests either) that does not match."""
    items = _listed(client, "&".join(f"{k}={v}" for k, v in params.items()))
    keys = [_key(m) for m in items]
    assert len(keys) == len(set(keys)), params
    assert {k for k in keys if k in ours} == wanted, params
    for item in items:  # including other tests' models
        assert not item["private"], params
        for field in ("name", "version", "owner", "type"):
            if field in params:
                assert item[field] == params[field], (params, item)
        if "trainable" in params:
            assert item["trainable"] is (params["trainable"] == "true"), (params, item)
    assert client.get(f"{API}/models", params=params).json() == items[:100]


def test_every_filter_selects_exactly_the_visible_models_that_match(
    local_host: LocalHost, deps: Dependencies
) -> None:
    tag = uuid.uuid4().hex[:6]
    kinds = itertools.product(
        ("ENCODER", "DECODER", "SEQ2SEQ"),
        (False, True),
        (("SOURCE_CODE",), ("CLASS_LABEL",), ("NATURAL_LANGUAGE", "OTHER")),
        (("NATURAL_LANGUAGE",), ("CLASS_LABEL",)),
    )
    dataset = []
    for k, (model_type, trainable, inputs, outputs) in enumerate(kinds):
        dataset.append(
            record(
                owner=("gina", "hank")[k % 2],
                name=f"f{k % 3}-{tag}",
                version=f"{k}.0",
                private=k % 7 == 3,
                model_type=model_type,
                trainable=trainable,
                input_types=inputs,
                output_types=outputs,
                languages=(("python",), ("Java",), ("en", "python"))[k % 3],
            )
        )
    _insert(deps, dataset)
    ours = {(r.name, r.version, r.owner): r for r in dataset}
    visible = [r for r in dataset if not r.private]

    def languages(r: Registration) -> set[str]:
        meta = r.document["model_metainfo"]
        return {x.lower() for x in meta.get("input_languages", []) + meta.get("output_languages", [])}

    def types(r: Registration, side: str) -> list[str]:
        found: list[str] = r.document["model_metainfo"][f"{side}_types"]
        return found

    def combined(r: Registration) -> bool:
        return r.model_type == "DECODER" and r.owner == "gina" and r.trainable and "en" in languages(r)

    cases: list[tuple[dict[str, str], Any]] = [
        ({"name": f"f1-{tag}"}, lambda r: r.name == f"f1-{tag}"),
        ({"version": "4.0"}, lambda r: r.version == "4.0"),
        ({"owner": "hank"}, lambda r: r.owner == "hank"),
        ({"type": "ENCODER"}, lambda r: r.model_type == "ENCODER"),
        ({"trainable": "true"}, lambda r: r.trainable),
        ({"trainable": "false"}, lambda r: not r.trainable),
        ({"input_type": "OTHER"}, lambda r: "OTHER" in types(r, "input")),
        ({"output_type": "CLASS_LABEL"}, lambda r: "CLASS_LABEL" in types(r, "output")),
        ({"language": "java"}, lambda r: "java" in languages(r)),
        ({"language": "PYTHON"}, lambda r: "python" in languages(r)),
        (
            {"type": "DECODER", "language": "en", "owner": "gina", "trainable": "true"},
            combined,
        ),
    ]  # fmt: skip
    with local_host.client("ivan") as ivan:
        for params, matches in cases:
            wanted = {(r.name, r.version, r.owner) for r in visible if matches(r)}
            assert wanted, f"the dataset has no case for {params}"
            _assert_filtered(ivan, params, wanted, set(ours))

        for params in ({"colour": "red"}, {"type": "TRANSFORMER"}, {"trainable": "yes"}, {"input_type": "x"}):
            refused = ivan.get(f"{API}/models", params=params)
            assert refused.status_code == 400, (params, refused.text)
            assert next(iter(params)) in refused.json()["error_message"]


# -- 4. PATCH ---------------------------------------------------------------------------------


def _last_change(client: httpx.Client, name: str) -> dict[str, Any]:
    change: dict[str, Any] = client.get(f"{API}/model/{name}/1/alice").json()["last_change"]
    return change


def test_patch_changes_visibility_description_and_metainfo_and_records_each_change(
    local_host: LocalHost, sources: Sources
) -> None:
    name = f"vis-{uuid.uuid4().hex[:8]}"
    alice, bob = local_host.client("alice"), local_host.client("bob")
    with alice, bob:
        assert register(alice, name, "1", body(sources))["state"] == "Finished"
        assert bob.get(f"{API}/models", params={"name": name}).json() == []
        assert bob.get(f"{API}/model/{name}/1/alice").status_code == 404

        before = datetime.now(UTC)
        published = alice.patch(f"{API}/model/{name}/1", json={"model_config": {"private": False}})
        after = datetime.now(UTC)
        assert published.status_code == 200, published.text
        assert [m["name"] for m in bob.get(f"{API}/models", params={"name": name}).json()] == [name]
        assert bob.get(f"{API}/model/{name}/1/alice").json()["private"] is False
        change = _last_change(alice, name)
        assert change["by"] == "alice" and change["by_name"] == "alice"
        assert before <= datetime.fromisoformat(change["at"]) <= after
        assert change["changes"] == {"private": {"from": True, "to": False}}

        described = alice.patch(f"{API}/model/{name}/1", json={"model_config": {"description": "new words"}})
        assert described.status_code == 200, described.text
        view = alice.get(f"{API}/model/{name}/1/alice").json()
        assert view["description"] == view["model_config"]["description"] == "new words"
        assert view["last_change"]["changes"] == {"description": {"from": "", "to": "new words"}}
        assert [m["description"] for m in bob.get(f"{API}/models", params={"name": name}).json()] == [
            "new words"
        ]

        meta = alice.patch(f"{API}/model/{name}/1", json={"model_metainfo": {"num_params": 7}})
        assert meta.status_code == 200, meta.text
        view = alice.get(f"{API}/model/{name}/1/alice").json()
        assert view["model_metainfo"]["num_params"] == 7
        assert view["model_metainfo"]["input_description"] == "code", "the other fields are kept"
        assert view["last_change"]["changes"] == {"model_metainfo": ["num_params"]}

        for bad, field in (
            ({"model_metainfo": {"num_params": -3}}, "model_metainfo.num_params"),
            ({"model_metainfo": {"nonsense": 1}}, "model_metainfo.nonsense"),
            ({"model_metainfo": {"index_page_file": "missing.md"}}, "model_metainfo.index_page_file"),
            ({"model_config": {"type": "ENCODER"}}, "model_config.type"),
            ({"colour": "red"}, "colour"),
            ({}, "body"),
        ):
            refused = alice.patch(f"{API}/model/{name}/1", json=bad)
            assert refused.status_code == 400, (bad, refused.text)
            assert field in refused.json()["error_message"], (bad, refused.text)
        assert alice.get(f"{API}/model/{name}/1/alice").json() == view, "a refused PATCH changes nothing"

        hidden = alice.patch(f"{API}/model/{name}/1", json={"model_config": {"private": True}})
        assert hidden.status_code == 200
        assert bob.get(f"{API}/models", params={"name": name}).json() == []
        assert bob.get(f"{API}/model/{name}/1/alice").status_code == 404
        assert _last_change(alice, name)["changes"] == {"private": {"from": False, "to": True}}


def test_patch_of_a_file_keeps_serving_the_old_bytes_until_the_new_ones_are_copied(
    local_host: LocalHost, sources: Sources
) -> None:
    name = f"upd-{uuid.uuid4().hex[:8]}"
    old, new, notes = os.urandom(8 * MIB), os.urandom(8 * MIB + 5), b"release notes\n"
    file_url = f"{API}/model/{name}/1/alice/files/model/weights.bin"
    with local_host.client("alice") as alice:
        assert register(alice, name, "1", body(sources, {"model/weights.bin": old}))["state"] == "Finished"
        patched = alice.patch(
            f"{API}/model/{name}/1",
            json={
                "model_files": {
                    "model/weights.bin": sources.upload(f"{name}-new/weights.bin", new),
                    "notes.txt": sources.upload(f"{name}-new/notes.txt", notes),
                }
            },
        )
        assert patched.status_code == 200, patched.text
        assert alice.get(f"{API}/model/{name}/1/alice").json()["state"] == "InProgress"
        again = alice.patch(
            f"{API}/model/{name}/1", json={"model_files": {"notes.txt": sources.url(f"{name}-new/notes.txt")}}
        )
        assert again.status_code == 409, again.text

        served: list[bytes] = []
        while alice.get(f"{API}/model/{name}/1/status").json()["state"] == "InProgress":
            served.append(download(alice.get(file_url)))
        final = alice.get(f"{API}/model/{name}/1/alice").json()

        assert served and served[0] == old, "the old bytes are served while the copy runs"
        assert all(b in (old, new) for b in served)
        switched = served.index(new) if new in served else len(served)  # new once committed, never back
        assert all(b == new for b in served[switched:])
        assert final["state"] == "Finished", final
        assert download(alice.get(file_url)) == new
        assert download(alice.get(f"{API}/model/{name}/1/alice/files/notes.txt")) == notes
        sizes = {f["name"]: f["size"] for f in final["files"]}
        assert sizes["model/weights.bin"] == len(new) and sizes["notes.txt"] == len(notes)
        assert final["last_change"]["changes"] == {"model_files": ["model/weights.bin", "notes.txt"]}


# -- 5. DELETE during a copy ------------------------------------------------------------------


@dataclass
class DeletedMidCopy:
    """What was observed around a DELETE of a model whose 24 MiB file was being copied."""

    copied_before: int
    deleted: httpx.Response
    status: httpx.Response
    view: httpx.Response
    file: httpx.Response
    listed: list[Any]
    committed_left: list[str]  # blobs under the model's prefix, once its worker must have stopped
    anything_left: list[str]  # the same, with uncommitted blobs (staged blocks) too
    deleted_again: httpx.Response


@pytest.fixture(scope="module")
def deleted_mid_copy(
    local_host: LocalHost, models: ContainerClient, host_env: dict[str, str], azurite: Azurite
) -> DeletedMidCopy:
    service = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
    sources = Sources(service.create_container(unique("srcdel")))
    name = f"del-{uuid.uuid4().hex[:8]}"
    size = 24 * MIB  # at a few MiB/s with 1 MiB blocks and 0.3 s slices: still copying when deleted
    prefix = f"alice/{name}/1/"
    with local_host.client("alice") as alice:
        accepted = alice.put(f"{API}/model/{name}/1", json=body(sources, {"weights.bin": os.urandom(size)}))
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.headers["Location"]
        deadline = time.monotonic() + 30
        copied = 0
        while time.monotonic() < deadline and not copied:
            status = alice.get(status_url).json()
            copied = {f["name"]: f["bytes_copied"] for f in status["files"]}["weights.bin"]
            time.sleep(0.02)
        assert status["state"] == "InProgress" and 0 < copied < size, status

        deleted = alice.delete(f"{API}/model/{name}/1")
        gone_at = time.monotonic()
        observed = {
            "status": alice.get(status_url),
            "view": alice.get(f"{API}/model/{name}/1/alice"),
            "file": alice.get(f"{API}/model/{name}/1/alice/files/weights.bin"),
        }
        # The worker stops at its next checkpoint, and within its lease at the latest: after
        # that nothing writes under the prefix again. Poll a little longer for what is left.
        quiet_after = gone_at + float(host_env["REGISTRY_COPY_LEASE_SECONDS"]) + 0.5
        time.sleep(max(0.0, quiet_after - time.monotonic()))
        while True:
            committed = [b.name for b in models.list_blobs(name_starts_with=prefix)]
            everything = [
                b.name for b in models.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"])
            ]
            if not everything or time.monotonic() > quiet_after + 1.5:
                break
            time.sleep(0.25)
        return DeletedMidCopy(
            copied_before=copied,
            deleted=deleted,
            listed=alice.get(f"{API}/models", params={"name": name}).json(),
            committed_left=committed,
            anything_left=everything,
            deleted_again=alice.delete(f"{API}/model/{name}/1"),
            **observed,
        )


def test_delete_during_a_copy_removes_the_model_and_stops_the_copy(deleted_mid_copy: DeletedMidCopy) -> None:
    seen = deleted_mid_copy
    assert seen.deleted.status_code == 200, seen.deleted.text
    assert seen.status.status_code == 404
    assert seen.view.status_code == 404
    assert seen.file.status_code == 404
    assert seen.listed == []
    assert seen.committed_left == [], "the files copied before the delete are gone"
    assert seen.deleted_again.status_code == 404


def test_delete_during_a_copy_leaves_no_blob_at_all(deleted_mid_copy: DeletedMidCopy) -> None:
    assert deleted_mid_copy.anything_left == [], f"left behind: {deleted_mid_copy.anything_left}"


# -- 6. clone ---------------------------------------------------------------------------------


def test_clone_copies_the_parents_files_server_side_with_ignores_overrides_and_new_files(
    local_host: LocalHost, sources: Sources
) -> None:
    name = f"par-{uuid.uuid4().hex[:8]}"
    weights, tokenizer, dropped = os.urandom(3 * MIB + 1), b'{"vocab": []}', b"not for clones"
    alice, bob, carol = (local_host.client(p) for p in ("alice", "bob", "carol"))
    with alice, bob, carol:
        files = {"model/weights.bin": weights, "tokenizer.json": tokenizer, "drop.txt": dropped}
        assert register(alice, name, "1", body(sources, files, private=False))["state"] == "Finished"
        parent = bob.get(f"{API}/model/{name}/1/alice").json()

        accepted = bob.put(
            f"{API}/model/clone/{name}/2",
            json={
                "parent_version": "1",
                "parent_owner": "alice",
                "ignore_files": ["drop.txt"],
                "model_config": {"description": "cloned by bob"},
                "model_metainfo": {"num_params": 99},
                "model_files": {"new.txt": sources.upload(f"{name}-clone/new.txt", b"brand new\n")},
            },
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["Location"].endswith(f"/model/{name}/2/status")
        assert wait(bob, accepted.headers["Location"])["state"] == "Finished"

        clone = bob.get(f"{API}/model/{name}/2/bob").json()
        assert clone["parent_model"] == {"name": name, "version": "1", "owner": "alice"}
        assert clone["owner"] == "bob" and clone["private"] is True
        assert clone["description"] == clone["model_config"]["description"] == "cloned by bob"
        assert clone["model_metainfo"]["num_params"] == 99
        assert clone["model_metainfo"]["input_languages"] == ["python"], "the rest is the parent's"
        names = {f["name"] for f in clone["files"]}
        assert names == {f["name"] for f in parent["files"]} - {"drop.txt"} | {"new.txt"}
        for target in names - {"new.txt"}:
            mine = download(bob.get(f"{API}/model/{name}/2/bob/files/{target}"))
            assert mine == download(bob.get(f"{API}/model/{name}/1/alice/files/{target}")), target
        assert download(bob.get(f"{API}/model/{name}/2/bob/files/model/weights.bin")) == weights
        assert download(bob.get(f"{API}/model/{name}/2/bob/files/new.txt")) == b"brand new\n"
        assert bob.get(f"{API}/model/{name}/2/bob/files/drop.txt").status_code == 404
        assert bob.get(f"{API}/model/{name}/2/bob/index").text == "# m\n"

        assert carol.get(f"{API}/model/{name}/2/bob").status_code == 404, "a clone is private by default"
        assert [m["owner"] for m in carol.get(f"{API}/models", params={"name": name}).json()] == ["alice"]
        assert alice.get(f"{API}/model/{name}/1/alice").json()["files"] == parent["files"]


# -- 7. OpenAPI -------------------------------------------------------------------------------


def test_the_openapi_document_is_served(local_host: LocalHost) -> None:
    with local_host.client(None) as anonymous:
        response = anonymous.get(f"{API}/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert {
        "/models",
        "/model/{name}/{version}",
        "/model/{name}/{version}/status",
        "/model/{name}/{version}/{owner}",
        "/model/{name}/{version}/{owner}/index",
        "/model/{name}/{version}/{owner}/files/{path}",
        "/model/clone/{name}/{version}",
    } <= set(document["paths"])
