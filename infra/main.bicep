// Model registry on Azure Functions (Flex Consumption), deployed into one resource group.
//
// Deploy with infra/deploy.sh (or azd up): it decides the sealing key parameters (infra/sealing_key.py:
// a new key only when the resource group has none, the pinned versions otherwise), deploys this
// template, then the code, then checks the result. Deploying this file by hand must pass the same
// sealing key parameters, or the app loses its key. Every resource is declared in ./modules with
// plain resources (no registry modules: they cannot be fetched offline, and the checks in
// tests/infra run checkov and a Bicep parser on these files as written).

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

@description('A new sealing key (32 random bytes, base64), written as a new secret version that becomes current: only on the first deployment or when a rotation begins. Empty: keep sealingKeyVersion.')
@secure()
param sealingKey string = ''

@description('The sealing key secret version the app seals with (32 hex digits), when no new key is given.')
param sealingKeyVersion string = ''

@description('During a rotation, the secret version the app still opens sealed data with; empty otherwise.')
param previousSealingKeyVersion string = ''

@description('Public keys (PEM, each base64-encoded, comma-separated) of earlier manifest signing key versions: published so that what they signed still verifies after a rotation.')
param signingPreviousPublicKeys string = ''

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

@description('Most instances Flex Consumption scales out to (40 to 1000; the regional quota is 250 cores by default, shared by every Flex app of the subscription there).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent HTTP requests per instance before the platform adds one.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Always-ready instances for the HTTP functions: 0 scales to zero; 1 or more removes cold starts and is billed around the clock.')
@minValue(0)
@maxValue(20)
param httpAlwaysReadyInstances int = 0

@description('Replication of the storage account (GRS needs no availability zones; ZRS/GZRS need a region with zones).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('E-mail address the alerts go to (empty: alerts fire in the portal only).')
param alertEmail string = ''

@description('CanNotDelete locks on the storage account and the Key Vault.')
param protectFromDeletion bool = true

@description('Private network mode: VNet integration for the app, private endpoints for storage and Key Vault, their public endpoints off. Service Bus stays on its public endpoint (Entra ID only); see README.')
param privateNetworking bool = false

@description('Address space of the virtual network (private network mode).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Subnet the app integrates with (private network mode), inside vnetAddressPrefix.')
param appSubnetPrefix string = '10.40.0.0/24'

@description('Subnet of the private endpoints (private network mode), inside vnetAddressPrefix.')
param endpointSubnetPrefix string = '10.40.1.0/24'

@description('Also create the Service Bus queue the live test suite uses (registration-jobs-livetest).')
param createLiveTestQueue bool = false

@description('The registry\'s public base URL (a custom domain), the source of its events; empty: the app\'s own host name.')
param publicBaseUrl string = ''

param tags object = {}

var suffix = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var names = {
  identity: 'id-${namePrefix}-${suffix}'
  storage: take(toLower('st${namePrefix}${suffix}'), 24)
  workspace: 'log-${namePrefix}-${suffix}'
  appInsights: 'appi-${namePrefix}-${suffix}'
  serviceBus: 'sb-${namePrefix}-${suffix}'
  // infra/sealing_key.py finds the vault and the app by these names (kv-<prefix>-..., func-<prefix>-...).
  keyVault: take('kv-${namePrefix}-${suffix}', 24)
  plan: 'plan-${namePrefix}-${suffix}'
  functionApp: 'func-${namePrefix}-${suffix}'
  eventGrid: 'evgt-${namePrefix}-${suffix}'
  vnet: 'vnet-${namePrefix}-${suffix}'
  privateEndpoints: 'pe-${namePrefix}-${suffix}'
}

// Fixed in the code (registry/settings.py JOBS_QUEUE; the trigger names it literally).
var storageJobQueue = 'registration-jobs'
var storagePoisonQueue = '${storageJobQueue}-poison'
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

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    name: names.vnet
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    endpointSubnetPrefix: endpointSubnetPrefix
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSku
    modelsContainerName: 'models'
    deploymentContainerName: 'deploymentpackage'
    tableNames: [
      'registrations'
      'registrationfiles'
      'catalog'
      'registrationchanges'
      'manifests'
      'webhooks'
      'webhookdeliveries'
    ]
    queueNames: [
      storageJobQueue
      storagePoisonQueue
    ]
    principalId: identity.properties.principalId
    workspaceId: monitoring.outputs.workspaceId
    protectFromDeletion: protectFromDeletion
    privateNetworking: privateNetworking
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
    workspaceId: monitoring.outputs.workspaceId
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    name: names.eventGrid
    location: location
    tags: tags
    principalId: identity.properties.principalId
    workspaceId: monitoring.outputs.workspaceId
    privateNetworking: privateNetworking
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: union(tags, {
      'registry-role': 'sealing-key'
    })
    sealingKey: sealingKey
    sealingKeyVersion: sealingKeyVersion
    previousSealingKeyVersion: previousSealingKeyVersion
    principalId: identity.properties.principalId
    workspaceId: monitoring.outputs.workspaceId
    protectFromDeletion: protectFromDeletion
    privateNetworking: privateNetworking
  }
}

