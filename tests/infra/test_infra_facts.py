"""What the issue requires of the infrastructure, read from the parsed Bicep (checkov does not check
these, or checks them only in part): identity-only storage and Service Bus, the queue's delivery
rules, Easy Auth, no FTP or basic auth, least-privilege role assignments, and names the code uses."""

from __future__ import annotations

import json
import re
from typing import Any

from registry.settings import JOBS_QUEUE
from tests.infra import ROOT, app_settings, config, evaluate, parse, resources

ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
MODULES = [
    "modules/storage.bicep",
    "modules/servicebus.bicep",
    "modules/keyvault.bicep",
    "modules/monitoring.bicep",
    "modules/functionapp.bicep",
    "modules/sealing-secret.bicep",
]


def props(relative: str, name: str) -> Any:
    return config(parse(relative)["resources"][name])["properties"]


def module_params(name: str) -> dict[str, Any]:
    return {k: evaluate(v) for k, v in config(parse("main.bicep")["modules"][name])["params"].items()}


def minutes(duration: str) -> float:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match, duration
    hours, mins, secs = (int(g or 0) for g in match.groups())
    return hours * 60 + mins + secs / 60


def test_storage_accepts_only_entra_id_over_tls12() -> None:
    account = props("modules/storage.bicep", "account")
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    for name in ("modelsContainer", "deploymentContainer"):
        assert props("modules/storage.bicep", name)["publicAccess"] == "None"


def test_storage_holds_what_the_code_and_the_host_use() -> None:
    settings = app_settings()
    params = module_params("storage")
    assert params["modelsContainerName"] == settings["REGISTRY_MODELS_CONTAINER"]
    tables = {settings[f"REGISTRY_{t}_TABLE"] for t in ("REGISTRATIONS", "FILES", "CATALOG", "CHANGES")}
    assert set(params["tableNames"]) == tables
    assert params["queueNames"] == [JOBS_QUEUE, f"{JOBS_QUEUE}-poison"]


def test_service_bus_queue_delivers_jobs_as_the_worker_expects() -> None:
    namespace = config(resources("modules/servicebus.bicep")["namespace"])
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"
    assert namespace["sku"]["name"] in ("Standard", "Premium"), "Basic has no duplicate detection"
    queue = evaluate(
        parse("modules/servicebus.bicep")["variables"]["queueProperties"]["value"], "modules/servicebus.bicep"
    )
    assert queue["requiresDuplicateDetection"] is True and queue["duplicateDetectionHistoryTimeWindow"]
    assert queue["deadLetteringOnMessageExpiration"] is True
    settings = app_settings()
    # A dead worker's message comes back within a minute (the host renews the lock of a live one),
    # and by then its lease on the registration (renewed at every checkpoint) has lapsed too.
    assert minutes(queue["lockDuration"]) <= 1
    assert float(settings["REGISTRY_COPY_LEASE_SECONDS"]) <= 60
    params = module_params("serviceBus")
    assert str(params["maxDeliveryCount"]) == settings["REGISTRY_SERVICEBUS_MAX_DELIVERIES"]
    assert params["queueName"] == settings["REGISTRY_SERVICEBUS_QUEUE"]


def test_key_vault_is_rbac_only_and_purge_protected() -> None:
    vault = props("modules/keyvault.bicep", "vault")
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True and vault["enableSoftDelete"] is True
    secure = parse("main.bicep")["parameters"]["sealingKey"]["decorators"]
    assert {"type": "secure"} in secure
    site = props("modules/functionapp.bicep", "site")
    assert site["keyVaultReferenceIdentity"] == "identityId"


def test_function_app_is_flex_consumption_https_only_without_ftp() -> None:
    plan = config(resources("modules/functionapp.bicep")["plan"])
    assert (
        plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    )
    site_resource = config(resources("modules/functionapp.bicep")["site"])
    assert site_resource["kind"] == "functionapp,linux"
    assert site_resource["identity"]["type"] == "UserAssigned"
    site = site_resource["properties"]
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2" and site["siteConfig"]["ftpsState"] == "Disabled"
    flex = site["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "3.11"}
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert set(flex["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB"}
    policies = resources(
        "modules/functionapp.bicep", "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert {config(p)["name"]: config(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_easy_auth_requires_an_entra_id_token() -> None:
    auth = props("modules/functionapp.bicep", "auth")
    assert auth["platform"]["enabled"] is True
    assert auth["globalValidation"] == {
        "requireAuthentication": True,
        "unauthenticatedClientAction": "Return401",
    }
    aad = auth["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True and aad["registration"]["clientId"] == "entraClientId"
    assert "entraClientId" in parse("modules/functionapp.bicep")["parameters"]


def test_telemetry_uses_entra_id() -> None:
    assert props("modules/monitoring.bicep", "appInsights")["DisableLocalAuth"] is True
    assert app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith(";Authorization=AAD")


def test_role_assignments_are_the_least_set_and_named_with_guid() -> None:
    granted = []
    for module in MODULES:
        for name, resource in resources(module, "Microsoft.Authorization/roleAssignments").items():
            body = config(resource)
            assert body["name"]["function"]["type"] == "guid", f"{module}:{name} is not named with guid()"
            assert body["properties"]["principalType"] == "ServicePrincipal"
            assert body["properties"]["principalId"] == "principalId"
            role = body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            granted.append(_role_guid(module, role))
    assert sorted(ROLES[g] for g in granted) == sorted(ROLES.values())


def _role_guid(module: str, role: Any) -> str:
    """The role id in `subscriptionResourceId(..., roles.x)` or `(..., someRoleVariable)`."""
    if isinstance(role, dict):
        operands = role["operator"]["operands"]
        return str(evaluate(operands["operand_1"], module)[operands["operand_2"]])
    return str(evaluate(role, module))


def test_outputs_and_routes() -> None:
    outputs = parse("main.bicep")["outputs"]
    assert {"functionAppName", "apiBaseUrl"} <= set(outputs)
    assert outputs["apiBaseUrl"]["value"].endswith("/api/v1.0")
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == "api"
