"""What the Functions host indexes from function_app.py: every function, route, method and trigger."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import function_app

REPO = Path(__file__).resolve().parents[1]
# The worker indexes once per process (a second get_functions() reports duplicates): so do we.
FUNCTIONS = function_app.app.get_functions()


def _indexed() -> dict[str, dict[str, Any]]:
    # The Python worker sends each function's JSON (its bindings) to the host: read the same.
    functions = {}
    for function in FUNCTIONS:
        document = json.loads(function.get_function_json())
        triggers = [b for b in document["bindings"] if b["type"].endswith("Trigger")]
        assert len(triggers) == 1, f"{function.get_function_name()} must have exactly one trigger"
        name = function.get_function_name()
        assert name is not None
        functions[name] = {"script": document["scriptFile"], **triggers[0]}
    return functions


def test_the_app_declares_exactly_the_registry_functions_with_their_triggers() -> None:
    indexed = _indexed()
    summary = {
        name: (
            b["type"],
            b.get("route") or b.get("queueName") or b.get("schedule"),
            tuple(b.get("methods", ())),
        )
        for name, b in indexed.items()
    }

    assert summary == {
        "register_model": ("httpTrigger", "v1.0/model/{name}/{version}", ("PUT",)),
        "registration_status": ("httpTrigger", "v1.0/model/{name}/{version}/status", ("GET",)),
        "list_models": ("httpTrigger", "v1.0/models", ("GET",)),
        "get_model": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}", ("GET",)),
        "get_model_index": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}/index", ("GET",)),
        "get_model_file": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}/files/{*path}", ("GET",)),
        "get_manifest": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}/manifest", ("GET",)),
        "list_manifests": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}/manifests", ("GET",)),
        "signing_keys": ("httpTrigger", "v1.0/signing-keys", ("GET",)),
        "get_history": ("httpTrigger", "v1.0/model/{name}/{version}/{owner}/history", ("GET",)),
        "update_model": ("httpTrigger", "v1.0/model/{name}/{version}", ("PATCH",)),
        "delete_model": ("httpTrigger", "v1.0/model/{name}/{version}", ("DELETE",)),
        "clone_model": ("httpTrigger", "v1.0/model/clone/{name}/{version}", ("PUT",)),
        "openapi_document": ("httpTrigger", "v1.0/openapi.json", ("GET",)),
        "put_webhook": ("httpTrigger", "v1.0/webhooks/{id}", ("PUT",)),
        "list_webhooks": ("httpTrigger", "v1.0/webhooks", ("GET",)),
        "get_webhook": ("httpTrigger", "v1.0/webhooks/{id}", ("GET",)),
        "delete_webhook": ("httpTrigger", "v1.0/webhooks/{id}", ("DELETE",)),
        "rotate_webhook_secret": ("httpTrigger", "v1.0/webhooks/{id}/rotate-secret", ("POST",)),
        "list_webhook_deliveries": ("httpTrigger", "v1.0/webhooks/{id}/deliveries", ("GET",)),
        "redeliver_webhook_event": (
            "httpTrigger",
            "v1.0/webhooks/{id}/deliveries/{event_id}/redeliver",
            ("POST",),
        ),
        # The web catalog (registry/web)
        "catalog_home": ("httpTrigger", "catalog", ("GET",)),
        "catalog_models": ("httpTrigger", "catalog/models", ("GET",)),
        "catalog_model": ("httpTrigger", "catalog/model/{name}/{version}/{owner}", ("GET",)),
        "catalog_model_file": (
            "httpTrigger",
            "catalog/model/{name}/{version}/{owner}/files/{*path}",
            ("GET",),
        ),
        "catalog_model_history": ("httpTrigger", "catalog/model/{name}/{version}/{owner}/history", ("GET",)),
        "catalog_model_manifest": (
            "httpTrigger",
            "catalog/model/{name}/{version}/{owner}/manifest",
            ("GET",),
        ),
        "catalog_registrations": ("httpTrigger", "catalog/registrations", ("GET",)),
        "catalog_registrations_status": ("httpTrigger", "catalog/registrations/status", ("GET",)),
        "catalog_registration_status": (
            "httpTrigger",
            "catalog/registrations/{name}/{version}/status",
            ("GET",),
        ),
        "catalog_visibility": (
            "httpTrigger",
            "catalog/registrations/{name}/{version}/visibility",
            ("GET", "POST"),
        ),
        "catalog_delete": ("httpTrigger", "catalog/registrations/{name}/{version}/delete", ("GET", "POST")),
        "catalog_register": ("httpTrigger", "catalog/register", ("GET", "POST")),
        "catalog_act_as": ("httpTrigger", "catalog/dev/act-as", ("GET", "POST")),
        "catalog_static": ("httpTrigger", "catalog/static/{file}", ("GET",)),
        "copy_worker": ("queueTrigger", "registration-jobs", ()),
        "copy_poisoned": ("queueTrigger", "registration-jobs-poison", ()),
        "requeue_quiet_registrations": ("timerTrigger", "0 */5 * * * *", ()),
    }
    assert all(b["script"] == "function_app.py" for b in indexed.values())


def test_http_functions_leave_authentication_to_easy_auth_and_queues_use_the_host_storage() -> None:
    indexed = _indexed()
    http = [b for b in indexed.values() if b["type"] == "httpTrigger"]
    queues = [b for b in indexed.values() if b["type"] == "queueTrigger"]

    assert {b["authLevel"] for b in http} == {"ANONYMOUS"}
    assert {b["connection"] for b in queues} == {"AzureWebJobsStorage"}


def test_every_function_takes_its_trigger_binding_by_name() -> None:
    for function in FUNCTIONS:
        parameters = inspect.signature(function.get_user_function()).parameters
        trigger = function.get_trigger()
        assert trigger is not None, function.get_function_name()
        assert list(parameters) == [trigger.name], function.get_function_name()


def test_the_service_bus_setting_swaps_the_storage_queue_worker_for_a_service_bus_one() -> None:
    # A fresh interpreter: the host indexes the app once per process, with its app settings.
    script = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())['bindings'][0]"
        " for f in function_app.app.get_functions()}))"
    )
    env = {**os.environ, "REGISTRY_JOB_QUEUE": "servicebus"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    bindings = json.loads(result.stdout)

    assert "copy_worker" not in bindings and "copy_poisoned" not in bindings
    worker = bindings["job_worker"]
    assert worker["type"] == "serviceBusTrigger"
    assert worker["queueName"] == "%REGISTRY_SERVICEBUS_QUEUE%"
    assert worker["connection"] == "ServiceBusConnection"
    assert {name for name, b in bindings.items() if b["type"] == "httpTrigger"} == {
        name for name, b in _indexed().items() if b["type"] == "httpTrigger"
    }
