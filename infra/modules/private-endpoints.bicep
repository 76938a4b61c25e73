// Private endpoints for the storage account (blob, queue, table), the Key Vault and the Event Grid
// topic, each registered
// in its private DNS zone (modules/network.bicep), for the private network mode.

param namePrefix string
param location string = resourceGroup().location
param tags object = {}

@description('Subnet the private endpoints live in.')
param subnetId string

param storageAccountId string
param keyVaultId string
param eventGridTopicId string

param blobZoneId string
param queueZoneId string
param tableZoneId string
param vaultZoneId string
param eventGridZoneId string

var endpoints = [
  {
    name: 'blob'
    target: storageAccountId
    zone: blobZoneId
  }
  {
    name: 'queue'
    target: storageAccountId
    zone: queueZoneId
  }
  {
    name: 'table'
    target: storageAccountId
    zone: tableZoneId
  }
  {
    name: 'vault'
    target: keyVaultId
    zone: vaultZoneId
  }
  {
    name: 'topic'
    target: eventGridTopicId
    zone: eventGridZoneId
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for endpoint in endpoints: {
  name: '${namePrefix}-${endpoint.name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: endpoint.name
        properties: {
          privateLinkServiceId: endpoint.target
          groupIds: [
            endpoint.name
          ]
        }
      }
    ]
  }
}]

resource dnsGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: endpoint.name
        properties: {
          privateDnsZoneId: endpoint.zone
        }
      }
    ]
  }
}]
