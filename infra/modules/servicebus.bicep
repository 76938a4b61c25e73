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

@description('Log Analytics workspace that receives the namespace\'s operational logs.')
param workspaceId string

// Azure Service Bus Data Owner, scoped to the job queue only: the app sends job messages and
// scheduled continuations, the trigger receives, completes and dead-letters them, and the scale
// controller reads the queue's length. Send and Listen alone are not enough for the last part:
// "For the Service Bus extension, use Manage rights on resources for the most efficient scaling.
// With Listen rights scaling reverts to incremental scale because the queue or topic length can't
// be used to inform scaling decisions."
// (https://learn.microsoft.com/azure/azure-functions/functions-target-based-scaling#service-bus-queues-and-topics)
// Data Owner is the built-in data role that carries Manage; at queue scope it reaches no other entity.
var dataOwnerRole = '090c5cfd-751d-490a-894a-3ce6f1109419'

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

resource dataOwnerRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, dataOwnerRole)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataOwnerRole)
  }
}

// Entity operations, throttling and errors of the namespace.
resource operationalLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'operational-to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'OperationalLogs'
        enabled: true
      }
    ]
  }
}

output name string = namespace.name
// serviceBusEndpoint is https://<name>.servicebus.<cloud suffix>:443/ in every cloud.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '/')[2], ':')[0]
output queueName string = queue.name
output queueId string = queue.id
output namespaceId string = namespace.id
