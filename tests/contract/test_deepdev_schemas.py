"""Real answers of the app validate against DeepDev's own published response schemas.

The schema files in tests/contract/deepdev/ are DeepDev's, copied unchanged from the reference
(api/schemas; a test below checks they still match when the reference is at hand) so that this
runs from a clean clone. DeepDev types `organization` as a string and `parent_model` as an object:
a strictly typed DeepDev client breaks on null, so absent values must be left out.

Not checked here: the 202 Accepted of registration and clone. DeepDev documents 200 with a
message_response; answering 202 with a Location of the status is this registry's documented
extension (the copy happens after the answer), so there is no DeepDev schema to hold it to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from registry.domain.jobs import RegisterJob
from registry.identity import Principal
from registry.services.copying import Outcome
from registry.services.jobs import register_from_queue
from tests.builders import make_deps, make_settings, registration_body, source_url
from tests.contract.inprocess import Answer, InProcessApi
from tests.fakes import FakeBlobCopier, FakeJobQueue

SCHEMAS = Path(__file__).parent / "deepdev"
REFERENCE = Path("/work/shared/reference/deepdev/api/schemas")
ALICE = Principal("alice", "alice@contoso.com")
BOB = Principal("bob", "bob@contoso.com")


def _resource(path: Path) -> tuple[str, Resource[Any]]:
    """A schema file under its file: URI, so that relative $refs resolve to the sibling files."""
    contents = yaml.safe_load(path.read_text())
    return path.as_uri(), Resource.from_contents(contents, default_specification=DRAFT202012)


_REGISTRY: Registry[Any] = Registry().with_resources(_resource(path) for path in SCHEMAS.glob("*.yml"))


def validator(schema: str) -> jsonschema.Draft202012Validator:
    """A validator of DeepDev's `schema` (e.g. list_models_response), its $refs followed."""
    root = {"$ref": (SCHEMAS / f"{schema}.yml").as_uri()}
    return jsonschema.Draft202012Validator(root, registry=_REGISTRY)


def conforms(schema: str, answer: Any) -> None:
    errors = sorted(validator(schema).iter_errors(answer), key=lambda e: list(e.absolute_path))
    assert not errors, f"not a DeepDev {schema}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
    )


# -- real answers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answers() -> dict[str, Answer]:
    """Answers of one session: Alice registers a public model; Bob clones it, and a bulk producer
    leaves Bob an invalid registration (a model with no type); then they read, update, delete."""
    queue, blobs = FakeJobQueue(), FakeBlobCopier()
    deps = make_deps(
        make_settings(REGISTRY_DEV_MODE="true", REGISTRY_BULK_OWNERS="bob"), queue=queue, blobs=blobs
    )
    api = InProcessApi(deps, queue)

    def body(name: str, private: bool) -> dict[str, Any]:
        registered = registration_body()
        registered["model_config"]["private"] = private
        registered["model_files"] = {t: source_url(f"{name}/{t}") for t in registered["model_files"]}
        for target, url in registered["model_files"].items():
            blobs.put_source(url, f"{name}:{target}".encode() * 100)
        return registered

    found: dict[str, Answer] = {}
    found["register"] = api.call(
        "register_model", ALICE, body=body("codegen", False), name="codegen", version="1.0"
    )
    assert api.run_worker() == [Outcome.FINISHED]
    clone = {"parent_version": "1.0", "parent_owner": "alice"}
    found["clone"] = api.call("clone_model", BOB, body=clone, name="codegen", version="2.0")
    assert api.run_worker() == [Outcome.FINISHED]
    assert register_from_queue(RegisterJob("bob", "broken", "1.0", {"model_config": {}}), deps) == "invalid"
    api.call("register_model", ALICE, body=body("pending", True), name="pending", version="1.0")

    found["list"] = api.call("list_models", BOB)
    found["list page"] = api.call("list_models", BOB, params={"limit": "2"})
    found["list filtered"] = api.call("list_models", BOB, params={"language": "python", "type": "DECODER"})
    found["get parent"] = api.call("get_model", BOB, name="codegen", version="1.0", owner="alice")
    found["get clone"] = api.call("get_model", BOB, name="codegen", version="2.0", owner="bob")
    found["get invalid"] = api.call("get_model", BOB, name="broken", version="1.0", owner="bob")
    found["status finished"] = api.call("registration_status", ALICE, name="codegen", version="1.0")
    found["status clone"] = api.call("registration_status", BOB, name="codegen", version="2.0")
    found["status failed"] = api.call("registration_status", BOB, name="broken", version="1.0")
    found["status in progress"] = api.call("registration_status", ALICE, name="pending", version="1.0")
    found["update"] = api.call(
        "update_model",
        ALICE,
        body={"model_config": {"description": "now described"}},
        name="codegen",
        version="1.0",
    )
    found["delete"] = api.call("delete_model", BOB, name="broken", version="1.0")

    found["error 400 body"] = api.call(
        "register_model", BOB, body={"model_config": {}}, name="x", version="1"
    )
    found["error 400 query"] = api.call("list_models", BOB, params={"colour": "blue"})
    found["error 401"] = api.call("list_models", None)
    found["error 404 model"] = api.call("get_model", BOB, name="pending", version="1.0", owner="alice")
    found["error 404 status"] = api.call("registration_status", BOB, name="codegen", version="1.0")
    found["error 404 deleted"] = api.call("delete_model", BOB, name="broken", version="1.0")
    found["error 409"] = api.call(
        "register_model", ALICE, body=body("codegen", True), name="codegen", version="1.0"
    )
    found["error 415"] = api.call("register_model", ALICE, raw_body=b"<xml/>", name="other", version="1.0")
    return found


