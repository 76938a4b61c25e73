// Key Vault for the registry's sealing key (REGISTRY_SEALING_KEY). RBAC authorization, soft delete
// and purge protection: losing the key would make every sealed value unreadable.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Name of the secret holding the sealing key.')
param sealingKeySecretName string = 'registry-sealing-key'

@description('A new sealing key (32 random bytes, base64). Empty: keep the existing secret untouched.')
@secure()
param sealingKey string = ''

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

// Key Vault Secrets User: read secret values, nothing else (no listing of keys or certificates, no
// writes). The app platform resolves the @Microsoft.KeyVault(...) app setting with it. The vault
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
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Created only when deploy.sh found no secret: redeploying never rotates the key. (A module, so that
// the secret resource itself is unconditional and checkov checks it.)
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

output name string = vault.name
// Versionless: the app setting follows the current version of the secret.
output sealingKeySecretUri string = '${vault.properties.vaultUri}secrets/${sealingKeySecretName}'
