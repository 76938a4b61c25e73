// Event Grid: the custom topic the registry publishes its model events to (CloudEvents 1.0).
// Azure consumers subscribe to it (Functions, Logic Apps, queues, their own webhooks) and filter on
// the CloudEvents type and subject. Local (key and SAS) authentication is off: the app publishes
// with its identity, which holds EventGrid Data Sender on this topic only.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Private network mode: no public access; the app publishes through a private endpoint.')
param privateNetworking bool = false

@description('Log Analytics workspace that receives the topic\'s delivery and publish failures.')
param workspaceId string

// EventGrid Data Sender: publish events to the topic, nothing else.
var dataSenderRole = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  // Its own identity, for subscriptions that deliver to destinations requiring Entra ID.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
  }
}

resource dataSenderRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, dataSenderRole)
  scope: topic
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRole)
  }
}

// Failed deliveries to subscribers and failed publishes (an identity without the role, say).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'topic-to-log-analytics'
  scope: topic
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
      {
        category: 'PublishFailures'
        enabled: true
      }
    ]
  }
}

output name string = topic.name
output id string = topic.id
output endpoint string = topic.properties.endpoint
