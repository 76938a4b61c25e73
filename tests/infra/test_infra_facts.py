"""What the issues require of the infrastructure, read from the parsed Bicep (checkov does not check
these, or checks them only in part): identity-only storage and Service Bus, the queue's delivery
rules, Easy Auth, no FTP or basic auth, least-privilege role assignments, names the code uses, the
pinned sealing key, Flex Consumption settings that deploy, alerts, diagnostic settings, locks,
versioning, scale limits and the private network mode."""

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
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
}
MODULES = [
    "modules/storage.bicep",
    "modules/servicebus.bicep",
    "modules/keyvault.bicep",
    "modules/monitoring.bicep",
    "modules/functionapp.bicep",
    "modules/sealing-secret.bicep",
    "modules/alerts.bicep",
    "modules/network.bicep",
    "modules/private-endpoints.bicep",
    "modules/eventgrid.bicep",
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
    kinds = ("REGISTRATIONS", "FILES", "CATALOG", "CHANGES", "MANIFESTS", "WEBHOOKS", "WEBHOOK_DELIVERIES")
    tables = {settings[f"REGISTRY_{t}_TABLE"] for t in kinds}
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
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    # Flex Consumption does not take ftpsState (nor the other classic FTP/worker settings).
    assert not {"ftpsState", "alwaysOn", "linuxFxVersion", "numberOfWorkers"} & set(site["siteConfig"])
    flex = site["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "3.11"}
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
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


def raw_module_params(name: str) -> dict[str, Any]:
    """A module call's parameters in main.bicep as written (identifiers, not their defaults)."""
    params: dict[str, Any] = config(parse("main.bicep")["modules"][name])["params"]
    return params


def decorator(relative: str, param: str, kind: str) -> Any:
    for item in parse(relative)["parameters"][param]["decorators"]:
        if item["type"] == kind:
            return item["argument"]
    raise AssertionError(f"{relative}: parameter {param} has no {kind} decorator")


def conditional(value: Any) -> dict[str, Any]:
    """The operands of a `condition ? a : b` expression."""
    assert isinstance(value, dict) and value["operator"]["type"] == "conditional", value
    operands: dict[str, Any] = value["operator"]["operands"]
    return operands


# --- sealing key ---------------------------------------------------------------------------------


def test_the_app_reads_the_sealing_key_pinned_to_a_secret_version() -> None:
    settings = parse("main.bicep")["variables"]["appSettings"]["value"]
    assert (
        settings["REGISTRY_SEALING_KEY"]
        == "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.currentSealingKeyUri})"
    )
    current = conditional(parse("modules/keyvault.bicep")["outputs"]["currentSealingKeyUri"]["value"])
    # Without a new key, the version the deployment names; with one, the version just written.
    assert current["true_value"] == "${secretBaseUri}/${sealingKeyVersion}"
    assert current["false_value"]["operator"]["operands"]["operand_1"] == "secret"
    assert "secretUriWithVersion" in json.dumps(current["false_value"])
    written = parse("modules/sealing-secret.bicep")["outputs"]["secretUriWithVersion"]["value"]
    assert "secretUriWithVersion" in json.dumps(written)
    # No output or setting hands the app the versionless URI any more.
    outputs = parse("modules/keyvault.bicep")["outputs"]
    assert set(outputs) == {"name", "id", "currentSealingKeyUri", "previousSealingKeyUri", "signingKeyUri"}


def test_the_previous_key_is_read_only_during_a_rotation() -> None:
    previous = conditional(
        parse("main.bicep")["variables"]["appSettings"]["value"]["REGISTRY_SEALING_PREVIOUS_KEYS"]
    )
    assert previous["condition"]["function"]["parameters"]["item_to_test"] == "previousSealingKeyVersion"
    assert previous["true_value"] == ""
    assert (
        previous["false_value"] == "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.previousSealingKeyUri})"
    )
    assert parse("main.bicep")["parameters"]["previousSealingKeyVersion"]["default"] == ""


def test_a_secret_version_is_written_only_when_a_new_key_is_given() -> None:
    module = parse("modules/keyvault.bicep")["modules"]["secret"]
    assert "empty" in json.dumps(module["config"]["condition"]) and "sealingKey" in json.dumps(
        module["config"]["condition"]
    )
    assert {"type": "secure"} in parse("modules/sealing-secret.bicep")["parameters"]["value"]["decorators"]


# --- Flex Consumption: scale, concurrency ----------------------------------------------------------


def test_scale_limits_stay_well_under_the_regional_quota() -> None:
    for relative in ("main.bicep", "modules/functionapp.bicep"):
        assert decorator(relative, "maximumInstanceCount", "min_value") == 40  # Flex's lowest maximum
        assert decorator(relative, "maximumInstanceCount", "max_value") == 1000
        default = parse(relative)["parameters"]["maximumInstanceCount"]["default"]
        # 2048 MB instances count one core each against the default regional quota of 250 cores.
        assert default <= 250 // 4, "the default leaves most of the regional quota to other apps"
    assert raw_module_params("functionApp")["maximumInstanceCount"] == "maximumInstanceCount"


def test_http_concurrency_and_an_optional_always_ready_instance() -> None:
    site = config(resources("modules/functionapp.bicep")["site"])["properties"]
    scale = site["functionAppConfig"]["scaleAndConcurrency"]
    assert set(scale) == {"maximumInstanceCount", "instanceMemoryMB", "triggers", "alwaysReady"}
    assert scale["triggers"] == {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}}
    ready = conditional(scale["alwaysReady"])
    assert ready["true_value"] == [{"name": "http", "instanceCount": "httpAlwaysReadyInstances"}]
    assert ready["false_value"] == []
    assert parse("main.bicep")["parameters"]["httpAlwaysReadyInstances"]["default"] == 0  # scale to zero


# --- storage: redundancy, versioning, soft delete, lock --------------------------------------------


def test_storage_redundancy_is_a_parameter_that_needs_no_zones_by_default() -> None:
    allowed = decorator("modules/storage.bicep", "skuName", "allowed")
    assert {"Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS"} <= set(allowed)
    assert parse("main.bicep")["parameters"]["storageSku"]["default"] == "Standard_GRS"
    assert set(decorator("main.bicep", "storageSku", "allowed")) == set(allowed)
    assert raw_module_params("storage")["skuName"] == "storageSku"
    assert config(resources("modules/storage.bicep")["account"])["sku"] == {"name": "skuName"}


def test_model_files_are_versioned_and_soft_deleted() -> None:
    blob = props("modules/storage.bicep", "blobService")
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"] == {"enabled": True, "days": "softDeleteDays"}
    assert blob["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "softDeleteDays"}
    rules = props("modules/storage.bicep", "versionRetention")["policy"]["rules"]
    models = next(r for r in rules if "${modelsContainerName}/" in r["definition"]["filters"]["prefixMatch"])
    expiry = models["definition"]["actions"]["version"]["delete"]["daysAfterCreationGreaterThan"]
    assert expiry == "modelVersionRetentionDays"
    assert parse("modules/storage.bicep")["parameters"]["modelVersionRetentionDays"]["default"] >= 30
    # Only previous versions expire: no rule deletes current blobs.
    assert all(set(r["definition"]["actions"]) == {"version"} for r in rules)


def test_storage_and_key_vault_are_locked_against_deletion_by_default() -> None:
    for relative, scope in (("modules/storage.bicep", "account"), ("modules/keyvault.bicep", "vault")):
        lock = resources(relative, "Microsoft.Authorization/locks")["doNotDelete"]["config"]
        assert lock["condition"] == "protectFromDeletion"
        assert lock["config"]["scope"] == scope and lock["config"]["properties"]["level"] == "CanNotDelete"
        assert parse(relative)["parameters"]["protectFromDeletion"]["default"] is True
    assert parse("main.bicep")["parameters"]["protectFromDeletion"]["default"] is True


# --- monitoring: diagnostic settings and alerts ------------------------------------------------------


def test_diagnostic_settings_send_audit_storage_and_service_bus_logs_to_log_analytics() -> None:
    expected = {
        ("modules/keyvault.bicep", "vault"): {"AuditEvent"},
        ("modules/storage.bicep", "blobService"): {"StorageRead", "StorageWrite", "StorageDelete"},
        ("modules/storage.bicep", "tableService"): {"StorageRead", "StorageWrite", "StorageDelete"},
        ("modules/storage.bicep", "queueService"): {"StorageRead", "StorageWrite", "StorageDelete"},
        ("modules/servicebus.bicep", "namespace"): {"OperationalLogs"},
    }
    found = {}
    for relative, _ in expected:
        for body in map(config, resources(relative, "Microsoft.Insights/diagnosticSettings").values()):
            logs = evaluate(body["properties"]["logs"], relative)
            assert body["properties"]["workspaceId"] == "workspaceId"
            found[(relative, body["scope"])] = {log["category"] for log in logs if log["enabled"]}
    assert found == expected
    for name in ("storage", "serviceBus", "keyVault"):
        assert module_params(name)["workspaceId"] == "<monitoring.outputs.workspaceId>"


def test_alerts_go_to_an_action_group_that_mails_the_given_address() -> None:
    group = props("modules/alerts.bicep", "operators")
    receivers = conditional(group["emailReceivers"])
    assert receivers["false_value"][0]["emailAddress"] == "alertEmail"
    assert raw_module_params("alerts")["alertEmail"] == "alertEmail"
    metric = props("modules/alerts.bicep", "deadLetters")
    assert "operators" in json.dumps(metric["actions"])
    rules = config(resources("modules/alerts.bicep")["logAlertRules"])
    assert "operators" in json.dumps(rules["properties"]["actions"])


def test_dead_letters_on_the_job_queue_raise_an_alert() -> None:
    criterion = props("modules/alerts.bicep", "deadLetters")["criteria"]["allOf"][0]
    assert criterion["metricName"] == "DeadletteredMessages"
    assert criterion["metricNamespace"] == "Microsoft.ServiceBus/namespaces"
    assert criterion["dimensions"] == [
        {"name": "EntityName", "operator": "Include", "values": ["serviceBusQueueName"]}
    ]
    assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
    assert module_params("alerts")["serviceBusQueueName"] == "<serviceBus.outputs.queueName>"


def test_log_alerts_cover_poison_messages_failures_5xx_and_key_vault_refusals() -> None:
    alerts = {
        a["name"]: a
        for a in evaluate(
            parse("modules/alerts.bicep")["variables"]["logAlerts"]["value"], "modules/alerts.bicep"
        )
    }
    assert set(alerts) == {"poisoned-jobs", "function-failures", "http-5xx", "key-vault-reference-failures"}
    poison = alerts["poisoned-jobs"]["query"]
    assert (
        "StorageQueueLogs" in poison and '"PutMessage"' in poison and "/<poisonQueueName>/messages" in poison
    )
    assert module_params("alerts")["poisonQueueName"] == f"{JOBS_QUEUE}-poison"
    assert "success == false" in alerts["function-failures"]["query"]
    assert ">= 500" in alerts["http-5xx"]["query"]
    vault = alerts["key-vault-reference-failures"]["query"]
    assert '"SecretGet"' in vault and "httpStatusCode_d >= 400" in vault and "<keyVaultId>" in vault
    scopes = {name: a["scope"] for name, a in alerts.items()}
    assert scopes == {
        "poisoned-jobs": "workspaceId",
        "function-failures": "appInsightsId",
        "http-5xx": "appInsightsId",
        "key-vault-reference-failures": "workspaceId",
    }


# --- Service Bus: target-based scaling ---------------------------------------------------------------


def test_the_app_has_manage_rights_on_the_job_queue_only_citing_the_scaling_doc() -> None:
    assignments = resources("modules/servicebus.bicep", "Microsoft.Authorization/roleAssignments")
    assert [config(a)["scope"] for a in assignments.values()] == ["queue"]
    text = (ROOT / "infra/modules/servicebus.bicep").read_text()
    assert "functions-target-based-scaling" in text and "Manage rights" in text


# --- private network mode --------------------------------------------------------------------------


def test_the_private_network_mode_is_off_by_default_and_closes_public_access_when_on() -> None:
    assert parse("main.bicep")["parameters"]["privateNetworking"]["default"] is False
    for name in ("network", "privateEndpoints"):
        assert parse("main.bicep")["modules"][name]["config"]["condition"] == "privateNetworking"
    for relative, resource in (
        ("modules/storage.bicep", "account"),
        ("modules/keyvault.bicep", "vault"),
        ("modules/eventgrid.bicep", "topic"),
    ):
        access = conditional(props(relative, resource)["publicNetworkAccess"])
        assert access == {
            "condition": "privateNetworking",
            "true_value": "Disabled",
            "false_value": "Enabled",
        }
    subnet = conditional(raw_module_params("functionApp")["virtualNetworkSubnetId"])
    assert subnet["condition"] == "privateNetworking"


def test_the_app_subnet_is_delegated_for_flex_and_endpoints_cover_storage_and_key_vault() -> None:
    subnets = {s["name"]: s["properties"] for s in props("modules/network.bicep", "vnet")["subnets"]}
    delegation = subnets["app"]["delegations"][0]["properties"]["serviceName"]
    assert delegation == "Microsoft.App/environments"
    assert all("networkSecurityGroup" in s for s in subnets.values())
    endpoints = evaluate(
        parse("modules/private-endpoints.bicep")["variables"]["endpoints"]["value"],
        "modules/private-endpoints.bicep",
    )
    assert {e["name"]: e["target"] for e in endpoints} == {
        "blob": "storageAccountId",
        "queue": "storageAccountId",
        "table": "storageAccountId",
        "vault": "keyVaultId",
        "topic": "eventGridTopicId",
    }


# --- manifest signing key -------------------------------------------------------------------------


def test_the_signing_key_is_a_non_exportable_ec_p256_key_for_signing_only() -> None:
    key = config(resources("modules/keyvault.bicep")["signingKey"])
    assert key["parent"] == "vault"
    properties = key["properties"]
    assert properties["kty"] == "EC" and properties["curveName"] == "P-256"
    assert properties["keyOps"] == ["sign", "verify"]
    assert properties["attributes"] == {"enabled": True, "exportable": False}
    # No expiry: ARM refuses a redeployment whose creation parameters differ from the key's.
    assert "exp" not in properties["attributes"]


def test_the_app_may_use_only_the_signing_key_and_signs_with_the_current_version() -> None:
    assignment = config(resources("modules/keyvault.bicep")["signingKeyUser"])
    assert assignment["scope"] == "signingKey", "Key Vault Crypto User on the key, not on the vault"
    assert (
        _role_guid(
            "modules/keyvault.bicep",
            assignment["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"],
        )
        == "12338af0-0e69-4776-bea7-57ae8d297424"
    )
    output = evaluate(
        parse("modules/keyvault.bicep")["outputs"]["signingKeyUri"]["value"], "modules/keyvault.bicep"
    )
    assert output == "<signingKey.properties.keyUriWithVersion>"
    settings = app_settings()
    assert settings["REGISTRY_SIGNING_KEY_ID"] == "<keyVault.outputs.signingKeyUri>"
    assert settings["REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS"] == ""  # the parameter's default
    assert "REGISTRY_SIGNING_KEY" not in settings, "no private key in app settings in Azure"


# --- events --------------------------------------------------------------------------------------


def test_events_go_to_a_cloudevents_topic_without_keys_that_the_app_publishes_to_by_identity() -> None:
    topic = props("modules/eventgrid.bicep", "topic")
    assert topic["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["disableLocalAuth"] is True
    [assignment] = resources("modules/eventgrid.bicep", "Microsoft.Authorization/roleAssignments").values()
    assert config(assignment)["scope"] == "topic"  # the one topic, not the resource group
    settings = app_settings()
    assert settings["REGISTRY_EVENT_GRID_ENDPOINT"] == "<eventGrid.outputs.endpoint>"
