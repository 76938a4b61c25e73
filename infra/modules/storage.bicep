// The registry's storage account: the private models container, the tables, the storage queues and
// the container Flex Consumption deploys the app package from. Shared keys are off: every client,
// the Functions host included, authenticates with Microsoft Entra ID (the app's managed identity).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

param location string = resourceGroup().location
param tags object = {}

// The registry keeps its own copy of every model, and owners' sources may be gone later, so the
// default keeps a second copy in the paired region. GRS needs no availability zones; ZRS and the
// GZRS kinds need a region with zones, LRS suits a region without a pair (or a test deployment).
@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Days a deleted blob or container can be restored (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 14

@description('Days a previous version of a model file is kept after it was replaced or deleted (blob versioning).')
@minValue(1)
@maxValue(3650)
param modelVersionRetentionDays int = 90

@description('Log Analytics workspace that receives the blob, table and queue logs.')
param workspaceId string

@description('Put a CanNotDelete lock on the storage account.')
param protectFromDeletion bool = true

@description('Private network mode: no public network access; the app reaches storage through private endpoints.')
param privateNetworking bool = false

@description('Private container holding the registered models ({owner}/{name}/{version}/{file}).')
param modelsContainerName string = 'models'

@description('Container that Flex Consumption reads the deployment package from.')
param deploymentContainerName string = 'deploymentpackage'

@description('Tables the registry uses (registrations, per-file progress, catalog, changes, manifests, webhooks and their deliveries).')
param tableNames array = [
  'registrations'
  'registrationfiles'
  'catalog'
  'registrationchanges'
  'manifests'
  'webhooks'
  'webhookdeliveries'
]

@description('Storage queues: the job queue the code names, and the poison queue the host moves failed messages to.')
param queueNames array = [
  'registration-jobs'
  'registration-jobs-poison'
]

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

var roles = {
  // Read, write and delete blobs in the models container, read the deployment package, keep the
  // host's own blobs (leases, keys: azure-webjobs-*) and, at account scope only, call Get User
  // Delegation Key (blobServices/generateUserDelegationKey/action) to sign read SAS URLs.
  // No narrower built-in role grants both data access and the delegation key.
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Read and write entities of the registry's tables (no account keys, no table ACLs).
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Send continuation/job messages, and let the storage-queue trigger receive and delete messages
  // and move failed ones to the poison queue.
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

// Soft delete and versioning: a model file that is overwritten or deleted (by a bug, an operator or
// a re-registration) stays restorable. Versioning is an account-wide blob setting; the lifecycle
// policy below bounds how long the previous versions are kept, per container.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource versionRetention 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-previous-model-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${modelsContainerName}/'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: modelVersionRetentionDays
                }
              }
            }
          }
        }
        {
          // The Functions host rewrites its timer and lease blobs every few minutes, and every
          // deployment replaces the package: their previous versions are worth a week at most.
          name: 'expire-previous-host-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'azure-webjobs-'
                '${deploymentContainerName}/'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: 7
                }
              }
            }
          }
        }
      ]
    }
  }
}

resource modelsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: modelsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roles.blobDataContributor)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
  }
}

resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roles.tableDataContributor)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
  }
}

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roles.queueDataContributor)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
  }
}

// Who read, wrote and deleted what, for every service the registry uses; the poison-queue alert
// (modules/alerts.bicep) queries the queue log.
var storageLogs = [
  {
    category: 'StorageRead'
    enabled: true
  }
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: storageLogs
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'table-to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: workspaceId
    logs: storageLogs
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: storageLogs
  }
}

// Control-plane protection: deleting the account (and with it every registered model) needs the
// lock removed first. Data-plane access is unaffected.
resource doNotDelete 'Microsoft.Authorization/locks@2020-05-01' = if (protectFromDeletion) {
  name: 'registry-do-not-delete'
  scope: account
  properties: {
    level: 'CanNotDelete'
    notes: 'Holds every registered model. Remove the lock only to retire the registry.'
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
