// Model registry on Azure Functions (Flex Consumption), deployed into one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p namePrefix=... entraClientId=...
//
// or infra/deploy.sh, which also writes the sealing key once and deploys the code. Every resource is
// declared in ./modules with plain resources (no registry modules: they cannot be fetched offline,
// and the checks in tests/infra run checkov and a Bicep parser on these files as written).

targetScope = 'resourceGroup'

@description('Short lowercase name (letters and digits) that starts every resource name.')
@minLength(2)
@maxLength(10)
param namePrefix string

param location string = resourceGroup().location

@description('Application (client) id of the Microsoft Entra app registration that Easy Auth validates tokens for.')
@minLength(36)
@maxLength(36)
param entraClientId string

@description('A new sealing key (32 random bytes, base64): only when the vault has none yet; empty keeps the existing one.')
@secure()
param sealingKey string = ''

@description('Comma-separated principal ids allowed to register models through the job queue (bulk).')
param bulkOwners string = ''

@description('Comma-separated hosts that model sources may be fetched from (https only).')
param allowedSourceHosts string = '*.blob.core.windows.net'

@description('Memory of each function instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances Flex Consumption scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Also create the Service Bus queue the live test suite uses (registration-jobs-livetest).')
param createLiveTestQueue bool = false

param tags object = {}

var suffix = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var names = {
  identity: 'id-${namePrefix}-${suffix}'
  storage: take(toLower('st${namePrefix}${suffix}'), 24)
  workspace: 'log-${namePrefix}-${suffix}'
  appInsights: 'appi-${namePrefix}-${suffix}'
  serviceBus: 'sb-${namePrefix}-${suffix}'
  keyVault: take('kv-${namePrefix}-${suffix}', 24)
  plan: 'plan-${namePrefix}-${suffix}'
  functionApp: 'func-${namePrefix}-${suffix}'
}

// Fixed in the code (registry/settings.py JOBS_QUEUE; the trigger names it literally).
var storageJobQueue = 'registration-jobs'
var serviceBusJobQueue = 'registration-jobs'
// The queue dead-letters after this many deliveries; the worker records the failure on the last one.
var serviceBusMaxDeliveries = 5

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
    principalId: identity.properties.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    modelsContainerName: 'models'
    deploymentContainerName: 'deploymentpackage'
    tableNames: [
      'registrations'
      'registrationfiles'
      'catalog'
      'registrationchanges'
    ]
    queueNames: [
      storageJobQueue
      '${storageJobQueue}-poison'
    ]
    principalId: identity.properties.principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: tags
    queueName: serviceBusJobQueue
    maxDeliveryCount: serviceBusMaxDeliveries
    createLiveTestQueue: createLiveTestQueue
    principalId: identity.properties.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    // deploy.sh finds the vault by this tag to learn whether the sealing key exists.
    tags: union(tags, {
      'registry-role': 'sealing-key'
    })
    sealingKey: sealingKey
    principalId: identity.properties.principalId
  }
}

// Every app setting, and nothing else: tests/infra/test_settings_contract.py checks these against
// what registry/settings.py reads and what the Functions host reads.
var appSettings = {
  // The host's storage (triggers, leases) and the code's tables/blobs/queues: identity-based.
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  // Telemetry with Entra ID authentication (local auth is off on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  // Service Bus, identity-based: the trigger's connection and the SDK's namespace.
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.properties.clientId
  REGISTRY_JOB_QUEUE: 'servicebus'
  REGISTRY_SERVICEBUS_QUEUE: serviceBusJobQueue
  REGISTRY_SERVICEBUS_MAX_DELIVERIES: string(serviceBusMaxDeliveries)
  REGISTRY_BULK_OWNERS: bulkOwners
  // Resolved by the platform with the user-assigned identity (keyVaultReferenceIdentity).
  REGISTRY_SEALING_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.sealingKeySecretUri})'
  // Keys that open what older keys sealed, during a rotation (then `python -m registry reseal`).
  REGISTRY_SEALING_PREVIOUS_KEYS: ''
  // Production: no dev-mode principal headers, no http sources (the app refuses both in Azure).
  REGISTRY_DEV_MODE: 'false'
  REGISTRY_ALLOW_INSECURE_SOURCES: 'false'
  REGISTRY_ALLOWED_SOURCE_HOSTS: allowedSourceHosts
  REGISTRY_MODELS_CONTAINER: 'models'
  REGISTRY_REGISTRATIONS_TABLE: 'registrations'
  REGISTRY_FILES_TABLE: 'registrationfiles'
  REGISTRY_CATALOG_TABLE: 'catalog'
  REGISTRY_CHANGES_TABLE: 'registrationchanges'
  // Copy tuning: 8 MiB blocks, 8 in flight, 200 s slices under a 270 s lease (Service Bus locks for
  // 5 minutes), registrations idle for 15 minutes are picked up again.
  REGISTRY_COPY_BLOCK_MIB: '8'
  REGISTRY_COPY_CONCURRENCY: '8'
  REGISTRY_COPY_TIME_BUDGET_SECONDS: '200'
  REGISTRY_COPY_LEASE_SECONDS: '30'
  REGISTRY_STALE_AFTER_SECONDS: '900'
  REGISTRY_MAX_FILE_GIB: '200'
  REGISTRY_MAX_MODEL_GIB: '1024'
  REGISTRY_MAX_FILES: '1000'
  REGISTRY_MAX_IN_PROGRESS: '20'
  REGISTRY_RATE_LIMITS: '2/1,100/60,500/600'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appSettings: appSettings
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    entraClientId: entraClientId
  }
}

output functionAppName string = functionApp.outputs.name
output apiBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/api/v1.0'
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output serviceBusQueueName string = serviceBus.outputs.queueName
