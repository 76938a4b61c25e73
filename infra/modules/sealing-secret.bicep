// The sealing key secret, written once (keyvault.bicep calls this only when a new key is given).

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
