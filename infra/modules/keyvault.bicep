// Key Vault for the registry's sealing key (REGISTRY_SEALING_KEY) and its manifest signing key
// (REGISTRY_SIGNING_KEY_ID). RBAC authorization, soft delete
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

@description('Name of the EC P-256 key the app signs model manifests with (through the vault: it never leaves it).')
param signingKeyName string = 'manifest-signing'

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
// Key Vault Crypto User, on the signing key only: the app reads the key's public part (published
// at /signing-keys) and asks the vault to sign; no built-in role is narrower. Its encrypt, decrypt,
// wrap and unwrap rights do not apply to an EC key whose keyOps are sign and verify.
var cryptoUserRole = '12338af0-0e69-4776-bea7-57ae8d297424'

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

// The manifest signing key. Created by the first deployment; later deployments with the same
// creation parameters leave it (and its versions) as it is: ARM creates only the first version of a
// key, so a new version (a rotation) is made with `az keyvault key rotate`, see the README. No
// expiry: the creation parameters must stay the same on every deployment, and signing must not stop
// on a date; rotating replaces it.
resource signingKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: signingKeyName
  tags: tags
  properties: {
    kty: 'EC'
    curveName: 'P-256'
    keyOps: [
      'sign'
      'verify'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
  }
}

resource signingKeyUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signingKey.id, principalId, cryptoUserRole)
  scope: signingKey
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cryptoUserRole)
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
// The key's current version: REGISTRY_SIGNING_KEY_ID. A rotated key's new version becomes current
// at the next deployment; list the old version's public key in REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS.
output signingKeyUri string = signingKey.properties.keyUriWithVersion
output id string = vault.id
// Pinned: the new version when one was written, else the version the deployment was given.
output currentSealingKeyUri string = empty(sealingKey) ? '${secretBaseUri}/${sealingKeyVersion}' : secret.outputs.secretUriWithVersion
output previousSealingKeyUri string = empty(previousSealingKeyVersion) ? '' : '${secretBaseUri}/${previousSealingKeyVersion}'
