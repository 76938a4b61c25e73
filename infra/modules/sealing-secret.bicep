// A new version of the sealing key secret (keyvault.bicep calls this only when a new key is given).

param vaultName string
param secretName string

@secure()
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: value
    contentType: 'application/octet-stream; base64 (32 bytes)'
    attributes: {
      enabled: true
    }
  }
}

// The version just written: the app's Key Vault reference is pinned to it.
output secretUriWithVersion string = secret.properties.secretUriWithVersion
