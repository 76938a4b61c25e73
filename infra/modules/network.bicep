// Private network mode (main.bicep's privateNetworking): a virtual network with a subnet the
// function app integrates with (Flex Consumption needs it delegated to Microsoft.App/environments)
// and a subnet for the private endpoints of storage and Key Vault, plus the private DNS zones that
// make the services' usual host names resolve to those endpoints inside the network.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Address space of the virtual network.')
param addressPrefix string = '10.40.0.0/16'

@description('Subnet the function app integrates with (outbound traffic).')
param appSubnetPrefix string = '10.40.0.0/24'

@description('Subnet holding the private endpoints.')
param endpointSubnetPrefix string = '10.40.1.0/24'

// The public cloud's private link zones (other clouds use other suffixes for Key Vault).
var storageZones = [for service in [
  'blob'
  'queue'
  'table'
]: 'privatelink.${service}.${environment().suffixes.storage}']
var vaultZone = 'privatelink.vaultcore.azure.net'
var eventGridZone = 'privatelink.eventgrid.azure.net'
var zoneNames = concat(storageZones, [
  vaultZone
  eventGridZone
])

// No custom rules: the default rules allow traffic within the network and outbound, and deny
// inbound from the internet. Both subnets carry it so that a rule added later applies to both.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for zoneName in zoneNames: {
  name: zoneName
  location: 'global'
  tags: tags
}]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (zoneName, i) in zoneNames: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

output appSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'app')
output endpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'endpoints')
output blobZoneId string = zones[0].id
output queueZoneId string = zones[1].id
output tableZoneId string = zones[2].id
output vaultZoneId string = zones[3].id
output eventGridZoneId string = zones[4].id
