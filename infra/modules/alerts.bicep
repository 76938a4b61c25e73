// Alerts, all through one action group that e-mails the operators:
// - a copy job dead-lettered on Service Bus (metric);
// - a copy job moved to the storage poison queue (queue log);
// - the function failure rate, and the HTTP 5xx rate (Application Insights requests);
// - Key Vault refusing the app's secret reads, which is how a broken Key Vault reference shows
//   (audit log). A reference that cannot be resolved at all leaves the raw reference in the app
//   setting; the app then cannot load its settings and the failure-rate and 5xx alerts fire too.
// Log alerts run every 5 minutes over the last 15; metric alerts likewise.

param namePrefix string
param location string = resourceGroup().location
param tags object = {}

@description('Where alerts are e-mailed; empty: the alerts still fire and show in the portal, but notify no one.')
param alertEmail string = ''

param appInsightsId string
param workspaceId string
param serviceBusNamespaceId string
param serviceBusQueueName string
param storageAccountName string
param poisonQueueName string
param keyVaultId string

@description('Alert when more than this share (percent) of function executions fail, over 15 minutes.')
@minValue(1)
@maxValue(100)
param failurePercent int = 5

@description('Alert when at least this share (percent) of HTTP requests end in a 5xx, over 15 minutes.')
@minValue(1)
@maxValue(100)
param http5xxPercent int = 1

@description('Executions (or HTTP requests) a 15-minute window needs before a rate alert can fire.')
@minValue(1)
param minimumRequests int = 10

resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-operators'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: take('${namePrefix}ops', 12)
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-lettered-jobs'
  location: 'global'
  tags: tags
  properties: {
    description: 'A copy job was dead-lettered on ${serviceBusQueueName}: its registration failed after every delivery. Inspect the dead-letter queue.'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                serviceBusQueueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: operators.id
      }
    ]
  }
}

// Storage queue metrics count messages per account, not per queue, and the app drains the poison
// queue itself (it marks the registration failed), so its length is nearly always 0: the signal is
// a message arriving there, which the queue log records.
var logAlerts = [
  {
    name: 'poisoned-jobs'
    description: 'A copy job was moved to the storage poison queue ${poisonQueueName} after failing every attempt.'
    severity: 2
    scope: workspaceId
    query: 'StorageQueueLogs | where AccountName == "${storageAccountName}" and OperationName == "PutMessage" and Uri contains "/${poisonQueueName}/messages"'
  }
  {
    name: 'function-failures'
    description: 'More than ${failurePercent}% of function executions failed in 15 minutes (HTTP 4xx answers are not failures).'
    severity: 2
    scope: appInsightsId
    query: 'requests | summarize total = count(), failed = countif(success == false and not(toint(resultCode) between (400 .. 499))) | where total >= ${minimumRequests} and failed * 100.0 / total > ${failurePercent}'
  }
  {
    name: 'http-5xx'
    description: 'At least ${http5xxPercent}% of HTTP requests ended in a 5xx in 15 minutes.'
    severity: 1
    scope: appInsightsId
    query: 'requests | where toint(resultCode) >= 100 | summarize total = count(), errors = countif(toint(resultCode) >= 500) | where total >= ${minimumRequests} and errors > 0 and errors * 100.0 / total >= ${http5xxPercent}'
  }
  {
    name: 'key-vault-reference-failures'
    description: 'Key Vault refused a secret read: the sealing key reference may not resolve (missing role, missing or disabled secret version, network).'
    severity: 1
    scope: workspaceId
    query: 'AzureDiagnostics | where ResourceProvider == "MICROSOFT.KEYVAULT" and _ResourceId =~ "${keyVaultId}" | where OperationName == "SecretGet" and httpStatusCode_d >= 400'
  }
]

resource logAlertRules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for alert in logAlerts: {
  name: '${namePrefix}-${alert.name}'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: ${alert.name}'
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      alert.scope
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        operators.id
      ]
    }
  }
}]

var logAlertNames = [for alert in logAlerts: '${namePrefix}-${alert.name}']

output actionGroupId string = operators.id
output alertNames array = concat([
  deadLetters.name
], logAlertNames)