# Each real answer, its status, and the DeepDev schema that documents it.
DOCUMENTED = {
    "list": (200, "list_models_response"),
    "list filtered": (200, "list_models_response"),
    "get parent": (200, "get_model_response"),
    "get clone": (200, "get_model_response"),
    "get invalid": (200, "get_model_response"),
    "status finished": (200, "add_model_status_response"),
    "status clone": (200, "add_model_status_response"),
    "status failed": (200, "add_model_status_response"),
    "status in progress": (200, "add_model_status_response"),
    "update": (200, "message_response"),
    "delete": (200, "message_response"),
    "error 400 body": (400, "error_response"),
    "error 400 query": (400, "error_response"),
    "error 401": (401, "error_response"),
    "error 404 model": (404, "error_response"),
    "error 404 status": (404, "error_response"),
    "error 404 deleted": (404, "error_response"),
    "error 409": (409, "error_response"),
    "error 415": (415, "error_response"),
}


@pytest.mark.parametrize("answer", DOCUMENTED)
def test_the_answer_validates_against_deepdevs_schema(answers: dict[str, Answer], answer: str) -> None:
    status, schema = DOCUMENTED[answer]
    got = answers[answer]

    assert got.status == status, got.body
    assert got.mimetype == "application/json"
    conforms(schema, got.json())


def test_a_page_holds_deepdev_list_items(answers: dict[str, Answer]) -> None:
    """With ?limit the answer is a page object (an extension); its models are DeepDev's list."""
    page = answers["list page"].json()

    assert len(page["models"]) == 2
    conforms("list_models_response", page["models"])


def test_the_listing_covers_a_clone_a_model_without_parent_and_one_without_type(
    answers: dict[str, Answer],
) -> None:
    """What the schema checks above saw: absent fields are left out, present ones typed."""
    items = {(m["name"], m["version"], m["owner"]): m for m in answers["list"].json()}

    assert set(items) == {("codegen", "1.0", "alice"), ("codegen", "2.0", "bob"), ("broken", "1.0", "bob")}
    assert items["codegen", "2.0", "bob"]["parent_model"] == {
        "name": "codegen",
        "version": "1.0",
        "owner": "alice",
    }
    assert "parent_model" not in items["codegen", "1.0", "alice"]
    assert "type" not in items["broken", "1.0", "bob"]
    assert all("organization" not in item for item in items.values())
    assert "parent_model" not in answers["get parent"].json()
    assert answers["get clone"].json()["parent_model"]["owner"] == "alice"
    assert "organization" not in answers["get clone"].json()
    assert [
        answers[s].json()["state"] for s in ("status finished", "status failed", "status in progress")
    ] == [
        "Finished",
        "Failed",
        "InProgress",
    ]


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        ("list_models_response", [{"name": "m", "version": "1", "owner": "o", "organization": None}]),
        ("list_models_response", [{"name": "m", "version": "1", "owner": "o", "parent_model": None}]),
        ("list_models_response", [{"name": "m", "version": "1", "owner": "o", "type": ""}]),
        ("get_model_response", {"name": "m", "version": "1", "owner": "o", "parent_model": None}),
        ("add_model_status_response", {"state": "Deleting", "message": "Being deleted"}),
        ("error_response", {"message": "Not found", "error_message": None}),
    ],
)
def test_the_schemas_refuse_what_a_deepdev_client_cannot_read(schema: str, answer: Any) -> None:
    """The checks above can fail: null where DeepDev types a string or object, an unknown type or state."""
    assert list(validator(schema).iter_errors(answer))


def test_the_copied_schemas_are_deepdevs_own() -> None:
    if not REFERENCE.is_dir():
        pytest.skip(f"the DeepDev reference is not at {REFERENCE}")
    for copied in sorted(SCHEMAS.glob("*.yml")):
        assert copied.read_bytes() == (REFERENCE / copied.name).read_bytes(), copied.name


def test_every_schema_a_copied_schema_refers_to_is_copied_too() -> None:
    refs = {ref for path in SCHEMAS.glob("*.yml") for ref in _refs(yaml.safe_load(path.read_text()))}

    assert refs == {"./model_type.yml", "./deployment_state.yml"}
    assert all((SCHEMAS / ref).is_file() for ref in refs)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()
