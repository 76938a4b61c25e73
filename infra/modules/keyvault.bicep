// Key Vault for the registry's sealing key (REGISTRY_SEALING_KEY). RBAC authorization, soft delete
// and purge protection: losing the key would make every sealed value unreadable.
//
// The app reads the key through Key Vault references pinned to a secret version, never the
// versionless URI: a new version of the secret changes nothing until a deployment names it (see
// infra/sealing_key.py, which decides the versions, and infra/rotate-sealing-key.sh).

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Name of the secret holding the sealing key.')
param sealingKeySecretName string = 'registry-sealing-key'

@description('A new sealing key (32 random bytes, base64): written as a new secret version, which becomes the current key. Empty: write nothing.')
@secure()
param sealingKey string = ''

@description('The secret version the app seals with, when no new key is given (32 hex digits).')
param sealingKeyVersion string = ''

@description('A secret version the app still opens sealed data with during a rotation; empty when none.')
param previousSealingKeyVersion string = ''

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Log Analytics workspace that receives the audit events.')
param workspaceId string

@description('Put a CanNotDelete lock on the vault.')
param protectFromDeletion bool = true

@description('Private network mode: no public network access; the app reaches the vault through a private endpoint.')
param privateNetworking bool = false

// Key Vault Secrets User: read secret values, nothing else (no listing of keys or certificates, no
// writes). The app platform resolves the @Microsoft.KeyVault(...) app settings with it. The vault
// holds only the sealing key, so vault scope grants no more than the secret itself.
var secretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
  }
}

// A new secret version only when a new key is given (first deployment, or the start of a
// rotation). A module, so that the secret resource itself is unconditional and checkov checks it.
module secret 'sealing-secret.bicep' = if (!empty(sealingKey)) {
  name: 'sealing-secret'
  params: {
    vaultName: vault.name
    secretName: sealingKeySecretName
    value: sealingKey
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, secretsUserRole)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRole)
  }
}

// Every secret read, by whom and with what result: the alert on failed Key Vault reference
// resolution (modules/alerts.bicep) queries these.
resource auditToWorkspace 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

resource doNotDelete 'Microsoft.Authorization/locks@2020-05-01' = if (protectFromDeletion) {
  name: 'registry-do-not-delete'
  scope: vault
  properties: {
    level: 'CanNotDelete'
    notes: 'Holds the sealing key: without it no sealed source URL or password can be read. Remove the lock only to retire the registry.'
  }
}

var secretBaseUri = '${vault.properties.vaultUri}secrets/${sealingKeySecretName}'

output name string = vault.name
output id string = vault.id
// Pinned: the new version when one was written, else the version the deployment was given.
output currentSealingKeyUri string = empty(sealingKey) ? '${secretBaseUri}/${sealingKeyVersion}' : secret.outputs.secretUriWithVersion
output previousSealingKeyUri string = empty(previousSealingKeyVersion) ? '' : '${secretBaseUri}/${previousSealingKeyVersion}'