module privateEndpoints 'modules/private-endpoints.bicep' = if (privateNetworking) {
  name: 'private-endpoints'
  params: {
    namePrefix: names.privateEndpoints
    location: location
    tags: tags
    subnetId: network.outputs.endpointSubnetId
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
    eventGridTopicId: eventGrid.outputs.id
    blobZoneId: network.outputs.blobZoneId
    queueZoneId: network.outputs.queueZoneId
    tableZoneId: network.outputs.tableZoneId
    vaultZoneId: network.outputs.vaultZoneId
    eventGridZoneId: network.outputs.eventGridZoneId
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
  // Resolved by the platform with the user-assigned identity (keyVaultReferenceIdentity), pinned to
  // a secret version: the key the app seals with changes only when a deployment says so.
  REGISTRY_SEALING_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.currentSealingKeyUri})'
  // During a rotation, the key that sealed what is not yet resealed; empty otherwise.
  REGISTRY_SEALING_PREVIOUS_KEYS: empty(previousSealingKeyVersion) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.previousSealingKeyUri})'
  // Manifests are signed by the vault with this key (its private part never leaves the vault);
  // earlier keys' public parts stay published after a rotation.
  REGISTRY_SIGNING_KEY_ID: keyVault.outputs.signingKeyUri
  REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS: signingPreviousPublicKeys
  // Production: no dev-mode principal headers, no http sources (the app refuses both in Azure).
  REGISTRY_DEV_MODE: 'false'
  REGISTRY_ALLOW_INSECURE_SOURCES: 'false'
  REGISTRY_ALLOWED_SOURCE_HOSTS: allowedSourceHosts
  REGISTRY_MODELS_CONTAINER: 'models'
  REGISTRY_REGISTRATIONS_TABLE: 'registrations'
  REGISTRY_FILES_TABLE: 'registrationfiles'
  REGISTRY_CATALOG_TABLE: 'catalog'
  REGISTRY_CHANGES_TABLE: 'registrationchanges'
  REGISTRY_MANIFESTS_TABLE: 'manifests'
  // Webhooks: subscriptions (and the index of those hearing of others' public models), delivery logs;
  // at most 25 per owner; retries start 30 s after a failed attempt and grow to 6 h, for 24 h.
  REGISTRY_WEBHOOKS_TABLE: 'webhooks'
  REGISTRY_WEBHOOK_DELIVERIES_TABLE: 'webhookdeliveries'
  REGISTRY_MAX_WEBHOOKS: '25'
  REGISTRY_WEBHOOK_RETRY_BASE_SECONDS: '30'
  // Copy tuning: 8 MiB blocks, 8 in flight, 200 s slices under a 30 s lease renewed at every
  // checkpoint (Service Bus locks for 30 s, renewed by the trigger), registrations idle for 15
  // minutes are picked up again.
  REGISTRY_COPY_BLOCK_MIB: '8'
  REGISTRY_COPY_CONCURRENCY: '8'
  REGISTRY_COPY_TIME_BUDGET_SECONDS: '200'
  REGISTRY_COPY_LEASE_SECONDS: '30'
  REGISTRY_STALE_AFTER_SECONDS: '900'
  // Per-owner quotas and request rate limits (registry/settings.py; the same values as its defaults
  // and local.settings.sample.json): 200 GiB a file, 1 TiB a model, 1000 files, 20 registrations
  // in progress; 2 requests a second, 100 a minute, 500 in ten minutes.
  REGISTRY_MAX_FILE_GIB: '200'
  REGISTRY_MAX_MODEL_GIB: '1024'
  REGISTRY_MAX_FILES: '1000'
  REGISTRY_MAX_IN_PROGRESS: '20'
  REGISTRY_RATE_LIMITS: '2/1,100/60,500/600'
  // Events: published to the Event Grid topic with the app's identity; their CloudEvents source is
  // publicBaseUrl, or (empty) the app's own https host name.
  REGISTRY_EVENT_GRID_ENDPOINT: eventGrid.outputs.endpoint
  REGISTRY_BASE_URL: publicBaseUrl
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
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
    entraClientId: entraClientId
  }
  // In private network mode the app reads its package and its storage through the endpoints.
  dependsOn: [
    privateEndpoints
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: namePrefix
    location: location
    tags: tags
    alertEmail: alertEmail
    appInsightsId: monitoring.outputs.appInsightsId
    workspaceId: monitoring.outputs.workspaceId
    serviceBusNamespaceId: serviceBus.outputs.namespaceId
    serviceBusQueueName: serviceBus.outputs.queueName
    storageAccountName: storage.outputs.name
    poisonQueueName: storagePoisonQueue
    keyVaultId: keyVault.outputs.id
  }
}

output functionAppName string = functionApp.outputs.name
output apiBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/api/v1.0'
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output serviceBusQueueName string = serviceBus.outputs.queueName
output alertActionGroupId string = alerts.outputs.actionGroupId
output eventGridTopicEndpoint string = eventGrid.outputs.endpoint
