// Service Bus: the production job queue (duplicate detection, dead letters, scheduled messages).
// Standard tier: Basic has no duplicate detection. Local (SAS) authentication is off: the app and
// bulk producers authenticate with Microsoft Entra ID.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('The job queue the app sends to and its Service Bus trigger receives from.')
param queueName string = 'registration-jobs'

@description('Also create a separate queue for the live Service Bus test suite (the app never reads it).')
param createLiveTestQueue bool = false

@description('Deliveries before Service Bus dead-letters a message (the app reads the same number).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 5

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

var roles = {
  // Send job messages and scheduled continuations to the job queue (the app, after a PUT or a slice).
  sender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  // Receive, complete, abandon and dead-letter messages (the Service Bus trigger).
  receiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
}

// Shared by the job queue and the live-test queue.
var queueProperties = {
  // The trigger renews the lock while a copy slice runs (host.json maxAutoLockRenewalDuration); a
  // short lock brings a dead worker's job back within 30 s, when its 30 s lease has lapsed too.
  lockDuration: 'PT30S'
  maxDeliveryCount: maxDeliveryCount
  requiresDuplicateDetection: true
  duplicateDetectionHistoryTimeWindow: 'PT1H'
  deadLetteringOnMessageExpiration: true
  defaultMessageTimeToLive: 'P14D'
  requiresSession: false
  enablePartitioning: false
  maxSizeInMegabytes: 1024
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: queueProperties
}

resource liveTestQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = if (createLiveTestQueue) {
  parent: namespace
  name: '${queueName}-livetest'
  properties: queueProperties
}

// Scoped to the job queue, not the namespace: the app touches no other entity.
resource senderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.sender)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
  }
}

resource receiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.receiver)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.receiver)
  }
}

output name string = namespace.name
// serviceBusEndpoint is https://<name>.servicebus.<cloud suffix>:443/ in every cloud.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '/')[2], ':')[0]
output queueName string = queue.name
output queueId string = queue.id
